//! What the query API answers about stored spans, services and transactions, as typed views
//! (their OpenAPI schemas derive from them). Nanosecond timestamps travel as strings (they exceed
//! JavaScript's exact integers); milliseconds as numbers for convenience.

use base64::Engine as _;
use rewind_storage::model::{kind, status};
use rewind_storage::{KeyValue, NodeKind, Resource, ServiceInfo, Span, Value, XLog};
use serde::Serialize;
use serde_json::{Map, Value as J};
use utoipa::ToSchema;

pub fn value(v: &Value) -> J {
    match v {
        Value::Empty => J::Null,
        Value::Str(s) => J::String(s.to_string()),
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

pub fn status_name(code: u8) -> &'static str {
    match code {
        status::OK => "ok",
        status::ERROR => "error",
        _ => "unset",
    }
}

/// Attributes as a JSON object, key to value (arrays and key-value lists nested; bytes in
/// base64; non-finite doubles as `"NaN"`, `"Infinity"`, `"-Infinity"`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct Attributes(J);

impl Attributes {
    pub fn of(kvs: &[KeyValue]) -> Self {
        Self(attributes(kvs))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    pub attributes: Attributes,
}

impl ResourceView {
    pub fn of(r: &Resource) -> Self {
        Self { attributes: Attributes::of(&r.attributes) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// OTLP's status code: 0 unset, 1 ok, 2 error.
    pub code: u8,
    /// `unset`, `ok` or `error`.
    pub name: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Unix nanoseconds, as a decimal string (past JavaScript's exact integers).
    #[schema(pattern = "^[0-9]+$")]
    pub time_unix_nano: String,
    pub time_ms: f64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub trace_id: String,
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub span_id: String,
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    pub name: String,
    pub version: String,
}

/// A stored span, all it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanView {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub trace_id: String,
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub span_id: String,
    /// `null` for a root span.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    /// OTLP's span kind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: u8,
    pub kind_name: &'static str,
    #[schema(pattern = "^[0-9]+$")]
    pub start_unix_nano: String,
    #[schema(pattern = "^[0-9]+$")]
    pub end_unix_nano: String,
    pub start_ms: f64,
    pub duration_ms: f64,
    pub status: StatusView,
    pub attributes: Attributes,
    pub events: Vec<EventView>,
    pub links: Vec<LinkView>,
    pub resource: ResourceView,
    pub scope: ScopeView,
    pub trace_state: String,
    pub flags: u32,
    pub dropped_attributes_count: u32,
    pub dropped_events_count: u32,
    pub dropped_links_count: u32,
}

impl SpanView {
    pub fn of(s: &Span) -> Self {
        Self {
            trace_id: s.trace_id.to_string(),
            span_id: s.span_id.to_string(),
            parent_span_id: s.parent_span_id.map(|p| p.to_string()),
            service: s.service.to_string(),
            name: s.name.to_string(),
            kind: s.kind,
            kind_name: kind::name(s.kind),
            start_unix_nano: s.start_ns.to_string(),
            end_unix_nano: s.end_ns().to_string(),
            start_ms: ms(s.start_ns),
            duration_ms: ms(s.duration_ns),
            status: StatusView {
                code: s.status_code,
                name: status_name(s.status_code),
                message: s.status_message.clone(),
            },
            attributes: Attributes::of(&s.attributes),
            events: s
                .events
                .iter()
                .map(|e| EventView {
                    time_unix_nano: e.time_ns.to_string(),
                    time_ms: ms(e.time_ns),
                    name: e.name.clone(),
                    attributes: Attributes::of(&e.attributes),
                    dropped_attributes_count: e.dropped_attributes,
                })
                .collect(),
            links: s
                .links
                .iter()
                .map(|l| LinkView {
                    trace_id: l.trace_id.to_string(),
                    span_id: l.span_id.to_string(),
                    trace_state: l.trace_state.clone(),
                    attributes: Attributes::of(&l.attributes),
                    dropped_attributes_count: l.dropped_attributes,
                    flags: l.flags,
                })
                .collect(),
            resource: ResourceView::of(&s.resource),
            scope: ScopeView { name: s.scope_name.to_string(), version: s.scope_version.to_string() },
            trace_state: s.trace_state.clone(),
            flags: s.flags,
            dropped_attributes_count: s.dropped_attributes,
            dropped_events_count: s.dropped_events,
            dropped_links_count: s.dropped_links,
        }
    }
}

/// A service or virtual node the store has seen.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub kind: NodeKind,
    pub instances: Vec<String>,
    pub first_seen_ms: f64,
    pub last_seen_ms: f64,
    pub span_count: u64,
}

impl ServiceView {
    pub fn of(s: &ServiceInfo) -> Self {
        Self {
            name: s.name.clone(),
            kind: s.kind,
            instances: s.instances.iter().cloned().collect(),
            first_seen_ms: ms(s.first_seen_ns),
            last_seen_ms: ms(s.last_seen_ns),
            span_count: s.span_count,
        }
    }
}

/// One XLog record as the transaction list shows it: the entry span's attributes and its
/// resource's apart, as in `/api/traces`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub trace_id: String,
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub span_id: String,
    pub service: String,
    pub instance: String,
    pub endpoint: String,
    #[schema(pattern = "^[0-9]+$")]
    pub start_unix_nano: String,
    pub start_ms: f64,
    pub end_ms: f64,
    pub elapsed_ms: f64,
    pub error: bool,
    pub error_message: String,
    /// 0 where the transaction is not HTTP.
    pub http_status: u32,
    pub client_ip: String,
    pub user_id: String,
    pub user_agent: String,
    pub referer: String,
    pub cpu_ms: f64,
    pub alloc_bytes: u64,
    pub sql_count: u32,
    pub sql_ms: f64,
    pub api_count: u32,
    pub api_ms: f64,
    pub attributes: Attributes,
    pub resource: ResourceView,
}

impl TransactionView {
    pub fn of(x: &XLog) -> Self {
        Self {
            trace_id: x.trace_id.to_string(),
            span_id: x.span_id.to_string(),
            service: x.service.to_string(),
            instance: x.instance.to_string(),
            endpoint: x.endpoint.to_string(),
            start_unix_nano: x.start_ns.to_string(),
            start_ms: ms(x.start_ns),
            end_ms: ms(x.end_ns()),
            elapsed_ms: ms(x.elapsed_ns),
            error: x.error,
            error_message: x.error_message.to_string(),
            http_status: x.http_status,
            client_ip: x.client_ip.to_string(),
            user_id: x.user_id.to_string(),
            user_agent: x.user_agent.to_string(),
            referer: x.referer.to_string(),
            cpu_ms: ms(x.cpu_ns),
            alloc_bytes: x.alloc_bytes,
            sql_count: x.sql_count,
            sql_ms: ms(x.sql_ns),
            api_count: x.api_count,
            api_ms: ms(x.api_ns),
            attributes: Attributes::of(&x.attributes),
            resource: ResourceView::of(&x.resource),
        }
    }
}
