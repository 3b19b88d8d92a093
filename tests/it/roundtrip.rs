//! What goes in over each transport comes back out of the query API, field for field: from
//! memory, from sealed column chunks, and after a restart.

use std::io::Write;

use prost::Message;
use rewind_agent_proto::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use serde_json::json;
use tonic::codec::CompressionEncoding;

use crate::data::{assert_stored, request, to_otlp_json};
use crate::harness::{export_grpc, Server};

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_spans_read_back_from_memory_from_chunks_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--seal-interval", "1h"]);
    let plain = request(1, 5, 6);
    let gzipped = request(2, 5, 6);
    let zstd = request(3, 5, 6);
    assert_eq!(export_grpc(&server, plain.clone()).await, ExportTraceServiceResponse::default());
    let mut client = server.grpc_client().await.send_compressed(CompressionEncoding::Gzip);
    assert_eq!(client.export(gzipped.clone()).await.unwrap().into_inner().partial_success, None);
    let mut client = server.grpc_client().await.send_compressed(CompressionEncoding::Zstd);
    assert_eq!(client.export(zstd.clone()).await.unwrap().into_inner().partial_success, None);

    // From the memtable: visible as soon as acknowledged.
    for r in [&plain, &gzipped, &zstd] {
        assert_stored(&server, r).await;
    }
    // From sealed segments, after a clean shutdown seals them.
    assert!(server.terminate().success());
    let server = Server::start(&data, &[]);
    assert_eq!(server.metric("rewind_storage_memtable_spans").await, 0.0);
    for r in [&plain, &gzipped, &zstd] {
        assert_stored(&server, r).await;
    }
    assert_eq!(server.metric("rewind_collector_spans_accepted_total").await, 0.0, "metrics are per process");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_protobuf_json_and_gzip_read_back_and_answer_in_kind() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--seal-interval", "200ms"]);
    let http = reqwest::Client::new();
    let proto = request(10, 4, 5);
    let resp = http
        .post(server.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(proto.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert_eq!(
        ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap(),
        ExportTraceServiceResponse::default()
    );

    let gz = request(11, 4, 5);
    let resp = http
        .post(server.traces_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gzip(&gz.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let js = request(12, 4, 5);
    let resp = http
        .post(server.traces_url())
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(to_otlp_json(&js).to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap(), json!({}));

    server.wait_sealed().await;
    for r in [&proto, &gz, &js] {
        assert_stored(&server, r).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_requests_succeed_on_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    assert_eq!(export_grpc(&server, ExportTraceServiceRequest::default()).await, ExportTraceServiceResponse::default());
    let http = reqwest::Client::new();
    for (ct, body) in [("application/x-protobuf", vec![]), ("application/json", b"{}".to_vec())] {
        let resp = http.post(server.traces_url()).header("content-type", ct).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{ct}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_lists_instrumented_services_and_virtual_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    export_grpc(&server, request(4, 2, 3)).await;
    let (status, body) = server.get_json("/api/services").await;
    assert_eq!(status, 200);
    let services = body["services"].as_array().unwrap();
    let find = |n: &str| services.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("{n} in {body}"));
    assert_eq!(find("svc1")["kind"], "server");
    assert_eq!(find("svc1")["instances"], json!(["svc1-0"]));
    assert_eq!(find("svc1")["span_count"], 6);
    assert_eq!(find("mysql")["kind"], "database");
    assert_eq!(find("USER")["kind"], "user");
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_tokens_guard_ingest_and_query_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--ingest-token", "in-secret", "--query-token", "q-secret"]);
    let err = server.grpc_client().await.export(request(5, 1, 2)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(request(5, 1, 2));
    req.metadata_mut().insert("authorization", "Bearer in-secret".parse().unwrap());
    server.grpc_client().await.export(req).await.unwrap();

    let http = reqwest::Client::new();
    let resp =
        http.post(server.traces_url()).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let tid = hex::encode(crate::data::trace_id(5, 0));
    let resp = http.get(server.query_url(&format!("/api/traces/{tid}"))).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"]["code"], "unauthenticated");
    let resp = http.get(server.query_url(&format!("/api/traces/{tid}"))).bearer_auth("q-secret").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(http.get(server.query_url("/readyz")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_answers_retry_later_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // Room for about one request in flight at a time (each is priced at what it decodes into,
    // a few hundred KiB).
    let server = Server::start(&dir.path().join("data"), &["--max-message-bytes", "256KiB", "--queue-bytes", "1MiB"]);
    let http = reqwest::Client::new();
    let mut refused = 0;
    let mut accepted = Vec::new();
    for round in 0..5u64 {
        let mut tasks = Vec::new();
        for i in 0..32u64 {
            let req = request(1000 + round * 100 + i, 20, 5);
            let (http, url) = (http.clone(), server.traces_url());
            tasks.push(tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await
                    .unwrap();
                (req, resp.status().as_u16(), resp.headers().get("retry-after").cloned())
            }));
        }
        for t in tasks {
            let (req, status, retry_after) = t.await.unwrap();
            match status {
                200 => accepted.push(req),
                429 => {
                    assert_eq!(retry_after.unwrap(), "1");
                    refused += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "32 concurrent requests into a one-request budget were never refused");
    assert!(!accepted.is_empty());
    for r in &accepted {
        assert_stored(&server, r).await;
    }
    assert!(server.metric("rewind_collector_requests_refused_total").await >= refused as f64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealing_backlog_answers_retry_later_instead_of_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Sealing practically off, and little room for unsealed spans.
    let server = Server::start(
        &dir.path().join("data"),
        &["--seal-interval", "1h", "--seal-rows", "10000000", "--max-unsealed-bytes", "1MiB"],
    );
    let mut client = server.grpc_client().await;
    let mut acked = Vec::new();
    let refusal = loop {
        let req = request(2000 + acked.len() as u64, 20, 5);
        match client.export(req.clone()).await {
            Ok(_) => acked.push(req),
            Err(status) => break status,
        }
        assert!(acked.len() < 1000, "1 MiB of unsealed spans never filled");
    };
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(refusal.message().contains("retry later"), "{}", refusal.message());
    let resp = reqwest::Client::new()
        .post(server.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(request(1, 1, 1).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    for r in &acked {
        assert_stored(&server, r).await;
    }
}
