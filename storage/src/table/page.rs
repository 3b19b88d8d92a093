//! Reading one page of a segment: the chunks of the columns asked for (projection), fetched
//! together, decompressed and decoded on demand. Every decoder checks its input; errors name the
//! column, and callers add the segment and page (`Page::place`).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use super::resources::ResourceTable;
use super::{Fetched, SegmentMeta, ATTR_BASE};
use crate::codec::{column as col, corrupt};
use crate::error::StorageError;
use crate::model::{Key, Resource, SpanId, TraceId, Value};

/// One attribute column of a page: its key, and each row's value if it has one.
pub type AttrValues<'m> = (&'m Key, Vec<Option<Value>>);

pub struct Page<'m, M> {
    pub meta: &'m M,
    pub page: u32,
    /// Rows in this page.
    pub rows: usize,
    /// The columns asked for.
    wanted: Vec<u16>,
    /// The columns fetched, `stored` in the same order: those asked for that the segment stores,
    /// and the sources of those it computes.
    fetched: Vec<u16>,
    stored: Vec<Option<Vec<u8>>>,
    /// Bodies of the columns asked for that the segment computes (`SegmentMeta::computed_from`),
    /// computed when first read: a reader that stops at an earlier column does not pay for them.
    computed: Vec<(u16, OnceCell<Vec<u8>>)>,
}

impl<'m, M: SegmentMeta> Page<'m, M> {
    /// Fetches the columns of page `page` (the resource table from page 0, where it lives).
    pub fn fetch(
        meta: &'m M,
        page: u32,
        columns: &[u16],
        fetch: impl FnOnce(&[(u16, u32)]) -> Fetched,
    ) -> Result<Self, StorageError> {
        meta.check()?;
        if page >= meta.pages() {
            return Err(corrupt(&format!("page {page} of {}", meta.pages())).within(|| meta.place()));
        }
        let table = M::TABLE.resource_table_column;
        let mut to_compute = Vec::new();
        let mut fetched: Vec<u16> = Vec::with_capacity(columns.len());
        for &c in columns {
            match meta.computed_from(c) {
                Some(sources) => {
                    to_compute.push(c);
                    fetched.extend(sources);
                }
                None => fetched.push(c),
            }
        }
        if !to_compute.is_empty() {
            let mut seen = rustc_hash::FxHashSet::default();
            fetched.retain(|c| seen.insert(*c));
        }
        let want: Vec<(u16, u32)> = fetched.iter().map(|c| (*c, if *c == table { 0 } else { page })).collect();
        let stored = fetch(&want)?;
        let computed = to_compute.into_iter().map(|c| (c, OnceCell::new())).collect();
        Ok(Self { meta, page, rows: meta.page_rows(page), wanted: columns.to_vec(), fetched, stored, computed })
    }

    /// "spans partition 12 segment 40 page 3": where an error about this page's data happened.
    pub fn place(&self) -> String {
        format!("{} page {}", self.meta.place(), self.page)
    }

    /// The column's page body; `None` for an attribute column with no values in this page.
    pub fn body(&self, c: u16) -> Result<Option<Cow<'_, [u8]>>, StorageError> {
        if let Some((_, cell)) = self.computed.iter().find(|(w, _)| *w == c) {
            if cell.get().is_none() {
                let body = M::compute(self, c).map_err(|e| e.within(|| format!("column {c}, computed")))?;
                let _ = cell.set(body);
            }
            return Ok(cell.get().map(|b| Cow::Borrowed(b.as_slice())));
        }
        let i = self.fetched.iter().position(|w| *w == c).expect("column was fetched");
        let column = || format!("column {c}");
        match self.stored[i].as_deref() {
            Some(chunk) => Ok(Some(col::decompress(chunk).map_err(|e| e.within(column))?)),
            None if c >= ATTR_BASE => Ok(None),
            None => Err(corrupt("missing chunk").within(column)),
        }
    }

    /// The body of a column every page has.
    pub fn fixed(&self, c: u16) -> Result<Cow<'_, [u8]>, StorageError> {
        self.body(c)?.ok_or_else(|| corrupt("missing chunk").within(|| format!("column {c}")))
    }

    pub fn varints(&self, c: u16) -> Result<Vec<u64>, StorageError> {
        col::decode_varints(&self.fixed(c)?, self.rows)
    }

    pub fn u8s(&self, c: u16) -> Result<Vec<u8>, StorageError> {
        col::decode_u8(&self.fixed(c)?, self.rows)
    }

    pub fn deltas(&self, c: u16) -> Result<Vec<u64>, StorageError> {
        col::decode_delta(&self.fixed(c)?, self.rows)
    }

    pub fn trace_ids(&self, c: u16) -> Result<Vec<TraceId>, StorageError> {
        col::decode_trace_ids(&self.fixed(c)?, self.rows)
    }

    pub fn span_ids(&self, c: u16) -> Result<Vec<SpanId>, StorageError> {
        col::decode_span_ids(&self.fixed(c)?, self.rows)
    }

    /// Strings of rows `range` (index 0 is row `range.start`).
    pub fn strings(&self, c: u16, range: Range<usize>) -> Result<Vec<String>, StorageError> {
        col::decode_dict_range(&self.fixed(c)?, self.rows, range)
    }

    /// A string column's rows `range` (indexed from `range.start`), one shared copy per distinct
    /// value of the page: for names many rows repeat (services, scopes, span names). Copies are
    /// made for the values the range holds, not the whole dictionary (a trace lookup wants a
    /// dozen rows of a page whose names may be thousands).
    pub fn shared_strings(&self, c: u16, range: Range<usize>) -> Result<Vec<Key>, StorageError> {
        let body = self.fixed(c)?;
        let (dict, codes) = col::decode_dict_codes(&body, self.rows)?;
        let codes = codes.get(range).ok_or_else(|| corrupt("row range"))?;
        let mut shared: Vec<Option<Key>> = vec![None; dict.len()];
        codes
            .iter()
            .map(|&code| {
                let c = code as usize;
                let text = *dict.get(c).ok_or_else(|| corrupt("dictionary code"))?;
                Ok(shared[c].get_or_insert_with(|| Key::from(text)).clone())
            })
            .collect()
    }

    /// A predicate on a string column, evaluated once per distinct value of the page (its
    /// dictionary) rather than once per row: each row's answer.
    pub fn dict_matches(&self, c: u16, pred: impl Fn(&str) -> bool) -> Result<Vec<bool>, StorageError> {
        let body = self.fixed(c)?;
        let (dict, codes) = col::decode_dict_codes(&body, self.rows)?;
        let ok: Vec<bool> = dict.iter().map(|s| pred(s)).collect();
        Ok(codes.into_iter().map(|code| ok[code as usize]).collect())
    }

    /// The segment's resource table (fetch `TABLE.resource_table_column` with the page).
    pub fn resources(&self) -> Result<Vec<Arc<Resource>>, StorageError> {
        ResourceTable::decode(&self.fixed(M::TABLE.resource_table_column)?, self.meta.resources())
    }

    /// Each row's index into the resource table, checked against the table's size.
    pub fn resource_index(&self) -> Result<Vec<usize>, StorageError> {
        let count = u64::from(self.meta.resources());
        self.varints(M::TABLE.resource_column)?
            .into_iter()
            .map(|i| (i < count).then_some(i as usize).ok_or_else(|| corrupt("resource index")))
            .collect()
    }

    /// Every attribute column of the segment: the columns to fetch for whole rows.
    pub fn attr_columns(meta: &M) -> impl Iterator<Item = u16> {
        (0..meta.attr_keys().len().min(super::attrs::MAX_SEGMENT_KEYS) as u16).map(|i| ATTR_BASE + i)
    }

    /// The values of every attribute column fetched with the page, for rows `range` (index 0 is
    /// row `range.start`), as (key, values), in the order they were asked for.
    pub fn attributes(&self, range: Range<usize>) -> Result<Vec<AttrValues<'m>>, StorageError> {
        let mut out = Vec::new();
        for &c in &self.wanted {
            let Some(i) = c.checked_sub(ATTR_BASE) else { continue };
            let key = self.meta.attr_keys().get(i as usize).ok_or_else(|| corrupt("attribute column"))?;
            if let Some(body) = self.body(c)? {
                out.push((key, col::decode_values_range(&body, self.rows, range.clone())?));
            }
        }
        Ok(out)
    }
}
