//! The XLog table through the store: derivation, native records, sealing, restarts.

use std::time::Duration;

use super::{config, span};
use crate::model::{SpanId, TraceId};
use crate::xlog::XLog;
use crate::{now_ns, EncodedBatch, Store, XLogFilter};

fn everything() -> XLogFilter {
    XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 1000, ..XLogFilter::default() }
}

fn records(store: &Store) -> Vec<(u8, u32)> {
    let (r, truncated) = store.xlog_records(&everything()).unwrap();
    assert!(!truncated);
    let mut out: Vec<(u8, u32)> = r.iter().map(|x| (x.trace_id.0[0], x.sql_count)).collect();
    out.sort_unstable();
    out
}

/// Trace `t`: a server span with `queries` database calls under it.
fn request(t: u8, queries: u64, start: u64) -> Vec<crate::Span> {
    let mut v = vec![span(t, 1, None, start, "front")];
    v.extend((0..queries).map(|i| span(t, 10 + i, Some(1), start + 10 + i, "front")));
    v
}

#[test]
fn derived_records_are_visible_at_once_and_survive_seal_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::new(request(1, 3, t)), EncodedBatch::new(request(2, 1, t))]).unwrap();
        assert_eq!(records(&store), vec![(1, 3), (2, 1)], "provisional, before any seal");
        store.seal_all().unwrap();
        assert_eq!(records(&store), vec![(1, 3), (2, 1)]);
        assert_eq!(store.stats().sealed_xlogs, 2);
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(records(&store), vec![(1, 3), (2, 1)]);
    let p = store.xlog_points(&everything()).unwrap();
    assert_eq!(p.end_ns.len(), 2);
    assert_eq!(p.services, vec!["front".to_string()]);
}

#[test]
fn a_crash_before_records_are_final_loses_none_and_counts_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    let mut c = config(dir.path());
    c.derive.grace = Duration::from_secs(3600);
    {
        let store = Store::open(c.clone()).unwrap();
        store.append(vec![EncodedBatch::new(request(1, 2, t))]).unwrap();
        // A seal writes the spans out, but the entry still waits for its children.
        store.seal().unwrap();
        assert_eq!(store.stats().pending_xlogs, 1);
        store.append(vec![EncodedBatch::new(request(2, 1, t))]).unwrap();
        // Dropped without a final seal: as after kill -9.
    }
    let store = Store::open(c).unwrap();
    assert_eq!(records(&store), vec![(1, 2), (2, 1)]);
    store.seal_all().unwrap();
    assert_eq!(records(&store), vec![(1, 2), (2, 1)]);
    // The spans of the first request were sealed before the crash and are not stored again.
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap().len(), 3);
    assert_eq!(store.stats().sealed_spans, 5);
}

#[test]
fn a_retried_export_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let t = now_ns();
    store.append(vec![EncodedBatch::new(request(1, 2, t))]).unwrap();
    store.append(vec![EncodedBatch::new(request(1, 2, t))]).unwrap();
    assert_eq!(records(&store), vec![(1, 2)]);
    store.seal_all().unwrap();
    // After the record is final, a late retry derives it again: reads still show it once.
    store.append(vec![EncodedBatch::new(request(1, 2, t))]).unwrap();
    store.seal_all().unwrap();
    assert_eq!(records(&store), vec![(1, 2)]);
}

#[test]
fn native_records_are_durable_and_read_like_derived_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    let native = XLog {
        trace_id: TraceId([9; 16]),
        span_id: SpanId([9; 8]),
        service: "legacy".into(),
        endpoint: "/checkout".into(),
        start_ns: t,
        elapsed_ns: 5_000_000,
        sql_count: 4,
        ..XLog::default()
    };
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::xlogs(vec![native.clone()])]).unwrap();
        store.append(vec![EncodedBatch::new(request(1, 1, t))]).unwrap();
        assert_eq!(records(&store), vec![(1, 1), (9, 4)]);
        // Not sealed: the native record comes back from the write-ahead log.
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(records(&store), vec![(1, 1), (9, 4)]);
    store.seal_all().unwrap();
    let (got, _) = store.xlog_records(&XLogFilter { service: Some("legacy".into()), ..everything() }).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((&*got[0].endpoint, got[0].end_ns()), ("/checkout", t + 5_000_000));
}

#[test]
fn without_derivation_only_native_records_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.derive_xlog = false;
    let store = Store::open(c).unwrap();
    store.append(vec![EncodedBatch::new(request(1, 1, now_ns()))]).unwrap();
    store.seal_all().unwrap();
    assert!(records(&store).is_empty());
}

#[test]
fn retention_drops_old_transactions_with_their_partition() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.retention = std::time::Duration::from_secs(2 * 3600);
    let store = Store::open(c).unwrap();
    let now = now_ns();
    let hour = 3_600_000_000_000;
    store
        .append(vec![EncodedBatch::new(request(1, 1, now - 5 * hour)), EncodedBatch::new(request(2, 1, now))])
        .unwrap();
    store.seal_all().unwrap();
    assert_eq!(records(&store), vec![(1, 1), (2, 1)]);
    store.enforce_retention().unwrap();
    assert_eq!(records(&store), vec![(2, 1)]);
    assert_eq!(store.stats().sealed_xlogs, 1);
}

/// The SQL table's rows in memory come in the order a seal writes them, whatever order the
/// deriver holds them in: an order-sensitive aggregate answers the same data the same way.
#[test]
fn unsealed_records_are_scanned_in_end_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    let mut c = config(dir.path());
    c.derive.grace = Duration::from_secs(3600);
    let store = Store::open(c).unwrap();
    // Two hundred traces, later ones ending first, with ties on the end time.
    let batches: Vec<EncodedBatch> =
        (0..200u8).map(|i| EncodedBatch::new(request(i, 1, t + 1000 * u64::from(199 - i / 2)))).collect();
    store.append(batches).unwrap();
    // A seal finalizes none of them (the grace is an hour): all are provisional, in the deriver.
    store.seal().unwrap();
    assert_eq!(store.stats().pending_xlogs, 200);
    // Final records not yet sealed, in the memtable, between them and after them; one is a copy
    // of a provisional record, with its end and ids.
    let entry = |i: u8| span(i, 1, None, t + 1000 * u64::from(199 - i / 2), "front");
    let copy = XLog {
        trace_id: TraceId([7; 16]),
        span_id: SpanId(1u64.to_be_bytes()),
        start_ns: entry(7).start_ns,
        elapsed_ns: entry(7).duration_ns,
        service: "copy".into(),
        ..XLog::default()
    };
    let natives: Vec<XLog> = (0..50u64)
        .map(|i| XLog {
            trace_id: TraceId([250; 16]),
            span_id: SpanId((i + 1).to_be_bytes()),
            start_ns: t + 4000 * (50 - i),
            elapsed_ns: 1,
            ..XLog::default()
        })
        .chain([copy])
        .collect();
    store.append(vec![EncodedBatch::xlogs(natives)]).unwrap();
    let memory = store.xlog_snapshot(0, u64::MAX).memory;
    let keys: Vec<(u64, TraceId, SpanId)> = memory.iter().map(|x| (x.end_ns(), x.trace_id, x.span_id)).collect();
    assert_eq!(keys.len(), 251);
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "in (end, trace, span) order");
    let twins: Vec<&str> = memory.iter().filter(|x| x.trace_id == TraceId([7; 16])).map(|x| &*x.service).collect();
    assert_eq!(twins, ["copy", "front"], "of two copies, the final one first");
}
