//! Server-map benchmark: what the statistics cost to store, and what the map, a histogram and a
//! call tree cost to read, over 1 hour, 24 hours and 30 days of shop traffic.
//!
//! cargo run --release -p rewind-benches --bin bench-map -- [--rate 5000] [--minutes 10] [--days 30]
//!
//! 1. Real traffic: `--minutes` of shop traffic at `--rate` spans/s, through the collector's
//!    conversion and the store's real write path (derivation, seals with their statistics). Its
//!    statistics bytes per second are compared with its span bytes; a second store takes one
//!    trace a second for the idle-traffic floor.
//! 2. History: 30 days of statistics do not fit as spans, so they are written directly, at the
//!    shop's rates: every second of the history repeats a second of the real traffic (second
//!    rows for the replay window, minute and hour rows for the rest, as roll-up leaves them).
//! 3. The real `rewind` binary on that store, and latency percentiles over HTTP of
//!    `/api/servermap` and `/api/histogram` for each range, and of the call tree of the largest
//!    trace of the real traffic; `/api/replay` of the last hour and `/api/incidents` over a day.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rewind_benches::live::{traffic, Traffic};
use rewind_benches::server::Server;
use rewind_benches::{row, write_results, Args};
use rewind_storage::stats::table::{Resolution, Row};
use rewind_storage::stats::Cell;
use rewind_storage::{now_ns, EncodedBatch, Resource, Span, SpanId, Store, StoreConfig, TraceId, Value};
use serde_json::json;

const S: u64 = 1_000_000_000;
const HOUR: u64 = 3600;
/// The replay window of the benchmark's store: second rows for the last day and a bit.
const REPLAY_WINDOW_H: u64 = 26;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.sync = false;
    c.retention = Duration::from_secs(31 * 86_400);
    c.replay_window = Duration::from_secs(REPLAY_WINDOW_H * HOUR);
    c.min_free_disk_bytes = 0;
    c
}

/// Cells by key of a set of rows, merged.
fn merged<'a>(rows: impl Iterator<Item = &'a (String, Cell)>) -> Vec<(String, Cell)> {
    let mut by: BTreeMap<String, Cell> = BTreeMap::new();
    for (k, c) in rows {
        by.entry(k.clone()).or_default().merge(c);
    }
    by.into_iter().collect()
}

fn main() {
    let args = Args::parse();
    let rate: u64 = args.get("rate", 5000);
    let minutes: u64 = args.get("minutes", 10);
    let days: u64 = args.get("days", 30);
    let requests: usize = args.get("requests", 30);
    let seed: u64 = args.get("seed", 42);
    assert!(3600 % (minutes * 60) == 0, "--minutes must divide an hour");
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = args.string("dir").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().join("store"));

    // 1. Real traffic, ending two minutes ago on a minute boundary, in a store of its own.
    let now_s = now_ns() / S;
    let end_s = (now_s - 120) / 60 * 60;
    let start_s = end_s - minutes * 60;
    let real_dir = tmp.path().join("real");
    let started = Instant::now();
    let mut real = traffic(config(&real_dir), seed, rate, start_s, minutes * 60, None);
    let store = real.store.take().expect("open");
    println!(
        "\nreal traffic: {} spans in {} s of shop time ({} spans/s), ingested in {:.1} s",
        real.spans,
        real.seconds,
        real.spans / real.seconds,
        started.elapsed().as_secs_f64()
    );
    let (rows, _) =
        store.stats_rows_finer_than(start_s, end_s, &|_| true, Resolution::Second).expect("read the real seconds");
    // And one trace of 100,000 spans (a batch job fanning out), for the call tree's worst case.
    let fan_out = fan_out(start_s * S, 100_000);
    let fan_out_id = fan_out[0].trace_id.to_string();
    store.append(vec![EncodedBatch::new(fan_out)]).expect("append the fan-out");
    store.seal_all().expect("seal");
    store.close().expect("close");
    drop(store);
    // One shop trace a second.
    let mut idle = traffic(config(&tmp.path().join("idle")), seed, 11, start_s, minutes * 60, None);
    drop(idle.store.take());

    // 2. History, from the real seconds: second `t` of it repeats second `offset(t)` of them.
    let window = (minutes * 60) as usize;
    let mut by_offset: Vec<Vec<(String, Cell)>> = vec![Vec::new(); window];
    for (t, k, c) in rows {
        by_offset[(t - start_s) as usize].push((k, c));
    }
    let by_offset: Vec<Vec<(String, Cell)>> = by_offset.iter().map(|r| merged(r.iter())).collect();
    let keys_per_second = by_offset.iter().map(Vec::len).sum::<usize>() as f64 / window as f64;
    let minute_cells: Vec<Vec<(String, Cell)>> =
        (0..window / 60).map(|m| merged(by_offset[m * 60..(m + 1) * 60].iter().flatten())).collect();
    let once = merged(by_offset.iter().flatten());
    let mut hour_cells = once.clone();
    for _ in 1..(3600 / window) {
        for (cell, (_, add)) in hour_cells.iter_mut().zip(&once) {
            cell.1.merge(add);
        }
    }
    let offset = |t: u64| ((t + window as u64 * 1_000_000 - start_s) % window as u64) as usize;
    let history_from = (now_s - days * 86_400) / HOUR * HOUR + HOUR;
    let rolled = (now_s - 2 * HOUR) / HOUR * HOUR;
    let seconds_from = (now_s - REPLAY_WINDOW_H * HOUR) / HOUR * HOUR + HOUR;
    let store = Store::open(config(&dir)).expect("open");
    let built = Instant::now();
    let mut h = history_from;
    while h < rolled {
        let day_end = (h + 86_400).min(rolled);
        let hours: Vec<Row> = (h..day_end)
            .step_by(HOUR as usize)
            .flat_map(|t| hour_cells.iter().map(move |(k, c)| (t, k.clone(), c.clone())))
            .collect();
        store.import_statistics(Resolution::Hour, &hours, None).expect("hours");
        let minutes_rows: Vec<Row> = (h..day_end)
            .step_by(60)
            .flat_map(|t| minute_cells[offset(t) / 60].iter().map(move |(k, c)| (t, k.clone(), c.clone())))
            .collect();
        let last = day_end == rolled;
        store.import_statistics(Resolution::Minute, &minutes_rows, last.then_some((rolled, rolled))).expect("minutes");
        h = day_end;
    }
    // Second rows of the replay window, an hour at a time; roll-up makes the last two hours'
    // minutes and hours from them, as it does in a running server.
    let mut t = seconds_from;
    while t < end_s {
        let until = (t + HOUR).min(end_s);
        let secs: Vec<Row> =
            (t..until).flat_map(|s| by_offset[offset(s)].iter().map(move |(k, c)| (s, k.clone(), c.clone()))).collect();
        store.import_statistics(Resolution::Second, &secs, None).expect("seconds");
        t = until;
    }
    while store.roll_up().expect("roll up") {}
    store.compact();
    let history_bytes: u64 = store
        .column_bytes()
        .expect("column bytes")
        .iter()
        .filter(|(k, _)| k.starts_with("stats_"))
        .map(|(_, b)| b)
        .sum();
    store.close().expect("close");
    drop(store);
    println!(
        "history: {days} days written in {:.0} s, {keys_per_second:.0} keys per second of traffic, {:.1} MB of statistics",
        built.elapsed().as_secs_f64(),
        history_bytes as f64 / 1e6
    );

    // 3. Reads through the real server.
    let server = Server::start(&dir, &["--retention", "31d", "--replay-window", &format!("{REPLAY_WINDOW_H}h")]);
    let base = format!("http://{}", server.query);
    let http = Http::new();
    let time = |path: &str| http.time(&base, path, requests);
    let now_ms = now_ns() / 1_000_000;
    let mut figures = serde_json::Map::new();
    println!("\n{requests} requests each, one at a time, after 2 warm-up requests:\n");
    for (label, range_ms, target) in
        [("1 h", HOUR * 1000, 50.0), ("24 h", 24 * HOUR * 1000, 200.0), ("30 d", days * 86_400 * 1000, 1000.0)]
    {
        // Ranges that end now and start mid-second: seconds, minutes and hours all take part.
        let from = now_ms - range_ms + 517;
        let (lat, map) = time(&format!("/api/servermap?from={from}&to={now_ms}"));
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let front = map["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "frontend").cloned();
        let count = front.map_or(0, |f| f["count"].as_u64().unwrap_or(0));
        row(
            &format!("map {label} (frontend: {count} transactions)"),
            format!("p50 {p50:.1} / p99 {p99:.1} ms"),
            &format!("<= {target} ms"),
            Some(p99 <= target),
        );
        let (hl, hist) = time(&format!("/api/histogram?from={from}&to={now_ms}&service=frontend"));
        let (h50, h99) = (percentile(&hl, 0.5), percentile(&hl, 0.99));
        let points = hist["series"].as_array().map_or(0, Vec::len);
        row(&format!("histogram {label} ({points} points)"), format!("p50 {h50:.1} / p99 {h99:.1} ms"), "", None);
        figures.insert(
            label.replace(' ', ""),
            json!({"map_p50_ms": p50, "map_p99_ms": p99, "map_max_ms": lat[lat.len() - 1], "frontend_count": count,
                   "histogram_p50_ms": h50, "histogram_p99_ms": h99, "histogram_points": points}),
        );
    }
    // The replay of the last hour, a frame a second, and an incident search over a day.
    let (rl, replay) = time(&format!("/api/replay?from={}&to={now_ms}", now_ms - HOUR * 1000));
    let (r50, r99) = (percentile(&rl, 0.5), percentile(&rl, 0.99));
    let frames = replay["frames"].as_array().map_or(0, Vec::len);
    row(
        &format!("replay 1 h ({frames} frames of {} ms)", replay["step_ms"]),
        format!("p50 {r50:.1} / p99 {r99:.1} ms"),
        "<= 200 ms",
        Some(r99 <= 200.0),
    );
    let (il, found) = time(&format!("/api/incidents?from={}&to={now_ms}", now_ms - 24 * HOUR * 1000));
    let (i50, i99) = (percentile(&il, 0.5), percentile(&il, 0.99));
    let n = found["incidents"].as_array().map_or(0, Vec::len);
    row(
        &format!("incidents over 24 h ({n} found)"),
        format!("p50 {i50:.1} / p99 {i99:.1} ms"),
        "<= 1000 ms",
        Some(i99 <= 1000.0),
    );
    figures.insert("replay_1h".into(), json!({"frames": frames, "p50_ms": r50, "p99_ms": r99}));
    figures.insert("incidents_24h".into(), json!({"found": n, "p50_ms": i50, "p99_ms": i99}));
    server.stop();
    // The call tree, on the store of the real traffic (whose spans it reads).
    let server = Server::start(&real_dir, &["--retention", "31d"]);
    let base = format!("http://{}", server.query);
    let time = |path: &str| http.time(&base, path, requests);
    let (tl, tree) = time(&format!("/api/traces/{}/calltree", real.largest_trace.0));
    let (t50, t99) = (percentile(&tl, 0.5), percentile(&tl, 0.99));
    row(
        &format!("call tree of the largest trace ({} spans, {} rows)", real.largest_trace.1, tree["total_rows"]),
        format!("p50 {t50:.2} / p99 {t99:.2} ms"),
        "",
        None,
    );
    let (fl, tree) = http.time(&base, &format!("/api/traces/{fan_out_id}/calltree"), 10);
    let (f50, f99) = (percentile(&fl, 0.5), percentile(&fl, 0.99));
    row(
        &format!("call tree of a 100,000-span trace (first {} rows)", tree["rows"].as_array().map_or(0, Vec::len)),
        format!("p50 {f50:.0} / p99 {f99:.0} ms"),
        "",
        None,
    );
    server.stop();

    let per_s = |b: u64, t: &Traffic| b as f64 / t.seconds as f64;
    let share = real.stats_bytes as f64 / real.span_bytes as f64;
    println!();
    row(
        &format!("statistics at {} spans/s", real.spans / real.seconds),
        format!("{:.0} B/s", per_s(real.stats_bytes, &real)),
        "",
        None,
    );
    row("spans at the same rate (column chunks)", format!("{:.0} B/s", per_s(real.span_bytes, &real)), "", None);
    row("statistics / span bytes", format!("{:.1}%", share * 100.0), "<= 10%", Some(share <= 0.10));
    row(
        "idle floor: one trace a second",
        format!(
            "{:.0} B/s ({:.1}% of its spans)",
            per_s(idle.stats_bytes, &idle),
            idle.stats_bytes as f64 * 100.0 / idle.span_bytes as f64
        ),
        "",
        None,
    );
    row("second rows per second of traffic", format!("{:.0}", real.stats_rows as f64 / real.seconds as f64), "", None);

    figures.insert("date".into(), json!(date()));
    figures.insert("rate_spans_per_s".into(), json!(real.spans / real.seconds));
    figures.insert("stats_bytes_per_s".into(), json!(per_s(real.stats_bytes, &real)));
    figures.insert("span_bytes_per_s".into(), json!(per_s(real.span_bytes, &real)));
    figures.insert("stats_share_of_span_bytes".into(), json!(share));
    figures.insert("idle_stats_bytes_per_s".into(), json!(per_s(idle.stats_bytes, &idle)));
    figures.insert("keys_per_second".into(), json!(keys_per_second));
    figures.insert("history_stats_bytes".into(), json!(history_bytes));
    figures.insert("calltree".into(), json!({"spans": real.largest_trace.1, "p50_ms": t50, "p99_ms": t99}));
    figures.insert("calltree_100k".into(), json!({"spans": 100_000, "p50_ms": f50, "p99_ms": f99}));
    write_results("map", &serde_json::Value::Object(figures));
}

/// A root span and `n - 1` calls under it, of one trace.
fn fan_out(start_ns: u64, n: u64) -> Vec<Span> {
    let resource = Arc::new(Resource { attributes: vec![("service.name".into(), Value::Str("batch".into()))] });
    let trace = TraceId([0x5a; 16]);
    (0..n)
        .map(|i| Span {
            trace_id: trace,
            span_id: SpanId((i + 1).to_be_bytes()),
            parent_span_id: (i > 0).then_some(SpanId(1u64.to_be_bytes())),
            trace_state: String::new(),
            flags: 1,
            service: "batch".into(),
            name: if i == 0 { "nightly export".into() } else { "SELECT".into() },
            kind: if i == 0 { 2 } else { 3 },
            start_ns: start_ns + i * 10_000,
            duration_ns: if i == 0 { n * 10_000 } else { 8_000 },
            status_code: 0,
            status_message: String::new(),
            scope_name: "".into(),
            scope_version: "".into(),
            attributes: vec![("db.statement".into(), Value::Str(format!("SELECT * FROM items WHERE id = {i}").into()))],
            events: Vec::new(),
            links: Vec::new(),
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
            resource: resource.clone(),
        })
        .collect()
}

/// Timed requests, one at a time, after two to warm up.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { rt, client: reqwest::Client::new() }
    }

    /// Latencies in milliseconds, sorted, and the last answer.
    fn time(&self, base: &str, path: &str, requests: usize) -> (Vec<f64>, serde_json::Value) {
        self.rt.block_on(async {
            let mut lat = Vec::new();
            let mut last = serde_json::Value::Null;
            for i in 0..requests + 2 {
                let t = Instant::now();
                let resp = self.client.get(format!("{base}{path}")).send().await.expect("request");
                assert!(resp.status().is_success(), "{path}: {}", resp.status());
                let body = resp.bytes().await.expect("body");
                if i >= 2 {
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                last = serde_json::from_slice(&body).expect("JSON");
            }
            lat.sort_by(f64::total_cmp);
            (lat, last)
        })
    }
}

fn date() -> String {
    let out = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
