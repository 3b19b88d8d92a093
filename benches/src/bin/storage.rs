//! Storage benchmark: bytes on disk per span after ingesting shop spans and compacting, with the
//! same spans loaded into ClickHouse (chdb, SigNoz-style table) and DuckDB side by side.
//!
//! cargo run --release -p rewind-benches --bin bench-storage -- --spans 10000000 [--peers true]
//!   [--dir DIR: keep the store] [--export FILE: keep the spans as the peers load them, for bench-sql]
//!
//! Spans take the collector's conversion path (validation, limits) and the store's real write
//! path (WAL, seal into column chunks); fsync is off, which changes no byte on disk.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use rewind_benches::{row, write_results, Args};
use rewind_collector::convert::{convert, Limits};
use rewind_storage::AttributeKeys;
use rewind_storage::{now_ns, ManualClock};
use rewind_storage::{EncodedBatch, Span, Store, StoreConfig, Value};
use rewind_workload::{Shop, ShopConfig};
use serde_json::json;

const TRACES_PER_REQUEST: usize = 100;
/// Shop traffic rate the timestamps are spread at.
const TRACES_PER_SECOND: u64 = 300;
/// The window bench-query reads the scatter over (the last minutes of the data).
const XLOG_WINDOW_MS: u64 = 600_000;

fn main() {
    let args = Args::parse();
    let target_spans: u64 = args.get("spans", 1_000_000);
    let seed: u64 = args.get("seed", 42);
    let peers: bool = args.get("peers", false);
    // Keeps the peers' export (NDJSON, one span a line) for bench-sql to load into them.
    let export = args.string("export").map(std::path::PathBuf::from);
    let keep = args.string("dir");
    // XLog derivation is the product's default, and this bench's; a run beside the peers stores
    // spans alone unless told otherwise, as the peers do, so that the figures compare.
    let xlog: bool = args.get("xlog", !peers);
    let traces_per_second: u64 = args.get("traces-per-second", TRACES_PER_SECOND);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = keep.map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().join("store"));

    let interval = 1_000_000_000 / traces_per_second;
    // Spread back from now so every span is within retention.
    let est_traces = target_spans / 11 + 1;
    let mut t = now_ns() - est_traces * interval - 60_000_000_000;
    // The store's clock follows the data, as a live server's does: derivation's grace, the
    // statistics' roll-up into minutes and hours, and what counts as late all see the spans as
    // arriving when they happen. On the system clock every span would be backfilled, hours old to
    // a store opened a minute ago, and written as late data at every resolution.
    let clock = Arc::new(ManualClock::new(t));
    let mut config = StoreConfig::new(&dir);
    config.sync = false;
    config.derive_xlog = xlog;
    config.clock = clock.clone();
    let store = Store::open(config).expect("open store");
    let mut shop = Shop::new(ShopConfig { seed, incident: None });
    let mut peer_file = (peers || export.is_some()).then(|| {
        let path = export.clone().unwrap_or_else(|| tmp.path().join("spans.ndjson"));
        (std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap()), path)
    });

    // Every 500th trace id, for the query benchmark to look up when the store is kept (--dir).
    let mut sample_ids: Vec<String> = Vec::new();
    let mut traces = 0u64;
    let started = Instant::now();
    let (mut spans, mut wire_bytes) = (0u64, 0u64);
    while spans < target_spans {
        let req = shop.request(TRACES_PER_REQUEST, t, interval);
        t += TRACES_PER_REQUEST as u64 * interval;
        clock.advance(TRACES_PER_REQUEST as u64 * interval);
        wire_bytes += prost::Message::encoded_len(&req) as u64;
        let converted = convert(req, &Limits::default(), &AttributeKeys::default(), now_ns(), 0);
        assert_eq!(converted.rejected, 0, "{}", converted.message());
        spans += converted.items.len() as u64;
        for s in converted.items.iter().filter(|s| s.parent_span_id.is_none()) {
            if traces % 500 == 0 {
                sample_ids.push(s.trace_id.to_string());
            }
            traces += 1;
        }
        if let Some((f, _)) = peer_file.as_mut() {
            for s in &converted.items {
                serde_json::to_writer(&mut *f, &peer_row(s)).unwrap();
                f.write_all(b"\n").unwrap();
            }
        }
        store.append(vec![EncodedBatch::new(converted.items)]).expect("append");
        if store.should_seal() || store.stats().memtable_spans >= 100_000 {
            store.seal().expect("seal");
            store.roll_up().expect("roll up");
        }
    }
    if let Some((f, _)) = peer_file.as_mut() {
        f.flush().expect("write the export");
    }
    // Every XLog record final, none left waiting for children.
    store.seal_all().expect("seal");
    // Past the end of the data's hour and the roll-up's lateness: its minutes and hours are rolled
    // up, as they would be on a live server by then.
    clock.advance(3_600_000_000_000 + 180_000_000_000);
    while store.roll_up().expect("roll up") {}
    let xlog_records = store.stats().sealed_xlogs;
    let ingest_secs = started.elapsed().as_secs_f64();
    store.compact();
    let disk = store.disk_bytes().expect("disk bytes");
    let columns = store.column_bytes().expect("column bytes");
    let chunk_bytes: u64 = columns.values().sum();
    let sst = sst_bytes(&dir);
    let families = store.family_bytes();
    drop(store);
    std::fs::write(dir.with_extension("trace-ids"), sample_ids.join("\n")).expect("write trace id sample");
    let to_ms = t / 1_000_000 + 60_000;
    std::fs::write(dir.with_extension("window"), format!("{} {to_ms}", to_ms - XLOG_WINDOW_MS)).expect("write window");

    let per_span = disk as f64 / spans as f64;
    println!(
        "\nRewind storage: {spans} shop spans (seed {seed}), {:.0} B/span on the wire, written in {ingest_secs:.1} s\n",
        wire_bytes as f64 / spans as f64
    );
    // #16's target with XLog on; the spans-only one beside the peers.
    let target = if xlog { 35.0 } else { 30.0 };
    row(
        "directory bytes per span (all files)",
        format!("{per_span:.1}"),
        &format!("<= {target}"),
        Some(per_span <= target),
    );
    row("SST bytes per span", format!("{:.1}", sst as f64 / spans as f64), "", None);
    row("column chunk bytes per span", format!("{:.1}", chunk_bytes as f64 / spans as f64), "", None);
    for (cf, bytes) in &families {
        row(
            &format!("  table files of `{cf}`, bytes per span"),
            format!("{:.2}", *bytes as f64 / spans as f64),
            "",
            None,
        );
    }
    let xlog_bytes: u64 = columns.iter().filter(|(k, _)| k.starts_with("xlog:")).map(|(_, v)| v).sum();
    if xlog {
        row("XLog records (transactions)", xlog_records.to_string(), "", None);
        row("XLog chunk bytes per record", format!("{:.1}", xlog_bytes as f64 / xlog_records.max(1) as f64), "", None);
    }
    println!("\nper column (bytes per span):");
    let mut by_size: Vec<_> = columns.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(a.1));
    for (name, bytes) in by_size.iter().take(25) {
        println!("  {name:<40} {:>8.2}", **bytes as f64 / spans as f64);
    }

    let mut figures = json!({
        "date": date(),
        "spans": spans,
        "seed": seed,
        "wire_bytes_per_span": wire_bytes as f64 / spans as f64,
        "rewind_bytes_per_span": per_span,
        "rewind_sst_bytes_per_span": sst as f64 / spans as f64,
        "rewind_chunk_bytes_per_span": chunk_bytes as f64 / spans as f64,
        "xlog_records": xlog_records,
        "xlog_chunk_bytes_per_record": xlog_bytes as f64 / xlog_records.max(1) as f64,
        "families_bytes_per_span": families.iter().map(|(k, v)| (k.to_string(), json!(*v as f64 / spans as f64))).collect::<serde_json::Map<_, _>>(),
        "columns_bytes_per_span": columns.iter().map(|(k, v)| (k.clone(), json!(*v as f64 / spans as f64))).collect::<serde_json::Map<_, _>>(),
    });
    if let Some((f, path)) = peer_file.filter(|_| peers) {
        drop(f);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/storage_peers.py");
        let python = std::env::var("REWIND_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = std::process::Command::new(&python).arg(script).arg(&path).output().expect("run the peers script");
        assert!(out.status.success(), "peers failed: {}", String::from_utf8_lossy(&out.stderr));
        let peers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("peers print JSON");
        println!("\nside by side, same {spans} spans (bytes per span):");
        let ch = peers["clickhouse_bytes"].as_f64().unwrap() / spans as f64;
        let dk = peers["duckdb_bytes"].as_f64().unwrap() / spans as f64;
        row("Rewind", format!("{per_span:.1}"), "<= 0.6 x ClickHouse", Some(per_span <= 0.6 * ch));
        row("ClickHouse (chdb, SigNoz-style codecs)", format!("{ch:.1}"), "", None);
        row("DuckDB", format!("{dk:.1}"), "", None);
        row("Rewind / ClickHouse", format!("{:.2}", per_span / ch), "<= 0.6", Some(per_span <= 0.6 * ch));
        figures["clickhouse_bytes_per_span"] = json!(ch);
        figures["duckdb_bytes_per_span"] = json!(dk);
        figures["peer_versions"] = peers["versions"].clone();
    }
    write_results("storage", &figures);
}

fn sst_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn date() -> String {
    let out = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

/// One span as a row of the peers' SigNoz-style table: typed attribute maps, like SigNoz keeps.
fn peer_row(s: &Span) -> serde_json::Value {
    let (mut strings, mut numbers, mut bools) =
        (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
    for (k, v) in &s.attributes {
        match v {
            Value::Str(x) => drop(strings.insert(k.to_string(), json!(&**x))),
            Value::Int(i) => drop(numbers.insert(k.to_string(), json!(*i as f64))),
            Value::Double(d) => drop(numbers.insert(k.to_string(), json!(d))),
            Value::Bool(b) => drop(bools.insert(k.to_string(), json!(b))),
            other => drop(strings.insert(k.to_string(), json!(format!("{other:?}")))),
        }
    }
    let resources: serde_json::Map<_, _> =
        s.resource.attributes.iter().filter_map(|(k, v)| Some((k.to_string(), json!(v.as_str()?)))).collect();
    json!({
        "timestamp": s.start_ns,
        "trace_id": s.trace_id.to_string(),
        "span_id": s.span_id.to_string(),
        "parent_span_id": s.parent_span_id.map(|p| p.to_string()).unwrap_or_default(),
        "service_name": s.service,
        "name": s.name,
        "kind": s.kind,
        "duration_nano": s.duration_ns,
        "status_code": s.status_code,
        "status_message": s.status_message,
        "attributes_string": strings,
        "attributes_number": numbers,
        "attributes_bool": bools,
        "resources_string": resources,
        "events": s.events.iter().map(|e| json!({"name": e.name, "time": e.time_ns, "attributes": e.attributes.iter().map(|(k, v)| (k.to_string(), json!(format!("{v:?}")))).collect::<serde_json::Map<_, _>>()}).to_string()).collect::<Vec<_>>(),
    })
}
