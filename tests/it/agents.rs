//! The agents our users run: the OpenTelemetry Python SDK (OTLP/gRPC, OTLP/HTTP protobuf and
//! OTLP/HTTP JSON exporters) and the OpenTelemetry Node SDK (OTLP/HTTP JSON exporter). Each script exports a known
//! trace and prints what it sent; every field must come back from the query API.
//!
//! Needs the Python packages of tests/python/requirements.txt and `npm ci` in tests/node:
//! scripts/test.sh installs both. `REWIND_TEST_PYTHON` names the interpreter.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value as J};

use crate::harness::Server;

/// The repository's root: `cargo test` runs the tests there. (Not `env!("CARGO_MANIFEST_DIR")`:
/// a test binary built from another checkout sharing cargo's target directory keeps that path.)
pub fn repo() -> PathBuf {
    std::env::current_dir().expect("the working directory")
}

pub fn python() -> String {
    std::env::var("REWIND_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = std::env::var("HOME").map(|h| format!("{h}/.cache/rewind-venv/bin/python")).unwrap_or_default();
        if std::path::Path::new(&venv).exists() {
            venv
        } else {
            "python3".into()
        }
    })
}

pub fn run_agent(mut cmd: Command) -> Vec<J> {
    let out = cmd.output().expect("agent script runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n(scripts/test.sh installs the agents' packages)",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints the spans it sent")
}

/// The SDKs' own view of each span against the query API's.
async fn assert_agent_spans(server: &Server, sent: &[J]) {
    assert!(!sent.is_empty());
    for want in sent {
        let body = server.trace(want["trace_id"].as_str().unwrap()).await;
        let got = body["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["span_id"] == want["span_id"])
            .unwrap_or_else(|| panic!("span {} not stored", want["span_id"]));
        for field in
            ["trace_id", "span_id", "parent_span_id", "name", "kind", "start_unix_nano", "end_unix_nano", "attributes"]
        {
            assert_eq!(got[field], want[field], "{field} of {}", want["name"]);
        }
        assert_eq!(got["status"]["code"], want["status_code"], "status of {}", want["name"]);
        assert_eq!(got["status"]["message"], want["status_message"], "status message of {}", want["name"]);
        assert_eq!(got["resource"]["attributes"], want["resource"], "resource of {}", want["name"]);
        assert_eq!(got["scope"], want["scope"], "scope of {}", want["name"]);
        let events: Vec<J> = got["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| json!({"name": e["name"], "time_unix_nano": e["time_unix_nano"], "attributes": e["attributes"]}))
            .collect();
        assert_eq!(J::Array(events), want["events"], "events of {}", want["name"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_grpc_http_protobuf_and_http_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let script = repo().join("tests/python/sdk_export.py");
    for (protocol, endpoint, service) in [
        ("grpc", server.grpc_endpoint(), "py-grpc"),
        ("http", server.http_endpoint(), "py-http"),
        ("http-json", server.http_endpoint(), "py-json"),
    ] {
        let mut cmd = Command::new(python());
        cmd.arg(&script).args(["--protocol", protocol, "--endpoint", &endpoint, "--service", service]);
        let sent = run_agent(cmd);
        assert_eq!(sent.len(), 3, "{protocol}");
        assert_agent_spans(&server, &sent).await;
        let error_span = sent.iter().find(|s| s["name"] == "charge").unwrap();
        assert_eq!(error_span["status_code"], 2);
        assert_eq!(error_span["events"][0]["name"], "exception");
    }
    let (_, services) = server.get_json("/api/services").await;
    let names: Vec<&str> =
        services["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(server.metric("rewind_collector_spans_accepted_total{transport=\"http_json\"}").await, 3.0);
    for n in ["py-grpc", "py-http", "py-json", "mysql", "USER"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_sdk_over_http_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/node/export.js")).args([server.http_endpoint().as_str(), "node-cart"]);
    let sent = run_agent(cmd);
    assert_eq!(sent.len(), 2);
    assert_agent_spans(&server, &sent).await;
    assert_eq!(server.metric("rewind_collector_spans_accepted_total{transport=\"http_json\"}").await, 2.0);
}
