//! The span as the store keeps it: OTLP's data model, validated, with resources shared.

use std::sync::Arc;

pub use crate::ids::{SpanId, TraceId};

/// OTLP span kinds, as their wire integers.
pub mod kind {
    pub const UNSPECIFIED: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const SERVER: u8 = 2;
    pub const CLIENT: u8 = 3;
    pub const PRODUCER: u8 = 4;
    pub const CONSUMER: u8 = 5;

    pub fn name(kind: u8) -> &'static str {
        match kind {
            INTERNAL => "internal",
            SERVER => "server",
            CLIENT => "client",
            PRODUCER => "producer",
            CONSUMER => "consumer",
            _ => "unspecified",
        }
    }
}

/// OTLP status codes.
pub mod status {
    pub const UNSET: u8 = 0;
    pub const OK: u8 = 1;
    pub const ERROR: u8 = 2;
}

/// An attribute value (OTLP `AnyValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    KvList(Vec<KeyValue>),
}

/// A name shared by every span that carries it (attribute keys, services, scopes): decoders
/// intern them, so a span holds a pointer, not a copy.
pub type Key = Arc<str>;

pub type KeyValue = (Key, Value);

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The resource of a batch of spans: shared by every span that came with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
}

impl Resource {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The instance a span ran on, by the most specific attribute present.
    pub fn instance(&self) -> Option<&str> {
        ["service.instance.id", "k8s.pod.name", "host.name", "container.id"].iter().find_map(|k| self.get_str(k))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time_ns: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes: u32,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    /// `service.name` of the resource, kept beside it because nearly every query filters on it.
    pub service: Key,
    pub name: String,
    pub kind: u8,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub status_code: u8,
    pub status_message: String,
    pub scope_name: Key,
    pub scope_version: Key,
    /// Keys are unique (the collector keeps the last of duplicates, as OTLP SDKs do): sealed
    /// segments store one column per key.
    pub attributes: Vec<KeyValue>,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    pub dropped_attributes: u32,
    pub dropped_events: u32,
    pub dropped_links: u32,
    pub resource: Arc<Resource>,
}

impl Span {
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// The first of several attribute names present: semantic conventions renamed many of them.
    pub fn attribute_str_any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.attribute(k).and_then(Value::as_str))
    }
}
