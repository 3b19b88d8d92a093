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
    /// Shared like names: decoders intern a request's short values (methods, hosts, statements
    /// repeat across its spans), so most spans hold a pointer rather than an allocation each.
    Str(Arc<str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    // Shared slices, not vectors: they are never grown once decoded; the eight bytes a vector's
    // capacity would add to every value (every attribute of every span held in memory) are a
    // sixth of an attribute's size; and a copy of a span's attributes (an XLog record's, while it
    // waits for children) shares them instead of copying a nest of arrays value by value.
    Bytes(Arc<[u8]>),
    Array(Arc<[Value]>),
    KvList(Arc<[KeyValue]>),
}

/// A name shared by every span that carries it (attribute keys, services, scopes): decoders
/// intern them, so a span holds a pointer, not a copy.
pub type Key = Arc<str>;

pub type KeyValue = (Key, Value);

impl Value {
    /// Bytes the value allocates beyond its own size. Inlined for the flat values every list is
    /// mostly made of (this runs for each attribute of each span ingested); nested ones recurse.
    #[inline]
    pub fn heap_bytes(&self) -> usize {
        match self {
            // Counted whole even when shared: what bounds unsealed spans stays an upper bound.
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Empty | Value::Bool(_) | Value::Int(_) | Value::Double(_) => 0,
            Value::Array(_) | Value::KvList(_) => self.nested_heap_bytes(),
        }
    }

    #[inline(never)]
    fn nested_heap_bytes(&self) -> usize {
        match self {
            Value::Array(items) => {
                std::mem::size_of_val::<[Value]>(items) + items.iter().map(Value::heap_bytes).sum::<usize>()
            }
            Value::KvList(kvs) => kvs_bytes(kvs),
            _ => self.heap_bytes(),
        }
    }

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
    /// About what the resource holds in memory: its list and values (keys are shared names).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Resource>() + ARC_HEADER + kvs_bytes(&self.attributes)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The instance a span ran on, by the most specific attribute present.
    pub fn instance(&self) -> Option<&str> {
        self.shared_instance().map(|s| &**s)
    }

    /// `instance`, as the attribute's own shared string.
    pub fn shared_instance(&self) -> Option<&Arc<str>> {
        ["service.instance.id", "k8s.pod.name", "host.name", "container.id"].iter().find_map(|k| match self.get(k) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        })
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
    /// Interned like keys: a request's spans repeat a few operation names.
    pub name: Key,
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

/// The reference counts in front of every `Arc`'s value: counted with what an `Arc` holds.
pub(crate) const ARC_HEADER: usize = 16;

/// Heap bytes of attributes, not counting their keys (shared names).
pub(crate) fn kvs_bytes(kvs: &[KeyValue]) -> usize {
    std::mem::size_of_val(kvs) + kvs.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>()
}

impl Span {
    /// About what the span holds in memory (its allocations; keys, service, scope and the
    /// resource not counted; its name and string values counted whole even when a request
    /// shares them, so this stays an upper bound): what bounds the spans kept unsealed, rather
    /// than their far smaller log records.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Span>()
            + ARC_HEADER
            + self.trace_state.capacity()
            + self.name.len()
            + self.status_message.capacity()
            + kvs_bytes(&self.attributes)
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.events.iter().map(|e| e.name.capacity() + kvs_bytes(&e.attributes)).sum::<usize>()
            + self.links.capacity() * std::mem::size_of::<Link>()
            + self.links.iter().map(|l| l.trace_state.capacity() + kvs_bytes(&l.attributes)).sum::<usize>()
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn a_span_counts_the_memory_its_values_hold_not_its_shared_names() {
        let plain = testing::span(1, 1).build();
        let big = Value::Array([Value::Str("x".repeat(10_000).into()), Value::Bytes(vec![0; 5_000].into())].into());
        let heavy = testing::span(1, 1).attrs(&[("k", big)]).build();
        assert!(heavy.memory_bytes() >= plain.memory_bytes() + 15_000, "{}", heavy.memory_bytes());
        let long_key: &str = &"k".repeat(10_000);
        let named = testing::span(1, 1).attrs(&[(long_key, Value::Int(1))]).build();
        assert!(named.memory_bytes() < plain.memory_bytes() + 1_000, "keys are shared, counted once elsewhere");
    }
}
