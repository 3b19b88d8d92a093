//! Each transaction once: a batch retried after the retry window is stored again, in another
//! segment and in memory, and `xlog` still counts each record once (its most complete copy).

use std::sync::Arc;

use rewind_sql::Engine;
use rewind_storage::{ManualClock, Store};
use rewind_workload::{Shop, ShopConfig};

use crate::support::{append, config, lines, runtime, S, T0};

#[test]
fn a_retried_batch_counts_once_in_xlog_and_twice_in_spans() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 600 * S));
    let store = Store::open(config(&dir, &clock)).unwrap();
    let mut shop = Shop::new(ShopConfig { seed: 3, incident: None });
    let req = shop.request(40, T0, S / 4);
    let other = shop.request(40, T0 + 20 * S, S / 4);
    append(&store, req.clone());
    append(&store, other);
    store.seal_all().unwrap();
    let engine = Engine::new(store.clone(), Default::default()).unwrap();
    let rt = runtime();
    let count = |sql: &str| lines(&engine, &rt, sql).unwrap().remove(0);
    let (spans, records) = (count("SELECT count(*) FROM spans"), count("SELECT count(*) FROM xlog"));
    let by_service = lines(&engine, &rt, "SELECT service, count(*) FROM xlog GROUP BY 1 ORDER BY 1").unwrap();

    // Past the retry window the collector cannot tell a retry from new data: stored again,
    // once sealed into a second segment, once left in memory.
    clock.advance(11 * 60 * S);
    append(&store, req.clone());
    store.seal_all().unwrap();
    clock.advance(11 * 60 * S);
    append(&store, req);
    let plan = lines(&engine, &rt, "EXPLAIN SELECT count(*) FROM xlog").unwrap().join("\n");
    assert!(!plan.contains("contested_pages=0"), "{plan}");

    assert_eq!(count("SELECT count(*) FROM xlog"), records);
    assert_eq!(lines(&engine, &rt, "SELECT service, count(*) FROM xlog GROUP BY 1 ORDER BY 1").unwrap(), by_service);
    assert_eq!(count("SELECT count(DISTINCT trace_id || span_id) FROM xlog"), records);
    // The spans table shows rows as stored (README: a retry past the window is stored twice).
    let spans: u64 = spans.parse().unwrap();
    let again: u64 = count("SELECT count(*) FROM spans").parse().unwrap();
    assert!(again > spans, "{again} <= {spans}");
}
