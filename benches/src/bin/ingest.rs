//! Ingest benchmark: sustained OTLP/gRPC spans/s into the real server with durability on, the
//! client replaying pre-encoded shop requests over several connections; the server's CPU seconds
//! and peak RSS; and, in the same run, the decode-only ceiling (prost on one core). With
//! `--instructions true`, also instructions per span of the ingest path (`bench-pipeline` under
//! callgrind): a figure this machine's noise does not move.
//!
//! cargo build --release --bin rewind -p rewind-benches && target/release/bench-ingest --seconds 60

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rewind_agent_proto::{ExportTraceServiceRequest, OTLP_TRACE_EXPORT_PATH};
use rewind_benches::server::Server;
use rewind_benches::{row, write_results, Args};
use rewind_storage::now_ns;
use rewind_workload::replay::Replayable;
use rewind_workload::send::PreEncoded;
use rewind_workload::{Shop, ShopConfig};
use serde_json::json;

fn main() {
    let args = Args::parse();
    let seconds: u64 = args.get("seconds", 60);
    // An OpenTelemetry Collector's OTLP exporter sends with 10 consumers by default.
    let connections: usize = args.get("connections", 10);
    let traces_per_request: usize = args.get("traces-per-request", 50);
    // 2000 requests of 50 traces come round every 5-10 s at the rates measured: every trace is
    // new to XLog derivation (past its 2 s grace), as live traffic is.
    let requests: usize = args.get("requests", 2000);
    let instructions = args.get("instructions", false).then(count_instructions);

    // Pre-encode the load: distinct shop requests, replayed round-robin.
    let mut shop = Shop::new(ShopConfig { seed: 7, incident: None });
    let interval = 1_000_000;
    let mut t = now_ns() - 600_000_000_000;
    // Each pass over them is sent as new traces (`Replayable`): the same bytes twice would be a
    // retry, which the server acknowledges without storing.
    let mut encoded: Vec<Replayable> = Vec::with_capacity(requests);
    for _ in 0..requests {
        let req = shop.request(traces_per_request, t, interval);
        t += traces_per_request as u64 * interval;
        encoded.push(Replayable::new(&req));
    }
    let total_spans: u64 = encoded.iter().map(|e| e.spans).sum();
    let total_bytes: u64 = encoded.iter().map(|e| e.len() as u64).sum();
    let bytes_per_span = total_bytes as f64 / total_spans as f64;

    // Decode-only ceiling: prost decoding the same requests on this one thread.
    let ceiling = {
        let started = Instant::now();
        let mut spans = 0u64;
        while started.elapsed() < Duration::from_secs(5) {
            for r in &encoded {
                let req = ExportTraceServiceRequest::decode(r.round(0)).expect("decode");
                std::hint::black_box(&req);
                spans += r.spans;
            }
        }
        spans as f64 / started.elapsed().as_secs_f64()
    };
    // What the server does instead: the wire decoder straight into spans, paying as it goes.
    let wire_ceiling = {
        let (limits, keys) = (rewind_collector::Limits::default(), rewind_storage::AttributeKeys::default());
        let started = Instant::now();
        let mut spans = 0u64;
        while started.elapsed() < Duration::from_secs(5) {
            for r in &encoded {
                let body = r.round(0);
                let mut pay = |bill: &rewind_collector::meter::Bill<'_>| Ok(bill.ahead);
                let mut meter = rewind_collector::meter::Meter::new(body.len(), &mut pay);
                let c = rewind_collector::wire::convert_metered(&body, &limits, &keys, now_ns(), 0, &mut meter)
                    .expect("decode");
                spans += c.items.len() as u64;
            }
        }
        spans as f64 / started.elapsed().as_secs_f64()
    };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--sync", "true"]);
    let grpc = server.grpc;
    let cpu_before = server.cpu_seconds();
    let encoded = Arc::new(encoded);
    let acked = Arc::new(AtomicU64::new(0));
    let acked_bytes = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (encoded, acked, acked_bytes, refused) =
                (encoded.clone(), acked.clone(), acked_bytes.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let channel =
                    tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
                let mut client = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
                let path = http::uri::PathAndQuery::from_static(OTLP_TRACE_EXPORT_PATH);
                let mut i = c;
                while Instant::now() < deadline {
                    let r = &encoded[i % encoded.len()];
                    let (body, spans) = (r.round((i / encoded.len()) as u64), &r.spans);
                    i += connections;
                    client.ready().await.unwrap();
                    match client.unary(tonic::Request::new(body.clone()), path.clone(), PreEncoded).await {
                        Ok(_) => {
                            acked.fetch_add(*spans, Ordering::Relaxed);
                            acked_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        }
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(s) => panic!("export failed: {s}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    let rss = server.peak_rss();
    // Why requests were refused, by the server's own count.
    let metrics_url = format!("http://{}/metrics", server.query);
    let refusals: Vec<String> = rt
        .block_on(async { reqwest::get(&metrics_url).await?.text().await })
        .map(|text| {
            text.lines()
                .filter(|l| l.starts_with("rewind_collector_requests_refused_total"))
                .map(|l| l.trim_start_matches("rewind_collector_requests_refused_total").to_string())
                .collect()
        })
        .unwrap_or_default();
    server.stop();

    let spans = acked.load(Ordering::Relaxed);
    let rate = spans as f64 / elapsed;
    let mbps = acked_bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6;
    println!("\nRewind ingest: OTLP/gRPC, fsync on, {connections} connections, {traces_per_request} traces/request, {bytes_per_span:.0} B/span on the wire, {elapsed:.0} s\n");
    row("sustained ingest, spans/s", format!("{rate:.0}"), ">= 200000", Some(rate >= 200_000.0));
    row("sustained ingest, MB/s (wire)", format!("{mbps:.1}"), "", None);
    row("decode-only ceiling, spans/s (prost, 1 core)", format!("{ceiling:.0}"), "", None);
    row("ingest / ceiling", format!("{:.2}", rate / ceiling), ">= 0.35", Some(rate / ceiling >= 0.35));
    row("metered decode + convert ceiling, spans/s (1 core)", format!("{wire_ceiling:.0}"), "", None);
    row("server CPU seconds", format!("{cpu:.1}"), "", None);
    // #16's targets: about 7 us of CPU a span for 250k spans/s on two cores, and 1 GiB.
    let us_per_span = cpu * 1e6 / spans.max(1) as f64;
    row("server CPU per span, us", format!("{us_per_span:.2}"), "<= 7", Some(us_per_span <= 7.0));
    row("server peak RSS, MiB", format!("{:.0}", rss as f64 / (1 << 20) as f64), "<= 1024", Some(rss <= 1 << 30));
    row("requests refused (retryable)", refused.load(Ordering::Relaxed).to_string(), "", None);
    for r in &refusals {
        println!("    refused {r}");
    }
    if let Some(i) = &instructions {
        row("instructions per span, ingest path", format!("{:.0}", i.all), "", None);
        row("... of which metered decode, convert", format!("{:.0}", i.decode), "", None);
    }
    write_results(
        "ingest",
        &json!({
            "seconds": elapsed, "connections": connections, "traces_per_request": traces_per_request,
            "wire_bytes_per_span": bytes_per_span, "spans_per_second": rate, "mb_per_second": mbps,
            "decode_ceiling_spans_per_second": ceiling, "ratio": rate / ceiling,
            "metered_decode_convert_ceiling_spans_per_second": wire_ceiling,
            "server_cpu_seconds": cpu, "server_cpu_us_per_span": us_per_span,
            "server_peak_rss_bytes": rss, "refused": refused.load(Ordering::Relaxed),
            "instructions_per_span": instructions.as_ref().map(|i| i.all),
            "decode_instructions_per_span": instructions.as_ref().map(|i| i.decode),
        }),
    );
}

struct Instructions {
    all: f64,
    decode: f64,
}

/// Instructions per span of `bench-pipeline`: the difference between 40 and 20 requests, so
/// that start-up and the store's opening cancel out.
fn count_instructions() -> Instructions {
    let per_span = |stage: &str| {
        let (a, b) = (callgrind(stage, 20), callgrind(stage, 40));
        (b.0 - a.0) as f64 / (b.1 - a.1) as f64
    };
    Instructions { all: per_span("all"), decode: per_span("decode") }
}

/// (instructions, spans) of one `bench-pipeline` run under callgrind.
fn callgrind(stage: &str, requests: usize) -> (u64, u64) {
    let exe = std::env::current_exe().unwrap().with_file_name("bench-pipeline");
    let out = std::process::Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(&exe)
        .args(["--requests", &requests.to_string(), "--stage", stage])
        .output()
        .expect("valgrind (Debian's valgrind package) runs bench-pipeline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let collected = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count from callgrind:\n{stderr}"));
    let spans = String::from_utf8_lossy(&out.stdout).trim().parse().expect("bench-pipeline prints its spans");
    (collected, spans)
}
