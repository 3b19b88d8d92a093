//! Deterministic OTLP test data, its OTLP/JSON encoding, and the field-for-field comparison of a
//! source span with what the query API returns for it.

use base64::Engine as _;
use rewind_agent_proto::otlp::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use rewind_agent_proto::otlp::resource::v1::Resource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use rewind_agent_proto::ExportTraceServiceRequest;
use serde_json::{json, Value as J};

pub use rewind_storage::now_ns;

pub fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
}

pub fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A trace id unique to (seed, trace); never zero.
pub fn trace_id(seed: u64, t: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).to_be_bytes());
    id[8..].copy_from_slice(&(t + 1).to_be_bytes());
    id.to_vec()
}

fn span_id(seed: u64, t: u64, i: u64) -> Vec<u8> {
    ((seed << 40) ^ (t << 16) ^ (i + 1)).to_be_bytes().to_vec()
}

/// `traces` traces of `spans` spans each: a SERVER root and CLIENT children, with attributes of
/// every type, an exception event, a link and an error status here and there.
pub fn request(seed: u64, traces: u64, spans: u64) -> ExportTraceServiceRequest {
    let base = now_ns() - 60_000_000_000;
    let service = format!("svc{}", seed % 3);
    let mut out = Vec::new();
    for t in 0..traces {
        for i in 0..spans {
            let start = base + t * 1_000_000 + i * 10_000;
            let mut sp = Span {
                trace_id: trace_id(seed, t),
                span_id: span_id(seed, t, i),
                parent_span_id: if i == 0 { vec![] } else { span_id(seed, t, 0) },
                trace_state: if i == 0 { "vendor=x".into() } else { String::new() },
                flags: 1,
                name: if i == 0 { "GET /checkout/{id}".into() } else { format!("SELECT orders {i}") },
                kind: if i == 0 { 2 } else { 3 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + 5_000_000 - i * 1000,
                attributes: vec![
                    kv("http.request.method", s("GET")),
                    kv("http.response.status_code", any_value::Value::IntValue(200 + (i as i64 % 3) * 100)),
                    kv("rewind.ratio", any_value::Value::DoubleValue(i as f64 / 4.0)),
                    kv("rewind.cached", any_value::Value::BoolValue(i % 2 == 0)),
                    kv("rewind.blob", any_value::Value::BytesValue(vec![0, 1, 2, i as u8])),
                    kv(
                        "rewind.list",
                        any_value::Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue { value: Some(s("a")) },
                                AnyValue { value: Some(any_value::Value::IntValue(7)) },
                            ],
                        }),
                    ),
                    kv(
                        "rewind.map",
                        any_value::Value::KvlistValue(KeyValueList { values: vec![kv("inner", s(&format!("v{t}")))] }),
                    ),
                    kv("enduser.id", s(&format!("user-{}", t % 5))),
                ],
                dropped_attributes_count: 0,
                events: vec![],
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status: None,
            };
            if i > 0 {
                sp.attributes.push(kv("db.system", s("mysql")));
                sp.attributes.push(kv("db.statement", s(&format!("SELECT * FROM orders WHERE id = {t}"))));
            }
            if i == 1 && t % 2 == 0 {
                sp.status = Some(Status { code: 2, message: "deadlock found".into() });
                sp.events.push(span::Event {
                    time_unix_nano: start + 1000,
                    name: "exception".into(),
                    attributes: vec![kv("exception.type", s("SQLException")), kv("exception.message", s("deadlock"))],
                    dropped_attributes_count: 0,
                });
                sp.links.push(span::Link {
                    trace_id: trace_id(seed + 1000, t),
                    span_id: span_id(seed + 1000, t, 0),
                    trace_state: String::new(),
                    attributes: vec![kv("link.kind", s("retry-of"))],
                    dropped_attributes_count: 0,
                    flags: 0,
                });
            }
            out.push(sp);
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(&service)),
                    kv("service.instance.id", s(&format!("{service}-0"))),
                    kv("host.name", s("node-1")),
                    kv("k8s.namespace.name", s("shop")),
                    kv("k8s.pod.name", s(&format!("{service}-5c9d-x1"))),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "rewind-tests".into(),
                    version: "0.1".into(),
                    ..Default::default()
                }),
                spans: out,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn json_value(v: &Option<AnyValue>) -> J {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::BytesValue(b)) => {
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| json_value(&Some(v.clone()))).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => json_attrs(&l.values),
    }
}

pub fn json_attrs(kvs: &[KeyValue]) -> J {
    J::Object(kvs.iter().map(|kv| (kv.key.clone(), json_value(&kv.value))).collect())
}

/// Asserts that the API's rendering of a span carries every field of the source span.
pub fn assert_span(api: &J, src: &Span, resource: &Resource, scope: &InstrumentationScope) {
    let ctx = format!("span {}", hex::encode(&src.span_id));
    assert_eq!(api["trace_id"], json!(hex::encode(&src.trace_id)), "{ctx}");
    assert_eq!(api["span_id"], json!(hex::encode(&src.span_id)), "{ctx}");
    let parent = if src.parent_span_id.is_empty() { J::Null } else { json!(hex::encode(&src.parent_span_id)) };
    assert_eq!(api["parent_span_id"], parent, "{ctx}");
    assert_eq!(api["name"], json!(src.name), "{ctx}");
    assert_eq!(api["kind"], json!(src.kind), "{ctx}");
    assert_eq!(api["start_unix_nano"], json!(src.start_time_unix_nano.to_string()), "{ctx}");
    assert_eq!(api["end_unix_nano"], json!(src.end_time_unix_nano.to_string()), "{ctx}");
    assert_eq!(api["trace_state"], json!(src.trace_state), "{ctx}");
    assert_eq!(api["flags"], json!(src.flags), "{ctx}");
    let status = src.status.clone().unwrap_or_default();
    assert_eq!(api["status"]["code"], json!(status.code), "{ctx}");
    assert_eq!(api["status"]["message"], json!(status.message), "{ctx}");
    assert_eq!(api["attributes"], json_attrs(&src.attributes), "{ctx}");
    assert_eq!(api["resource"]["attributes"], json_attrs(&resource.attributes), "{ctx}");
    assert_eq!(api["scope"], json!({"name": scope.name, "version": scope.version}), "{ctx}");
    let events: Vec<J> = src
        .events
        .iter()
        .map(|e| json!({"time_unix_nano": e.time_unix_nano.to_string(), "name": e.name, "attributes": json_attrs(&e.attributes)}))
        .collect();
    let api_events: Vec<J> = api["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"time_unix_nano": e["time_unix_nano"], "name": e["name"], "attributes": e["attributes"]}))
        .collect();
    assert_eq!(api_events, events, "{ctx}");
    let links: Vec<J> = src
        .links
        .iter()
        .map(|l| json!({"trace_id": hex::encode(&l.trace_id), "span_id": hex::encode(&l.span_id), "attributes": json_attrs(&l.attributes)}))
        .collect();
    let api_links: Vec<J> = api["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!({"trace_id": l["trace_id"], "span_id": l["span_id"], "attributes": l["attributes"]}))
        .collect();
    assert_eq!(api_links, links, "{ctx}");
}

/// Checks every span of the request against the API, trace by trace.
pub async fn assert_stored(server: &crate::harness::Server, req: &ExportTraceServiceRequest) {
    for rs in &req.resource_spans {
        let resource = rs.resource.clone().unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope = ss.scope.clone().unwrap_or_default();
            let mut by_trace: std::collections::BTreeMap<Vec<u8>, Vec<&Span>> = Default::default();
            for sp in &ss.spans {
                by_trace.entry(sp.trace_id.clone()).or_default().push(sp);
            }
            for (tid, spans) in by_trace {
                let body = server.trace(&hex::encode(&tid)).await;
                assert_eq!(body["span_count"], json!(spans.len()), "trace {}", hex::encode(&tid));
                for sp in spans {
                    let api = body["spans"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["span_id"] == json!(hex::encode(&sp.span_id)))
                        .unwrap_or_else(|| panic!("span {} missing", hex::encode(&sp.span_id)));
                    assert_span(api, sp, &resource, &scope);
                }
            }
        }
    }
}

/// OTLP/JSON as the spec writes it: camelCase, hex ids, 64-bit integers as strings.
pub fn to_otlp_json(req: &ExportTraceServiceRequest) -> J {
    fn any(v: &Option<AnyValue>) -> J {
        match v.as_ref().and_then(|v| v.value.as_ref()) {
            None => json!({}),
            Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
            Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
            Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
            Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": d}),
            Some(any_value::Value::BytesValue(b)) => {
                json!({"bytesValue": base64::engine::general_purpose::STANDARD.encode(b)})
            }
            Some(any_value::Value::ArrayValue(a)) => {
                json!({"arrayValue": {"values": a.values.iter().map(|v| any(&Some(v.clone()))).collect::<Vec<_>>()}})
            }
            Some(any_value::Value::KvlistValue(l)) => {
                json!({"kvlistValue": {"values": kvs(&l.values)}})
            }
        }
    }
    fn kvs(kvs: &[KeyValue]) -> Vec<J> {
        kvs.iter().map(|kv| json!({"key": kv.key, "value": any(&kv.value)})).collect()
    }
    let resource_spans: Vec<J> = req
        .resource_spans
        .iter()
        .map(|rs| {
            json!({
                "resource": {"attributes": kvs(&rs.resource.clone().unwrap_or_default().attributes)},
                "scopeSpans": rs.scope_spans.iter().map(|ss| {
                    let scope = ss.scope.clone().unwrap_or_default();
                    json!({
                        "scope": {"name": scope.name, "version": scope.version},
                        "spans": ss.spans.iter().map(|sp| json!({
                            "traceId": hex::encode(&sp.trace_id),
                            "spanId": hex::encode(&sp.span_id),
                            "parentSpanId": hex::encode(&sp.parent_span_id),
                            "traceState": sp.trace_state,
                            "flags": sp.flags,
                            "name": sp.name,
                            "kind": sp.kind,
                            "startTimeUnixNano": sp.start_time_unix_nano.to_string(),
                            "endTimeUnixNano": sp.end_time_unix_nano.to_string(),
                            "attributes": kvs(&sp.attributes),
                            "events": sp.events.iter().map(|e| json!({
                                "timeUnixNano": e.time_unix_nano.to_string(), "name": e.name, "attributes": kvs(&e.attributes),
                            })).collect::<Vec<_>>(),
                            "links": sp.links.iter().map(|l| json!({
                                "traceId": hex::encode(&l.trace_id), "spanId": hex::encode(&l.span_id), "attributes": kvs(&l.attributes),
                            })).collect::<Vec<_>>(),
                            "status": sp.status.as_ref().map(|st| json!({"code": st.code, "message": st.message})),
                        })).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}
