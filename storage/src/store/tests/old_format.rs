//! A store written by an earlier build opens and answers the same. `tests/fixtures/store-v2/` is a
//! store written by commit 36b4ee5 (format version 2, before the table layer): sealed span and
//! XLog segments in two partitions, sealed native records, and a write-ahead log still holding
//! spans, native records and entry spans whose records were not final. `answers.json` holds what
//! that build answered on it; this build must answer the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value as J};

use crate::model::{kind, status, Event, Link, Resource, Span, SpanId, TraceId, Value};
use crate::xlog::XLog;
use crate::{EncodedBatch, Store, StoreConfig, XLogFilter};

fn fixtures() -> PathBuf {
    Path::new("tests/fixtures").to_path_buf()
}

/// 2026-09-21: long before any test's "now", and never dropped: no retention runs here.
const T0: u64 = 1_790_000_000_000_000_000;
const HOUR: u64 = 3_600_000_000_000;

fn config(path: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(path);
    c.sync = false;
    // The store's own clock must not matter to what it answers.
    c.derive.grace = std::time::Duration::from_secs(365 * 86_400);
    c.min_free_disk_bytes = 0;
    c
}

fn resource(service: &str, pod: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            ("service.name".into(), Value::Str(service.into())),
            ("k8s.pod.name".into(), Value::Str(pod.into())),
            ("k8s.namespace.name".into(), Value::Str("shop".into())),
        ],
    })
}

/// Trace `t` at `start`: an entry span of `service` with a database call, a cache call and an
/// internal span under it; values of every type, an exception event, a link.
fn trace(t: u8, start: u64, service: &str, res: &Arc<Resource>) -> Vec<Span> {
    let id = |i: u8| SpanId([t, i, 0, 0, 0, 0, 0, 1]);
    let base = |i: u8, parent: Option<u8>, kind: u8, name: &str, offset: u64, dur: u64| Span {
        trace_id: TraceId([t; 16]),
        span_id: id(i),
        parent_span_id: parent.map(id),
        trace_state: if i == 1 { "vendor=x".into() } else { String::new() },
        flags: 1,
        service: service.into(),
        name: name.into(),
        kind,
        start_ns: start + offset,
        duration_ns: dur,
        status_code: status::UNSET,
        status_message: String::new(),
        scope_name: "io.opentelemetry.flask".into(),
        scope_version: "0.66b1".into(),
        attributes: vec![],
        events: vec![],
        links: vec![],
        dropped_attributes: 0,
        dropped_events: 0,
        dropped_links: 0,
        resource: res.clone(),
    };
    let mut root = base(1, None, kind::SERVER, "GET /checkout/{id}", 0, 40_000_000 + u64::from(t) * 1_000);
    root.attributes = vec![
        ("http.request.method".into(), Value::Str("GET".into())),
        ("http.route".into(), Value::Str("/checkout/{id}".into())),
        ("http.response.status_code".into(), Value::Int(if t % 3 == 0 { 500 } else { 200 })),
        ("client.address".into(), Value::Str(format!("10.0.0.{t}").into())),
        ("enduser.id".into(), Value::Str(format!("user-{}", t % 4).into())),
        ("rewind.ratio".into(), Value::Double(f64::from(t) / 8.0)),
        ("rewind.flag".into(), Value::Bool(t % 2 == 0)),
        ("rewind.tags".into(), Value::Array([Value::Str("a".into()), Value::Int(2)].into())),
        ("rewind.blob".into(), Value::Bytes([t, 0, 255].into())),
        ("rewind.nested".into(), Value::KvList([("k".into(), Value::Empty)].into())),
    ];
    if t % 3 == 0 {
        root.status_code = status::ERROR;
        root.status_message = "upstream failed".into();
    }
    root.links = vec![Link {
        trace_id: TraceId([t.wrapping_add(100); 16]),
        span_id: SpanId([9; 8]),
        trace_state: String::new(),
        attributes: vec![("link.kind".into(), Value::Str("follows".into()))],
        dropped_attributes: 0,
        flags: 1,
    }];
    let mut db = base(2, Some(1), kind::CLIENT, "SELECT orders", 1_000_000, 12_000_000);
    db.attributes = vec![
        ("db.system".into(), Value::Str("mysql".into())),
        ("db.statement".into(), Value::Str("SELECT * FROM orders WHERE id = ?".into())),
        ("server.address".into(), Value::Str("mysql".into())),
    ];
    let mut cache = base(3, Some(1), kind::CLIENT, "GET", 14_000_000, 1_000_000);
    cache.attributes = vec![("db.system".into(), Value::Str("redis".into()))];
    let mut internal = base(4, Some(1), kind::INTERNAL, "charge", 16_000_000, 3_000_000);
    internal.events = vec![Event {
        time_ns: start + 17_000_000,
        name: "exception".into(),
        attributes: vec![
            ("exception.type".into(), Value::Str("ValueError".into())),
            ("exception.message".into(), Value::Str("card declined".into())),
        ],
        dropped_attributes: 1,
    }];
    internal.dropped_attributes = 2;
    vec![root, db, cache, internal]
}

fn native(t: u8, start: u64, sql_count: u32) -> XLog {
    XLog {
        trace_id: TraceId([t; 16]),
        span_id: SpanId([t; 8]),
        service: "legacy".into(),
        instance: "legacy-1".into(),
        endpoint: "/pay".into(),
        start_ns: start,
        elapsed_ns: 25_000_000,
        error: t % 2 == 0,
        error_message: if t % 2 == 0 { "declined".into() } else { Default::default() },
        http_status: 200,
        client_ip: "10.9.9.9".into(),
        user_id: "u1".into(),
        user_agent: "curl/8".into(),
        referer: "https://shop/".into(),
        cpu_ns: 3_000_000,
        alloc_bytes: 4096,
        sql_count,
        sql_ns: u64::from(sql_count) * 1_000_000,
        api_count: 1,
        api_ns: 2_000_000,
        attributes: vec![("tier".into(), Value::Str("gold".into()))].into(),
        resource: Arc::new(Resource::default()),
    }
}

/// Writes the fixture. Run with the build whose format it should capture:
/// `REWIND_WRITE_FIXTURE=1 cargo test -p rewind-storage write_old_format_fixture -- --ignored`
#[test]
#[ignore]
fn write_old_format_fixture() {
    let dir = fixtures().join("store-v2");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let store = Store::open(config(&dir)).unwrap();
        let (front, cart) = (resource("frontend", "frontend-1"), resource("cart", "cart-2"));
        // Partition 0: sealed spans, their transactions and native records.
        let mut batch = Vec::new();
        for t in 1..=6u8 {
            batch.extend(trace(
                t,
                T0 + u64::from(t) * 1_000_000_000,
                if t % 2 == 0 { "cart" } else { "frontend" },
                if t % 2 == 0 { &cart } else { &front },
            ));
        }
        store
            .append(vec![EncodedBatch::new(batch), EncodedBatch::xlogs(vec![native(50, T0, 2), native(51, T0, 3)])])
            .unwrap();
        store.seal_all().unwrap();
        // Partition 1 too.
        let batch: Vec<Span> = (7..=9u8).flat_map(|t| trace(t, T0 + HOUR + u64::from(t), "frontend", &front)).collect();
        store.append(vec![EncodedBatch::new(batch), EncodedBatch::xlogs(vec![native(53, T0 + HOUR, 5)])]).unwrap();
        store.seal_all().unwrap();
        // Then, left in the write-ahead log: spans whose entries are still pending (the grace
        // period is a year), and native records.
        let batch: Vec<Span> = (10..=11u8).flat_map(|t| trace(t, T0 + HOUR + 60_000_000_000, "cart", &cart)).collect();
        store.append(vec![EncodedBatch::new(batch), EncodedBatch::xlogs(vec![native(52, T0 + HOUR, 1)])]).unwrap();
        store.seal().unwrap();
        let batch: Vec<Span> = (12..=12u8).flat_map(|t| trace(t, T0 + HOUR + 90_000_000_000, "cart", &cart)).collect();
        store.append(vec![EncodedBatch::new(batch)]).unwrap();
        // Dropped unsealed, as a crash leaves it.
    }
    let store = Store::open(config(&dir)).unwrap();
    let answers = answers(&store);
    drop(store);
    std::fs::write(fixtures().join("store-v2.answers.json"), serde_json::to_string_pretty(&answers).unwrap() + "\n")
        .unwrap();
}

fn value(v: &Value) -> J {
    match v {
        Value::Empty => json!(null),
        Value::Str(s) => json!({"s": s}),
        Value::Bool(b) => json!({"b": b}),
        Value::Int(i) => json!({"i": i}),
        Value::Double(d) => json!({"d": d}),
        Value::Bytes(b) => json!({"x": hex::encode(b)}),
        Value::Array(a) => json!({"a": a.iter().map(value).collect::<Vec<_>>()}),
        Value::KvList(kvs) => json!({"kv": kvs.iter().map(|(k, v)| json!([k, value(v)])).collect::<Vec<_>>()}),
    }
}

/// Attributes in key order: a segment stores them by column, not in their original order.
fn kvs(kvs: &[crate::model::KeyValue]) -> J {
    let mut v: Vec<&crate::model::KeyValue> = kvs.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    J::Array(v.into_iter().map(|(k, v)| json!([k, value(v)])).collect())
}

fn span(s: &Span) -> J {
    json!({
        "trace": hex::encode(s.trace_id), "span": hex::encode(s.span_id), "parent": s.parent_span_id.map(hex::encode),
        "state": s.trace_state, "flags": s.flags, "service": s.service, "name": s.name, "kind": s.kind,
        "start": s.start_ns.to_string(), "duration": s.duration_ns, "status": [s.status_code, &s.status_message],
        "scope": [&s.scope_name, &s.scope_version], "attributes": kvs(&s.attributes),
        "events": s.events.iter().map(|e| json!([e.time_ns.to_string(), e.name, kvs(&e.attributes), e.dropped_attributes])).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!([hex::encode(l.trace_id), hex::encode(l.span_id), l.trace_state, kvs(&l.attributes), l.dropped_attributes, l.flags])).collect::<Vec<_>>(),
        "dropped": [s.dropped_attributes, s.dropped_events, s.dropped_links], "resource": kvs(&s.resource.attributes),
    })
}

fn record(x: &XLog) -> J {
    json!({
        "trace": hex::encode(x.trace_id), "span": hex::encode(x.span_id), "service": x.service, "instance": x.instance,
        "endpoint": x.endpoint, "start": x.start_ns.to_string(), "elapsed": x.elapsed_ns, "error": [x.error, &x.error_message],
        "http": x.http_status, "client": [&x.client_ip, &x.user_id, &x.user_agent, &x.referer], "cpu": [x.cpu_ns, x.alloc_bytes],
        "sql": [x.sql_count, x.sql_ns], "api": [x.api_count, x.api_ns], "attributes": kvs(&x.attributes), "resource": kvs(&x.resource.attributes),
    })
}

fn answers(store: &Store) -> J {
    let everything = XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 10_000, ..XLogFilter::default() };
    let traces: Vec<J> =
        (1..=12u8).map(|t| J::Array(store.trace(&TraceId([t; 16])).unwrap().iter().map(span).collect())).collect();
    let (records, truncated) = store.xlog_records(&everything).unwrap();
    let mut records: Vec<J> = records.iter().map(record).collect();
    records.sort_by_key(|r| r.to_string());
    let p = store.xlog_points(&everything).unwrap();
    let mut points: Vec<J> = (0..p.end_ns.len())
        .map(|i| {
            json!([
                p.end_ns[i].to_string(),
                p.elapsed_ns[i],
                p.error[i],
                hex::encode(p.trace_id[i]),
                p.services[p.service[i] as usize],
                p.sql_ns[i],
                p.api_ns[i],
                p.cpu_ns[i]
            ])
        })
        .collect();
    points.sort_by_key(|r| r.to_string());
    let filtered = XLogFilter {
        service: Some("cart".into()),
        attributes: vec![("k8s.pod.name".into(), "cart-2".into())],
        min_elapsed_ns: Some(40_005_000),
        ..everything.clone()
    };
    let mut filtered: Vec<String> =
        store.xlog_records(&filtered).unwrap().0.iter().map(|x| hex::encode(x.trace_id)).collect();
    filtered.sort();
    let services: Vec<J> = store
        .services()
        .iter()
        .map(|s| {
            json!([s.name, s.kind, s.instances, s.first_seen_ns.to_string(), s.last_seen_ns.to_string(), s.span_count])
        })
        .collect();
    let st = store.stats();
    json!({
        "traces": traces, "records": records, "truncated": truncated, "points": points, "filtered": filtered,
        "services": services,
        "stats": {"memtable_spans": st.memtable_spans, "sealed_spans": st.sealed_spans, "partitions": st.partitions,
                  "pending_xlogs": st.pending_xlogs, "memtable_xlogs": st.memtable_xlogs, "sealed_xlogs": st.sealed_xlogs},
    })
}

#[test]
fn a_store_written_by_an_earlier_build_opens_and_answers_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("store");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(fixtures().join("store-v2")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("store-v2.answers.json")).unwrap()).unwrap();
    let store = Store::open(config(&copy)).unwrap();
    let got = answers(&store);
    for key in ["traces", "records", "truncated", "points", "filtered", "services", "stats"] {
        assert_eq!(got[key], want[key], "{key}");
    }
    // And it goes on: seals what it recovered, and still answers the same.
    store.seal_all().unwrap();
    let after = answers(&store);
    for key in ["traces", "records", "points", "filtered"] {
        assert_eq!(after[key], want[key], "{key} after sealing");
    }
}
