//! Hostile input: each gets its specified answer, and the server keeps serving.

use prost::Message;
use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use rewind_agent_proto::{ExportTraceServiceRequest, RpcStatus};
use serde_json::json;

use crate::data::{kv, now_ns, request, to_otlp_json, trace_id};
use crate::harness::{export_grpc, Server};

async fn post(
    server: &Server,
    ct: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().post(server.traces_url()).header("content-type", ct).body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn one_span(edit: impl Fn(&mut rewind_agent_proto::otlp::trace::v1::Span)) -> ExportTraceServiceRequest {
    let mut r = request(77, 1, 1);
    edit(&mut r.resource_spans[0].scope_spans[0].spans[0]);
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_inputs_get_their_specified_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--max-message-bytes", "2MiB"]);

    // Malformed protobuf: INVALID_ARGUMENT / 400 with a google.rpc.Status body.
    let garbage = vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3];
    let err = server.grpc_raw(garbage.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("invalid protobuf"), "{}", err.message());
    let (status, headers, body) = post(&server, "application/x-protobuf", None, garbage).await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(RpcStatus::decode(&body[..]).unwrap().code, tonic::Code::InvalidArgument as i32);

    // Malformed JSON: 400 with a JSON Status.
    let (status, _, body) = post(&server, "application/json", None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], 3);
    assert!(body["message"].as_str().unwrap().contains("invalid JSON"));

    // Truncated gzip: 400.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &request(1, 3, 3).encode_to_vec()).unwrap();
    let gz = gz.finish().unwrap();
    let (status, _, body) = post(&server, "application/x-protobuf", Some("gzip"), gz[..gz.len() / 2].to_vec()).await;
    assert_eq!(status, 400);
    assert!(RpcStatus::decode(&body[..]).unwrap().message.contains("gzip"));

    // Over the limit: RESOURCE_EXHAUSTED without retry info / 413, also when gzip expands past it.
    let big = vec![0u8; 3 << 20];
    let err = server.grpc_raw(big.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    let (status, headers, _) = post(&server, "application/x-protobuf", None, big.clone()).await;
    assert_eq!(status, 413);
    assert!(headers.get("retry-after").is_none());
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &big).unwrap();
    let (status, _, _) = post(&server, "application/x-protobuf", Some("gzip"), bomb.finish().unwrap()).await;
    assert_eq!(status, 413);

    // Unsupported content type and encoding.
    assert_eq!(post(&server, "text/plain", None, b"hi".to_vec()).await.0, 415);
    assert_eq!(post(&server, "application/json", Some("br"), b"{}".to_vec()).await.0, 400);

    // Bad spans are rejected one by one (partial success), the good ones kept.
    let now = now_ns();
    let mut req = request(50, 1, 2);
    let spans = &mut req.resource_spans[0].scope_spans[0].spans;
    let good = spans[0].clone();
    let mut bad = Vec::new();
    for edit in [
        (|s: &mut rewind_agent_proto::otlp::trace::v1::Span, _| s.trace_id = vec![0; 16]) as fn(&mut _, u64),
        |s, _| s.trace_id = vec![1; 5],
        |s, _| s.span_id = vec![0; 8],
        |s, _| s.span_id = vec![9; 9],
        |s, _| s.end_time_unix_nano = s.start_time_unix_nano - 1,
        |s, now| {
            s.start_time_unix_nano = now + 20 * 365 * 86_400_000_000_000;
            s.end_time_unix_nano = s.start_time_unix_nano + 1;
        },
        |s, now| {
            s.start_time_unix_nano = now - 20 * 365 * 86_400_000_000_000;
            s.end_time_unix_nano = s.start_time_unix_nano + 1;
        },
        // An end centuries away would put its transaction in a partition that never expires.
        |s, _| s.end_time_unix_nano = u64::MAX,
    ] {
        let mut s = good.clone();
        s.span_id = vec![0xab; 8];
        edit(&mut s, now);
        bad.push(s);
    }
    spans.extend(bad);
    let resp = export_grpc(&server, req.clone()).await;
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 8);
    for reason in [
        "all zeros",
        "must be 16 bytes",
        "must be 8 bytes",
        "before start",
        "future",
        "retention",
        "longer than 7 days",
    ] {
        assert!(ps.error_message.contains(reason), "{} lacks {reason}", ps.error_message);
    }
    let stored = server.trace(&hex::encode(trace_id(50, 0))).await;
    assert_eq!(stored["span_count"], 2);
    // The same over OTLP/JSON, with ids that are not even hex.
    let mut js = to_otlp_json(&req);
    js["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["traceId"] = json!("not-hex");
    let (status, _, body) = post(&server, "application/json", None, js.to_string().into_bytes()).await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "8");

    // 10,000 attributes: kept to the limit, the rest counted as dropped.
    let flood = one_span(|s| {
        s.attributes = (0..10_000).map(|i| kv(&format!("attr.{i}"), any_value::Value::IntValue(i))).collect();
    });
    assert_eq!(export_grpc(&server, flood).await.partial_success, None);
    let got = server.trace(&hex::encode(trace_id(77, 0))).await;
    let sp = &got["spans"][0];
    assert_eq!(sp["attributes"].as_object().unwrap().len(), 128);
    assert_eq!(sp["dropped_attributes_count"], 10_000 - 128);

    // A 1 MB attribute value: truncated to 16 KiB on a character boundary.
    let huge = one_span(|s| {
        s.trace_id = trace_id(78, 0);
        s.attributes = vec![KeyValue {
            key: "payload".into(),
            value: Some(AnyValue { value: Some(s_value("ü".repeat(500_000))) }),
        }];
    });
    assert_eq!(export_grpc(&server, huge).await.partial_success, None);
    let got = server.trace(&hex::encode(trace_id(78, 0))).await;
    let v = got["spans"][0]["attributes"]["payload"].as_str().unwrap();
    assert_eq!(v.len(), 16 * 1024);
    assert!(v.chars().all(|c| c == 'ü'));

    // Invalid trace ids on the query side.
    for bad in ["xyz", "00000000000000000000000000000000", "5b8efff798038103d269b633813fc60c00"] {
        let (status, body) = server.get_json(&format!("/api/traces/{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], "bad_parameter");
    }
    let (status, _) = server.get_json("/api/traces/5b8efff798038103d269b633813fc60c").await;
    assert_eq!(status, 404);

    // Still serving.
    let after = request(79, 2, 2);
    assert_eq!(export_grpc(&server, after.clone()).await.partial_success, None);
    crate::data::assert_stored(&server, &after).await;
    assert_eq!(reqwest::get(server.query_url("/readyz")).await.unwrap().status(), 200);
}

fn s_value(v: String) -> any_value::Value {
    any_value::Value::StringValue(v)
}

/// One OTLP/HTTP export of about 1 MB: an ordinary one-span trace beside 547 spans of 128 distinct
/// attribute keys each, 70,016 keys in all. Attribute column ids used to wrap past 65,535 and
/// corrupt the segment, ordinary trace included; more keys arrive in a second export. (The
/// registry's cap is raised past them: this is about segments cut by keys, `bounded` about the cap.)
#[tokio::test(flavor = "multi_thread")]
async fn seventy_thousand_distinct_attribute_keys_in_one_export_seal_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(&dir.path().join("data"), &["--seal-interval", "200ms", "--max-attribute-keys", "100000"]);
    let mut req = request(90, 1, 1);
    let template = req.resource_spans[0].scope_spans[0].spans[0].clone();
    let spans = &mut req.resource_spans[0].scope_spans[0].spans;
    for i in 0..547u64 {
        let mut s = template.clone();
        s.trace_id = trace_id(91, 0);
        s.span_id = (i + 1).to_be_bytes().to_vec();
        s.attributes = (0..128).map(|k| kv(&format!("wide.{}", i * 128 + k), crate::data::s("v"))).collect();
        spans.push(s);
    }
    let body = req.encode_to_vec();
    assert!(body.len() > 900_000, "{} bytes", body.len());
    let (status, _, resp) = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let mut more = request(92, 1, 1);
    more.resource_spans[0].scope_spans[0].spans[0].attributes =
        (0..128).map(|k| kv(&format!("wider.{k}"), crate::data::s("w"))).collect();
    assert_eq!(export_grpc(&server, more).await.partial_success, None);
    server.wait_sealed().await;
    let ordinary = server.trace(&hex::encode(trace_id(90, 0))).await;
    assert_eq!(ordinary["span_count"], 1);
    let wide = server.trace(&hex::encode(trace_id(91, 0))).await;
    assert_eq!(wide["span_count"], 547);
    let last = wide["spans"].as_array().unwrap().iter().find(|s| s["span_id"] == "0000000000000223").unwrap();
    assert_eq!(last["attributes"]["wide.70015"], "v");
    assert_eq!(server.trace(&hex::encode(trace_id(92, 0))).await["spans"][0]["attributes"]["wider.127"], "w");
    let (status, xlog) = server.get_json("/api/xlog?from=0&to=9999999999999&attr.wide.70015=v").await;
    assert_eq!(status, 200, "{xlog}");
    assert_eq!(xlog["count"], 1);
}
