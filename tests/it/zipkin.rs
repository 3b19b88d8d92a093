//! Zipkin v2 ingest: py_zipkin (a Zipkin client library from PyPI, v2 JSON and v2 protobuf over
//! HTTP) sends a trace to `POST /api/v2/spans` on the OTLP/HTTP port; shared client/server spans, and what a
//! bad request is answered.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value as J};

use crate::agents::{python, repo};
use crate::harness::Server;

async fn trace_with(server: &Server, id: &str, spans: usize) -> J {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.get_json(&format!("/api/traces/{id}")).await;
        if status == 200 && body["spans"].as_array().unwrap().len() >= spans || Instant::now() > deadline {
            assert_eq!(status, 200, "trace {id}: {body}\nserver log:\n{}", server.log());
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn named<'a>(trace: &'a J, name: &str) -> &'a J {
    trace["spans"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {trace}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn py_zipkin_sends_a_trace_over_v2_json_and_v2_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let (host, port) = server.http_endpoint().rsplit_once(':').map(|(h, p)| (h.to_owned(), p.to_owned())).unwrap();
    for (encoding, transport) in [("json", "zipkin_json"), ("proto", "zipkin_protobuf")] {
        let out = Command::new(python())
            .arg(repo().join("tests/python/zipkin_export.py"))
            .args([&host, &port, encoding])
            .output()
            .expect("run py_zipkin (scripts/test.sh installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("Error emitting"), "{encoding}: {stderr}");
        let sent: J = serde_json::from_slice(&out.stdout).unwrap();
        let id = sent["trace_id"].as_str().unwrap();
        let trace = trace_with(&server, id, 3).await;

        let root = named(&trace, "get /checkout");
        assert_eq!((root["span_id"].as_str(), &root["parent_span_id"]), (sent["root_span_id"].as_str(), &J::Null));
        assert_eq!((&root["service"], &root["kind_name"]), (&json!("zk-frontend"), &json!("server")));
        assert_eq!(root["attributes"]["http.route"], "/checkout");
        assert_eq!(root["events"][0]["name"], "cache miss");
        assert_eq!(root["resource"]["attributes"]["service.name"], "zk-frontend");
        let db = named(&trace, "select cart");
        assert_eq!((&db["kind_name"], &db["parent_span_id"]), (&json!("client"), &root["span_id"]));
        assert_eq!(db["attributes"]["peer.service"], "mysql");
        assert_eq!(db["attributes"]["network.peer.address"], "10.1.2.3", "{encoding}");
        assert_eq!(db["attributes"]["network.peer.port"], 3306);
        let pay = named(&trace, "charge");
        assert_eq!(pay["status"], json!({"code": 2, "name": "error", "message": "card declined"}));
        assert!(pay["attributes"].get("error").is_none(), "the error tag is the status");
        // Times in microseconds, as py_zipkin measured them, become nanoseconds.
        let start: u64 = root["start_unix_nano"].as_str().unwrap().parse().unwrap();
        assert!(start % 1_000 == 0 && start > 1_600_000_000_000_000_000);
        let accepted = format!("rewind_collector_spans_accepted_total{{transport=\"{transport}\"}}");
        assert_eq!(server.metric(&accepted).await, 3.0, "{encoding}");
    }

    // The server map sees the Zipkin service and its database like any other.
    let (_, services) = server.get_json("/jaeger/api/services").await;
    assert_eq!(services["data"], json!(["zk-frontend"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_spans_are_kept_apart_and_bad_requests_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let url = format!("http://{}/api/v2/spans", server.http_endpoint());
    let http = reqwest::Client::new();
    let now_us = rewind_storage::now_ns() / 1_000 - 5_000_000;
    // A client span and the server side sharing its id (B3 single span per RPC), and a span the
    // server side started.
    let body = json!([
        {"traceId": "4e441824ec2b6a44ffdc9bb9a6453df3", "id": "1b6b1d07ff85f3b5", "name": "get /stock",
         "kind": "CLIENT", "timestamp": now_us, "duration": 900,
         "localEndpoint": {"serviceName": "web"}, "remoteEndpoint": {"serviceName": "stock"}},
        {"traceId": "4e441824ec2b6a44ffdc9bb9a6453df3", "id": "1b6b1d07ff85f3b5", "name": "get /stock",
         "kind": "SERVER", "shared": true, "timestamp": now_us + 100, "duration": 700,
         "localEndpoint": {"serviceName": "stock", "ipv4": "10.0.0.9"}},
        {"traceId": "4e441824ec2b6a44ffdc9bb9a6453df3", "id": "00000000000000c1", "parentId": "1b6b1d07ff85f3b5",
         "name": "query", "kind": "CLIENT", "timestamp": now_us + 200, "duration": 300,
         "localEndpoint": {"serviceName": "stock"}}
    ]);
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let trace = trace_with(&server, "4e441824ec2b6a44ffdc9bb9a6453df3", 3).await;
    let spans = trace["spans"].as_array().unwrap();
    let client = spans.iter().find(|s| s["service"] == "web").unwrap();
    let server_side = spans.iter().find(|s| s["service"] == "stock" && s["kind_name"] == "server").unwrap();
    let query = named(&trace, "query");
    assert_eq!(client["span_id"], "1b6b1d07ff85f3b5");
    assert_ne!(server_side["span_id"], client["span_id"]);
    assert_eq!(server_side["parent_span_id"], client["span_id"]);
    assert_eq!(query["parent_span_id"], server_side["span_id"]);
    let (_, tree) = server.get_json("/api/traces/4e441824ec2b6a44ffdc9bb9a6453df3/calltree").await;
    assert_eq!(tree["anomalies"]["duplicate_id"].as_u64().unwrap_or(0), 0, "{tree}");

    // Retried, the same request is the same spans (not a second copy).
    assert_eq!(http.post(&url).json(&body).send().await.unwrap().status().as_u16(), 202);
    assert_eq!(trace_with(&server, "4e441824ec2b6a44ffdc9bb9a6453df3", 3).await["spans"].as_array().unwrap().len(), 3);

    for (content_type, payload, status, says) in [
        ("application/json", "{\"not\": \"an array\"}", 400, "JSON array"),
        ("application/json", "[{\"traceId\": \"zz\", \"id\": \"1b6b1d07ff85f3b5\", \"timestamp\": 1}]", 400, "traceId"),
        ("application/json", "[{\"traceId\": \"4e441824ec2b6a44\", \"id\": \"1b6b1d07ff85f3b5\"}]", 400, "timestamp"),
        ("application/x-protobuf", "\u{1}\u{2}", 400, "Zipkin protobuf"),
        ("application/x-thrift", "\u{1}\u{2}", 415, "not thrift"),
    ] {
        let r = http.post(&url).header("content-type", content_type).body(payload).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{payload}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{payload}: {text}");
    }

    // With --ingest-token, Zipkin's route asks for it as OTLP's does.
    let guarded = Server::start(&dir.path().join("guarded"), &["--ingest-token", "zk-secret"]);
    let url = format!("http://{}/api/v2/spans", guarded.http_endpoint());
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(http.post(&url).bearer_auth("zk-secret").json(&body).send().await.unwrap().status().as_u16(), 202);
}
