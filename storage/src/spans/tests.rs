use super::*;
use crate::model::Value;
use crate::table::{SegmentMeta, PAGE_ROWS};
use crate::testing::arb_batch;
use proptest::prelude::*;

/// Attributes are a map: a segment keeps one value per key and returns them in column order.
fn sorted(mut v: Vec<Span>) -> Vec<Span> {
    for s in &mut v {
        s.attributes.sort_by(|a, b| a.0.cmp(&b.0));
    }
    v.sort_by_key(|s| (s.trace_id, s.start_ns, s.span_id));
    v
}

/// The collector guarantees unique keys per span (OTLP requires them).
fn unique_keys(mut batch: Vec<Span>) -> Vec<Span> {
    for s in &mut batch {
        let mut seen = std::collections::HashSet::new();
        s.attributes.retain(|(k, _)| seen.insert(k.clone()));
    }
    batch
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The segment order is the sort on (trace's earliest start, trace id, start, span id).
    #[test]
    fn segment_order_is_the_sort_on_the_whole_key(
        spans in proptest::collection::vec((0u8..12, 0u64..50, 0u8..4), 0..300),
    ) {
        let spans: Vec<Span> = spans
            .iter()
            .map(|&(trace, start, id)| crate::testing::span(trace, u64::from(id)).start(start).build())
            .collect();
        let refs: Vec<&Span> = spans.iter().collect();
        let earliest = |t: TraceId| spans.iter().filter(|s| s.trace_id == t).map(|s| s.start_ns).min().unwrap();
        let key = |s: &Span| (earliest(s.trace_id), s.trace_id, s.start_ns, s.span_id);
        let mut want: Vec<_> = spans.iter().map(key).collect();
        want.sort();
        let got: Vec<_> = build::segment_order(&refs).into_iter().map(key).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn segment_round_trips(batch in arb_batch().prop_map(unique_keys)) {
        let refs: Vec<&Span> = batch.iter().collect();
        let built = build(7, &mut || 1, &refs).remove(0);
        let fetch = crate::table::build::in_memory(&built.chunks);
        let back = read_rows(&built.meta, 0, built.meta.rows, &fetch).unwrap();
        prop_assert_eq!(sorted(back), sorted(batch.clone()));
        // Every trace's rows are contiguous and readable on their own.
        for t in &built.traces {
            let rows = read_rows(&built.meta, t.first_row, t.count, &fetch).unwrap();
            let expect: Vec<Span> = batch.iter().filter(|s| s.trace_id == t.trace_id).cloned().collect();
            prop_assert_eq!(sorted(rows), sorted(expect));
        }
    }
}

#[test]
fn traces_spanning_pages_read_back() {
    let res = crate::testing::service_resource("a", &[]);
    let spans: Vec<Span> = (0..(PAGE_ROWS as u64 * 2 + 10))
        .map(|i| {
            let attrs = if i % 2 == 0 { vec![("k", Value::Int(i as i64))] } else { vec![] };
            let mut s = crate::testing::span((i / 3000) as u8 + 1, i + 1)
                .parent((i % 3000 != 0).then_some(i))
                .service("a")
                .resource(res.clone())
                .name(format!("op{}", i % 7))
                .start(1_700_000_000_000_000_000 + i * 1000)
                .duration(i)
                .attrs(&attrs)
                .build();
            s.flags = 0;
            s
        })
        .collect();
    let refs: Vec<&Span> = spans.iter().collect();
    let built = build(1, &mut || 1, &refs).remove(0);
    assert_eq!(built.meta.pages(), 3);
    let fetch = crate::table::build::in_memory(&built.chunks);
    let t = built.traces[1];
    assert_eq!((t.first_row, t.count), (3000, 3000));
    let rows = read_rows(&built.meta, t.first_row, t.count, &fetch).unwrap();
    assert_eq!(rows, spans[3000..6000].to_vec());
    assert!(read_rows(&built.meta, built.meta.rows, 1, &fetch).is_err());
}
