//! The spans table: every span, partitioned by start time. A segment's rows are sorted by
//! (trace's earliest start, trace id, start): a trace's rows are contiguous, so the trace index
//! (`tindex`) stores a row range per segment and a trace lookup reads only its pages.

mod build;
mod read;

use serde::{Deserialize, Serialize};

pub use build::{build, BuiltSegment};
pub use read::read_rows;

use crate::attr_keys::{AttributeKeys, Key};
use crate::codec::{varint, Reader};
use crate::error::StorageError;
use crate::keys;
#[cfg(test)]
use crate::model::Span;
use crate::model::TraceId;
use crate::table::{SegmentMeta, TableDef};

pub static TABLE: TableDef = TableDef {
    name: "spans",
    meta_prefix: keys::META_SEGMENT_PREFIX,
    resource_column: cols::RESOURCE,
    resource_table_column: cols::RESOURCE_TABLE,
};

/// Column ids of the fixed columns; attribute key `i` of a segment is column `ATTR_BASE + i`.
pub mod cols {
    pub use crate::table::ATTR_BASE;

    pub const TRACE_ID: u16 = 0;
    pub const SPAN_ID: u16 = 1;
    pub const PARENT: u16 = 2;
    pub const SERVICE: u16 = 3;
    pub const NAME: u16 = 4;
    pub const KIND: u16 = 5;
    pub const START: u16 = 6;
    pub const DURATION: u16 = 7;
    pub const STATUS_CODE: u16 = 8;
    pub const STATUS_MESSAGE: u16 = 9;
    pub const SCOPE_NAME: u16 = 10;
    pub const SCOPE_VERSION: u16 = 11;
    pub const TRACE_STATE: u16 = 12;
    pub const FLAGS: u16 = 13;
    pub const DROPPED: u16 = 14;
    pub const EVENTS: u16 = 15;
    pub const LINKS: u16 = 16;
    pub const RESOURCE: u16 = 17;
    /// Page 0 only: the segment's distinct resources.
    pub const RESOURCE_TABLE: u16 = 18;
    /// Every fixed column of a page (the resource table aside).
    pub const FIXED: &[u16] = &[
        TRACE_ID,
        SPAN_ID,
        PARENT,
        SERVICE,
        NAME,
        KIND,
        START,
        DURATION,
        STATUS_CODE,
        STATUS_MESSAGE,
        SCOPE_NAME,
        SCOPE_VERSION,
        TRACE_STATE,
        FLAGS,
        DROPPED,
        EVENTS,
        LINKS,
        RESOURCE,
    ];

    pub fn name(col: u16) -> &'static str {
        match col {
            TRACE_ID => "trace_id",
            SPAN_ID => "span_id",
            PARENT => "parent_span_id",
            SERVICE => "service",
            NAME => "name",
            KIND => "kind",
            START => "start",
            DURATION => "duration",
            STATUS_CODE => "status_code",
            STATUS_MESSAGE => "status_message",
            SCOPE_NAME => "scope_name",
            SCOPE_VERSION => "scope_version",
            TRACE_STATE => "trace_state",
            FLAGS => "flags",
            DROPPED => "dropped_counts",
            EVENTS => "events",
            LINKS => "links",
            RESOURCE => "resource",
            RESOURCE_TABLE => "resource_table",
            _ => "unknown",
        }
    }
}

/// A span segment's meta (JSON under `s` + partition + segment in the `meta` family).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpanSegmentMeta {
    pub partition: u64,
    pub id: u64,
    pub rows: u32,
    pub min_start_ns: u64,
    pub max_end_ns: u64,
    /// Attribute keys, in column order from `cols::ATTR_BASE`.
    pub attr_keys: Vec<Key>,
    pub resources: u32,
    /// Stored bytes of all chunks (compressed).
    pub bytes: u64,
    /// (earliest, latest) start of each page; absent in segments written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub page_starts: Vec<(u64, u64)>,
}

impl SegmentMeta for SpanSegmentMeta {
    const TABLE: &'static TableDef = &TABLE;

    fn partition(&self) -> u64 {
        self.partition
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn rows(&self) -> u32 {
        self.rows
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn attr_keys(&self) -> &[Key] {
        &self.attr_keys
    }

    fn intern(&mut self, keys: &AttributeKeys) {
        keys.intern(&mut self.attr_keys, self.partition);
    }

    fn resources(&self) -> u32 {
        self.resources
    }

    /// By start time, the table's time column; the latest end bounds the latest start.
    fn time_range(&self) -> (u64, u64) {
        (self.min_start_ns, self.max_end_ns)
    }

    fn page_time_range(&self, page: u32) -> Option<(u64, u64)> {
        self.page_starts.get(page as usize).copied()
    }
}

/// Where a trace's rows sit in a segment: rows are contiguous because segments sort by trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRows {
    pub trace_id: TraceId,
    pub first_row: u32,
    pub count: u32,
}

impl TraceRows {
    pub fn encode_value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(6);
        varint::put(&mut v, u64::from(self.first_row));
        varint::put(&mut v, u64::from(self.count));
        v
    }

    pub fn decode_value(trace_id: TraceId, v: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(v);
        Ok(Self { trace_id, first_row: r.varint_u32()?, count: r.varint_u32()? })
    }
}

#[cfg(test)]
mod tests;
