//! What an XLog read scans: the records in memory and the sealed segments, pruned by the filter
//! (time, services, attribute keys) and walked newest first so the limit's floor rises early.

use super::filter::XLogFilter;
use super::segment::XLogSegmentMeta;
use super::XLog;
use crate::model::{SpanId, TraceId};
use crate::table::{self, Fetched};

/// A record's identity folded into 128 bits for the deduplication set: equal for equal ids, and
/// distinct ids collide with a chance of about n² / 2^128.
pub(super) fn identity(trace_id: &TraceId, span_id: &SpanId) -> u128 {
    u128::from_le_bytes(trace_id.0) ^ u128::from(u64::from_le_bytes(span_id.0)).rotate_left(32)
}

/// What a scan reads: records in memory and sealed segments with a way to fetch their chunks.
pub struct Sources<'a, F: Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched> {
    pub memory: &'a [XLog],
    pub segments: Vec<&'a XLogSegmentMeta>,
    pub fetch: F,
}

impl<F: Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched> Sources<'_, F> {
    /// Pages that may hold matches, latest segments first so the limit's floor rises early.
    /// Records that may match, at most: sizes the buffers of a scan.
    pub(super) fn estimate(&self, filter: &XLogFilter) -> usize {
        self.memory.len()
            + self.segments.iter().filter(|m| filter.may_match_segment(m)).map(|m| m.rows as usize).sum::<usize>()
    }

    pub(super) fn pages(&self, filter: &XLogFilter) -> Vec<(&XLogSegmentMeta, u32)> {
        let segs: Vec<&XLogSegmentMeta> =
            self.segments.iter().copied().filter(|m| filter.may_match_segment(m)).collect();
        table::pages_newest_first(&segs, filter.from_ns, filter.to_ns)
    }
}

#[cfg(test)]
mod tests;
