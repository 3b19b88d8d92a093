//! The UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core from
//! tests/node): what it shows (the XLog scatter, a drag-selected transaction list, a trace), and
//! that stored values never run as markup or script.

use std::process::Command;

use rewind_agent_proto::otlp::common::v1::any_value;

use crate::data::{kv, request, trace_id};
use crate::harness::{export_grpc, Server};

const HOSTILE_SERVICE: &str = r#"<img src=x onerror="window.__xss='service'">"#;
const HOSTILE_NAME: &str = r#"</td><script>window.__xss='name'</script>"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_ui_shows_transactions_and_traces_without_running_stored_markup() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut req = request(90, 1, 3);
    let rs = &mut req.resource_spans[0];
    rs.resource.as_mut().unwrap().attributes[0] =
        kv("service.name", any_value::Value::StringValue(HOSTILE_SERVICE.into()));
    rs.scope_spans[0].spans[1].name = HOSTILE_NAME.into();
    export_grpc(&server, req).await;

    let screenshot = dir.path().join("ui.png");
    let out = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/ui_check.js"))
        .arg(format!("http://{}", server.query))
        .arg(hex::encode(trace_id(90, 0)))
        .arg(&screenshot)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "browser check failed (scripts/test.sh installs chromium):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["injected"]["xss"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["injected"]["images"], 0, "{seen}");
    assert_eq!(seen["injected"]["scripts"], 0, "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    let services: Vec<&str> = seen["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(services.contains(&HOSTILE_SERVICE), "the service name shows as text: {services:?}");
    assert_eq!(seen["points"], 1, "one transaction in the scatter: {seen}");
    let listed = seen["transactions"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the dragged box lists it: {seen}");
    assert_eq!(listed[0][1], HOSTILE_SERVICE, "the service shows as text: {seen}");
    assert_eq!(listed[0][7], hex::encode(trace_id(90, 0)));
    assert_eq!(seen["openedFromList"], hex::encode(trace_id(90, 0)), "a click opens the trace");
    let spans = seen["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3);
    assert!(spans.iter().any(|row| row[1] == HOSTILE_NAME), "the span name shows as text: {spans:?}");
    assert!(seen["badIdMessage"].as_str().unwrap().contains("32 hexadecimal"), "{seen}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
    if let Ok(keep) = std::env::var("REWIND_UI_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
}
