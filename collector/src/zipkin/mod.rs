//! Zipkin v2 (`POST /api/v2/spans`: a JSON array of spans, or `zipkin.proto3.ListOfSpans` in
//! protobuf, `proto.rs`) → an OTLP request, which then takes the OTLP/JSON path's conversion and
//! validation. The mapping follows the OpenTelemetry
//! Collector's Zipkin receiver: `localEndpoint.serviceName` is the resource's `service.name`,
//! `remoteEndpoint` the peer (`peer.service`, `network.peer.address`, `network.peer.port`),
//! `kind` the span kind, `annotations` events, `tags` attributes, and the `error` tag the
//! span's error status (its value the message).
//!
//! A `shared` span is the server side of an RPC whose client span has the same id (B3's single
//! span per RPC): the store keys spans by id, so the server side gets an id of its own, derived
//! from the shared one, and hangs under the client span; its children in the same request that
//! name the shared id as their parent and run in the server's service are moved under it.

use std::collections::HashMap;

use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use rewind_agent_proto::otlp::resource::v1::Resource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use rewind_agent_proto::ExportTraceServiceRequest;
use serde::Deserialize;

pub(crate) mod proto;

pub(crate) use proto::INTERMEDIATE_SPAN_BYTES;

/// One Zipkin v2 span, as its JSON model defines it (the protobuf model is read into it too).
/// Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// Microseconds since the Unix epoch.
    #[serde(default)]
    timestamp: Option<u64>,
    /// Microseconds.
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    shared: Option<bool>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq, Hash, Clone)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Annotation {
    timestamp: u64,
    value: String,
}

/// The service of a span without a `localEndpoint.serviceName` (OpenTelemetry's name for it).
const UNKNOWN_SERVICE: &str = "unknown_service";

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
}

fn text(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A hex id of `bytes` bytes; a Zipkin 64-bit trace id (16 characters) is left-padded to 128 bits.
fn hex_id(what: &str, s: &str, bytes: usize, i: usize) -> Result<Vec<u8>, String> {
    let short_trace = bytes == 16 && s.len() == 16;
    if !(s.len() == bytes * 2 || short_trace) {
        return Err(format!("span {i}: {what} {s:?} is not {} hexadecimal characters", bytes * 2));
    }
    let mut id = hex::decode(s).map_err(|_| format!("span {i}: {what} {s:?} is not hexadecimal"))?;
    if short_trace {
        id.splice(0..0, [0u8; 8]);
    }
    Ok(id)
}

/// The server side of a shared span: its id with the top bit flipped, or, were that all zeros,
/// with the lowest.
fn server_side_id(shared: &[u8]) -> Vec<u8> {
    let mut id = shared.to_vec();
    id[0] ^= 0x80;
    if id.iter().all(|b| *b == 0) {
        id[7] = 1;
    }
    id
}

/// Translates a JSON body. A body that is not a JSON array of spans, or a span without its ids
/// or timestamp, refuses the request (Zipkin answers such a request 400 as a whole).
pub fn from_json(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let spans: Vec<ZSpan> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON array of Zipkin v2 spans: {e}"))?;
    translate(spans)
}

/// Translates a protobuf body (`ListOfSpans`), with the same rules as JSON.
pub fn from_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    translate(proto::spans(body)?)
}

fn translate(spans: Vec<ZSpan>) -> Result<ExportTraceServiceRequest, String> {
    // Resources by local endpoint, in order of appearance.
    let mut resources: Vec<(Endpoint, Vec<Span>)> = Vec::new();
    // (trace id, shared id, service) → the server side's own id.
    let mut server_sides: HashMap<(Vec<u8>, Vec<u8>, String), Vec<u8>> = HashMap::new();
    let mut converted: Vec<(Endpoint, Span, bool)> = Vec::with_capacity(spans.len());
    for (i, z) in spans.into_iter().enumerate() {
        let trace_id = hex_id("traceId", &z.trace_id, 16, i)?;
        let mut span_id = hex_id("id", &z.id, 8, i)?;
        let mut parent = match z.parent_id.as_deref() {
            None | Some("") => Vec::new(),
            Some(p) => hex_id("parentId", p, 8, i)?,
        };
        let start_us = z.timestamp.ok_or_else(|| format!("span {i}: no timestamp"))?;
        let start = start_us.checked_mul(1_000).ok_or_else(|| format!("span {i}: timestamp past the year 2262"))?;
        let duration = z.duration.unwrap_or(0).saturating_mul(1_000);
        let kind = match z.kind.as_deref() {
            Some("SERVER") => span::SpanKind::Server,
            Some("CLIENT") => span::SpanKind::Client,
            Some("PRODUCER") => span::SpanKind::Producer,
            Some("CONSUMER") => span::SpanKind::Consumer,
            None => span::SpanKind::Unspecified,
            Some(other) => return Err(format!("span {i}: unknown kind {other:?}")),
        };
        let local = z.local_endpoint.unwrap_or_default();
        let service = local.service_name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| UNKNOWN_SERVICE.into());
        let shared = z.shared == Some(true) && kind == span::SpanKind::Server;
        if shared {
            let own = server_side_id(&span_id);
            server_sides.insert((trace_id.clone(), span_id.clone(), service.clone()), own.clone());
            parent = std::mem::replace(&mut span_id, own);
        }
        let mut attributes = Vec::with_capacity(z.tags.len() + 3);
        if let Some(r) = &z.remote_endpoint {
            if let Some(s) = r.service_name.as_deref().filter(|s| !s.is_empty()) {
                attributes.push(kv("peer.service", text(s)));
            }
            if let Some(ip) = r.ipv4.as_deref().or(r.ipv6.as_deref()) {
                attributes.push(kv("network.peer.address", text(ip)));
            }
            if let Some(port) = r.port {
                attributes.push(kv("network.peer.port", any_value::Value::IntValue(port.into())));
            }
        }
        let mut status = None;
        let mut tags: Vec<(String, String)> = z.tags.into_iter().collect();
        // A JSON object's order is not kept by the map: sorted, so a retried request converts
        // to the same spans.
        tags.sort_unstable();
        for (k, v) in tags {
            if k == "error" {
                let message = if v.is_empty() || v == "true" { String::new() } else { v };
                status = Some(Status { code: 2, message });
            } else {
                attributes.push(kv(&k, text(&v)));
            }
        }
        let events = z
            .annotations
            .into_iter()
            .map(|a| span::Event {
                time_unix_nano: a.timestamp.saturating_mul(1_000),
                name: a.value,
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            })
            .collect();
        let s = Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            trace_state: String::new(),
            flags: 0,
            name: z.name.unwrap_or_default(),
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add(duration),
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status,
        };
        converted.push((Endpoint { service_name: Some(service), ..local }, s, shared));
    }
    for (local, mut s, shared) in converted {
        if !shared && !s.parent_span_id.is_empty() {
            let service = local.service_name.clone().unwrap_or_default();
            let key = (s.trace_id.clone(), s.parent_span_id.clone(), service);
            if let Some(own) = server_sides.get(&key) {
                s.parent_span_id = own.clone();
            }
        }
        match resources.iter_mut().find(|(e, _)| *e == local) {
            Some((_, spans)) => spans.push(s),
            None => resources.push((local, vec![s])),
        }
    }
    Ok(ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(e, spans)| {
                let mut attributes =
                    vec![kv("service.name", text(e.service_name.as_deref().unwrap_or(UNKNOWN_SERVICE)))];
                if let Some(ip) = e.ipv4.as_deref().or(e.ipv6.as_deref()) {
                    attributes.push(kv("host.ip", text(ip)));
                }
                ResourceSpans {
                    resource: Some(Resource { attributes, ..Default::default() }),
                    scope_spans: vec![ScopeSpans { scope: None, spans, schema_url: String::new() }],
                    schema_url: String::new(),
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<ExportTraceServiceRequest, String> {
        from_json(json.as_bytes())
    }

    #[test]
    fn a_client_and_its_shared_server_side_are_kept_apart() {
        let req = one(r#"[
            {"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","name":"get /api","kind":"CLIENT",
             "timestamp":1700000000000000,"duration":2000,"localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1"},
             "remoteEndpoint":{"serviceName":"backend","ipv4":"10.0.0.2","port":8080},
             "annotations":[{"timestamp":1700000000000100,"value":"ws"}],"tags":{"http.path":"/api","error":"boom"}},
            {"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","name":"get /api","kind":"SERVER","shared":true,
             "timestamp":1700000000000300,"duration":1500,"localEndpoint":{"serviceName":"backend"}},
            {"traceId":"463ac35c9f6413ad","parentId":"a2fb4a1d1a96d312","id":"0000000000000bbb","name":"select",
             "kind":"CLIENT","timestamp":1700000000000400,"duration":100,"localEndpoint":{"serviceName":"backend"}}
        ]"#)
        .unwrap();
        assert_eq!(req.resource_spans.len(), 2, "one resource per local endpoint");
        let client = &req.resource_spans[0].scope_spans[0].spans[0];
        let server = &req.resource_spans[1].scope_spans[0].spans[0];
        let child = &req.resource_spans[1].scope_spans[0].spans[1];
        assert_eq!(client.trace_id, hex::decode("0000000000000000463ac35c9f6413ad").unwrap());
        assert_eq!((client.kind, server.kind), (3, 2));
        assert_eq!(server.parent_span_id, client.span_id, "the server side under its client");
        assert_ne!(server.span_id, client.span_id);
        assert_eq!(child.parent_span_id, server.span_id, "the server's child under the server side");
        assert_eq!(client.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(client.end_time_unix_nano - client.start_time_unix_nano, 2_000_000);
        assert_eq!(client.status.as_ref().map(|s| (s.code, s.message.as_str())), Some((2, "boom")));
        let keys: Vec<&str> = client.attributes.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["peer.service", "network.peer.address", "network.peer.port", "http.path"]);
        assert_eq!(
            (client.events[0].name.as_str(), client.events[0].time_unix_nano),
            ("ws", 1_700_000_000_000_100_000)
        );
    }

    #[test]
    fn malformed_spans_refuse_the_request_with_the_reason() {
        for (body, says) in [
            ("{}", "JSON array"),
            ("[{\"id\":\"a2fb4a1d1a96d312\"}]", "traceId"),
            (r#"[{"traceId":"xyz","id":"a2fb4a1d1a96d312","timestamp":1}]"#, "traceId"),
            (r#"[{"traceId":"463ac35c9f6413ad","id":"a2fb","timestamp":1}]"#, "id"),
            (r#"[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312"}]"#, "timestamp"),
            (r#"[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":1,"kind":"SIDEWAYS"}]"#, "kind"),
            (r#"[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":99999999999999999}]"#, "2262"),
        ] {
            let e = one(body).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        assert_eq!(one("[]").unwrap().resource_spans.len(), 0);
    }
}
