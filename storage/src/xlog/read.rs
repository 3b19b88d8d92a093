//! The store's XLog reads: a snapshot of the matching records in memory (memtables and the
//! deriver's provisional records), then the sealed segments, without holding the memtable lock
//! while segments are read.

use super::filter::XLogFilter;
use super::points::{self, Points};
use super::records;
use super::scan::Sources;
use super::segment::XLogSegmentMeta;
use super::XLog;
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
        let memory: Vec<XLog> = {
            // Both under one hold of the state lock: a seal moves final records from the deriver
            // into the memtable under it, and between two separate reads a record would be in
            // neither.
            let st = self.state.read();
            // The time range is known before a record's children are counted; the rest of the
            // filter may ask about those counts.
            let in_range = |x: &XLog| (filter.from_ns..filter.to_ns).contains(&x.end_ns());
            let provisional = self.deriver.lock().provisional(in_range);
            let frozen = st.frozen.iter().flat_map(|f| f.xlogs.iter());
            let mut m: Vec<XLog> =
                st.active.xlogs.iter().chain(frozen).filter(|x| filter.matches(x)).cloned().collect();
            m.extend(provisional.into_iter().filter(|x| filter.matches(x)));
            m
        };
        let (lo, hi) = (self.partition_of(filter.from_ns), self.partition_of(filter.to_ns));
        let segments = self.xlog.segments(lo, hi, filter.from_ns, filter.to_ns);
        (memory, segments)
    }

    fn fetch_x(&self, meta: &XLogSegmentMeta, want: &[(u16, u32)]) -> Fetched {
        self.fetch_chunks(meta.partition, meta.id, want)
    }
}
