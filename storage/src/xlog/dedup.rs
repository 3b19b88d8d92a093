//! Each record once in a scan of the whole table (the SQL `xlog` table), in memory bounded by
//! the copies that could exist rather than by the rows scanned.
//!
//! Copies of a record (a late retry, an entry derived again after a crash) share its end time,
//! and a seal keeps one copy of those it holds, so two copies can only sit in different segments
//! (or in memory) whose time ranges meet, within one partition, at the same end time. A scan
//! therefore works a partition at a time (`Unit`); the end-time ranges where pages of different
//! segments or records in memory meet are *contested*; only rows there are counted, once, by a
//! census that keeps the most complete copy of each (`XLog::completeness`; the first of equals),
//! and every other row is kept without reading its ids.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::scan::identity;
use super::segment::{cols, XLogSegmentMeta, XPage};
use super::XLog;
use crate::codec::corrupt;
use crate::error::StorageError;
use crate::table::{SegmentMeta, PAGE_ROWS};

/// The columns a contested page needs besides those a query asked for.
pub const CENSUS_COLUMNS: [u16; 7] =
    [cols::END, cols::TRACE_ID, cols::SPAN_ID, cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS];

/// One page to read, and the end-time ranges in it where other copies may be.
#[derive(Debug, Clone)]
pub struct PlannedPage {
    pub meta: Arc<XLogSegmentMeta>,
    pub page: u32,
    /// Sorted, disjoint, inclusive.
    pub contested: Vec<(u64, u64)>,
}

impl PlannedPage {
    fn contests(&self, end: u64) -> bool {
        let i = self.contested.partition_point(|r| r.1 < end);
        self.contested.get(i).is_some_and(|r| r.0 <= end)
    }
}

/// A partition's share of a scan: its records in memory and its pages.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub partition: u64,
    pub memory: Vec<XLog>,
    pub pages: Vec<PlannedPage>,
}

/// Who holds the kept copy: a row of a segment, or a record in memory (segment `MEMORY`).
type Holder = (u64, u32);
const MEMORY: u64 = u64::MAX;

/// The kept copy of every contested record of a unit.
#[derive(Debug, Default)]
pub struct Census {
    best: FxHashMap<u128, ((u64, u64), Holder)>,
}

/// Cuts a snapshot into units, one per partition in ascending order, with the pages whose end
/// range meets `[from_ns, to_ns)` and their contested ranges.
pub fn plan(
    memory: Vec<XLog>,
    segments: Vec<XLogSegmentMeta>,
    from_ns: u64,
    to_ns: u64,
    partition_of: impl Fn(u64) -> u64,
) -> Vec<Unit> {
    let mut units: std::collections::BTreeMap<u64, Unit> = Default::default();
    for x in memory {
        let p = partition_of(x.end_ns());
        units.entry(p).or_insert_with(|| Unit { partition: p, ..Default::default() }).memory.push(x);
    }
    for meta in segments {
        let meta = Arc::new(meta);
        let p = meta.partition;
        let u = units.entry(p).or_insert_with(|| Unit { partition: p, ..Default::default() });
        for page in 0..meta.pages() {
            let (lo, hi) = meta.page_time_range(page).unwrap_or_else(|| meta.time_range());
            if hi >= from_ns && lo < to_ns {
                u.pages.push(PlannedPage { meta: meta.clone(), page, contested: Vec::new() });
            }
        }
    }
    for u in units.values_mut() {
        u.contest();
    }
    units.into_values().collect()
}

impl Unit {
    /// Marks where pages meet pages of other segments or records in memory: a sweep over the
    /// sources' end ranges in order of their start.
    fn contest(&mut self) {
        // (lo, hi, source, page index or none for memory)
        let mut sources: Vec<(u64, u64, u64, Option<usize>)> = Vec::new();
        for (i, p) in self.pages.iter().enumerate() {
            let (lo, hi) = p.meta.page_time_range(p.page).unwrap_or_else(|| p.meta.time_range());
            sources.push((lo, hi, p.meta.id, Some(i)));
        }
        sources.extend(self.memory.iter().map(|x| (x.end_ns(), x.end_ns(), MEMORY, None)));
        sources.sort_unstable_by_key(|s| (s.0, s.1));
        let mut open: Vec<(u64, u64, u64, Option<usize>)> = Vec::new();
        let mut found: Vec<(usize, u64, u64)> = Vec::new();
        for cur in sources {
            open.retain(|o| o.1 >= cur.0);
            for o in &open {
                if o.2 == cur.2 {
                    continue;
                }
                let (lo, hi) = (cur.0, o.1.min(cur.1));
                for page in [o.3, cur.3].into_iter().flatten() {
                    found.push((page, lo, hi));
                }
            }
            open.push(cur);
        }
        found.sort_unstable();
        for (page, lo, hi) in found {
            let ranges = &mut self.pages[page].contested;
            match ranges.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => ranges.push((lo, hi)),
            }
        }
    }

    /// Pages the census reads.
    pub fn contested_pages(&self) -> usize {
        self.pages.iter().filter(|p| !p.contested.is_empty()).count()
    }

    /// Counts every contested copy: the memory records, then the contested rows of each page
    /// (`read` fetches a page's `CENSUS_COLUMNS`).
    pub fn census(
        &self,
        mut read: impl FnMut(&PlannedPage) -> Result<Option<XPage<'_>>, StorageError>,
    ) -> Result<Census, StorageError> {
        let mut census = Census::default();
        for (i, x) in self.memory.iter().enumerate() {
            census.offer(identity(&x.trace_id, &x.span_id), x.completeness(), (MEMORY, i as u32));
        }
        for planned in self.pages.iter().filter(|p| !p.contested.is_empty()) {
            let Some(page) = read(planned)? else { continue };
            let rows = Census::contested_rows(planned, &page)?;
            let ids = Ids::of(&page)?;
            for r in rows {
                census.offer(ids.identity(r), ids.completeness(r), (planned.meta.id, row_of(planned.page, r)));
            }
        }
        Ok(census)
    }
}

fn row_of(page: u32, r: usize) -> u32 {
    page * PAGE_ROWS as u32 + r as u32
}

/// The census columns of a page, decoded.
struct Ids {
    trace: Vec<crate::model::TraceId>,
    span: Vec<crate::model::SpanId>,
    counts: [Vec<u64>; 4],
}

impl Ids {
    fn of(page: &XPage<'_>) -> Result<Self, StorageError> {
        let at = |e: StorageError| e.within(|| page.place());
        let [a, b, c, d] = [cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS].map(|c| page.varints(c));
        Ok(Self {
            trace: page.trace_ids(cols::TRACE_ID).map_err(at)?,
            span: page.span_ids(cols::SPAN_ID).map_err(at)?,
            counts: [a.map_err(at)?, b.map_err(at)?, c.map_err(at)?, d.map_err(at)?],
        })
    }

    fn identity(&self, r: usize) -> u128 {
        identity(&self.trace[r], &self.span[r])
    }

    /// As `XLog::completeness`.
    fn completeness(&self, r: usize) -> (u64, u64) {
        let [sql_count, sql_ns, api_count, api_ns] = &self.counts;
        (sql_count[r].saturating_add(api_count[r]), sql_ns[r].saturating_add(api_ns[r]))
    }
}

impl Census {
    fn offer(&mut self, id: u128, c: (u64, u64), holder: Holder) {
        match self.best.get(&id) {
            Some((b, _)) if *b >= c => {}
            _ => {
                self.best.insert(id, (c, holder));
            }
        }
    }

    /// Records counted.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    fn contested_rows(planned: &PlannedPage, page: &XPage<'_>) -> Result<Vec<usize>, StorageError> {
        let ends = page.deltas(cols::END).map_err(|e| e.within(|| page.place()))?;
        Ok((0..page.rows).filter(|&r| planned.contests(ends[r])).collect())
    }

    /// Whether the memory record `i` of the unit is the kept copy.
    pub fn keeps_memory(&self, unit: &Unit, i: usize) -> bool {
        let x = &unit.memory[i];
        self.best.get(&identity(&x.trace_id, &x.span_id)).is_some_and(|(_, h)| *h == (MEMORY, i as u32))
    }

    /// Which rows of a page to keep: all of an uncontested page; of a contested one (fetched with
    /// `CENSUS_COLUMNS`), those outside the contested ranges and the kept copies inside.
    pub fn keeps(&self, planned: &PlannedPage, page: &XPage<'_>) -> Result<Vec<bool>, StorageError> {
        let mut keep = vec![true; page.rows];
        if planned.contested.is_empty() {
            return Ok(keep);
        }
        let ids = Ids::of(page)?;
        for r in Self::contested_rows(planned, page)? {
            let holder = (planned.meta.id, row_of(planned.page, r));
            keep[r] = match self.best.get(&ids.identity(r)) {
                Some((_, h)) => *h == holder,
                None => return Err(corrupt("a contested row the census did not count").within(|| page.place())),
            };
        }
        Ok(keep)
    }
}

#[cfg(test)]
mod tests;
