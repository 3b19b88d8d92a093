//! Jaeger's JSON model (the `jaeger-query` HTTP API that Grafana's Jaeger data source and the
//! Jaeger UI read) and the translation of stored spans into it, following Jaeger's own
//! OTLP translator: span kind, status and scope become tags, events become logs, links become
//! FOLLOWS_FROM references, and each distinct resource a process.

use std::collections::BTreeMap;

use base64::Engine as _;
use rewind_storage::model::{kind, status};
use rewind_storage::{KeyValue, Resource, Span, Value};
use serde::Serialize;

/// Jaeger's answer envelope (`structuredResponse`): `errors` is null on success.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    pub data: T,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<Vec<StructuredError>>,
}

impl<T> Envelope<T> {
    pub fn of(data: T, total: usize) -> Self {
        Self { data, total, limit: 0, offset: 0, errors: None }
    }
}

#[derive(Debug, Serialize)]
pub struct StructuredError {
    pub code: u16,
    pub msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    /// `server`, `client`, `producer`, `consumer`, `internal`, or empty for unspecified.
    pub span_kind: &'static str,
}

/// Jaeger's `DependencyLink`, with the figures Rewind keeps on every link beside the count.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub error_count: u64,
    /// What the child is: `server` (an instrumented service), `database`, `cache`, `queue`,
    /// `external`.
    pub child_kind: rewind_storage::NodeKind,
    pub avg_duration_ms: f64,
    pub p50_duration_ms: f64,
    pub p90_duration_ms: f64,
    pub p99_duration_ms: f64,
    pub max_duration_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JSpan>,
    pub processes: BTreeMap<String, Process>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub flags: u32,
    pub operation_name: String,
    pub references: Vec<Reference>,
    /// Microseconds since the Unix epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    pub tags: Vec<Tag>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// `CHILD_OF` (the parent) or `FOLLOWS_FROM` (a link).
    pub ref_type: &'static str,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
pub struct Log {
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    pub fields: Vec<Tag>,
}

/// A typed key-value: `type` is `string`, `bool`, `int64`, `float64` or `binary` (base64).
#[derive(Debug, Serialize, PartialEq)]
pub struct Tag {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: serde_json::Value,
}

impl Tag {
    fn text(key: &str, v: impl Into<String>) -> Self {
        Tag { key: key.into(), kind: "string", value: serde_json::Value::String(v.into()) }
    }

    fn of(key: &str, v: &Value) -> Self {
        use serde_json::Value as J;
        let (kind, value) = match v {
            Value::Str(s) => ("string", J::String(s.to_string())),
            Value::Bool(b) => ("bool", J::Bool(*b)),
            Value::Int(i) => ("int64", J::from(*i)),
            // JSON has no NaN or infinities; Jaeger's own model would fail to encode them.
            Value::Double(d) if d.is_finite() => ("float64", J::from(*d)),
            Value::Double(d) => ("string", J::String(d.to_string())),
            Value::Bytes(b) => ("binary", J::String(base64::engine::general_purpose::STANDARD.encode(b))),
            Value::Empty => ("string", J::String(String::new())),
            // Jaeger's OTLP translator writes arrays and maps as their JSON text.
            Value::Array(_) | Value::KvList(_) => ("string", J::String(crate::render::value(v).to_string())),
        };
        Tag { key: key.into(), kind, value }
    }
}

fn tags(kvs: &[KeyValue]) -> impl Iterator<Item = Tag> + '_ {
    kvs.iter().map(|(k, v)| Tag::of(k, v))
}

/// Jaeger's name for an OTLP span kind (its `span.kind` tag; unspecified has none).
pub fn kind_name(k: u8) -> &'static str {
    match k {
        kind::INTERNAL => "internal",
        kind::SERVER => "server",
        kind::CLIENT => "client",
        kind::PRODUCER => "producer",
        kind::CONSUMER => "consumer",
        _ => "",
    }
}

fn micros(ns: u64) -> u64 {
    ns / 1_000
}

/// A trace's spans in Jaeger's model. Processes are numbered `p1`, `p2`, … in the order their
/// resources first appear (spans of one resource share one).
pub fn trace(spans: &[Span]) -> Trace {
    let mut processes: BTreeMap<String, Process> = BTreeMap::new();
    let mut seen: Vec<(&str, &std::sync::Arc<Resource>, String)> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for s in spans {
        let same = |r: &std::sync::Arc<Resource>| std::sync::Arc::ptr_eq(r, &s.resource) || **r == *s.resource;
        let process_id = match seen.iter().find(|(svc, r, _)| *svc == &*s.service && same(r)) {
            Some((_, _, id)) => id.clone(),
            None => {
                let id = format!("p{}", seen.len() + 1);
                processes.insert(id.clone(), process(&s.service, &s.resource));
                seen.push((&s.service, &s.resource, id.clone()));
                id
            }
        };
        out.push(span(s, process_id));
    }
    Trace {
        trace_id: spans.first().map(|s| s.trace_id.to_string()).unwrap_or_default(),
        spans: out,
        processes,
        warnings: None,
    }
}

fn process(service: &str, r: &Resource) -> Process {
    Process {
        service_name: service.to_owned(),
        tags: r.attributes.iter().filter(|(k, _)| &**k != "service.name").map(|(k, v)| Tag::of(k, v)).collect(),
    }
}

fn span(s: &Span, process_id: String) -> JSpan {
    let trace_id = s.trace_id.to_string();
    let mut references = Vec::with_capacity(usize::from(s.parent_span_id.is_some()) + s.links.len());
    if let Some(p) = s.parent_span_id {
        references.push(Reference { ref_type: "CHILD_OF", trace_id: trace_id.clone(), span_id: p.to_string() });
    }
    references.extend(s.links.iter().map(|l| Reference {
        ref_type: "FOLLOWS_FROM",
        trace_id: l.trace_id.to_string(),
        span_id: l.span_id.to_string(),
    }));
    let mut t: Vec<Tag> = tags(&s.attributes).collect();
    if !kind_name(s.kind).is_empty() {
        t.push(Tag::text("span.kind", kind_name(s.kind)));
    }
    match s.status_code {
        status::ERROR => {
            t.push(Tag { key: "error".into(), kind: "bool", value: true.into() });
            t.push(Tag::text("otel.status_code", "ERROR"));
        }
        status::OK => t.push(Tag::text("otel.status_code", "OK")),
        _ => {}
    }
    if !s.status_message.is_empty() {
        t.push(Tag::text("otel.status_description", s.status_message.as_str()));
    }
    if !s.scope_name.is_empty() {
        t.push(Tag::text("otel.scope.name", &*s.scope_name));
    }
    if !s.scope_version.is_empty() {
        t.push(Tag::text("otel.scope.version", &*s.scope_version));
    }
    if !s.trace_state.is_empty() {
        t.push(Tag::text("w3c.tracestate", s.trace_state.as_str()));
    }
    for (key, n) in [
        ("otel.dropped_attributes_count", s.dropped_attributes),
        ("otel.dropped_events_count", s.dropped_events),
        ("otel.dropped_links_count", s.dropped_links),
    ] {
        if n > 0 {
            t.push(Tag { key: key.into(), kind: "int64", value: n.into() });
        }
    }
    let logs = s
        .events
        .iter()
        .map(|e| Log {
            timestamp: micros(e.time_ns),
            fields: std::iter::once(Tag::text("event", e.name.as_str())).chain(tags(&e.attributes)).collect(),
        })
        .collect();
    JSpan {
        trace_id,
        span_id: s.span_id.to_string(),
        flags: s.flags,
        operation_name: s.name.to_string(),
        references,
        start_time: micros(s.start_ns),
        duration: micros(s.duration_ns),
        tags: t,
        logs,
        process_id,
        warnings: None,
    }
}
