//! Stored spans as the query API's JSON. Nanosecond timestamps travel as strings (they exceed
//! JavaScript's exact integers); milliseconds as numbers for convenience.

use base64::Engine as _;
use rewind_storage::model::{kind, status};
use rewind_storage::{KeyValue, Resource, ServiceInfo, Span, Value};
use serde_json::{json, Map, Value as J};

pub fn value(v: &Value) -> J {
    match v {
        Value::Empty => J::Null,
        Value::Str(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        // JSON has no NaN or infinities: spell them as proto3 JSON does.
        Value::Double(d) if d.is_finite() => J::from(*d),
        Value::Double(d) => J::String(
            if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
            .into(),
        ),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(items) => J::Array(items.iter().map(value).collect()),
        Value::KvList(kvs) => attributes(kvs),
    }
}

pub fn attributes(kvs: &[KeyValue]) -> J {
    J::Object(kvs.iter().map(|(k, v)| (k.to_string(), value(v))).collect::<Map<_, _>>())
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn resource(r: &Resource) -> J {
    json!({ "attributes": attributes(&r.attributes) })
}

pub fn status_name(code: u8) -> &'static str {
    match code {
        status::OK => "ok",
        status::ERROR => "error",
        _ => "unset",
    }
}

pub fn span(s: &Span) -> J {
    json!({
        "trace_id": s.trace_id.to_string(),
        "span_id": s.span_id.to_string(),
        "parent_span_id": s.parent_span_id.map(|p| p.to_string()),
        "service": s.service,
        "name": s.name,
        "kind": s.kind,
        "kind_name": kind::name(s.kind),
        "start_unix_nano": s.start_ns.to_string(),
        "end_unix_nano": s.end_ns().to_string(),
        "start_ms": ms(s.start_ns),
        "duration_ms": ms(s.duration_ns),
        "status": {"code": s.status_code, "name": status_name(s.status_code), "message": s.status_message},
        "attributes": attributes(&s.attributes),
        "events": s.events.iter().map(|e| json!({
            "time_unix_nano": e.time_ns.to_string(),
            "time_ms": ms(e.time_ns),
            "name": e.name,
            "attributes": attributes(&e.attributes),
            "dropped_attributes_count": e.dropped_attributes,
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| json!({
            "trace_id": l.trace_id.to_string(),
            "span_id": l.span_id.to_string(),
            "trace_state": l.trace_state,
            "attributes": attributes(&l.attributes),
            "dropped_attributes_count": l.dropped_attributes,
            "flags": l.flags,
        })).collect::<Vec<_>>(),
        "resource": resource(&s.resource),
        "scope": {"name": s.scope_name, "version": s.scope_version},
        "trace_state": s.trace_state,
        "flags": s.flags,
        "dropped_attributes_count": s.dropped_attributes,
        "dropped_events_count": s.dropped_events,
        "dropped_links_count": s.dropped_links,
    })
}

pub fn service(s: &ServiceInfo) -> J {
    json!({
        "name": s.name,
        "kind": s.kind,
        "instances": s.instances,
        "first_seen_ms": ms(s.first_seen_ns),
        "last_seen_ms": ms(s.last_seen_ns),
        "span_count": s.span_count,
    })
}
