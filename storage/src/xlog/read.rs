//! The store's XLog reads: a snapshot of the matching records in memory (memtables and the
//! deriver's provisional records), then the sealed segments, without holding the memtable lock
//! while segments are read.

use super::filter::XLogFilter;
use super::points::{self, Points};
use super::records;
use super::scan::Sources;
use super::segment::XLogSegmentMeta;
use super::XLog;
use crate::apm::derive::Provisional;
use crate::error::StorageError;
use crate::store::Store;
use crate::table::Fetched;

impl Store {
    /// Scatter points of the matching transactions (the `filter.limit` most recent).
    pub fn xlog_points(&self, filter: &XLogFilter) -> Result<Points, StorageError> {
        let (memory, segments) = self.xlog_sources(filter);
        let src = Sources { memory: &memory, segments: segments.iter().collect(), fetch: |m, w| self.fetch_x(m, w) };
        points::points(&src, filter)
    }

    /// Full records of the matching transactions, oldest first, and whether the limit cut some.
    pub fn xlog_records(&self, filter: &XLogFilter) -> Result<(Vec<XLog>, bool), StorageError> {
        let (memory, segments) = self.xlog_sources(filter);
        let src = Sources { memory: &memory, segments: segments.iter().collect(), fetch: |m, w| self.fetch_x(m, w) };
        records::records(&src, filter)
    }

    fn xlog_sources(&self, filter: &XLogFilter) -> (Vec<XLog>, Vec<XLogSegmentMeta>) {
        // The time range is known before a record's children are counted; the rest of the
        // filter may ask about those counts.
        let in_range = |x: &XLog| (filter.from_ns..filter.to_ns).contains(&x.end_ns());
        let (finals, provisional) = self.unsealed_xlogs(in_range);
        let mut memory: Vec<XLog> = finals.iter().filter(|x| filter.matches(x)).map(|x| XLog::clone(x)).collect();
        memory.extend(provisional.into_iter().map(Provisional::complete).filter(|x| filter.matches(x)));
        let (lo, hi) = (self.partition_of(filter.from_ns), self.partition_of(filter.to_ns));
        let segments = self.xlog.segments(lo, hi, filter.from_ns, filter.to_ns);
        (memory, segments)
    }

    fn fetch_x(&self, meta: &XLogSegmentMeta, want: &[(u16, u32)]) -> Fetched {
        self.fetch_chunks(meta.partition, meta.id, want)
    }
}
