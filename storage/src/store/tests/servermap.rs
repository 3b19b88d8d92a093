//! The server map's statistics through the store: exact figures from hand-built traces, over
//! ranges that cross the roll-up into minutes and hours; late spans; retries; restarts.

use std::sync::Arc;

use crate::apm::figures::Thresholds;
use crate::apm::histogram::{HistogramQuery, Subject};
use crate::apm::semconv::NodeKind;
use crate::apm::servermap::{MapQuery, ServerMap};
use crate::model::{kind, status, Span, Value};
use crate::testing;
use crate::{EncodedBatch, ManualClock, Store};

use crate::testing::{clocked_config as config, HOUR_T0 as T0, MS, S};

/// Trace `t` at `start`: USER → front (SERVER) → a call to back (CLIENT → SERVER), and back's
/// query to MySQL. `front_ms` is front's own time; the rest fits inside it.
fn trace(t: u32, start: u64, front_ms: u64, error: bool) -> Vec<Span> {
    let id = |n: u64| u64::from(t) * 100 + n;
    let at = |n: u64| testing::span(0, id(n)).start(start + n * MS);
    let mut front = at(1).service("front").kind(kind::SERVER).duration(front_ms * MS).build();
    let mut call = at(2).service("front").kind(kind::CLIENT).parent(Some(id(1))).duration(front_ms * MS / 2).build();
    let back = at(3).service("back").kind(kind::SERVER).parent(Some(id(2))).duration(front_ms * MS / 3).build();
    let db = at(4)
        .service("back")
        .kind(kind::CLIENT)
        .parent(Some(id(3)))
        .duration(MS)
        .attrs(&[("db.system", Value::Str("mysql".into()))])
        .build();
    if error {
        front.status_code = status::ERROR;
        call.status_code = status::ERROR;
    }
    let mut spans = vec![front, call, back, db];
    for s in &mut spans {
        s.trace_id.0[..4].copy_from_slice(&t.to_be_bytes());
    }
    spans
}

fn map(store: &Store, from: u64, to: u64) -> ServerMap {
    let q = MapQuery {
        from_s: from / S,
        to_s: to / S,
        service: None,
        in_depth: 1,
        out_depth: 1,
        instance: None,
        by_instance: false,
        thresholds: Thresholds::default(),
    };
    store.server_map(&q).unwrap()
}

fn node<'m>(m: &'m ServerMap, name: &str) -> &'m crate::apm::servermap::MapNode {
    m.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name} in {m:#?}"))
}

fn link<'m>(m: &'m ServerMap, s: &str, t: &str) -> &'m crate::apm::servermap::MapLink {
    m.links.iter().find(|l| l.source == s && l.target == t).unwrap_or_else(|| panic!("no link {s} -> {t}"))
}

/// 100 traces, one every second from T0 + 30 min: front takes 10 ms (70 of them), 2 s (20),
/// 4 s (5) or 7 s (5); the 7 s ones fail.
fn shop(store: &Store) {
    let ms = |i: u32| match i % 20 {
        0..=13 => 10,
        14..=17 => 2000,
        18 => 4000,
        _ => 7000,
    };
    let batch: Vec<Span> =
        (0..100u32).flat_map(|i| trace(i, T0 + 1800 * S + u64::from(i) * S, ms(i), ms(i) == 7000)).collect();
    store.append(vec![EncodedBatch::new(batch)]).unwrap();
}

#[test]
fn the_map_counts_every_transaction_and_call_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    shop(&store);
    clock.advance(200 * S);
    store.seal().unwrap();
    let m = map(&store, T0, T0 + 3600 * S);
    let front = node(&m, "front");
    assert_eq!((front.kind, front.figures.count, front.figures.errors), (NodeKind::Server, 100, 5));
    let b = &front.figures.histogram.0;
    assert_eq!(b, &vec![("1s", 70), ("3s", 20), ("5s", 5), ("Slow", 0), ("Error", 5)]);
    assert!((front.figures.p50_ms - 10.0).abs() <= 0.1, "{}", front.figures.p50_ms);
    // The 90th of 100 is the last 2 s one; HDR's 2 digits keep it within 1%.
    assert!((front.figures.p90_ms - 2000.0).abs() <= 20.0, "{}", front.figures.p90_ms);
    assert!((front.figures.p99_ms - 7000.0).abs() <= 70.0, "{}", front.figures.p99_ms);
    assert_eq!(front.figures.max_ms, 7000.0);
    let user = link(&m, "USER", "front");
    assert_eq!(user.figures.count, 100);
    let call = link(&m, "front", "back");
    assert_eq!((call.target_kind, call.figures.count, call.figures.errors), (NodeKind::Server, 100, 5));
    // Timed by the caller: half of front's time.
    assert_eq!(call.figures.max_ms, 3500.0);
    let db = link(&m, "back", "mysql");
    assert_eq!((db.target_kind, db.figures.count), (NodeKind::Database, 100));
    assert_eq!(node(&m, "mysql").kind, NodeKind::Database);
    assert_eq!(node(&m, "USER").figures.count, 100);
    // Half the range: half the traces.
    assert_eq!(node(&map(&store, T0 + 1800 * S, T0 + 1850 * S), "front").figures.count, 50);
}

#[test]
fn ranges_across_the_roll_up_add_up_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    shop(&store);
    clock.advance(200 * S);
    store.seal().unwrap();
    let before = map(&store, T0, T0 + 3600 * S);
    // Three hours later everything is rolled up into minutes and hours.
    clock.advance(3 * 3600 * S);
    while store.roll_up().unwrap() {}
    let cover = store.stats_coverage();
    assert!(cover.hours_until >= (T0 + 3600 * S) / S, "{cover:?}");
    let after = map(&store, T0, T0 + 3600 * S);
    assert_eq!(node(&after, "front").figures, node(&before, "front").figures);
    assert_eq!(link(&after, "back", "mysql").figures, link(&before, "back", "mysql").figures);
    // A range that starts mid-minute and ends mid-hour reads seconds, minutes and hours.
    let m = map(&store, T0 + 1830 * S, T0 + 1900 * S + S / 2);
    assert_eq!(node(&m, "front").figures.count, 70);
    // A span exported long after its second still counts, in its own second.
    store.append(vec![EncodedBatch::new(trace(500, T0 + 1805 * S + 500 * MS, 10, false))]).unwrap();
    clock.advance(20 * S);
    store.seal().unwrap();
    assert_eq!(node(&map(&store, T0, T0 + 3600 * S), "front").figures.count, 101);
    assert_eq!(node(&map(&store, T0 + 1805 * S, T0 + 1806 * S), "front").figures.count, 2);
}

#[test]
fn a_histogram_has_exact_buckets_and_a_series_of_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    shop(&store);
    clock.advance(200 * S);
    store.seal().unwrap();
    let q = HistogramQuery {
        from_s: (T0 + 1800 * S) / S,
        to_s: (T0 + 1900 * S) / S,
        subject: Subject::Node { service: "front".into(), endpoint: None, instance: None },
        step_s: Some(10),
        thresholds: Thresholds { slow_ms: Some(3000.0), apdex_ms: 500.0 },
    };
    let h = store.histogram(&q).unwrap();
    assert_eq!((h.count, h.errors, h.step_ms), (100, 5, 10_000));
    assert_eq!(h.slow, 5, "the 4 s ones (the 7 s ones failed)");
    assert_eq!(h.series.len(), 10);
    assert!(h.series.iter().all(|p| p.count == 10));
    assert_eq!(h.percentiles.max_ms, 7000.0);
    // Apdex: 70 satisfied, 20 tolerating (2 s is exactly 4 × 500 ms), 10 frustrated.
    assert_eq!(h.apdex, Some(0.8));
    let link = HistogramQuery { subject: Subject::Link { source: "back".into(), target: "mysql".into() }, ..q.clone() };
    assert_eq!(store.histogram(&link).unwrap().count, 100);
    // A virtual node's histogram is that of the calls it receives.
    let db = HistogramQuery { subject: Subject::Node { service: "mysql".into(), endpoint: None, instance: None }, ..q };
    assert_eq!(store.histogram(&db).unwrap().count, 100);
}

fn counts(store: &Store) -> (u64, u64, u64) {
    let m = map(store, T0, T0 + 3600 * S);
    (node(&m, "front").figures.count, link(&m, "front", "back").figures.count, link(&m, "back", "mysql").figures.count)
}

#[test]
fn retries_and_restarts_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    let one = trace(1, T0 + 1800 * S, 10, false);
    let two = trace(2, T0 + 1801 * S, 10, false);
    {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        store.append(vec![EncodedBatch::new(one.clone())]).unwrap();
        // Retried at once, while the trace is held, and twice in one write.
        store.append(vec![EncodedBatch::new(one.clone())]).unwrap();
        store.append(vec![EncodedBatch::new(one.clone()), EncodedBatch::new(one.clone())]).unwrap();
        clock.advance(60 * S);
        store.seal().unwrap();
        assert_eq!(counts(&store), (1, 1, 1));
        // Retried 60 s later: released and sealed by now.
        store.append(vec![EncodedBatch::new(one.clone())]).unwrap();
        store.seal().unwrap();
        assert_eq!(counts(&store), (1, 1, 1));
        store.append(vec![EncodedBatch::new(two.clone())]).unwrap();
        // Killed: trace 2 was acknowledged, nothing of it sealed.
    }
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    // The exporter got no answer for trace 2 and sends it again after the restart; trace 1's
    // exporter too, 90 s after its first try.
    clock.advance(30 * S);
    store.append(vec![EncodedBatch::new(two.clone()), EncodedBatch::new(one.clone())]).unwrap();
    store.seal().unwrap();
    assert_eq!(counts(&store), (2, 2, 2));
    drop(store);
    // Restarted again, after a seal; and again, after a crash of a store with nothing new.
    for _ in 0..2 {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        store.append(vec![EncodedBatch::new(two.clone())]).unwrap();
        store.seal_all().unwrap();
        assert_eq!(counts(&store), (2, 2, 2));
        assert_eq!(store.trace(&two[0].trace_id).unwrap().len(), 4);
    }
    // Past the window a batch is new again: its spans are stored (reads keep one copy) and its
    // statistics counted: an exporter does not retry for ten minutes.
    clock.advance(11 * 60 * S);
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    store.append(vec![EncodedBatch::new(two.clone())]).unwrap();
    store.seal_all().unwrap();
    assert_eq!(counts(&store).0, 3);
    assert_eq!(store.trace(&two[0].trace_id).unwrap().len(), 4);
}

/// Killed (dropped without a clean stop) after the export, after the seal, and after the
/// roll-up: each restart answers the same map, from the write-ahead log, second rows, or minute
/// and hour rows.
#[test]
fn crashes_between_export_seal_and_roll_up_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        shop(&store);
    }
    clock.advance(200 * S);
    let want = {
        // Derived again from the log (the traces were still held), and sealed.
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        store.seal().unwrap();
        // Recovered traces wait their grace again before they count.
        clock.advance(20 * S);
        store.seal().unwrap();
        map(&store, T0, T0 + 3600 * S)
    };
    assert_eq!((node(&want, "front").figures.count, node(&want, "front").figures.errors), (100, 5));
    assert_eq!(link(&want, "back", "mysql").figures.count, 100);
    let same = |store: &Store, what: &str| {
        let m = map(store, T0, T0 + 3600 * S);
        for name in ["front", "back", "mysql", "USER"] {
            assert_eq!(node(&m, name).figures, node(&want, name).figures, "{name}, {what}");
        }
        for (s, t) in [("USER", "front"), ("front", "back"), ("back", "mysql")] {
            assert_eq!(link(&m, s, t).figures, link(&want, s, t).figures, "{s} -> {t}, {what}");
        }
    };
    clock.advance(3 * 3600 * S);
    {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        same(&store, "reopened after the seal");
        while store.roll_up().unwrap() {}
        assert!(store.stats_coverage().hours_until >= (T0 + 3600 * S) / S);
        same(&store, "rolled up");
    }
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    assert!(!store.roll_up().unwrap(), "nothing to roll up twice");
    same(&store, "reopened after the roll-up");
    // Answered from hour rows alone.
    let (rows, _) = store.stats_rows(T0 / S, (T0 + 3600 * S) / S, &|_| true).unwrap();
    assert!(rows.iter().all(|(t, ..)| t % 3600 == 0), "hour rows only");
}

/// A trace whose call waits for a callee that never reports: its transaction is sealed after the
/// grace, the trace held on for the call. Crashes while it is held derive it again without that
/// transaction, and with one that came after it; everything counts once.
#[test]
fn transactions_sealed_while_their_trace_waits_count_once_through_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1800 * S));
    let at = |id: u64| testing::span(9, id).start(T0 + 1800 * S + id * MS).duration(MS);
    let front = at(1).service("front").kind(kind::SERVER).build();
    let call = at(2)
        .service("front")
        .kind(kind::CLIENT)
        .parent(Some(1))
        .attrs(&[("server.address", Value::Str("payments.example".into()))])
        .build();
    let batch = at(3).service("batch").kind(kind::SERVER).build();
    let figures = |store: &Store| {
        let m = map(store, T0, T0 + 3600 * S);
        let count = |name: &str| m.nodes.iter().find(|n| n.name == name).map_or(0, |n| n.figures.count);
        let calls = m.links.iter().find(|l| l.source == "front" && l.target == "payments.example");
        (count("front"), count("batch"), calls.map_or(0, |l| l.figures.count))
    };
    {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        store.append(vec![EncodedBatch::new(vec![front, call])]).unwrap();
        clock.advance(3 * S);
        store.seal().unwrap();
        assert_eq!(figures(&store), (1, 0, 0), "the transaction is sealed, the call waits");
        store.append(vec![EncodedBatch::new(vec![batch])]).unwrap();
        // Killed.
    }
    {
        // Derived again from the log without the sealed transaction: the second waits its grace,
        // is sealed, and the trace is held on for its call. Killed again.
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        clock.advance(3 * S);
        store.seal().unwrap();
        assert_eq!(figures(&store), (1, 1, 0));
    }
    {
        // Derived again with neither transaction; the call counts once its wait is over.
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        clock.advance(3 * S);
        store.seal().unwrap();
        clock.advance(30 * S);
        store.seal().unwrap();
        assert_eq!(figures(&store), (1, 1, 1));
    }
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    store.seal_all().unwrap();
    assert_eq!(figures(&store), (1, 1, 1), "nothing left to derive");
}
