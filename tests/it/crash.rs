//! Nothing acknowledged is lost: SIGKILL the server while exports are in flight, restart it, and
//! every span whose export was acknowledged is there, and so is the XLog record of its trace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::data::{request, trace_id};
use crate::harness::Server;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_spans_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Seal often, so the crash lands among sealed segments and unsealed WAL records alike.
    let server = Server::start(&data, &["--seal-interval", "300ms"]);
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..4u64 {
        let (acked, stop) = (acked.clone(), stop.clone());
        let mut client = server.grpc_client().await;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let seed = 10_000 + worker * 100_000 + n;
                match client.export(request(seed, 1, 8)).await {
                    Ok(r) if r.get_ref().partial_success.is_none() => acked.lock().unwrap().push(seed),
                    Ok(r) => panic!("unexpected partial success {:?}", r.into_inner()),
                    Err(_) => break, // the server is gone
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Kill while the workers are still sending: some exports are mid-flight.
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} exports acknowledged before the kill", acked.len());

    let server = Server::start(&data, &["--link-wait", "1s"]);
    for seed in &acked {
        let body = server.trace(&hex::encode(trace_id(*seed, 0))).await;
        assert_eq!(body["span_count"], 8, "trace of export {seed}");
    }
    // Each trace has one entry span (its root): one transaction, whether its record was sealed,
    // final but unsealed, or still waiting for children when the process died.
    let (status, xlog) = server.get_json(&format!("/api/xlog?from=0&to={}", u64::MAX / 2_000_000)).await;
    assert_eq!(status, 200, "{xlog}");
    let ids: std::collections::HashSet<&str> =
        xlog["trace_id"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(ids.len(), xlog["trace_id"].as_array().unwrap().len(), "no transaction twice");
    for seed in &acked {
        assert!(ids.contains(hex::encode(trace_id(*seed, 0)).as_str()), "the transaction of export {seed}");
    }
    // The server map counts each of those transactions once, and each one's 7 queries: from
    // statistics sealed before the kill, or derived again from the write-ahead log after it.
    let transactions = ids.len() as u64;
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, map) = server.get_json(&format!("/api/servermap?from=0&to={}", u64::MAX / 2_000_000)).await;
        assert_eq!(status, 200, "{map}");
        let sum = |target: &str| -> u64 {
            map["links"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["target"] == target || l["source"] == target)
                .map(|l| l["count"].as_u64().unwrap())
                .sum()
        };
        let (user, queries) = (sum("USER"), sum("mysql"));
        assert!(user <= transactions && queries <= 7 * transactions, "counted twice: {map}");
        if (user, queries) == (transactions, 7 * transactions) {
            return;
        }
        last = map;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{transactions} transactions, and the map says {last}");
}
