//! Query benchmark: latency percentiles of the query API on a store written by bench-storage
//! (`--dir`), through the real server and HTTP. Trace-by-id looks up a sample of the stored traces
//! spread over the whole data set; the XLog endpoints read the last 10 minutes of the data.
//!
//! target/release/bench-storage --spans 4000000 --traces-per-second 600 --xlog true --dir /tmp/rb/store
//! target/release/bench-query --dir /tmp/rb/store

use std::time::{Duration, Instant};

use rewind_benches::server::Server;
use rewind_benches::{row, write_results, Args};
use serde_json::json;

/// The request path of the i-th request to an endpoint.
type PathFor<'a> = Box<dyn Fn(usize) -> String + 'a>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let args = Args::parse();
    let dir = std::path::PathBuf::from(args.string("dir").expect("--dir: a store written by bench-storage --dir"));
    let requests: usize = args.get("requests", 5000);
    // A million points per answer: fewer requests.
    let xlog_requests: usize = args.get("xlog-requests", 30);
    let window = std::fs::read_to_string(dir.with_extension("window")).unwrap_or_default();
    let (from, to) = window
        .split_once(' ')
        .map_or((String::new(), String::new()), |(f, t)| (f.trim().to_owned(), t.trim().to_owned()));
    let ids: Vec<String> = std::fs::read_to_string(dir.with_extension("trace-ids"))
        .expect("the trace id sample bench-storage writes beside the store")
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!ids.is_empty());

    let server = Server::start(&dir, &[]);
    let base = format!("http://{}", server.query);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let mut results = serde_json::Map::new();
    println!("\nRewind query latency ({} sampled traces, {requests} requests each, one at a time)\n", ids.len());
    let w = format!("from={from}&to={to}");
    let endpoints: Vec<(&str, usize, PathFor)> = vec![
        // A stride through the sample so consecutive requests hit different segments.
        ("trace by id", requests, Box::new(|i| format!("/api/traces/{}", ids[(i * 7919) % ids.len()]))),
        ("services", requests, Box::new(|_| "/api/services".to_string())),
        ("xlog 10 min JSON", xlog_requests, Box::new(|_| format!("/api/xlog?{w}"))),
        ("xlog 10 min Arrow", xlog_requests, Box::new(|_| format!("/api/xlog?{w}&format=arrow"))),
        (
            "xlog 10 min one service, slow",
            xlog_requests,
            Box::new(|_| format!("/api/xlog?{w}&service=frontend&min_ms=100")),
        ),
        ("transactions 10 min latest 500", xlog_requests, Box::new(|_| format!("/api/transactions?{w}"))),
        (
            "transactions slow, attribute filter",
            xlog_requests,
            Box::new(|_| format!("/api/transactions?{w}&min_ms=100&attr.http.request.method=POST")),
        ),
    ];
    for (name, requests, path) in endpoints {
        let windowed = name.starts_with("xlog") || name.starts_with("transactions");
        if windowed && from.is_empty() {
            continue; // a store from before XLog, or written without --xlog true
        }
        let mut lat = Vec::with_capacity(requests);
        let (mut spans, mut points, mut bytes) = (0u64, 0u64, 0u64);
        rt.block_on(async {
            for i in 0..requests {
                let url = format!("{base}{}", path(i));
                let started = Instant::now();
                let resp = client.get(&url).send().await.expect("request");
                assert_eq!(resp.status(), 200, "{url}");
                let arrow = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.apache.arrow"));
                let body = resp.bytes().await.expect("body");
                lat.push(started.elapsed().as_secs_f64() * 1000.0);
                bytes += body.len() as u64;
                // Arrow bodies are not parsed: their row count is the JSON one.
                if !arrow {
                    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                    spans += body["span_count"].as_u64().unwrap_or(0);
                    points += body["count"].as_u64().unwrap_or(0);
                }
            }
        });
        lat.sort_by(f64::total_cmp);
        let (p50, p90, p99, max) =
            (percentile(&lat, 0.5), percentile(&lat, 0.9), percentile(&lat, 0.99), lat[lat.len() - 1]);
        let is_trace = name == "trace by id";
        row(&format!("{name}: p50 ms"), format!("{p50:.2}"), "", None);
        row(&format!("{name}: p90 ms"), format!("{p90:.2}"), "", None);
        row(
            &format!("{name}: p99 ms"),
            format!("{p99:.2}"),
            if is_trace { "<= 10" } else { "" },
            is_trace.then_some(p99 <= 10.0),
        );
        row(&format!("{name}: max ms"), format!("{max:.2}"), "", None);
        if is_trace {
            row("trace by id: spans per trace (mean)", format!("{:.1}", spans as f64 / requests as f64), "", None);
        }
        let (points, mb) = (points / requests as u64, bytes as f64 / requests as f64 / 1e6);
        if windowed {
            row(&format!("{name}: points or rows, MB"), format!("{points}, {mb:.1}"), "", None);
        }
        results.insert(
            name.replace(' ', "_"),
            json!({"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max, "requests": requests, "count": points, "mb": mb}),
        );
    }
    let stored: u64 = rt.block_on(async {
        let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|l| l.strip_prefix("rewind_storage_segments ")?.trim().parse::<f64>().ok()).unwrap_or(0.0)
            as u64
    });
    results.insert("segments".into(), json!(stored));
    server.stop();
    std::thread::sleep(Duration::from_millis(100));
    write_results("query", &serde_json::Value::Object(results));
}
