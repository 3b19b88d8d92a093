//! Data safety across restarts, crashes and hostile shapes of data (issue #8). Dropping a `Store`
//! without `seal_all` is what a kill -9 leaves behind: only what reached RocksDB survives.

use std::sync::Arc;
use std::time::Duration;

use super::{config, span, HOUR};
use crate::model::{kind, Span, SpanId, TraceId, Value};
use crate::xlog::XLog;
use crate::{keys, now_ns, EncodedBatch, Failpoints, ManualClock, Store, StoreConfig, XLogFilter};

fn everything() -> XLogFilter {
    XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 100_000, ..XLogFilter::default() }
}

/// Trace `t`: an entry span and two database calls under it.
fn request(t: u8, start: u64) -> Vec<Span> {
    vec![
        span(t, 1, None, start, "front"),
        span(t, 2, Some(1), start + 10, "front"),
        span(t, 3, Some(1), start + 20, "front"),
    ]
}

/// (trace, sql count) of every transaction, sorted; a transaction read twice shows twice.
fn transactions(store: &Store) -> Vec<(u8, u32)> {
    let (r, _) = store.xlog_records(&everything()).unwrap();
    let mut out: Vec<(u8, u32)> = r.iter().map(|x| (x.trace_id.0[0], x.sql_count)).collect();
    out.sort_unstable();
    out
}

fn wal_records(store: &Store) -> usize {
    let wal = store.db.cf_handle(keys::CF_WAL).unwrap();
    store.db.iterator_cf(wal, rocksdb::IteratorMode::Start).count()
}

#[test]
fn spans_acknowledged_after_a_clean_stop_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    // Clean stops and crashes in turn: every round's spans must be there at the end.
    for round in 1..=6u8 {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::new(request(round, t))]).unwrap();
        if round % 2 == 1 {
            store.seal_all().unwrap();
        }
    }
    let store = Store::open(config(dir.path())).unwrap();
    for round in 1..=6u8 {
        assert_eq!(store.trace(&TraceId([round; 16])).unwrap().len(), 3, "trace of round {round}");
    }
    assert_eq!(transactions(&store), (1..=6u8).map(|r| (r, 2)).collect::<Vec<_>>());
}

#[test]
fn a_seal_of_derived_records_alone_empties_the_log_and_restarts_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.derive.grace = Duration::from_secs(3600);
    let t = now_ns();
    {
        let store = Store::open(c.clone()).unwrap();
        store.append(vec![EncodedBatch::new(request(1, t))]).unwrap();
        // The spans are sealed; the entry still waits for children, so its record stays in the log.
        store.seal().unwrap();
        assert_eq!(wal_records(&store), 1);
        // A clean stop: the record is final now, and nothing is left to derive again.
        store.seal_all().unwrap();
        assert_eq!(wal_records(&store), 0, "a seal with no new spans still empties the log");
    }
    let sealed = {
        let store = Store::open(c.clone()).unwrap();
        let s = store.stats();
        (s.sealed_spans, s.sealed_xlogs, s.sealed_bytes + s.sealed_xlog_bytes)
    };
    assert_eq!((sealed.0, sealed.1), (3, 1));
    for _ in 0..3 {
        let store = Store::open(c.clone()).unwrap();
        assert_eq!(store.stats().pending_xlogs, 0);
        store.seal_all().unwrap();
        let s = store.stats();
        assert_eq!(
            (s.sealed_spans, s.sealed_xlogs, s.sealed_bytes + s.sealed_xlog_bytes),
            sealed,
            "a restart adds nothing"
        );
        assert_eq!(transactions(&store), vec![(1, 2)]);
    }
}

#[test]
fn after_a_clean_stop_the_directory_holds_the_data_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.sync = true;
    let t = now_ns();
    {
        let store = Store::open(c.clone()).unwrap();
        for i in 0..40u64 {
            let batch: Vec<Span> = (0..500u64)
                .map(|j| span((i % 250) as u8, i * 1000 + j + 1, (j > 0).then_some(i * 1000 + 1), t + j, "svc"))
                .collect();
            store.append(vec![EncodedBatch::new(batch)]).unwrap();
        }
        // Part of the log reaches table files, as it does under load.
        store.db.flush_cf(store.db.cf_handle(keys::CF_WAL).unwrap()).unwrap();
        store.seal_all().unwrap();
        store.close().unwrap();
    }
    for restart in 0..3 {
        let store = Store::open(c.clone()).unwrap();
        let wal = store.db.cf_handle(keys::CF_WAL).unwrap();
        let wal_tables = store.db.property_int_value_cf(wal, "rocksdb.total-sst-files-size").unwrap().unwrap();
        assert_eq!(wal_tables, 0, "restart {restart}: the write-ahead log holds no table files");
        let data: u64 = [keys::CF_CHUNKS, keys::CF_TRACE_INDEX, keys::CF_META]
            .iter()
            .map(|cf| {
                let h = store.db.cf_handle(cf).unwrap();
                store.db.property_int_value_cf(h, "rocksdb.total-sst-files-size").unwrap().unwrap()
                    + store.db.property_int_value_cf(h, "rocksdb.cur-size-all-mem-tables").unwrap().unwrap()
            })
            .sum();
        let disk = store.disk_bytes().unwrap();
        // RocksDB's own small files (manifest, options, info log) besides the data.
        assert!(disk <= data + (1 << 20), "restart {restart}: {disk} bytes on disk for {data} bytes of data");
        store.seal_all().unwrap();
        store.close().unwrap();
    }
}

fn wide_span(trace: u8, id: u64, start: u64, first_key: usize, keys: usize) -> Span {
    let mut s = span(trace, id, None, start, "wide");
    s.kind = kind::SERVER;
    s.attributes = (first_key..first_key + keys).map(|k| (format!("k{k}").into(), Value::Int(k as i64))).collect();
    s
}

/// Attribute column ids are 16 bits: past about 65,000 distinct keys in one segment they used to
/// wrap onto the fixed columns and corrupt the segment for every row in it.
#[test]
fn seventy_thousand_distinct_attribute_keys_seal_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let t = now_ns();
    let ordinary = span(200, 1, None, t, "ordinary");
    // 547 spans of 128 keys each: 70,016 keys in one request, then 30,000 more over three others.
    let mut first: Vec<Span> = (0..547u64).map(|i| wide_span(1, i + 1, t + i, i as usize * 128, 128)).collect();
    first.push(ordinary.clone());
    let mut batches = vec![EncodedBatch::new(first)];
    for b in 0..3u64 {
        let spans = (0..100u64)
            .map(|i| wide_span(2 + b as u8, i + 1, t + i, 70_016 + (b * 100 + i) as usize * 100, 100))
            .collect();
        batches.push(EncodedBatch::new(spans));
    }
    store.append(batches).unwrap();
    store.seal_all().unwrap();
    let got = store.trace(&TraceId([1; 16])).unwrap();
    assert_eq!(got.len(), 547);
    for (i, s) in got.iter().enumerate() {
        let mut keys: Vec<&str> = s.attributes.iter().map(|(k, _)| &**k).collect();
        keys.sort_unstable();
        let mut want: Vec<String> = (i * 128..(i + 1) * 128).map(|k| format!("k{k}")).collect();
        want.sort_unstable();
        assert_eq!(keys, want, "span {i}");
    }
    for b in 0..3u8 {
        assert_eq!(store.trace(&TraceId([2 + b; 16])).unwrap().len(), 100);
    }
    assert_eq!(store.trace(&TraceId([200; 16])).unwrap(), vec![ordinary]);
    // Every entry span is a transaction, readable with its attributes.
    let (records, _) = store.xlog_records(&everything()).unwrap();
    assert_eq!(records.len(), 547 + 300 + 1);
    let r = records.iter().find(|x| x.trace_id == TraceId([1; 16]) && x.span_id == SpanId(5u64.to_be_bytes())).unwrap();
    assert_eq!(r.attributes.len(), 128);
    assert_eq!(r.attribute("k512"), Some(&Value::Int(512)));
    let filter = XLogFilter { attributes: vec![("k70000".into(), "70000".into())], ..everything() };
    assert_eq!(store.xlog_records(&filter).unwrap().0.len(), 1);
    assert_eq!(store.xlog_points(&everything()).unwrap().end_ns.len(), 848);
    // And all of it again after a restart.
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap().len(), 547);
    assert_eq!(store.xlog_records(&everything()).unwrap().0.len(), 848);
}

/// An XLog record can end hours after now (a long transaction that started now), so the highest
/// partition is not the present one.
#[test]
fn the_disk_budget_never_drops_the_partition_holding_the_present() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_disk_bytes = Some(1);
    let store = Store::open(c).unwrap();
    let now = now_ns();
    let mut long = span(3, 1, None, now, "batch");
    long.duration_ns = 5 * HOUR;
    let old = span(4, 1, None, now - 3 * HOUR, "old");
    store.append(vec![EncodedBatch::new(vec![long, old, span(5, 1, None, now, "current")])]).unwrap();
    store.seal_all().unwrap();
    store.enforce_retention().unwrap();
    assert!(store.trace(&TraceId([4; 16])).unwrap().is_empty(), "the oldest partition goes");
    assert_eq!(store.trace(&TraceId([5; 16])).unwrap().len(), 1, "the present partition stays");
    assert!(store.min_accepted_start_ns() <= now - 60_000_000_000, "current spans are still accepted");
    store.append(vec![EncodedBatch::new(vec![span(6, 1, None, now - 1_000_000_000, "current")])]).unwrap();
    store.seal_all().unwrap();
    assert_eq!(store.trace(&TraceId([6; 16])).unwrap().len(), 1, "spans of the present are sealed, not discarded");
}

/// Unsealed spans in the write-ahead log are not freed by dropping partitions: they must not push
/// the store into dropping its history.
#[test]
fn the_disk_budget_counts_only_what_dropping_partitions_reclaims() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let sealed = {
        let store = Store::open(config(dir.path())).unwrap();
        let old = vec![span(1, 1, None, now - 3 * HOUR, "old"), span(2, 1, None, now - 2 * HOUR, "old")];
        store.append(vec![EncodedBatch::new(old)]).unwrap();
        store.seal_all().unwrap();
        store.stats().sealed_bytes + store.stats().sealed_xlog_bytes
    };
    let mut c = config(dir.path());
    c.max_disk_bytes = Some(sealed * 4 + (64 << 10));
    let store = Store::open(c).unwrap();
    for i in 0..50u64 {
        let batch: Vec<Span> = (0..200u64).map(|j| span(9, i * 1000 + j + 2, Some(1), now + j, "busy")).collect();
        store.append(vec![EncodedBatch::new(batch)]).unwrap();
    }
    assert!(store.stats().memtable_bytes as u64 > sealed * 10);
    assert!(store.enforce_retention().unwrap().is_empty(), "nothing to reclaim is over the budget");
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap().len(), 1);
    assert_eq!(store.trace(&TraceId([2; 16])).unwrap().len(), 1);
}

fn clocked(dir: &std::path::Path, clock: &Arc<ManualClock>) -> StoreConfig {
    let mut c = config(dir);
    c.clock = clock.clone();
    c
}

/// A wall clock stepped far ahead (here a year, against a week of retention) moves retention at
/// most one partition per pass, and the spans of the real present are still taken.
#[test]
fn a_forward_clock_step_neither_wipes_the_store_nor_refuses_the_present() {
    let dir = tempfile::tempdir().unwrap();
    let real_now = now_ns();
    let clock = Arc::new(ManualClock::new(real_now));
    let store = Store::open(clocked(dir.path(), &clock)).unwrap();
    let spans: Vec<Span> = (0..5u64).map(|h| span(h as u8 + 1, 1, None, real_now - h * HOUR, "s")).collect();
    store.append(vec![EncodedBatch::new(spans)]).unwrap();
    store.seal_all().unwrap();
    clock.set_wall(real_now + 365 * 24 * HOUR);
    for _ in 0..20 {
        store.enforce_retention().unwrap();
    }
    for t in 1..=5u8 {
        assert_eq!(store.trace(&TraceId([t; 16])).unwrap().len(), 1, "trace {t} is kept");
    }
    assert!(store.min_accepted_start_ns() <= real_now - HOUR, "spans of the real present are accepted");
    // The store restarted under the wrong clock does not forget where retention stood.
    drop(store);
    let store = Store::open(clocked(dir.path(), &clock)).unwrap();
    store.enforce_retention().unwrap();
    assert_eq!(store.trace(&TraceId([5; 16])).unwrap().len(), 1);
    assert!(store.min_accepted_start_ns() <= real_now - HOUR);
}

/// A wall clock stepped back leaves grace periods running on monotonic time: entries become
/// final when due, and the log does not stay pinned behind them.
#[test]
fn a_backward_clock_step_does_not_pin_pending_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let real_now = now_ns();
    let clock = Arc::new(ManualClock::new(real_now));
    let store = Store::open(clocked(dir.path(), &clock)).unwrap();
    store.append(vec![EncodedBatch::new(request(1, real_now))]).unwrap();
    store.seal().unwrap();
    assert_eq!(store.stats().pending_xlogs, 1);
    clock.set_wall(real_now - 24 * HOUR);
    clock.advance(3_000_000_000);
    assert!(store.should_seal(), "the entry's grace period is over");
    store.seal().unwrap();
    assert_eq!(store.stats().pending_xlogs, 0);
    assert_eq!(wal_records(&store), 0);
    assert_eq!(transactions(&store), vec![(1, 2)]);
    // Spans of the real present still count as present, not as 24 hours in the future.
    assert!(store.now_ns() >= real_now);
}

#[test]
fn a_failing_disk_refuses_writes_retryably_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.failpoints = Failpoints::parse("wal-write=error*2,seal-write=error*2").unwrap();
    let t = now_ns();
    let store = Store::open(c).unwrap();
    assert!(store.append(vec![EncodedBatch::new(request(1, t))]).is_err());
    assert!(store.health().ready().is_err(), "not ready while writes fail");
    assert!(store.trace(&TraceId([1; 16])).unwrap().is_empty(), "a refused write is not visible");
    // The probe finds the disk still failing, then working.
    assert!(store.probe_write().is_err());
    store.probe_write().unwrap();
    assert!(store.health().ready().is_ok());
    store.append(vec![EncodedBatch::new(request(2, t))]).unwrap();
    // Two seals fail; the spans stay in memory and in the log, and the third seal writes them.
    assert!(store.seal_all().is_err());
    assert!(store.health().ready().is_err());
    assert_eq!(store.trace(&TraceId([2; 16])).unwrap().len(), 3);
    assert!(store.seal_all().is_err());
    store.append(vec![EncodedBatch::new(request(3, t))]).unwrap();
    assert_eq!(store.seal_all().unwrap(), 6);
    assert!(store.health().ready().is_ok());
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    for t in 2..=3u8 {
        assert_eq!(store.trace(&TraceId([t; 16])).unwrap().len(), 3);
    }
    assert_eq!(transactions(&store), vec![(2, 2), (3, 2)]);
}

#[test]
fn a_dead_background_thread_is_reported_as_fatal() {
    for site in ["writer-thread", "maintenance-thread", "seal-helper"] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.failpoints = Failpoints::parse(&format!("{site}=panic")).unwrap();
        c.seal_interval = Duration::from_millis(1);
        let store = Store::open(c).unwrap();
        let writer = crate::Writer::start(store.clone());
        let mut maintenance = crate::Maintenance::start(store.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        writer.submit(
            EncodedBatch::new(request(1, now_ns())),
            Box::new(move |r| {
                let _ = tx.send(r.is_ok());
            }),
        );
        let _ = rx.recv_timeout(Duration::from_secs(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.health().fatal().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let fatal = store.health().fatal().unwrap_or_else(|| panic!("{site}: no fatal report"));
        assert!(fatal.contains("thread died"), "{site}: {fatal}");
        assert!(store.health().ready().is_err());
        maintenance.shutdown();
    }
}

#[test]
fn a_corrupt_log_record_or_chunk_is_named_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::new(request(1, t))]).unwrap();
        store.seal_all().unwrap();
        store.append(vec![EncodedBatch::new(request(2, t))]).unwrap();
    }
    let path = dir.path().join("store");
    let seq = {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, keys::COLUMN_FAMILIES).unwrap();
        let wal = db.cf_handle(keys::CF_WAL).unwrap();
        let (k, v) = db.iterator_cf(wal, rocksdb::IteratorMode::Start).next().unwrap().unwrap();
        db.put_cf(wal, &k, &v[..v.len() / 2]).unwrap();
        // And a chunk of the sealed trace: its trace-id column.
        let chunks = db.cf_handle(keys::CF_CHUNKS).unwrap();
        let mut corrupted = 0;
        for item in db.iterator_cf(chunks, rocksdb::IteratorMode::Start) {
            let (k, _) = item.unwrap();
            if keys::parse_chunk(&k).is_some_and(|(_, _, c)| c == crate::spans::cols::TRACE_ID) {
                db.put_cf(chunks, &k, [0u8, 0xff, 0xff]).unwrap();
                corrupted += 1;
            }
        }
        assert!(corrupted > 0);
        u64::from_be_bytes(k.as_ref().try_into().unwrap())
    };
    let err = Store::open(config(dir.path())).expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("write-ahead log record {seq}")), "{msg}");
    // With the log record removed, the store opens; the corrupt chunk is named when read.
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, keys::COLUMN_FAMILIES).unwrap();
        db.delete_cf(db.cf_handle(keys::CF_WAL).unwrap(), seq.to_be_bytes()).unwrap();
    }
    let store = Store::open(config(dir.path())).unwrap();
    let err = store.trace(&TraceId([1; 16])).expect_err("corrupt");
    let msg = err.to_string();
    assert!(msg.contains("partition") && msg.contains("segment") && msg.contains("page 0"), "{msg}");
}

/// The same transaction stored twice, once with fewer of its children counted (as an entry
/// derived again after a crash can be): every read shows it once, with the most counted.
#[test]
fn of_two_copies_of_a_transaction_reads_keep_the_most_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let t = now_ns();
    let record = |sql_count: u32| XLog {
        trace_id: TraceId([4; 16]),
        span_id: SpanId([4; 8]),
        service: "svc".into(),
        start_ns: t,
        elapsed_ns: 10_000_000,
        sql_count,
        sql_ns: u64::from(sql_count) * 1_000_000,
        ..XLog::default()
    };
    for (i, n) in [1u32, 2, 5, 3].into_iter().enumerate() {
        store.append(vec![EncodedBatch::xlogs(vec![record(n)])]).unwrap();
        if i % 2 == 1 {
            store.seal_all().unwrap();
        }
    }
    let (records, _) = store.xlog_records(&everything()).unwrap();
    assert_eq!(records.iter().map(|x| x.sql_count).collect::<Vec<_>>(), vec![5]);
    let points = store.xlog_points(&everything()).unwrap();
    assert_eq!(points.sql_ns, vec![5_000_000]);
}

/// Reads racing retention: a partition dropped while a read runs is as if the read came later,
/// never an error.
#[test]
fn reads_racing_retention_drops_answer_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let real_now = now_ns();
    let clock = Arc::new(ManualClock::new(real_now));
    let mut c = clocked(dir.path(), &clock);
    c.retention = Duration::from_secs(3600);
    let store = Store::open(c).unwrap();
    // Thirty partitions of the future, which retention reaches as the clock moves.
    for h in 0..30u64 {
        let spans: Vec<Span> = (0..200u64).flat_map(|i| request((i % 200) as u8, real_now + h * HOUR + i)).collect();
        store.append(vec![EncodedBatch::new(spans)]).unwrap();
        store.seal_all().unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for t in (0..200u8).step_by(7) {
                        store.trace(&TraceId([t; 16])).unwrap();
                    }
                    store.xlog_records(&XLogFilter { limit: 50, ..everything() }).unwrap();
                    store.xlog_points(&everything()).unwrap();
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for _ in 0..32 {
        clock.advance(HOUR);
        store.enforce_retention().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(store.stats().partitions, 0);
}
