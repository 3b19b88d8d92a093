//! The query API's OpenAPI description, checked against a live server by schemathesis (a
//! property-based API tester from PyPI): over shop traffic with an incident in it, every
//! operation is called with generated parameters (values from the stored data mixed in, so that
//! answers carry data), and no answer may be a 5xx, a status the description does not list, or a
//! body or header that does not match its schema; requests the description calls invalid must be
//! refused, and requests without the token answered 401. Then the description is validated
//! against the OpenAPI 3.1 specification, and each operation is called over the data and its
//! answer held to the description (`tests/python/openapi_cases.py`).

use std::process::Command;

use rewind_workload::{Incident, Shop, ShopConfig};
use serde_json::{json, Value as J};

use crate::agents::{python, repo};
use crate::harness::{export_grpc, Server};

const TOKEN: &str = "oa-secret";
const MINUTE: u64 = 60_000_000_000;
/// Generated cases per operation and phase: enough to reach each operation's branches, few
/// enough to keep the run within a minute on the CI machine.
const MAX_EXAMPLES: &str = "80";

async fn get(server: &Server, path: &str) -> J {
    let resp = reqwest::Client::new().get(server.query_url(path)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_the_api_true_to_its_description() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--query-token", TOKEN, "--link-wait", "1s"]);
    let now = rewind_storage::now_ns();
    let start = now - 25 * MINUTE;
    let incident = Incident {
        start_ns: now - 8 * MINUTE,
        end_ns: now - 5 * MINUTE,
        dependency: rewind_workload::Dependency::Mysql,
        slowdown: 8.0,
        error_share: 0.2,
    };
    let mut shop = Shop::new(ShopConfig { seed: 17, incident: Some(incident) });
    // 25 minutes of traffic, 2 traces a second: the incident has ten minutes of baseline before it.
    for minute in 0..25 {
        export_grpc(&server, shop.request(120, start + minute * MINUTE, 500_000_000)).await;
    }

    // The description is served without the token, and is OpenAPI 3.1 with every operation.
    let spec: J = reqwest::get(server.query_url("/api/openapi.json")).await.unwrap().json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["paths"].as_object().unwrap().len(), 11, "{}", spec["paths"]);

    // Values from the data: times across it, its services, some of its traces.
    let now_ms = now / 1_000_000;
    let mut times: Vec<String> =
        [25u64, 15, 9, 8, 6, 5, 3, 1, 0].iter().map(|m| (now_ms - m * 60_000).to_string()).collect();
    times.push(format!("{}.25", now_ms - 7 * 60_000));
    let services = get(&server, "/api/services").await;
    let services: Vec<String> =
        services["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect();
    assert!(services.len() >= 8, "{services:?}");
    let list =
        get(&server, &format!("/api/transactions?from={}&to={now_ms}&limit=20&error=true", now_ms - 25 * 60_000)).await;
    let traces: Vec<String> =
        list["transactions"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap().to_owned()).collect();
    assert!(!traces.is_empty(), "the incident's failed transactions: {list}");

    let mut config = format!(
        "[dictionaries]\ntimes = {{ values = {} }}\nservices = {{ values = {} }}\ntraces = {{ values = {} }}\n\n\
         [parameters]\n",
        toml_list(&times),
        toml_list(&services),
        toml_list(&traces)
    );
    for (params, dictionary, probability) in [
        (&["from", "to", "a_from", "a_to", "b_from", "b_to"][..], "times", 0.8),
        (&["service", "source", "target"][..], "services", 0.5),
        (&["trace_id"][..], "traces", 0.8),
    ] {
        for p in params {
            config += &format!("{p} = {{ dictionary = \"{dictionary}\", probability = {probability} }}\n");
        }
    }
    // A query text past the limit is 413 (the request is too large), and a URI past 64 KiB 414,
    // not 400.
    config += "\n[checks.negative_data_rejection]\nexpected-statuses = [\"400\", \"401\", \"404\", \"413\", \"414\"]\n";
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, &config).unwrap();

    let schemathesis = std::path::Path::new(&python()).with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &server.query_url("/api/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        // Every check but one: schema-valid requests may still be refused, as a range whose
        // `to` is before its `from` is (a rule between parameters a schema cannot state).
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "1", "--workers", "1", "--no-color"])
        .args(["--request-timeout", "30"])
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis (scripts/test.sh installs it in the venv)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found the API differing from its description:\n{report}\n{}\nconfig:\n{config}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(report.contains("11 selected / 11 total"), "{report}");

    // And answers that carry data, which fuzzing reaches only by chance: each operation over the
    // traffic, held to the description the same way.
    let map = get(&server, &format!("/api/servermap?from={}&to={now_ms}", now_ms - 25 * 60_000)).await;
    assert!(map["nodes"].as_array().unwrap().len() >= 8, "{map}");
    let link = &map["links"].as_array().unwrap().iter().find(|l| l["target"] == "mysql").expect("a link to mysql");
    let window = json!({"from": (now_ms - 25 * 60_000).to_string(), "to": now_ms.to_string()});
    let with = |extra: J| {
        let mut q = window.clone();
        q.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        q
    };
    let trace = json!({"trace_id": traces[0]});
    let cases = json!([
        {"path": "/api/services"},
        {"path": "/api/traces/{trace_id}", "path_parameters": trace},
        {"path": "/api/traces/{trace_id}/calltree", "path_parameters": trace, "query": {"limit": 5}},
        {"path": "/api/servermap", "query": with(json!({"instances": "true"}))},
        {"path": "/api/servermap", "query": with(json!({"service": "checkout", "in_depth": 2, "out_depth": 2}))},
        {"path": "/api/histogram", "query": with(json!({"service": "checkout", "slow_ms": 200}))},
        {"path": "/api/histogram", "query": with(json!({"source": link["source"], "target": "mysql", "step": 60000}))},
        {"path": "/api/replay", "query": window},
        {"path": "/api/replay", "query": with(json!({"service": "checkout", "step": 10000}))},
        {"path": "/api/incidents", "query": with(json!({"baseline": 600000}))},
        {"path": "/api/compare", "query": {
            "a_from": (now_ms - 25 * 60_000).to_string(), "a_to": (now_ms - 8 * 60_000).to_string(),
            "b_from": (now_ms - 8 * 60_000).to_string(), "b_to": (now_ms - 5 * 60_000).to_string()}},
        {"path": "/api/xlog", "query": window},
        {"path": "/api/xlog", "query": with(json!({"error": "true", "service": "frontend", "limit": 100}))},
        {"path": "/api/transactions", "query": with(json!({"limit": 50}))},
        {"method": "POST", "path": "/api/sql", "body": {"sql": "SELECT service, count(*) AS spans, max(start) AS last, \
            max(duration_ms) AS slowest FROM spans GROUP BY service"}},
        {"method": "POST", "path": "/api/sql", "body": {"sql": "SELECT trace_id, attributes, resource FROM spans LIMIT 3"}},
    ]);
    let out = Command::new(python())
        .arg(repo().join("tests/python/openapi_cases.py"))
        .args([&server.query_url(""), TOKEN, &cases.to_string()])
        .output()
        .expect("run openapi_cases.py");
    assert!(out.status.success(), "{}\nserver log:\n{}", String::from_utf8_lossy(&out.stderr), server.log());
    let answers: J = serde_json::from_slice(&out.stdout).unwrap();
    for a in answers.as_array().unwrap() {
        assert_eq!(a["status"], 200, "{answers}");
        assert!(a["bytes"].as_u64().unwrap() > 100, "an answer with data: {a}");
    }
    assert_eq!(answers.as_array().unwrap().len(), cases.as_array().unwrap().len());
}
