//! The replay against a brute-force count over the raw transactions: every frame's TPS, errors
//! and equalizer, for transactions that start before the range, end after it, or run for a
//! minute.

use std::sync::Arc;

use crate::apm::replay::{Frame, Replay, ReplayQuery};
use crate::model::{kind, status, Span};
use crate::testing;
use crate::xlog::XLog;
use crate::xlog::XLogFilter;
use crate::{EncodedBatch, ManualClock, Store};

use crate::testing::{clocked_config as config, HOUR_T0 as T0, MS, S};

/// A one-span transaction of `service`: a root SERVER span.
fn tx(n: u64, service: &str, start: u64, elapsed: u64, error: bool) -> Span {
    let mut s = testing::span(0, n).service(service).kind(kind::SERVER).start(start).duration(elapsed).build();
    s.trace_id.0[..8].copy_from_slice(&n.to_be_bytes());
    if error {
        s.status_code = status::ERROR;
    }
    s
}

/// Around `[T0 + 1800 s, T0 + 1900 s)`: steady short transactions of `web` (3 a second, every
/// seventh failing), and `batch` jobs of 2.5 s to 70 s, some starting before the range and some
/// ending after it.
fn spans() -> Vec<Span> {
    let base = T0 + 1800 * S;
    let mut out = Vec::new();
    let mut n = 1;
    for i in 0..330u64 {
        let start = base - 10 * S + i * 333 * MS + (i % 7) * MS;
        out.push(tx(n, "web", start, (20 + (i % 50) * 13) * MS, i % 7 == 0));
        n += 1;
    }
    for (start_s, len_ms) in [
        (-65.5, 70_000),
        (-5.0, 9_000),
        (-2.25, 2_500),
        (10.0, 60_000),
        (12.4, 3_000),
        (30.1, 8_000),
        (30.9, 7_999),
        (95.5, 12_000),
        (99.99, 1_500),
    ] {
        let start = (base as i64 + (start_s * 1e9) as i64) as u64;
        out.push(tx(n, "batch", start, len_ms * MS, len_ms == 8_000));
        n += 1;
    }
    out
}

fn replay(store: &Store, from: u64, to: u64, step: Option<u64>) -> Replay {
    store.replay(&ReplayQuery { from_s: from / S, to_s: to / S, service: None, step_s: step }).unwrap()
}

/// What one service's transactions say of second `s`: (started, errors, in flight by age).
fn brute(xs: &[XLog], service: &str, s: u64) -> (u64, u64, [u64; 3]) {
    brute_with(xs, service, s, [3, 8])
}

fn brute_with(xs: &[XLog], service: &str, s: u64, [a, b]: [u64; 2]) -> (u64, u64, [u64; 3]) {
    let t = s * S;
    let mut got = (0, 0, [0u64; 3]);
    for x in xs.iter().filter(|x| &*x.service == service) {
        if x.start_ns / S == s {
            got.0 += 1;
            got.1 += u64::from(x.error);
        }
        if x.start_ns <= t && t < x.start_ns + x.elapsed_ns {
            let age = t - x.start_ns;
            got.2[if age < a * S {
                0
            } else if age < b * S {
                1
            } else {
                2
            }] += 1;
        }
    }
    got
}

fn seen(f: &Frame, service: &str) -> (u64, u64, [u64; 3]) {
    match f.services.iter().find(|s| s.name == service) {
        None => (0, 0, [0; 3]),
        Some(s) => {
            let a = s.figures.active;
            (s.figures.count, s.figures.errors, a.counts.map(|c| c as u64))
        }
    }
}

#[test]
fn every_frame_equals_a_brute_force_count_over_the_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1700 * S));
    let (from, to) = (T0 + 1800 * S, T0 + 1900 * S);
    let check = |store: &Store, what: &str| {
        let filter = XLogFilter { from_ns: T0, to_ns: T0 + 7200 * S, limit: 100_000, ..Default::default() };
        let (xs, cut) = store.xlog_records(&filter).unwrap();
        assert!(!cut);
        assert_eq!(xs.len(), 339, "{what}");
        let r = replay(store, from, to, None);
        assert_eq!((r.from_ms, r.to_ms, r.step_ms, r.frames.len()), (from / MS, to / MS, 1000, 100), "{what}");
        let mut long_seen = [0u64; 3];
        for f in &r.frames {
            let s = f.time_ms / 1000;
            let mut overall = (0, 0, [0u64; 3]);
            for service in ["web", "batch"] {
                let want = brute(&xs, service, s);
                assert_eq!(seen(f, service), want, "{what}: {service} at second {}", s - from / S);
                overall.0 += want.0;
                overall.1 += want.1;
                for (o, w) in overall.2.iter_mut().zip(want.2) {
                    *o += w;
                }
            }
            assert_eq!(f.overall.tps, overall.0 as f64, "{what}");
            assert_eq!(f.overall.errors, overall.1, "{what}");
            let a = f.overall.active;
            assert_eq!(a.counts.map(|c| c as u64), overall.2, "{what}");
            for (l, o) in long_seen.iter_mut().zip(overall.2) {
                *l += o;
            }
            // USER calls each root transaction: the link's count is the frame's TPS.
            let user: u64 = f.links.iter().filter(|l| l.source == "USER").map(|l| l.count).sum();
            assert_eq!(user, overall.0, "{what}");
        }
        // The 70-second job (from 65.5 s before the range) is in flight for the range's first
        // 4 seconds, the 60-second one for 60 frames; every bucket saw something.
        assert!(long_seen.iter().all(|n| *n > 0), "{long_seen:?}");
        // Ten-second frames average the equalizer over their seconds and divide counts by ten.
        let r10 = replay(store, from, to, Some(10));
        assert_eq!((r10.step_ms, r10.frames.len()), (10_000, 10));
        for (i, f) in r10.frames.iter().enumerate() {
            let secs = &r.frames[i * 10..i * 10 + 10];
            let count: u64 = secs.iter().map(|f| f.overall.count).sum();
            let ge8: f64 = secs.iter().map(|f| f.overall.active.counts[2]).sum();
            assert_eq!((f.overall.count, f.overall.tps), (count, count as f64 / 10.0), "{what}");
            assert!((f.overall.active.counts[2] - ge8 / 10.0).abs() < 0.006, "{what}");
        }
    };
    {
        let store = Store::open(config(dir.path(), &clock)).unwrap();
        store.append(vec![EncodedBatch::new(spans())]).unwrap();
        // Unsealed: from the memtables.
        clock.advance(300 * S);
        store.seal().unwrap();
        check(&store, "sealed");
    }
    // Reopened, then rolled up: the seconds stay in the replay window.
    clock.advance(3 * 3600 * S);
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    check(&store, "reopened");
    while store.roll_up().unwrap() {}
    check(&store, "rolled up");
    // A minute step reads minute rows: the same totals.
    let m = replay(&store, from - 60 * S, to + 60 * S, Some(60));
    let secs = replay(&store, from - 60 * S, to + 60 * S, None);
    assert_eq!(m.step_ms, 60_000);
    let total = |r: &Replay| r.frames.iter().map(|f| f.overall.count).sum::<u64>();
    assert_eq!(total(&m), total(&secs));
    // All but the 70-second job, which started 65.5 s before the range.
    assert_eq!(total(&m), 338);
}

#[test]
fn a_service_replays_alone_and_an_empty_range_has_quiet_frames() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 2000 * S));
    let store = Store::open(config(dir.path(), &clock)).unwrap();
    store.append(vec![EncodedBatch::new(spans())]).unwrap();
    store.seal().unwrap();
    let q = ReplayQuery {
        from_s: (T0 + 1800 * S) / S,
        to_s: (T0 + 1900 * S) / S,
        service: Some("batch".into()),
        step_s: None,
    };
    let r = store.replay(&q).unwrap();
    assert!(r.frames.iter().all(|f| f.services.iter().all(|s| s.name == "batch")));
    assert!(r.frames.iter().all(|f| f.links.iter().all(|l| l.target == "batch")));
    let quiet = replay(&store, T0, T0 + 60 * S, None);
    assert_eq!(quiet.frames.len(), 60);
    assert!(quiet.frames.iter().all(|f| f.overall.count == 0 && f.services.is_empty()));
    // An hour a frame a second (3,601 frames when it does not start on a second); more takes a
    // coarser step.
    assert_eq!(replay(&store, T0, T0 + 3600 * S, None).step_ms, 1000);
    assert_eq!(replay(&store, T0, T0 + 3601 * S, None).step_ms, 1000);
    assert_eq!(replay(&store, T0, T0 + 3602 * S, None).step_ms, 2000);
}

/// With the default replay window, an incident of 6 days and 23 hours ago still replays a frame
/// a second, through the roll-up of everything since; one older than the window, by minutes.
#[test]
fn a_week_old_range_replays_at_full_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1700 * S));
    let mut c = config(dir.path(), &clock);
    c.retention = std::time::Duration::from_secs(9 * 86_400);
    c.replay_window = std::time::Duration::from_secs(7 * 86_400);
    let store = Store::open(c).unwrap();
    store.append(vec![EncodedBatch::new(spans())]).unwrap();
    clock.advance(300 * S);
    store.seal().unwrap();
    let (from, to) = (T0 + 1800 * S, T0 + 1900 * S);
    let before = replay(&store, from, to, None);
    // Six days and 23 hours pass, with the roll-up and retention passes of each day.
    for day in 0..7 {
        clock.advance(if day < 6 { 86_400 * S } else { 23 * 3600 * S });
        while store.roll_up().unwrap() {}
        store.enforce_retention().unwrap();
    }
    let r = replay(&store, from, to, None);
    assert_eq!((r.step_ms, r.frames.len()), (1000, 100));
    assert_eq!(r, before);
    // A day later the seconds are gone: minute frames, the same transactions.
    clock.advance(2 * 86_400 * S);
    while store.roll_up().unwrap() {}
    store.enforce_retention().unwrap();
    let r = replay(&store, from, to, None);
    assert_eq!(r.step_ms, 60_000);
    let total = |r: &Replay| r.frames.iter().map(|f| f.overall.count).sum::<u64>();
    assert_eq!(total(&r), total(&before));
}

/// Other equalizer thresholds, set for the store, bucket and label the frames by them.
#[test]
fn the_equalizer_takes_the_thresholds_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1700 * S));
    let mut c = config(dir.path(), &clock);
    c.active_bounds_s = [1, 20];
    let store = Store::open(c).unwrap();
    store.append(vec![EncodedBatch::new(spans())]).unwrap();
    clock.advance(300 * S);
    store.seal().unwrap();
    let filter = XLogFilter { from_ns: T0, to_ns: T0 + 7200 * S, limit: 100_000, ..Default::default() };
    let (xs, _) = store.xlog_records(&filter).unwrap();
    let r = replay(&store, T0 + 1800 * S, T0 + 1900 * S, None);
    for f in &r.frames {
        assert_eq!(seen(f, "batch"), brute_with(&xs, "batch", f.time_ms / 1000, [1, 20]));
    }
    let json = serde_json::to_value(&r.frames[20]).unwrap();
    let keys: Vec<&String> = json["active"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["1-20s", "<1s", ">=20s"]);
}
