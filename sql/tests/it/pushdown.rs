//! Pushdown proven by what the store reads: a one-column query over one hour reads that
//! column's chunks of that hour and nothing else, and EXPLAIN shows what was pushed.

use rewind_storage::table::SegmentMeta;

use crate::support::{engine, lines, runtime, shop_store, S, T0};

#[test]
fn one_column_of_one_hour_reads_only_its_chunks() {
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let (from, to) = (T0 + 3600 * S, T0 + 7200 * S);
    // The hour is one partition: every page in it lies wholly inside the range.
    let snap = shop.store.span_snapshot(from, to);
    let pages: u64 = snap.segments.iter().map(|m| u64::from(m.pages())).sum();
    assert!(pages >= 8 && snap.segments.len() >= 5, "{pages} pages in {} segments", snap.segments.len());
    assert!(snap.segments.iter().all(|m| m.partition() == from / (3600 * S)));

    let where_ = "start >= TIMESTAMP '2026-09-21T15:00:00Z' AND start < TIMESTAMP '2026-09-21T16:00:00Z'";
    let before = shop.store.chunks_read();
    let avg = lines(&engine, &rt, &format!("SELECT avg(duration_ms) FROM spans WHERE {where_}")).unwrap();
    assert_eq!(shop.store.chunks_read() - before, pages, "one chunk per page: duration only");
    assert_ne!(avg, vec!["NULL".to_string()]);

    let before = shop.store.chunks_read();
    lines(&engine, &rt, &format!("SELECT max(duration_ms), count(DISTINCT service) FROM spans WHERE {where_}"))
        .unwrap();
    assert_eq!(shop.store.chunks_read() - before, 2 * pages, "two columns, two chunks per page");

    // count(*) needs no column at all.
    let before = shop.store.chunks_read();
    lines(&engine, &rt, &format!("SELECT count(*) FROM spans WHERE {where_}")).unwrap();
    assert_eq!(shop.store.chunks_read() - before, 0);

    // An equality on a dictionary column reads that column first, and the rest only of pages
    // that match: a service no page holds costs one chunk per page.
    let before = shop.store.chunks_read();
    let none =
        lines(&engine, &rt, &format!("SELECT avg(duration_ms) FROM spans WHERE {where_} AND service = 'nobody'"));
    assert_eq!(none.unwrap(), vec!["NULL".to_string()]);
    assert_eq!(shop.store.chunks_read() - before, pages);

    // A range that cuts pages (seals were every ten minutes) reads the time column of those.
    let before = shop.store.chunks_read();
    let q = "SELECT count(*) FROM spans WHERE start >= TIMESTAMP '2026-09-21T15:05:00Z' AND start < TIMESTAMP '2026-09-21T16:00:00Z'";
    let partial: u64 = lines(&engine, &rt, q).unwrap()[0].parse().unwrap();
    assert!(partial > 0);
    let read = shop.store.chunks_read() - before;
    assert!(read >= 1 && read < pages, "{read} of {pages}");
}

#[test]
fn explain_shows_the_projection_and_the_pushed_filters() {
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let plan = lines(
        &engine,
        &rt,
        "EXPLAIN SELECT avg(elapsed_ms) FROM xlog WHERE service = 'cart' AND \"end\" >= TIMESTAMP '2026-09-21T15:00:00Z'",
    )
    .unwrap()
    .join("\n");
    assert!(plan.contains("RewindScan: table=xlog, projection=[elapsed_ms]"), "{plan}");
    assert!(plan.contains(&format!("time=[{}, max)", T0 + 3600 * S)), "{plan}");
    assert!(plan.contains("equals=[service = 'cart']"), "{plan}");
    // Applied exactly by the scan: no filter left above it.
    assert!(!plan.contains("FilterExec"), "{plan}");

    // What the store cannot use stays with DataFusion.
    let plan = lines(&engine, &rt, "EXPLAIN SELECT count(*) FROM spans WHERE duration_ms > 100").unwrap().join("\n");
    assert!(plan.contains("FilterExec"), "{plan}");
    assert!(plan.contains("projection=[duration_ms], time=[0, max)"), "{plan}");
}

#[test]
fn pushed_and_unpushed_forms_of_one_question_agree() {
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let ask = |sql: &str| lines(&engine, &rt, sql).unwrap();
    // Pushed (equality, time) against the same filters in forms the store does not take.
    let pushed = ask(
        "SELECT count(*), round(sum(duration_ms), 3) FROM spans WHERE service = 'cart' AND start >= TIMESTAMP '2026-09-21T14:20:00Z' AND start < TIMESTAMP '2026-09-21T15:20:00Z'",
    );
    let not_pushed = ask(
        "SELECT count(*), round(sum(duration_ms), 3) FROM spans WHERE lower(service) = 'cart' AND start + INTERVAL '0 seconds' >= TIMESTAMP '2026-09-21T14:20:00Z' AND start + INTERVAL '0 seconds' < TIMESTAMP '2026-09-21T15:20:00Z'",
    );
    assert_eq!(pushed, not_pushed);
    // No column at all, and pages cut by the range: the rows counted are still the range's.
    let count = |cond: &str| {
        ask(&format!(
            "SELECT count(*) FROM spans WHERE {cond} >= TIMESTAMP '2026-09-21T14:05:00Z' AND {cond} < TIMESTAMP '2026-09-21T15:25:30Z'"
        ))
    };
    assert_eq!(count("start"), count("(start + INTERVAL '0 seconds')"));
    let trace = ask("SELECT trace_id FROM xlog WHERE service = 'checkout' ORDER BY \"end\" LIMIT 1").remove(0);
    let by_index = ask(&format!("SELECT span_id FROM spans WHERE trace_id = '{trace}' ORDER BY span_id"));
    let by_scan = ask(&format!("SELECT span_id FROM spans WHERE concat(trace_id, '') = '{trace}' ORDER BY span_id"));
    assert_eq!(by_index, by_scan);
    assert!(by_index.len() >= 10, "{by_index:?}");
    let xlog_pushed = ask(&format!("SELECT count(*) FROM xlog WHERE trace_id = '{trace}'"));
    let xlog_scan = ask(&format!("SELECT count(*) FROM xlog WHERE concat(trace_id, '') = '{trace}'"));
    assert_eq!(xlog_pushed, xlog_scan);
}

#[test]
fn sql_agrees_with_the_query_api() {
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let filter = rewind_storage::XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 10_000_000, ..Default::default() };
    let (records, cut) = shop.store.xlog_records(&filter).unwrap();
    assert!(!cut);
    let errors = records.iter().filter(|x| x.error).count();
    let sql = lines(&engine, &rt, "SELECT count(*), sum(CASE WHEN error THEN 1 ELSE 0 END) FROM xlog").unwrap();
    assert_eq!(sql, vec![format!("{}|{errors}", records.len())]);
}

#[test]
fn attribute_keys_are_read_alone_and_answer_as_the_whole_map_does() {
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let ask = |sql: &str| lines(&engine, &rt, sql).unwrap();
    let chunks = |sql: &str| {
        let before = shop.store.chunks_read();
        let answer = ask(sql);
        (answer, shop.store.chunks_read() - before)
    };
    // Each pair: the same question with `attr` on the table's map (only its keys read), and with
    // the map renamed on the way (every key read).
    let pairs = [
        (
            "SELECT attr(attributes, 'http.route') AS r, count(*) FROM spans GROUP BY 1 ORDER BY 1",
            "SELECT attr(a, 'http.route') AS r, count(*) FROM (SELECT attributes AS a FROM spans) GROUP BY 1 ORDER BY 1",
        ),
        (
            "SELECT r, count(*) FROM (SELECT attr(attributes, 'http.route') AS r, attributes FROM spans) GROUP BY 1 ORDER BY 1",
            "SELECT attr(a, 'http.route') AS r, count(*) FROM (SELECT attributes AS a FROM spans) GROUP BY 1 ORDER BY 1",
        ),
        (
            "SELECT attr(s.attributes, 'db.system.name') AS db, count(*) FROM spans s JOIN xlog x ON s.trace_id = x.trace_id \
             WHERE attr(x.attributes, 'http.route') = '/checkout' GROUP BY 1 ORDER BY 1",
            "SELECT attr(s.a, 'db.system.name') AS db, count(*) FROM (SELECT trace_id, attributes AS a FROM spans) s \
             JOIN (SELECT trace_id, attributes AS a FROM xlog) x ON s.trace_id = x.trace_id \
             WHERE attr(x.a, 'http.route') = '/checkout' GROUP BY 1 ORDER BY 1",
        ),
        (
            "SELECT count(*) FROM spans WHERE attr(resource, 'k8s.pod.name') = 'cart-7f9c2d-m8q1z'",
            "SELECT count(*) FROM (SELECT resource AS r FROM spans) WHERE attr(r, 'k8s.pod.name') = 'cart-7f9c2d-m8q1z'",
        ),
    ];
    for (narrow, whole) in pairs {
        let (a, read_narrow) = chunks(narrow);
        let (b, read_whole) = chunks(whole);
        assert_eq!(a, b, "{narrow}");
        assert!(a.len() > 1 || a[0] != "0", "{narrow}: {a:?}");
        assert!(read_narrow <= read_whole, "{narrow}: {read_narrow} > {read_whole}");
    }
    let (_, narrow) = chunks("SELECT count(attr(attributes, 'http.route')) FROM spans");
    let (_, whole) = chunks("SELECT count(attributes) FROM spans");
    assert!(narrow * 3 < whole, "{narrow} vs {whole}");
    // Asked for whole, the map is whole.
    let map = ask("SELECT attributes FROM spans WHERE kind = 'server' AND service = 'frontend' LIMIT 1");
    assert!(map[0].matches("\":").count() >= 4, "{map:?}");
    let plan = ask("EXPLAIN SELECT attr(attributes, 'http.route') FROM spans").join("\n");
    assert!(plan.contains("attributes keys [http.route]"), "{plan}");
}
