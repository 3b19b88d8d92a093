//! The crash loop: continuous ingest from several clients while the server is killed (SIGKILL) or
//! stopped (SIGTERM) in random order, round after round on one data directory. After every
//! restart a checker (a read-after-write "vulture", as Tempo runs one) reads back every trace and
//! transaction ever acknowledged: none lost, none read twice.
//!
//! CI runs a short loop; `scripts/crash-loop.sh` runs a long one for the benchmark notes. Both
//! are this test, sized by `REWIND_CRASH_ROUNDS`, paced by `REWIND_CRASH_PACE_MS` (the pause of
//! each client between exports: every check reads back everything, so traffic is kept modest)
//! and seeded by `REWIND_CRASH_SEED`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use rewind_workload::Rng;
use tokio::task::JoinSet;

use crate::data::{request, trace_id};
use crate::harness::Server;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the clients were told was stored: export seed → (traces, spans per trace).
type Acked = Arc<Mutex<BTreeMap<u64, (u64, u64)>>>;

#[derive(Default, Debug)]
struct Totals {
    kills: u64,
    stops: u64,
    exports: u64,
    traces_checked: u64,
    spans_checked: u64,
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_loses_nothing_acknowledged() {
    let rounds = env_u64("REWIND_CRASH_ROUNDS", 8);
    let seed = env_u64("REWIND_CRASH_SEED", 20261130);
    let pace = Duration::from_millis(env_u64("REWIND_CRASH_PACE_MS", 30));
    println!("crash loop: {rounds} rounds, seed {seed} (REWIND_CRASH_SEED to replay)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked: Acked = Arc::default();
    let next_seed = Arc::new(AtomicU64::new(1));
    let mut totals = Totals::default();
    let started = Instant::now();
    // The first rounds take every order of the two ways down (kill after stop included: the
    // sequence that lost spans); the rest are random.
    let fixed = [false, true, true, false, false, true, true, false];
    for round in 0..rounds {
        let seal = ["100ms", "300ms", "1s", "10s"][rng.below(4) as usize];
        let server = Server::start(&data, &["--seal-interval", seal, "--xlog-grace", "500ms"]);
        check(&server, &acked, &mut totals).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for client in 0..3u64 {
            let (acked, stop, next_seed) = (acked.clone(), stop.clone(), next_seed.clone());
            let (grpc, http) = (server.grpc_endpoint(), server.traces_url());
            let mut crng = Rng::new(seed ^ (round << 8) ^ client);
            clients.spawn(async move {
                let mut grpc_client = if client < 2 {
                    Some(
                        rewind_agent_proto::TraceServiceClient::connect(format!("http://{grpc}"))
                            .await
                            .expect("connect"),
                    )
                } else {
                    None
                };
                let http_client = reqwest::Client::new();
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = next_seed.fetch_add(1, Ordering::Relaxed);
                    let (traces, spans) = (1 + crng.below(3), 2 + crng.below(8));
                    let req = request(s, traces, spans);
                    let ok = match &mut grpc_client {
                        Some(c) => match c.export(req).await {
                            Ok(r) => {
                                assert!(r.get_ref().partial_success.is_none(), "{:?}", r.get_ref());
                                true
                            }
                            Err(_) => false,
                        },
                        None => http_client
                            .post(&http)
                            .header("content-type", "application/x-protobuf")
                            .body(req.encode_to_vec())
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success()),
                    };
                    if ok {
                        acked.lock().unwrap().insert(s, (traces, spans));
                        sent += 1;
                        tokio::time::sleep(pace).await;
                    } else {
                        // Refused (overloaded, or the server is going down): not acknowledged.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                sent
            });
        }
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1200))).await;
        let kill = if (round as usize) < fixed.len() { fixed[round as usize] } else { rng.chance(0.5) };
        if kill {
            // Exports are in flight: some are acknowledged a moment before the kill.
            server.kill9();
            totals.kills += 1;
        } else {
            let status = server.terminate();
            assert!(status.success(), "round {round}: a clean stop exits cleanly: {status:?}");
            totals.stops += 1;
        }
        stop.store(true, Ordering::Relaxed);
        while let Some(sent) = clients.join_next().await {
            totals.exports += sent.unwrap();
        }
        println!(
            "round {round}: {} after {} exports acknowledged in all",
            if kill { "SIGKILL" } else { "SIGTERM" },
            acked.lock().unwrap().len()
        );
    }
    let server = Server::start(&data, &[]);
    check(&server, &acked, &mut totals).await;
    assert!(totals.exports > rounds * 10, "too little traffic to mean anything: {totals:?}");
    println!(
        "crash loop done in {:.0} s: {} SIGKILL, {} SIGTERM, {} exports; checked {} traces and {} spans in all \
         (every acknowledged one after every restart): none lost, none twice",
        started.elapsed().as_secs_f64(),
        totals.kills,
        totals.stops,
        totals.exports,
        totals.traces_checked,
        totals.spans_checked
    );
}

/// Every acknowledged trace whole, and its transaction there exactly once.
async fn check(server: &Server, acked: &Acked, totals: &mut Totals) {
    let want: Vec<(String, u64)> = acked
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(s, (traces, spans))| (0..*traces).map(move |t| (hex::encode(trace_id(*s, t)), *spans)))
        .collect();
    let base = format!("http://{}", server.query);
    let http = reqwest::Client::new();
    let mut lookups = JoinSet::new();
    for chunk in want.chunks(want.len().div_ceil(12).max(1)) {
        let (chunk, base, http) = (chunk.to_vec(), base.clone(), http.clone());
        lookups.spawn(async move {
            for (id, spans) in chunk {
                let resp = http.get(format!("{base}/api/traces/{id}")).send().await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(status, 200, "acknowledged trace {id} is missing: {body}");
                assert_eq!(body["span_count"], spans, "trace {id}");
            }
        });
    }
    while let Some(r) = lookups.join_next().await {
        if let Err(e) = r {
            panic!("{e}\nserver log:\n{}", server.log());
        }
    }
    let (status, xlog) = server.get_json("/api/xlog?from=0&to=9999999999999&limit=5000000").await;
    assert_eq!(status, 200, "{xlog}");
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for id in xlog["trace_id"].as_array().unwrap() {
        *seen.entry(id.as_str().unwrap()).or_default() += 1;
    }
    if let Some((id, n)) = seen.iter().find(|(_, n)| **n > 1) {
        panic!("transaction of trace {id} read {n} times");
    }
    for (id, _) in &want {
        assert!(seen.contains_key(id.as_str()), "the transaction of acknowledged trace {id} is missing");
    }
    totals.traces_checked += want.len() as u64;
    totals.spans_checked += want.iter().map(|(_, s)| s).sum::<u64>();
}
