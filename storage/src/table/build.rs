//! Writing segments: a table encodes its own fixed columns page by page; the writer compresses
//! every page body, and adds what all tables share: each row's resource, the segment's resource
//! table, and one column per attribute key.

use std::sync::Arc;

use super::attrs::{key_runs, AttrColumns, MAX_SEGMENT_KEYS};
use super::resources::ResourceTable;
use super::{TableDef, ATTR_BASE, PAGE_ROWS};
use crate::attr_keys::Key;
use crate::codec::column as col;
use crate::model::{KeyValue, Resource};

/// (column, page, stored bytes)
pub type Chunk = (u16, u32, Vec<u8>);

/// What the writer made of a segment, for the table's meta.
pub struct Written {
    pub chunks: Vec<Chunk>,
    pub attr_keys: Vec<Key>,
    pub resources: u32,
    /// Every key its distinct resources use.
    pub resource_keys: Vec<Key>,
    pub bytes: u64,
}

pub struct SegmentWriter<'a> {
    def: &'static TableDef,
    attrs: AttrColumns<'a>,
    resources: ResourceTable,
    resource_idx: Vec<u64>,
    compressor: col::Compressor,
    chunks: Vec<Chunk>,
}

impl<'a> SegmentWriter<'a> {
    /// For rows in segment order: their attribute columns, and each row's resource.
    pub fn new(
        def: &'static TableDef,
        attrs: AttrColumns<'a>,
        resources: impl Iterator<Item = &'a Arc<Resource>>,
    ) -> Self {
        let mut table = ResourceTable::default();
        let resource_idx = resources.map(|r| table.index(r)).collect();
        Self { def, attrs, resources: table, resource_idx, compressor: col::Compressor::new(), chunks: Vec::new() }
    }

    /// One page body of one of the table's columns.
    pub fn put(&mut self, column: u16, page: u32, body: &[u8]) {
        let stored = self.compressor.compress(body);
        self.chunks.push((column, page, stored));
    }

    /// The shared columns of page `page`, rows `[start, start + len)` of the segment: each row's
    /// resource, and every attribute key with values in these rows. Pages in order.
    pub fn put_shared(&mut self, page: u32, start: usize, len: usize) {
        let idx = col::encode_varints(&self.resource_idx[start..start + len]);
        self.put(self.def.resource_column, page, &idx);
        for (c, body) in self.attrs.page(start, len) {
            let column = ATTR_BASE + u16::try_from(c).expect("keys are bounded by MAX_SEGMENT_KEYS");
            self.put(column, page, &body);
        }
    }

    pub fn finish(mut self) -> Written {
        let table = self.resources.encode();
        self.put(self.def.resource_table_column, 0, &table);
        let bytes = self.chunks.iter().map(|(_, _, b)| b.len() as u64).sum();
        Written {
            attr_keys: self.attrs.keys.iter().map(|k| Key::from(*k)).collect(),
            resources: self.resources.encoded.len() as u32,
            resource_keys: self.resources.keys,
            chunks: self.chunks,
            bytes,
        }
    }
}

/// Reads a built segment's chunks from memory instead of the store (tests, fuzzing, benchmarks).
pub fn in_memory(chunks: &[Chunk]) -> impl Fn(&[(u16, u32)]) -> super::Fetched + '_ {
    let map: rustc_hash::FxHashMap<(u16, u32), &Vec<u8>> = chunks.iter().map(|(c, p, b)| ((*c, *p), b)).collect();
    move |want| Ok(want.iter().map(|k| map.get(k).map(|b| b.to_vec())).collect())
}

/// Segment ids 1, 2, 3...: for building segments outside a store.
pub fn counter() -> impl FnMut() -> u64 {
    let mut id = 0;
    move || {
        id += 1;
        id
    }
}

/// The pages of a segment of `rows` rows: (page, first row, rows in it).
pub fn pages(rows: usize) -> impl Iterator<Item = (u32, usize, usize)> {
    (0..rows.div_ceil(PAGE_ROWS)).map(move |p| (p as u32, p * PAGE_ROWS, (rows - p * PAGE_ROWS).min(PAGE_ROWS)))
}

/// Rows already in segment order, sealed as one segment, or several when they carry more
/// distinct attribute keys than one segment holds (`MAX_SEGMENT_KEYS`). `one` encodes a segment
/// of the rows given, with their attribute columns.
pub fn segments<'a, R, B>(
    rows: &[&'a R],
    attrs_of: impl Fn(&'a R) -> &'a [KeyValue],
    mut one: impl FnMut(&[&'a R], AttrColumns<'a>) -> B,
) -> Vec<B> {
    let attrs = AttrColumns::new(rows.iter().map(|r| attrs_of(r)));
    if attrs.keys.len() <= MAX_SEGMENT_KEYS {
        return vec![one(rows, attrs)];
    }
    key_runs(rows.iter().map(|r| attrs_of(r)), MAX_SEGMENT_KEYS)
        .into_iter()
        .map(|run| {
            let rows = &rows[run];
            let mut attrs = AttrColumns::new(rows.iter().map(|r| attrs_of(r)));
            let dropped = attrs.keep_keys(MAX_SEGMENT_KEYS);
            if dropped > 0 {
                tracing::warn!(dropped, "a row has more attribute keys than a segment holds; the rest are not kept");
            }
            one(rows, attrs)
        })
        .collect()
}
