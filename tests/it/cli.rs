//! Start-up failures end the process with a message that says what to fix.

use std::process::Command;

fn serve(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("serve")
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--query-listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_settings_and_foreign_directories_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = serve(&["--data-dir", dir.path().to_str().unwrap(), "--retention", "5parsecs"]);
    assert!(!ok);
    assert!(err.contains("retention") && err.contains("unknown unit"), "{err}");

    let (ok, err) = serve(&["--data-dir", dir.path().to_str().unwrap(), "--queue-bytes", "1KiB"]);
    assert!(!ok);
    assert!(err.contains("queue-bytes"), "{err}");

    std::fs::write(dir.path().join("thesis.tex"), "mine").unwrap();
    let (ok, err) = serve(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a rewind store"), "{err}");

    let env_file = dir.path().join("bad.toml");
    std::fs::write(&env_file, "seal_rows = \"many\"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rewind")).arg("serve").env("REWIND_CONFIG", &env_file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seal_rows"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A second server on a directory a running one holds: refused, naming the cause and the way
/// out, where RocksDB alone says "Resource temporarily unavailable".
#[test]
fn a_data_directory_in_use_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _running = crate::harness::Server::start(&data, &[]);
    let (ok, err) = serve(&["--data-dir", data.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("open in another process") && err.contains("--data-dir"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_backfills_writes_and_replays_the_shop_workload() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::harness::Server::start(&dir.path().join("data"), &[]);
    let endpoint = format!("http://{}", server.grpc);
    let loadgen = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .arg("loadgen")
            .args(["--endpoint", &endpoint])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = loadgen(&[
        "--backfill",
        "1m",
        "--rate",
        "2000",
        "--duration",
        "0s",
        "--incident",
        "dependency=redis,start=-30s,duration=10s,slowdown=5,errors=0.5",
    ]);
    assert!(out.contains("backfilled"), "{out}");
    let accepted = server.metric("rewind_collector_spans_accepted_total").await;
    assert!(accepted > 100_000.0, "{accepted} spans from a minute at 2000/s");

    let file = dir.path().join("requests.bin");
    let out = loadgen(&["--write", file.to_str().unwrap(), "--requests", "20"]);
    assert!(out.contains("wrote 20 requests"), "{out}");
    let out = loadgen(&["--replay", file.to_str().unwrap(), "--duration", "2s", "--connections", "2"]);
    assert!(out.contains("replayed"), "{out}");
    assert!(server.metric("rewind_collector_spans_accepted_total").await > accepted);

    let (_, body) = server.get_json("/api/services").await;
    let kinds: std::collections::BTreeMap<String, String> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["kind"].as_str().unwrap().to_string()))
        .collect();
    for (name, kind) in [
        ("frontend", "server"),
        ("shipping", "server"),
        ("mysql", "database"),
        ("redis", "cache"),
        ("payment", "external"),
        ("orders", "queue"),
        ("USER", "user"),
    ] {
        assert_eq!(kinds.get(name).map(String::as_str), Some(kind), "{name} in {kinds:?}");
    }
}
