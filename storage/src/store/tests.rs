use std::time::Duration;

use crate::keys;
use crate::model::{kind, Span, TraceId, Value};
use crate::testing;
use crate::{now_ns, EncodedBatch, NodeKind, StorageError, Store, StoreConfig};

const HOUR: u64 = 3_600_000_000_000;

/// A span of service `service` in trace `[trace; 16]`: a root SERVER span, or a CLIENT call under
/// `parent`, with a route and a database system among its attributes.
fn span(trace: u8, id: u64, parent: Option<u64>, start_ns: u64, service: &str) -> Span {
    let host = format!("{service}-host");
    testing::span(trace, id)
        .parent(parent)
        .service(service)
        .resource(testing::service_resource(service, &[("host.name", &host)]))
        .name(format!("GET /item/{id}"))
        .kind(if parent.is_none() { kind::SERVER } else { kind::CLIENT })
        .start(start_ns)
        .scope("test", "1")
        .attrs(&[("http.route", Value::Str("/item/{id}".into())), ("db.system", Value::Str("mysql".into()))])
        .build()
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir.join("store"));
    c.sync = false;
    c
}

mod old_format;
mod replay;
mod safety;
mod servermap;
mod xlog;

#[test]
fn acknowledged_spans_are_found_before_and_after_seal_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    let spans = vec![span(1, 1, None, t, "front"), span(1, 2, Some(1), t + 10, "front"), span(2, 3, None, t, "cart")];
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::new(spans.clone())]).unwrap();
        assert_eq!(store.trace(&TraceId([1; 16])).unwrap(), spans[..2].to_vec());
    }
    // Not sealed: the write-ahead log brings them back.
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap(), spans[..2].to_vec());
    assert_eq!(store.seal().unwrap(), 3);
    assert_eq!(store.stats().memtable_spans, 0);
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap(), spans[..2].to_vec());
    assert_eq!(store.trace(&TraceId([2; 16])).unwrap(), spans[2..].to_vec());
    assert!(store.trace(&TraceId([9; 16])).unwrap().is_empty());
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.stats().memtable_spans, 0, "sealed spans left the write-ahead log");
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap(), spans[..2].to_vec());
    let services = store.services();
    let front = services.iter().find(|s| s.name == "front").unwrap();
    assert_eq!(front.kind, NodeKind::Server);
    assert!(front.instances.contains("front-host"));
    assert_eq!(services.iter().find(|s| s.name == "mysql").unwrap().kind, NodeKind::Database);
    assert_eq!(services.iter().find(|s| s.name == "USER").unwrap().kind, NodeKind::User);
}

#[test]
fn a_trace_split_across_seals_and_partitions_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let t = (now_ns() / HOUR) * HOUR - 5; // the root starts just before an hour boundary
    store.append(vec![EncodedBatch::new(vec![span(7, 1, None, t, "a")])]).unwrap();
    store.seal().unwrap();
    store.append(vec![EncodedBatch::new(vec![span(7, 2, Some(1), t + 10, "a")])]).unwrap();
    store.seal().unwrap();
    let got = store.trace(&TraceId([7; 16])).unwrap();
    assert_eq!(got.iter().map(|s| s.span_id.0[7]).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(store.stats().partitions, 2);
}

#[test]
fn a_store_open_elsewhere_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(config(dir.path())).unwrap();
    let err = Store::open(config(dir.path())).expect_err("the directory is locked");
    assert!(matches!(err, StorageError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("open in another process"), "{err}");
    drop(first);
}

#[test]
fn a_store_of_another_format_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(config(dir.path())).unwrap());
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path().join("store"), keys::COLUMN_FAMILIES)
            .unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), keys::META_FORMAT_VERSION, 99u32.to_be_bytes()).unwrap();
    }
    let err = Store::open(config(dir.path())).expect_err("refused");
    assert!(
        matches!(err, StorageError::UnsupportedVersion { found: 99, supported: crate::FORMAT_VERSION, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("format version 99"), "{err}");
}

#[test]
fn a_version_1_store_is_upgraded_and_keeps_its_spans() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ns();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.append(vec![EncodedBatch::new(vec![span(1, 1, None, t, "front")])]).unwrap();
        store.seal_all().unwrap();
    }
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path().join("store"), keys::COLUMN_FAMILIES)
            .unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), keys::META_FORMAT_VERSION, 1u32.to_be_bytes()).unwrap();
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap().len(), 1);
    drop(store);
    let db =
        rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path().join("store"), keys::COLUMN_FAMILIES).unwrap();
    let v = db.get_cf(db.cf_handle("meta").unwrap(), keys::META_FORMAT_VERSION).unwrap().unwrap();
    assert_eq!(v, crate::FORMAT_VERSION.to_be_bytes());
}

#[test]
fn a_directory_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store/notes.txt"), "mine").unwrap();
    let err = Store::open(config(dir.path())).expect_err("refused");
    assert!(matches!(err, StorageError::NotARewindStore(_)), "{err}");
}

#[test]
fn retention_drops_whole_partitions_and_their_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.retention = Duration::from_secs(2 * 3600);
    let store = Store::open(c).unwrap();
    let now = now_ns();
    store
        .append(vec![EncodedBatch::new(vec![span(1, 1, None, now - 5 * HOUR, "old"), span(2, 2, None, now, "new")])])
        .unwrap();
    store.seal().unwrap();
    assert_eq!(store.stats().partitions, 2);
    let dropped = store.enforce_retention().unwrap();
    assert_eq!(dropped.len(), 1);
    assert!(store.trace(&TraceId([1; 16])).unwrap().is_empty());
    assert_eq!(store.trace(&TraceId([2; 16])).unwrap().len(), 1);
    assert!(store.min_accepted_start_ns() >= now - 2 * HOUR);
    // The service seen only in the dropped partition goes with it.
    let names = |store: &Store| store.services().iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&store), ["USER", "new"]);
    // The floor is durable: after a restart the dropped partition stays refused, and the pruned
    // service stays gone.
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.min_accepted_start_ns() >= (now - 5 * HOUR) / HOUR * HOUR + HOUR);
    assert_eq!(names(&store), ["USER", "new"]);
}

/// The attribute-key registry is rebuilt from the segment metas at open, metas share its one
/// copy of each key, and keys go with the last partition holding them.
#[test]
fn attribute_keys_are_shared_rebuilt_at_open_and_pruned_with_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.retention = Duration::from_secs(2 * 3600);
    let now = now_ns();
    let old = testing::span(1, 1).start(now - 5 * HOUR).attrs(&[("only.old", Value::Int(1))]).build();
    let store = Store::open(c.clone()).unwrap();
    store.append(vec![EncodedBatch::new(vec![old, span(2, 2, None, now, "new")])]).unwrap();
    store.seal().unwrap();
    store.append(vec![EncodedBatch::new(vec![span(3, 3, None, now, "new")])]).unwrap();
    store.seal().unwrap();
    let held = |store: &Store| store.attribute_keys().len();
    // only.old, http.route, db.system (the XLog records still wait for their grace period).
    assert_eq!(held(&store), 3);
    drop(store);
    let store = Store::open(c).unwrap();
    assert_eq!(held(&store), 3, "rebuilt from the metas");
    let metas = store.spans.segments(0, u64::MAX, 0, u64::MAX);
    let route: Vec<&crate::attr_keys::Key> =
        metas.iter().flat_map(|m| m.attr_keys.iter()).filter(|k| &***k == "http.route").collect();
    assert_eq!(route.len(), 2);
    assert!(std::sync::Arc::ptr_eq(route[0], route[1]), "one copy for every segment");
    store.enforce_retention().unwrap();
    assert_eq!(held(&store), 2, "only.old went with its partition");
}

#[test]
fn the_disk_budget_drops_the_oldest_partitions_but_never_the_present_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_disk_bytes = Some(1);
    let store = Store::open(c).unwrap();
    let now = now_ns();
    let batch: Vec<Span> = (0..3u64).map(|h| span(h as u8 + 1, h + 1, None, now - h * HOUR, "s")).collect();
    store.append(vec![EncodedBatch::new(batch)]).unwrap();
    store.seal().unwrap();
    assert_eq!(store.stats().partitions, 3);
    let dropped = store.enforce_retention().unwrap();
    assert_eq!(dropped.len(), 2);
    assert_eq!(store.stats().partitions, 1);
    assert_eq!(store.trace(&TraceId([1; 16])).unwrap().len(), 1, "the present partition stays");
    assert!(store.trace(&TraceId([3; 16])).unwrap().is_empty());
}

#[test]
fn many_spans_seal_into_multiple_pages_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let t = now_ns();
    let spans: Vec<Span> = (0..20_000u64)
        .map(|i| span((i % 200) as u8, i + 1, if i < 200 { None } else { Some(i % 200 + 1) }, t + i, "svc"))
        .collect();
    store.append(vec![EncodedBatch::new(spans.clone())]).unwrap();
    store.seal().unwrap();
    let got = store.trace(&TraceId([5; 16])).unwrap();
    let mut want: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == TraceId([5; 16])).collect();
    want.sort_by_key(|s| (s.start_ns, s.span_id));
    assert_eq!(got, want);
}

#[test]
fn the_store_reports_a_backlog_once_unsealed_spans_pass_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_unsealed_bytes = 10_000;
    let store = Store::open(c).unwrap();
    let t = now_ns();
    assert!(!store.backlogged());
    let mut next = 0u64;
    while !store.backlogged() {
        // New spans each time: a batch repeated is a retry, and is not stored again.
        let batch: Vec<Span> = (next..next + 20).map(|i| span(3, i + 1, None, t + i, "svc")).collect();
        next += 20;
        store.append(vec![EncodedBatch::new(batch)]).unwrap();
        assert!(store.stats().memtable_bytes < 20_000, "reported as soon as it passes the limit");
    }
    store.seal().unwrap();
    assert!(!store.backlogged(), "sealing clears the backlog");
}
