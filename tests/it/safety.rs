//! Nothing acknowledged is lost, whatever happens to the process and its disk: a clean stop
//! followed by a crash, a disk that fills up, a disk that fails, a background thread that dies.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::agents::{python, repo, run_agent};
use crate::data::{request, trace_id};
use crate::harness::Server;

/// The reproduction, with the OpenTelemetry Python SDK: 20 traces, a clean stop, 20 more
/// traces (all acknowledged), kill -9. The second 20 used to vanish: their write-ahead-log records
/// were numbered from 0 again, at or below the sequence the clean stop had sealed.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_traces_survive_a_clean_stop_followed_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let send = |server: &Server| {
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/python/sdk_export.py"))
            .args(["--protocol", "grpc", "--endpoint", &server.grpc_endpoint(), "--service", "checkout"])
            .args(["--traces", "20"]);
        run_agent(cmd)
    };
    let server = Server::start(&data, &[]);
    let mut sent = send(&server);
    assert!(server.terminate().success());
    let server = Server::start(&data, &[]);
    sent.extend(send(&server));
    server.kill9();
    let server = Server::start(&data, &[]);
    let traces: std::collections::BTreeSet<&str> = sent.iter().map(|s| s["trace_id"].as_str().unwrap()).collect();
    assert_eq!(traces.len(), 40);
    for t in &traces {
        assert_eq!(server.trace(t).await["span_count"], 3, "trace {t}");
    }
    let (_, xlog) = server.get_json("/api/xlog?from=0&to=9999999999999").await;
    let ids: Vec<&str> = xlog["trace_id"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(ids.len(), 40, "one transaction per trace, none twice");
    assert!(traces.iter().all(|t| ids.contains(t)));
}

/// A small filesystem of our own: a tmpfs mounted for the test (root only, as in CI).
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(self.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `request(seed, 20, 10)` with 1 KiB of incompressible text on every span: the shop-like test
/// data compresses so well (a few bytes a span once sealed) that it would take millions of spans
/// to fill even a small disk.
fn bulky(seed: u64) -> rewind_agent_proto::ExportTraceServiceRequest {
    let mut req = request(seed, 20, 10);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for span in req.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans) {
        let noise: String = (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        span.attributes.push(crate::data::kv("rewind.noise", crate::data::s(&noise)));
    }
    req
}

async fn readyz(server: &Server) -> (u16, String) {
    let resp = reqwest::get(server.query_url("/readyz")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A real full filesystem: exports are refused with a retryable status before RocksDB itself
/// runs out, readiness turns false, nothing acknowledged is lost, and ingest resumes on its own
/// once space is freed.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_retryably_and_ingest_resumes_once_space_is_freed() {
    let fs = match SmallFs::mount(160 << 20) {
        Some(fs) => fs,
        None if is_root() => panic!("could not mount a tmpfs as root"),
        None => {
            eprintln!("skipped: mounting a small filesystem needs root (CI runs as root)");
            return;
        }
    };
    // Too little room to open a store safely: refused, saying so, instead of RocksDB aborting.
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--query-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(fs.path().join("elsewhere"))
        .args(["--min-free-disk", "1GiB"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nearly full"), "{stderr}");

    let data = fs.path().join("data");
    let server = Server::start(&data, &["--min-free-disk", "32MiB", "--seal-interval", "200ms"]);
    // Leave about 20 MiB above the reserve.
    let filler = fs.path().join("filler");
    let fill = fs.free() - (52 << 20);
    std::fs::write(&filler, vec![7u8; fill as usize]).unwrap();
    let mut client = server.grpc_client().await;
    let mut acked = Vec::new();
    let mut refused = None;
    for seed in 0..10_000u64 {
        match client.export(bulky(1_000 + seed)).await {
            Ok(r) => {
                assert!(r.get_ref().partial_success.is_none());
                acked.push(1_000 + seed);
            }
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let status = refused.unwrap_or_else(|| panic!("the disk never filled: {} exports acknowledged", acked.len()));
    assert_eq!(status.code(), tonic::Code::Unavailable, "retryable: {status:?}");
    assert!(status.message().contains("nearly full"), "{}", status.message());
    assert!(acked.len() > 10, "{} exports before the disk filled", acked.len());
    // Readiness says so too. A seal or a compaction finishing in between may free a little,
    // which exports take until the disk is full again.
    let mut ready = readyz(&server).await;
    for seed in 0..1_000u64 {
        if ready.0 == 503 {
            break;
        }
        if client.export(bulky(80_000 + seed)).await.is_ok() {
            acked.push(80_000 + seed);
        }
        ready = readyz(&server).await;
    }
    let (code, body) = ready;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("nearly full"), "{body}");
    // Still answering queries, and refusing while the disk stays full. A seal or a compaction
    // that finishes may free a little, which is taken: the refusal comes back as it fills again.
    assert_eq!(server.trace(&hex::encode(trace_id(acked[0], 0))).await["span_count"], 10);
    let mut again = None;
    for seed in 0..1_000u64 {
        match client.export(bulky(90_000 + seed)).await {
            Ok(_) => acked.push(90_000 + seed),
            Err(status) => {
                again = Some(status.code());
                break;
            }
        }
    }
    assert_eq!(again, Some(tonic::Code::Unavailable), "refused again as the disk stays full");

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&server).await.0 != 200 {
        assert!(Instant::now() < deadline, "readiness did not come back once space was freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = 500_000u64;
    client.export(request(after, 5, 5)).await.expect("ingest resumes");
    acked.push(after);

    server.kill9();
    let server = Server::start(&data, &["--min-free-disk", "32MiB"]);
    for seed in &acked {
        let t = server.trace(&hex::encode(trace_id(*seed, 0))).await;
        assert!(t["span_count"].as_u64().unwrap() >= 5, "export {seed}");
    }
}

#[cfg(feature = "failpoints")]
mod injected {
    use super::*;
    use serde_json::Value as J;

    fn start_with(data: &std::path::Path, failpoints: &str) -> Server {
        Server::start_env(data, &["--seal-interval", "200ms"], &[("REWIND_FAILPOINTS", failpoints)])
    }

    /// A disk that fails writes: refused retryably, not ready, and back to normal by itself.
    #[tokio::test(flavor = "multi_thread")]
    async fn failing_writes_are_refused_retryably_and_the_server_recovers_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server = start_with(&data, "wal-write=error*3");
        let mut client = server.grpc_client().await;
        let err = client.export(request(1, 1, 3)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        assert!(err.message().contains("injected"), "{}", err.message());
        let (code, body) = readyz(&server).await;
        assert_eq!(code, 503, "{body}");
        // No traffic needed: the maintenance thread's probe finds the disk writable again.
        let deadline = Instant::now() + Duration::from_secs(20);
        while readyz(&server).await.0 != 200 {
            assert!(Instant::now() < deadline, "never ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.export(request(2, 1, 3)).await.expect("writes work again");
        server.kill9();
        let server = Server::start(&data, &[]);
        assert_eq!(server.trace(&hex::encode(trace_id(2, 0))).await["span_count"], 3);
        assert_eq!(server.get_json(&format!("/api/traces/{}", hex::encode(trace_id(1, 0)))).await.0, 404);
    }

    /// A background thread that dies takes the process down with a non-zero exit, rather than
    /// leaving it up, "ready" and refusing every export; what was acknowledged is recovered.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_background_thread_exits_the_process_and_nothing_acknowledged_is_lost() {
        for site in ["seal-helper", "maintenance-thread", "writer-thread"] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            // The seal helper and maintenance die at their first job or tick; the writer at its
            // first write, so an export is acknowledged only where the writer survives.
            let mut server = start_with(&data, &format!("{site}=panic"));
            let mut client = server.grpc_client().await;
            let acked = client.export(request(7, 1, 4)).await.is_ok();
            if site == "writer-thread" {
                assert!(!acked, "the writer died before writing");
            }
            let status = server.wait_exit(Duration::from_secs(20)).unwrap_or_else(|| panic!("{site}: still running"));
            assert_eq!(status.code(), Some(70), "{site}: {status:?}\n{}", server.log());
            assert!(server.log().contains("thread died"), "{site}");
            drop(server);
            let server = Server::start(&data, &[]);
            let (code, body) = server.get_json(&format!("/api/traces/{}", hex::encode(trace_id(7, 0)))).await;
            if acked {
                assert_eq!((code, body["span_count"].clone()), (200, J::from(4)), "{site}");
            }
        }
    }
}
