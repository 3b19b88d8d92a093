//! XLog: one record per finished transaction (Scouter's XLog), the table behind the scatter and
//! the transaction list. Records come from two places that must look alike to every query: agents
//! speaking the native protocol, and derivation from OTLP entry spans (`crate::apm::derive`).
//!
//! `segment`: the table on the table layer; `wal`: native records in the write-ahead log;
//! `filter`: which records a read wants; `scan`, `points`, `records`: the scatter and the list;
//! `read`: the store's entry points.

pub mod dedup;
mod filter;
mod points;
mod read;
mod records;
mod scan;
pub mod segment;
pub mod wal;

pub use filter::{value_text, Metric, XLogFilter};
pub use points::Points;

use std::ops::Deref;
use std::sync::Arc;

use crate::model::{KeyValue, Resource, SpanId, TraceId, Value};

/// A record's attributes: its own (native records, records read back from segments), or those of
/// the entry span it was derived from (`Derived`: the segment encoder computes the fields
/// derivation took from them rather than storing them twice). The latter are a copy of the span's
/// list, not the span: a
/// record waits for its trace's children for seconds after its span was sealed, and holding the
/// whole span that long cost the deriver about 860 bytes a record. Keys and string values are
/// shared names, and bytes, arrays and lists shared slices: the copy is one allocation and
/// reference counts, however deep the values nest.
#[derive(Debug, Clone)]
pub enum Attributes {
    Own(Vec<KeyValue>),
    Derived(Box<[KeyValue]>),
}

impl Deref for Attributes {
    type Target = [KeyValue];

    fn deref(&self) -> &[KeyValue] {
        match self {
            Attributes::Own(v) => v,
            Attributes::Derived(a) => a,
        }
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes::Own(Vec::new())
    }
}

impl From<Vec<KeyValue>> for Attributes {
    fn from(v: Vec<KeyValue>) -> Self {
        Attributes::Own(v)
    }
}

impl FromIterator<KeyValue> for Attributes {
    fn from_iter<I: IntoIterator<Item = KeyValue>>(iter: I) -> Self {
        Attributes::Own(iter.into_iter().collect())
    }
}

/// One transaction. Its texts are shared strings: a record derived from a span points at the
/// span's own (interned) name and values, and records read from a page at the page's dictionary
/// entries, rather than each holding copies (records wait in memory for their children, many
/// thousands at a time).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XLog {
    pub trace_id: TraceId,
    /// The entry span's id: with the trace id, the record's identity (a retry repeats it).
    pub span_id: SpanId,
    pub service: Arc<str>,
    pub instance: Arc<str>,
    pub endpoint: Arc<str>,
    pub start_ns: u64,
    pub elapsed_ns: u64,
    pub error: bool,
    pub error_message: Arc<str>,
    /// 0 when not an HTTP transaction.
    pub http_status: u32,
    pub client_ip: Arc<str>,
    pub user_id: Arc<str>,
    pub user_agent: Arc<str>,
    pub referer: Arc<str>,
    /// 0 where the agent does not measure it (OTLP spans carry neither).
    pub cpu_ns: u64,
    pub alloc_bytes: u64,
    pub sql_count: u32,
    pub sql_ns: u64,
    pub api_count: u32,
    pub api_ns: u64,
    /// Free-form attributes: the agent's, or the entry span's.
    pub attributes: Attributes,
    /// The entry span's resource, shared with the spans of its request; empty for native records.
    /// Sealed segments keep a table of distinct resources, as span segments do.
    pub resource: Arc<Resource>,
}

impl XLog {
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.elapsed_ns)
    }

    /// How much of its transaction a copy of a record has seen: copies of one record (a late
    /// retry, an entry derived again after a crash) differ only in the children they counted,
    /// and every read keeps the copy that counted most.
    pub fn completeness(&self) -> (u64, u64) {
        (u64::from(self.sql_count) + u64::from(self.api_count), self.sql_ns.saturating_add(self.api_ns))
    }

    /// About what the record holds in memory, its resource aside: its attribute list and values
    /// (counted whole, though a derived record shares the values with its span), its name and
    /// its error message. Texts taken from the attributes are shared with them, not counted again.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<XLog>()
            + crate::model::ARC_HEADER
            + self.endpoint.len()
            + self.error_message.len()
            + crate::model::kvs_bytes(&self.attributes)
    }

    /// An attribute of the record or, failing that, of its resource.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| &**k == key).map(|(_, v)| v).or_else(|| self.resource.get(key))
    }
}
