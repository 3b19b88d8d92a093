//! Reading one table's pages and memory rows into record batches, the pushed filters applied
//! exactly: a page outside the time range is not read, a page inside it is read without its time
//! column, and a page whose filter columns match nothing is read no further.

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::Result;
use rewind_storage::table::page::Page;
use rewind_storage::table::SegmentMeta;
use rewind_storage::{StorageError, Store};

use crate::columns::{stored_columns, Column, Needs};
use crate::hints::{Hints, Keys};
use crate::pushdown::Pushed;
use crate::scan::storage_error;

/// Memory rows per batch.
pub const BATCH_ROWS: usize = 8192;

/// How an equality filter is matched.
#[derive(Clone, Copy)]
pub enum Match {
    /// A dictionary column: once per distinct value of the page.
    Dict,
    TraceId,
}

/// A column equality can be pushed on: its stored column and its value in a memory row.
pub struct EqColumn<R: 'static> {
    pub name: &'static str,
    pub stored: u16,
    pub matching: Match,
    pub of_row: fn(&R) -> String,
}

/// A table as the scan sees it.
pub struct TableScanDef<M: 'static, R: 'static> {
    pub name: &'static str,
    pub columns: &'static [Column<M, R>],
    /// The stored time column (delta-encoded nanoseconds) and a memory row's time.
    pub time_column: u16,
    pub row_time: fn(&R) -> u64,
    pub equals: &'static [EqColumn<R>],
}

/// One scan's fixed choices: the table, the projected columns, the pushed filters.
pub struct Reader<M: 'static, R: 'static> {
    pub def: &'static TableScanDef<M, R>,
    pub projection: Vec<&'static Column<M, R>>,
    pub schema: SchemaRef,
    pub pushed: Pushed,
    /// The attribute and resource keys the query reads (`crate::hints`).
    pub keys: (Keys, Keys),
}

impl<M: SegmentMeta, R> Reader<M, R> {
    pub fn new(
        def: &'static TableScanDef<M, R>,
        projection: Option<&Vec<usize>>,
        pushed: Pushed,
        hints: &Hints,
    ) -> Self {
        let projection: Vec<&'static Column<M, R>> = match projection {
            Some(p) => p.iter().map(|&i| &def.columns[i]).collect(),
            None => def.columns.iter().collect(),
        };
        let schema = crate::columns::schema_of_refs(&projection);
        Self { def, projection, schema, pushed, keys: (hints.attributes(), hints.resource()) }
    }

    /// Whether a memory row passes the pushed filters.
    pub fn passes(&self, r: &R) -> bool {
        self.pushed.passes_time((self.def.row_time)(r))
            && self.pushed.equals.iter().all(|(c, v)| self.eq_column(c).is_some_and(|e| (e.of_row)(r) == *v))
    }

    fn eq_column(&self, name: &str) -> Option<&'static EqColumn<R>> {
        self.def.equals.iter().find(|e| e.name == name)
    }

    /// Memory rows (already filtered) as one batch.
    pub fn rows_batch(&self, rows: &[R]) -> Result<RecordBatch> {
        let arrays = self.projection.iter().map(|c| (c.rows)(rows)).collect();
        batch(self.schema.clone(), arrays, rows.len())
    }

    /// A column of a page: the resource map narrowed to the keys the query reads (the attribute
    /// map holds only the keys fetched already).
    fn page_array(&self, c: &Column<M, R>, page: &Page<'_, M>) -> Result<ArrayRef, StorageError> {
        match (c.needs, &self.keys.1) {
            (Needs::Resource, keys @ Keys::Only(_)) => crate::columns::page_resources_of(page, keys),
            _ => (c.page)(page),
        }
    }

    /// The columns read, and the keys of the maps where the query reads only some.
    pub fn columns(&self) -> String {
        let mut out = self.projection.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
        for (name, keys) in [("attributes", &self.keys.0), ("resource", &self.keys.1)] {
            if let (Keys::Only(k), true) = (keys, self.projection.iter().any(|c| c.name == name)) {
                out.push_str(&format!("; {name} keys [{}]", k.iter().cloned().collect::<Vec<_>>().join(", ")));
            }
        }
        out
    }

    /// Whether a page's time range meets the pushed one.
    pub fn page_in_range(&self, meta: &M, page: u32) -> bool {
        let (lo, hi) = meta.page_time_range(page).unwrap_or_else(|| meta.time_range());
        hi >= self.pushed.from && lo < self.pushed.to
    }

    /// One page as a batch of the rows passing the pushed filters and `keep` (a further mask,
    /// computed from a page holding the `keep_columns`); `None` when no row does.
    pub fn page_batch(
        &self,
        store: &Store,
        meta: &M,
        page: u32,
        keep_columns: &[u16],
        keep: impl FnOnce(&Page<'_, M>) -> Result<Vec<bool>, StorageError>,
    ) -> Result<Option<RecordBatch>> {
        let at = |e: StorageError| storage_error(e.within(|| format!("{} page {page}", meta.place())));
        let (lo, hi) = meta.page_time_range(page).unwrap_or_else(|| meta.time_range());
        if hi < self.pushed.from || lo >= self.pushed.to {
            return Ok(None);
        }
        let needs_time = lo < self.pushed.from || hi >= self.pushed.to;
        let mut filter_columns: Vec<u16> = keep_columns.to_vec();
        if needs_time {
            filter_columns.push(self.def.time_column);
        }
        for (c, _) in &self.pushed.equals {
            filter_columns.extend(self.eq_column(c).map(|e| e.stored));
        }
        filter_columns.sort_unstable();
        filter_columns.dedup();
        let rows = meta.page_rows(page);
        let mut mask: Option<Vec<bool>> = None;
        if !filter_columns.is_empty() {
            let probe = match store.read_page(meta, page, &filter_columns) {
                Ok(p) => p,
                Err(StorageError::PartitionDropped(_)) => return Ok(None),
                Err(e) => return Err(at(e)),
            };
            let mut m = if keep_columns.is_empty() { vec![true; rows] } else { keep(&probe).map_err(at)? };
            if needs_time {
                let times = probe.deltas(self.def.time_column).map_err(at)?;
                m.iter_mut().zip(times).for_each(|(k, t)| *k &= self.pushed.passes_time(t));
            }
            for (c, v) in &self.pushed.equals {
                let Some(e) = self.eq_column(c) else { continue };
                let hits = match e.matching {
                    Match::Dict => probe.dict_matches(e.stored, |s| s == v).map_err(at)?,
                    Match::TraceId => {
                        // Stored ids print as 32 lowercase hex digits: any other text matches none.
                        let wanted = rewind_storage::TraceId::parse_hex(v).ok().filter(|id| id.to_string() == *v);
                        let ids = probe.trace_ids(e.stored).map_err(at)?;
                        ids.iter().map(|id| Some(*id) == wanted).collect()
                    }
                };
                m.iter_mut().zip(hits).for_each(|(k, h)| *k &= h);
            }
            if !m.iter().any(|k| *k) {
                return Ok(None);
            }
            mask = Some(m);
        }
        let columns = stored_columns(&self.projection, meta, &self.keys.0);
        let arrays = if columns.is_empty() {
            Vec::new()
        } else {
            let full = match store.read_page(meta, page, &columns) {
                Ok(p) => p,
                Err(StorageError::PartitionDropped(_)) => return Ok(None),
                Err(e) => return Err(at(e)),
            };
            self.projection.iter().map(|c| self.page_array(c, &full)).collect::<Result<Vec<_>, _>>().map_err(at)?
        };
        let b = batch(self.schema.clone(), arrays, rows)?;
        match mask {
            Some(m) if !m.iter().all(|k| *k) => Ok(Some(filter_record_batch(&b, &BooleanArray::from(m))?)),
            _ => Ok(Some(b)),
        }
    }
}

/// The equalities a table pushes (its `Pushable`) are those its scan can match (its `EqColumn`s):
/// one pushed without a matcher would be reported exact and applied to nothing.
#[cfg(test)]
pub fn assert_matchable<M, R>(def: &TableScanDef<M, R>, pushable: &crate::pushdown::Pushable) {
    let mut pushed: Vec<&str> = pushable.equals.to_vec();
    let mut matched: Vec<&str> = def.equals.iter().map(|e| e.name).collect();
    pushed.sort_unstable();
    matched.sort_unstable();
    assert_eq!(pushed, matched, "{}", def.name);
    assert!(def.columns.iter().any(|c| c.name == pushable.time), "{}", def.name);
}

/// A batch, also of no columns (`count(*)` projects none): its row count kept.
pub fn batch(schema: SchemaRef, arrays: Vec<datafusion::arrow::array::ArrayRef>, rows: usize) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(schema, arrays, &RecordBatchOptions::new().with_row_count(Some(rows)))?)
}

/// Splits `items` round-robin into at most `n` non-empty parts.
pub fn deal<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let mut parts: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
    for (i, it) in items.into_iter().enumerate() {
        parts[i % n].push(it);
    }
    parts
}
