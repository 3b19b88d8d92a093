use super::*;
use crate::model::{kind, status, Value};
use crate::testing::{self, service_resource};

const MS: u64 = 1_000_000;
const T: u64 = 1_000_000_000_000;

fn rows(t: &CallTree) -> Vec<(u32, RowType, String)> {
    t.rows.iter().map(|r| (r.depth, r.row_type, r.name.clone())).collect()
}

/// front (0–100 ms) → GET cart (10–60) → cart's SERVER span (20–50) → SELECT (25–35), and an
/// exception in front at 80 ms.
fn shop() -> Vec<Span> {
    vec![
        testing::span(1, 1)
            .service("front")
            .name("GET /checkout")
            .start(T)
            .duration(100 * MS)
            .status(status::ERROR)
            .attrs(&[("url.full", Value::Str("http://shop/checkout?id=7".into()))])
            .event(
                "exception",
                T + 80 * MS,
                &[
                    ("exception.type", "ValueError"),
                    ("exception.message", "bad id"),
                    ("exception.stacktrace", "Traceback ..."),
                ],
            )
            .build(),
        testing::span(1, 2)
            .service("front")
            .name("GET cart")
            .kind(kind::CLIENT)
            .parent(Some(1))
            .start(T + 10 * MS)
            .duration(50 * MS)
            .build(),
        testing::span(1, 3)
            .service("cart")
            .name("GET /cart")
            .parent(Some(2))
            .start(T + 20 * MS)
            .duration(30 * MS)
            .build(),
        testing::span(1, 4)
            .service("cart")
            .name("SELECT")
            .kind(kind::CLIENT)
            .parent(Some(3))
            .start(T + 25 * MS)
            .duration(10 * MS)
            .attrs(&[("db.statement", Value::Str("SELECT * FROM cart WHERE id = ?".into()))])
            .build(),
    ]
}

#[test]
fn a_trace_is_rows_in_tree_order_with_pinpoints_columns() {
    let t = CallTree::build(shop(), 0, 100);
    assert_eq!(
        rows(&t),
        vec![
            (0, RowType::Span, "GET /checkout".into()),
            (1, RowType::Span, "GET cart".into()),
            (2, RowType::Span, "GET /cart".into()),
            (3, RowType::Span, "SELECT".into()),
            (1, RowType::Exception, "exception".into()),
        ]
    );
    let r = &t.rows;
    assert_eq!((t.duration_ms, t.span_count, t.total_rows, t.next_offset), (100.0, 4, 5, None));
    assert_eq!(r[0].argument, "http://shop/checkout?id=7");
    assert_eq!(r[3].argument, "SELECT * FROM cart WHERE id = ?");
    assert_eq!((r[1].start_ms, r[1].gap_ms, r[1].exec_ms, r[1].exec_pct), (10.0, 10.0, 50.0, 50.0));
    // Self: front's 100 ms less its call's 50; the call's 50 less cart's 30.
    assert_eq!((r[0].self_ms, r[1].self_ms, r[2].self_ms, r[3].self_ms), (50.0, 20.0, 20.0, 10.0));
    assert_eq!((r[0].status, r[0].error, r[0].kind), ("error", true, "server"));
    assert_eq!((r[2].service.as_str(), r[3].kind), ("cart", "client"));
    let x = r[4].exception.as_ref().unwrap();
    assert_eq!((x.kind.as_str(), x.message.as_str(), x.stacktrace.as_str()), ("ValueError", "bad id", "Traceback ..."));
    assert_eq!((r[4].start_ms, r[4].gap_ms, r[4].argument.as_str()), (80.0, 55.0, "ValueError: bad id"));
    assert_eq!(t.anomalies, Anomalies::default());
}

#[test]
fn orphans_hang_under_a_placeholder_for_their_missing_parent() {
    let mut spans = shop();
    spans.remove(1); // the call from front to cart never arrived
    let t = CallTree::build(spans.clone(), 0, 100);
    assert_eq!(
        rows(&t),
        vec![
            (0, RowType::Span, "GET /checkout".into()),
            (1, RowType::Exception, "exception".into()),
            (0, RowType::MissingParent, format!("(missing span {})", testing::span_id(2))),
            (1, RowType::Span, "GET /cart".into()),
            (2, RowType::Span, "SELECT".into()),
        ]
    );
    assert_eq!(t.rows[3].flags, vec!["orphan"]);
    assert_eq!((t.rows[2].start_ms, t.rows[2].exec_ms), (20.0, 30.0));
    assert_eq!((t.anomalies.missing_parents, t.anomalies.orphans), (1, 1));
}

#[test]
fn a_child_on_a_skewed_host_is_moved_inside_its_parent_with_its_subtree() {
    let mut spans = shop();
    // cart's host clock is 1 s behind: its spans seem to start before the call that made them.
    for s in &mut spans[2..] {
        s.start_ns -= 1000 * MS;
    }
    let t = CallTree::build(spans.clone(), 0, 100);
    let r = &t.rows;
    // Centred in the 50 ms call: (50 - 30) / 2 = 10 ms after its start.
    assert_eq!((r[2].start_ms, r[2].flags.clone()), (20.0, vec!["skew_adjusted"]));
    assert_eq!(r[2].skew_ms, Some(1000.0));
    // The query moves with it, and is not flagged (same host as its parent).
    assert_eq!((r[3].start_ms, r[3].skew_ms), (25.0, None));
    assert_eq!((t.duration_ms, t.anomalies.skew_adjusted), (100.0, 1));
    // Where the clocks agree nothing moves, even if the child ends after its parent on the same host.
    let mut same = shop();
    same[1].duration_ns = 200 * MS;
    let t = CallTree::build(same.clone(), 0, 100);
    assert_eq!((t.rows[1].start_ms, t.rows[1].skew_ms, t.anomalies.skew_adjusted), (10.0, None, 0));
    // Hosts named alike are one clock, even for two services.
    let mut one_host = shop();
    for (i, s) in one_host.iter_mut().enumerate() {
        s.resource = service_resource(&s.service, &[("host.name", "box")]);
        if i >= 2 {
            s.start_ns -= 1000 * MS;
        }
    }
    assert_eq!(CallTree::build(one_host.clone(), 0, 100).anomalies.skew_adjusted, 0);
}

#[test]
fn repeated_ids_and_cycles_are_shown_flagged_never_lost() {
    let mut spans = shop();
    // A second span with id 3 (another copy, different timing) and a child of id 3.
    spans.push(
        testing::span(1, 3)
            .service("cart")
            .name("GET /cart")
            .parent(Some(2))
            .start(T + 22 * MS)
            .duration(5 * MS)
            .build(),
    );
    spans.push(
        testing::span(1, 5)
            .service("cart")
            .name("child of 3")
            .kind(kind::INTERNAL)
            .parent(Some(3))
            .start(T + 40 * MS)
            .build(),
    );
    // Two spans that are each other's parent, and one that is its own.
    spans.push(testing::span(1, 6).name("a").parent(Some(7)).start(T + MS).build());
    spans.push(testing::span(1, 7).name("b").parent(Some(6)).start(T + 2 * MS).build());
    spans.push(testing::span(1, 8).name("self").parent(Some(8)).start(T + 3 * MS).build());
    let t = CallTree::build(spans.clone(), 0, 100);
    assert_eq!(t.total_rows, spans.len() + 1, "every span once, and the exception");
    let names: Vec<(u32, &str, Vec<&str>)> =
        t.rows.iter().map(|r| (r.depth, r.name.as_str(), r.flags.clone())).collect();
    assert!(names.contains(&(0, "a", vec!["cycle"])), "{names:?}");
    assert!(names.contains(&(1, "b", vec![])), "{names:?}");
    assert!(names.contains(&(0, "self", vec!["cycle"])), "{names:?}");
    assert!(names.contains(&(2, "GET /cart", vec!["duplicate_id"])), "{names:?}");
    assert!(names.contains(&(3, "child of 3", vec![])), "{names:?}");
    assert_eq!((t.anomalies.duplicate_ids, t.anomalies.cycles_broken), (1, 2));
}

#[test]
fn a_fan_out_of_100k_spans_is_paged() {
    let mut spans = vec![testing::span(1, 1).service("batch").start(T).duration(1000 * MS).build()];
    spans.extend((0..100_000u64).map(|i| {
        testing::span(1, i + 2)
            .service("batch")
            .kind(kind::CLIENT)
            .parent(Some(1))
            .start(T + i * 1000)
            .duration(5000)
            .build()
    }));
    let t = CallTree::build(spans.clone(), 0, DEFAULT_ROWS);
    assert_eq!((t.total_rows, t.rows.len(), t.next_offset), (100_001, DEFAULT_ROWS, Some(DEFAULT_ROWS)));
    let last = CallTree::build(spans.clone(), 100_000, DEFAULT_ROWS);
    assert_eq!((last.rows.len(), last.next_offset, last.rows[0].row), (1, None, 100_000));
    assert_eq!(last.rows[0].gap_ms, 0.001, "from the row before, on the page before");
    // Limits are clamped, offsets past the end answer no rows.
    assert_eq!(CallTree::build(spans.clone(), 0, usize::MAX).rows.len(), MAX_ROWS);
    assert!(CallTree::build(spans.clone(), 200_000, 10).rows.is_empty());
    // A chain 100,000 deep is walked without recursion.
    let chain: Vec<Span> = (0..100_000u64)
        .map(|i| {
            testing::span(1, i + 1)
                .parent(i.checked_sub(0).filter(|_| i > 0))
                .start(T + i)
                .duration(100_000 - i)
                .build()
        })
        .collect();
    let t = CallTree::build(chain.clone(), 99_999, 1);
    assert_eq!(t.rows[0].depth, 99_999);
}
