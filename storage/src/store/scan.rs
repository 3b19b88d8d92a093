//! What a scan of a whole table reads (the SQL tables' providers): a snapshot of the rows still
//! in memory and of the sealed segments, taken under one hold of the state lock so that each
//! row is in exactly one of the two (a seal adds its segments and drops its frozen memtable under
//! that lock), and pages read with projection, every chunk counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Store;
use crate::apm::derive::Provisional;
use crate::error::StorageError;
use crate::model::Span;
use crate::spans::SpanSegmentMeta;
use crate::table::page::Page;
use crate::table::SegmentMeta;
use crate::xlog::segment::XLogSegmentMeta;
use crate::xlog::XLog;

/// A table's rows at one instant: those in memory and the sealed segments that may hold rows of
/// the range asked for (pruned by partition and segment time range; pages are the reader's).
pub struct Snapshot<M, R> {
    pub memory: Vec<R>,
    pub segments: Vec<M>,
}

impl Store {
    /// Spans starting in `[from_ns, to_ns)`: memory rows filtered exactly, segments pruned.
    pub fn span_snapshot(&self, from_ns: u64, to_ns: u64) -> Snapshot<SpanSegmentMeta, Arc<Span>> {
        let st = self.state.read();
        let memory = std::iter::once(&st.active)
            .chain(st.frozen.as_deref())
            .flat_map(|m| m.spans().iter())
            .filter(|s| s.start_ns >= from_ns && s.start_ns < to_ns)
            .cloned()
            .collect();
        let segments = self.segments_of(&self.spans, from_ns, to_ns);
        Snapshot { memory, segments }
    }

    /// Transactions ending in `[from_ns, to_ns)`: memory rows (final and provisional) filtered
    /// exactly, segments pruned. Copies of a record may be in both: see `crate::xlog::dedup`.
    pub fn xlog_snapshot(&self, from_ns: u64, to_ns: u64) -> Snapshot<XLogSegmentMeta, XLog> {
        let (mut finals, mut provisional) = self.unsealed_xlogs(|x| (from_ns..to_ns).contains(&x.end_ns()));
        // In the order a seal writes them: the deriver's order follows its hash map, and an
        // order-sensitive aggregate (`approx_percentile_cont`) would answer the same data
        // differently from one run to the next. Pointers are sorted, not records (248 bytes
        // each), and merged; of two equal copies the final one comes first (the dedup keeps the
        // first of equals).
        let order = |x: &XLog| (x.end_ns(), x.trace_id, x.span_id);
        finals.sort_by_key(|x| order(x));
        provisional.sort_by_key(|p| order(p.record()));
        let mut memory = Vec::with_capacity(finals.len() + provisional.len());
        let mut provisional = provisional.into_iter().peekable();
        for f in finals {
            while let Some(p) = provisional.next_if(|p| order(p.record()) < order(&f)) {
                memory.push(p.complete());
            }
            memory.push(XLog::clone(&f));
        }
        memory.extend(provisional.map(Provisional::complete));
        let segments = self.segments_of(&self.xlog, from_ns, to_ns);
        Snapshot { memory, segments }
    }

    /// The unsealed transactions `keep` accepts, final (the memtables) and provisional (the
    /// deriver), as pointers: taken under one hold of the state lock (a seal moves final records
    /// from the deriver into the memtable under it, and between two separate reads a record would
    /// be in neither), and copied, counted and filtered by the caller once both locks, which the
    /// write path needs, are let go.
    pub(crate) fn unsealed_xlogs(&self, keep: impl Fn(&XLog) -> bool) -> (Vec<Arc<XLog>>, Vec<Provisional>) {
        let st = self.state.read();
        let finals = std::iter::once(&st.active)
            .chain(st.frozen.as_deref())
            .flat_map(|m| m.xlogs.iter())
            .filter(|x| keep(x))
            .cloned()
            .collect();
        let provisional = self.deriver.lock().provisional(&keep);
        (finals, provisional)
    }

    fn segments_of<M: SegmentMeta>(&self, table: &crate::table::Table<M>, from_ns: u64, to_ns: u64) -> Vec<M> {
        if from_ns >= to_ns {
            return Vec::new();
        }
        let (lo, hi) = (self.partition_of(from_ns), self.partition_of(to_ns - 1));
        table.segments(lo, hi, from_ns, to_ns)
    }

    /// The columns `columns` of one page of a segment (projection: nothing else is read).
    /// `PartitionDropped` when retention dropped the segment since the snapshot.
    pub fn read_page<'m, M: SegmentMeta>(
        &self,
        meta: &'m M,
        page: u32,
        columns: &[u16],
    ) -> Result<Page<'m, M>, StorageError> {
        Page::fetch(meta, page, columns, |want| self.fetch_chunks(meta.partition(), meta.id(), want))
    }

    /// Chunks fetched by every read since the store was opened.
    pub fn chunks_read(&self) -> u64 {
        self.chunks_read.load(Ordering::Relaxed)
    }
}
