//! The UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core from
//! tests/node): every view against the shop workload with an injected incident, judged against
//! the query API's own answers; and stored values that look like markup shown as text.

use std::path::PathBuf;
use std::process::Command;

use rewind_agent_proto::otlp::common::v1::any_value;
use serde_json::{json, Value as J};

use crate::data::{kv, request, trace_id};
use crate::harness::{export_grpc, Server};
use crate::replay::{backfill_with_incident, settle};
use crate::xlog::now_ms;

const MIN: u64 = 60_000;
const HOSTILE_SERVICE: &str = r#"<img src=x onerror="window.__xss='service'">"#;
const HOSTILE_NAME: &str = r#"</td><script>window.__xss='name'</script>"#;

/// Where the views' screenshots go: `$REWIND_UI_SCREENSHOTS`, or `ui-screenshots/` in cargo's
/// target directory (named in the README).
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("REWIND_UI_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_rewind"));
        bin.parent().and_then(|p| p.parent()).expect("target/<profile>/rewind").join("ui-screenshots")
    });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn node(script: &str, args: &[&str]) -> J {
    let out = Command::new("node").arg(format!("tests/node/{script}")).args(args).output().expect("node runs");
    assert!(
        out.status.success(),
        "browser check failed (scripts/test.sh installs chromium):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strs(v: &J) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_view_shows_the_shop_and_its_incident() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let start = backfill_with_incident(&server, 60);
    let (from, to) = (start - 46 * MIN, now_ms() + MIN);
    settle(&server, from).await;
    // The browser's figures are compared with the API's: nothing may still be arriving. A call to
    // an uninstrumented peer waits up to --link-wait (10 s) before it counts, so the map must hold
    // still for longer than that.
    let mut last = J::Null;
    let mut still_since = std::time::Instant::now();
    let deadline = still_since + std::time::Duration::from_secs(180);
    while still_since.elapsed() < std::time::Duration::from_secs(12) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (_, map) = server.get_json(&format!("/api/servermap?from={from}&to={to}")).await;
        if map["links"] != last["links"] {
            last = map;
            still_since = std::time::Instant::now();
        }
    }
    let (_, found) = server.get_json(&format!("/api/incidents?from={from}&to={to}")).await;
    let incident = &found["incidents"][0];
    let (i_from, i_to) = (incident["start_ms"].as_u64().unwrap(), incident["end_ms"].as_u64().unwrap());

    let shots = screenshot_dir();
    let cfg = json!({"from": from, "to": to, "incidentStart": i_from, "incidentEnd": i_to}).to_string();
    let seen = node("ui_tour.js", &[&format!("http://{}", server.query), &cfg, shots.to_str().unwrap()]);
    assert_eq!(seen["errors"], json!([]), "no errors on any page: {seen:#}");

    // The map: the shop's nodes with their kinds, and each link labelled with the API's count.
    let (_, map) = server.get_json(&format!("/api/servermap?from={from}&to={to}")).await;
    let mut kinds: Vec<(String, String)> = seen["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_owned(), n["kind"].as_str().unwrap().to_owned()))
        .collect();
    kinds.sort();
    let expect: Vec<(String, String)> = [
        ("USER", "user"),
        ("cart", "server"),
        ("catalog", "server"),
        ("checkout", "server"),
        ("frontend", "server"),
        ("mysql", "database"),
        ("orders", "queue"),
        ("payment", "external"),
        ("redis", "cache"),
        ("shipping", "server"),
    ]
    .iter()
    .map(|(n, k)| (n.to_string(), k.to_string()))
    .collect();
    assert_eq!(kinds, expect);
    let links = seen["links"].as_array().unwrap();
    assert_eq!(links.len(), map["links"].as_array().unwrap().len(), "{seen:#}");
    for l in map["links"].as_array().unwrap() {
        let shown = links.iter().find(|s| s["source"] == l["source"] && s["target"] == l["target"]).unwrap();
        let count = l["count"].as_u64().unwrap();
        assert_eq!(shown["count"].as_u64(), Some(count), "{l}");
        let label = shown["label"].as_str().unwrap();
        assert!(label.starts_with(&format_count(count)), "the link's label shows its count: {label} vs {count}");
    }

    // The time slider: one step of the range on the map, then the whole range again.
    let total: u64 = links.iter().map(|l| l["count"].as_u64().unwrap()).sum();
    let step = seen["slider"]["calls"].as_u64().unwrap();
    assert!(step > 0 && step < total / 20, "a step of a 120th of the range: {step} of {total}");
    assert_eq!(seen["slider"]["wholeCalls"].as_u64(), Some(total));

    // A click on a link: its histogram, and the XLog narrowed to the callee's transactions.
    assert_eq!(seen["linkSelected"], "frontend → catalog");
    let (_, h) = server.get_json(&format!("/api/histogram?from={from}&to={to}&source=frontend&target=catalog")).await;
    assert_eq!(seen["histogramCount"], h["count"], "{seen:#}");
    assert_eq!(seen["linkServices"], "catalog");
    let (all, narrowed) = (seen["allPoints"].as_u64().unwrap(), seen["linkPoints"].as_u64().unwrap());
    assert!(narrowed > 1000 && narrowed < all, "{narrowed} of {all}");
    assert!(!seen["pods"].as_array().unwrap().is_empty(), "per-pod rows: {seen:#}");

    // The dragged box lists catalog's transactions with the brief's columns, sortable.
    assert_eq!(
        strs(&seen["listHead"]),
        [
            "start",
            "service",
            "endpoint",
            "elapsed ms",
            "SQL ms",
            "API ms",
            "error",
            "client IP",
            "user",
            "trace id",
            "instance"
        ]
    );
    let listed = seen["listed"].as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|r| r[1] == "catalog"), "{listed:?}");
    let sorted: Vec<f64> = seen["sortedAsc"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "sorted by elapsed: {sorted:?}");
    assert_eq!(seen["reopened"]["title"], "frontend → catalog", "the copied URL reopens the view");
    assert_eq!(seen["reopened"]["services"], "catalog");
    assert_eq!(seen["reopened"]["listed"].as_u64(), Some(listed.len() as u64));

    // A row opens its call stack: as many rows as the API's call tree, each span on the timeline.
    let id = seen["traceId"].as_str().unwrap();
    assert!(listed.iter().any(|r| r[9] == id));
    let (_, tree) = server.get_json(&format!("/api/traces/{id}/calltree?limit=20000")).await;
    assert_eq!(seen["callRows"], tree["total_rows"], "{seen:#}");
    assert_eq!(seen["ganttRows"], tree["span_count"]);
    assert_eq!(seen["visibleAfterCollapse"], 1, "collapsing the root hides the rest");
    assert!(seen["spanDetails"].as_str().unwrap().contains(": "), "{seen:#}");

    // The replay: the keyboard steps second by second; the links to MySQL turn from healthy to
    // failing as the cursor enters the incident.
    let inc = &seen["incidents"];
    assert!(strs(inc).iter().any(|r| r.starts_with("mysql: p99")), "{inc}");
    let (s0, s1) = (&seen["replayStart"], &seen["replayStep"]);
    let frame = |s: &J| s["frame"].as_u64().unwrap();
    let time = |s: &J| s["time"].as_u64().unwrap();
    assert_eq!(time(s0), (i_from - 20_000) / 1000 * 1000, "the URL's position: {s0}");
    assert_eq!((frame(s1), time(s1)), (frame(s0) + 1, time(s0) + 1000), "→ steps a second");
    let (s31, s30) = (&seen["replayIncident"], &seen["replayBack"]);
    assert_eq!(frame(s31), frame(s0) + 31, "shift+→ steps ten");
    assert_eq!(frame(s30), frame(s0) + 30, "← steps back");
    assert!(strs(&s0["mysql"]).iter().all(|s| *s == "ok" || *s == "idle"), "before the incident: {s0}");
    assert!(strs(&s31["mysql"]).contains(&"error"), "inside the incident: {s31}");
    assert_ne!(s0["colors"], s31["colors"], "the map's colours change");
    assert_eq!(seen["replayClickSpace"], "", "play clicked, then space pauses");
    let played = &seen["replayPlayed"];
    assert!(frame(played) > frame(s30), "space plays: {played}");
    assert_eq!(seen["replayReopened"].as_u64(), Some(time(played)), "the URL keeps the position");
    // The comparison ranks what changed most and names MySQL as what explains it.
    let changes = seen["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c[0] == "mysql" && c[1] == "changed"), "{changes:?}");
    let top = &changes[0];
    assert!(top[0].as_str().unwrap().contains("mysql") || top[2].as_str().unwrap().contains("mysql"), "{changes:?}");

    // The SQL console: the API's answer as a table; a refused statement shown as an error.
    let sql = "SELECT service, count(*) AS transactions FROM xlog GROUP BY service ORDER BY service";
    let answer: J = reqwest::Client::new()
        .post(server.query_url("/api/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expect: Vec<Vec<String>> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_str().map_or(v.to_string(), str::to_owned)).collect())
        .collect();
    let shown: Vec<Vec<String>> = serde_json::from_value(seen["sqlRows"].clone()).unwrap();
    assert_eq!(shown, expect);
    assert!(seen["sqlError"].as_str().unwrap().starts_with("sql_read_only"), "{seen:#}");
    assert_eq!(seen["sqlReopened"].as_u64(), Some(shown.len() as u64));

    for view in ["map", "xlog", "trace", "replay", "compare", "sql"] {
        let png = shots.join(format!("{view}.png"));
        assert!(std::fs::metadata(&png).map(|m| m.len() > 10_000).unwrap_or(false), "{}", png.display());
    }
}

fn format_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_markup_is_shown_as_text_in_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let mut req = request(90, 1, 3);
    let rs = &mut req.resource_spans[0];
    rs.resource.as_mut().unwrap().attributes[0] =
        kv("service.name", any_value::Value::StringValue(HOSTILE_SERVICE.into()));
    rs.scope_spans[0].spans[1].name = HOSTILE_NAME.into();
    export_grpc(&server, req).await;
    // The map counts a transaction once its trace is derived (after the XLog's grace).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, map) =
            server.get_json(&format!("/api/servermap?from={}&to={}", now_ms() - 60 * MIN, now_ms() + MIN)).await;
        if !map["nodes"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let screenshot = dir.path().join("ui.png");
    let seen = node(
        "ui_check.js",
        &[&format!("http://{}", server.query), &hex::encode(trace_id(90, 0)), screenshot.to_str().unwrap()],
    );
    assert_eq!(seen["injected"]["xss"], J::Null, "{seen}");
    assert_eq!(seen["injected"]["images"], 0, "{seen}");
    assert_eq!(seen["injected"]["scripts"], 0, "{seen}");
    assert_eq!(seen["errors"], json!([]), "{seen}");
    assert!(strs(&seen["nodes"]).contains(&HOSTILE_SERVICE), "the map names the service as text: {seen}");
    assert_eq!(seen["points"], 1, "one transaction in the scatter: {seen}");
    let listed = seen["transactions"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "the dragged box lists it: {seen}");
    assert_eq!(listed[0][1], HOSTILE_SERVICE, "the service shows as text: {seen}");
    assert_eq!(listed[0][9], hex::encode(trace_id(90, 0)));
    assert_eq!(seen["openedFromList"], hex::encode(trace_id(90, 0)), "a click opens the trace");
    let rows = seen["callRows"].as_array().unwrap();
    let (_, tree) = server.get_json(&format!("/api/traces/{}/calltree", hex::encode(trace_id(90, 0)))).await;
    assert_eq!(Some(rows.len() as u64), tree["total_rows"].as_u64());
    assert!(
        rows.iter().any(|name| name.as_str().unwrap().ends_with(HOSTILE_NAME)),
        "the span name shows as text: {rows:?}"
    );
    assert!(seen["badIdMessage"].as_str().unwrap().contains("32 hexadecimal"), "{seen}");
    assert!(strs(&seen["sqlServices"]).contains(&HOSTILE_SERVICE), "SQL results as text: {seen}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_query_token_the_ui_asks_for_it_and_keeps_it_for_the_tab() {
    const TOKEN: &str = "s3cret-query-token";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--query-token", TOKEN]);
    export_grpc(&server, request(91, 1, 3)).await;
    // The map counts the trace once it is derived; asked with the token, as the page will.
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let url = server.query_url(&format!("/api/servermap?from={}&to={}", now_ms() - 60 * MIN, now_ms() + MIN));
        let map: J = client.get(url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        if !map["nodes"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let seen = node("ui_token.js", &[&format!("http://{}", server.query), TOKEN]);
    assert_eq!(seen["errors"], json!([]), "{seen:#}");
    assert!(seen["firstPrompt"].as_str().unwrap().contains("--query-token"), "{seen:#}");
    assert!(seen["refusedPrompt"].as_str().unwrap().contains("refused"), "{seen:#}");
    assert!(!seen["nodes"].as_array().unwrap().is_empty(), "the map loads with the token: {seen:#}");
    assert_eq!(seen["promptsLeft"], 0);
    assert_eq!(seen["promptAfterReload"], 0, "kept for the tab: {seen:#}");
    assert!(!seen["url"].as_str().unwrap().contains(TOKEN), "{seen:#}");
    assert_eq!(seen["localStorage"], 0);
    assert_eq!(seen["newTabPrompt"], true);
}
