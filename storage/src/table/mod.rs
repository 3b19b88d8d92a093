//! The table layer: what every columnar table of the store shares. A table's rows are sealed into
//! **segments**, one or more per time partition and seal; a segment's rows are cut into pages of
//! `PAGE_ROWS`, and every column of every page is one compressed chunk in the `chunks` column
//! family, keyed (partition, segment, column, page). Segment ids are unique across tables, so
//! retention drops a partition of every table with one range delete over its chunks.
//!
//! A table brings its row type, its fixed columns and its segment meta (`SegmentMeta`); the layer
//! brings the rest, once for all tables: the partition map (`Table`), writing segments
//! (`build::SegmentWriter`: pages, compression, one column per attribute key, the resource table),
//! reading pages with projection (`page::Page`: only the columns asked for) and pruning by time
//! (partitions, then each segment's and page's time range), and keeping the latest rows of a scan
//! in bounded memory (`top`).
//!
//! Tables today: spans (`crate::spans`, partitioned by start time) and XLog transactions
//! (`crate::xlog`, by end time).

pub mod attrs;
pub mod build;
pub mod page;
pub mod resources;
pub mod top;

use std::collections::BTreeMap;

use parking_lot::RwLock;
use rocksdb::{ColumnFamily, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::attr_keys::{AttributeKeys, Key};
use crate::codec::corrupt;
use crate::error::StorageError;
use crate::keys;

/// Rows per page: the unit a scan skips or reads.
pub const PAGE_ROWS: usize = 4096;

/// Attribute key `i` of a segment is column `ATTR_BASE + i`; a table's fixed columns are below.
pub const ATTR_BASE: u16 = 32;

/// The stored chunks asked for, in order; `None` where a (column, page) has none.
pub type Fetched = Result<Vec<Option<Vec<u8>>>, StorageError>;
/// Fetches the chunks of (column, page) pairs of one segment.
pub type Fetch<'a> = &'a dyn Fn(&[(u16, u32)]) -> Fetched;

/// A table's fixed facts.
#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    /// First byte of its segment metas' keys in the `meta` column family.
    pub meta_prefix: u8,
    /// Column of each row's index into the segment's resource table.
    pub resource_column: u16,
    /// Column (page 0 only) of the segment's resource table.
    pub resource_table_column: u16,
}

/// What the layer needs to know of a table's segment meta (stored as JSON under the table's
/// prefix; each table adds what its own reads need).
pub trait SegmentMeta: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    const TABLE: &'static TableDef;

    fn partition(&self) -> u64;
    fn id(&self) -> u64;
    fn rows(&self) -> u32;
    /// Stored (compressed) bytes of all its chunks.
    fn bytes(&self) -> u64;
    /// Attribute keys, in column order from `ATTR_BASE`.
    fn attr_keys(&self) -> &[Key];
    /// Shares its key names with the store's registry (`crate::attr_keys`).
    fn intern(&mut self, _keys: &AttributeKeys) {}
    /// Distinct resources in its resource table.
    fn resources(&self) -> u32;
    /// Lowest and highest value of the table's time column in the segment.
    fn time_range(&self) -> (u64, u64);
    /// Lowest and highest time in one page, where the segment records them.
    fn page_time_range(&self, page: u32) -> Option<(u64, u64)>;

    /// The columns `column` is computed from when the segment does not store it (see
    /// `page::Page::fetch`); `None` for a stored column.
    fn computed_from(&self, _column: u16) -> Option<Vec<u16>> {
        None
    }

    /// The page body of a column `computed_from` names, from a page holding its sources.
    fn compute(page: &page::Page<'_, Self>, column: u16) -> Result<Vec<u8>, StorageError> {
        Err(corrupt(&format!("column {column} of {} is not computed", page.meta.place())))
    }

    fn pages(&self) -> u32 {
        (self.rows() as usize).div_ceil(PAGE_ROWS) as u32
    }

    fn page_rows(&self, page: u32) -> usize {
        (self.rows() as usize).saturating_sub(page as usize * PAGE_ROWS).min(PAGE_ROWS)
    }

    /// The column of an attribute key, if the segment has it.
    fn attr_column(&self, key: &str) -> Option<u16> {
        let i = self.attr_keys().iter().position(|k| &**k == key)?;
        u16::try_from(i).ok()?.checked_add(ATTR_BASE)
    }

    /// "partition 12 segment 40": where an error about its data happened.
    fn place(&self) -> String {
        format!("{} partition {} segment {}", Self::TABLE.name, self.partition(), self.id())
    }

    /// Refuses a meta that could make a reader misbehave (one from a corrupt store, or from a
    /// build before attribute keys were bounded).
    fn check(&self) -> Result<(), StorageError> {
        if self.attr_keys().len() > attrs::MAX_SEGMENT_KEYS {
            return Err(
                corrupt(&format!("{} attribute keys in one segment", self.attr_keys().len())).within(|| self.place())
            );
        }
        Ok(())
    }
}

/// The pages of `segments` whose time range meets `[from, to)`, newest segment and page first:
/// a scan that keeps the latest rows raises its floor early and skips the rest.
pub fn pages_newest_first<'m, M: SegmentMeta>(segments: &[&'m M], from: u64, to: u64) -> Vec<(&'m M, u32)> {
    let mut segs: Vec<&M> = segments.to_vec();
    segs.sort_by_key(|m| std::cmp::Reverse(m.time_range().1));
    segs.into_iter()
        .flat_map(|m| {
            (0..m.pages())
                .rev()
                .filter(move |p| {
                    let (lo, hi) = m.page_time_range(*p).unwrap_or_else(|| m.time_range());
                    hi >= from && lo < to
                })
                .map(move |p| (m, p))
        })
        .collect()
}

/// Segments, table-wide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub partitions: usize,
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// One table's segments, by partition.
pub struct Table<M> {
    partitions: RwLock<BTreeMap<u64, Vec<M>>>,
}

impl<M: SegmentMeta> Default for Table<M> {
    fn default() -> Self {
        Self { partitions: RwLock::new(BTreeMap::new()) }
    }
}

impl<M: SegmentMeta> Table<M> {
    /// Takes in a stored meta, at open (the caller matched `TABLE.meta_prefix`).
    pub fn load(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let m: M = serde_json::from_slice(value).map_err(|e| {
            corrupt(&format!("{} segment meta {}: {e}", M::TABLE.name, hex::encode(key.get(1..).unwrap_or_default())))
        })?;
        self.add([m]);
        Ok(())
    }

    /// Writes a new segment's meta in the seal's batch; `add` it once the batch is written.
    pub fn put_meta(wb: &mut WriteBatch, cf: &ColumnFamily, m: &M) {
        let key = keys::segment_meta(M::TABLE.meta_prefix, m.partition(), m.id());
        wb.put_cf(cf, key, serde_json::to_vec(m).expect("segment metas serialize"));
    }

    /// Deletes every meta of a partition, in a retention batch.
    pub fn delete_partition(wb: &mut WriteBatch, cf: &ColumnFamily, part: u64) {
        let prefix = M::TABLE.meta_prefix;
        wb.delete_range_cf(
            cf,
            keys::segment_meta_partition(prefix, part),
            keys::segment_meta_partition(prefix, part + 1),
        );
    }

    /// Shares every meta's key names with the registry: once, after `load`.
    pub fn intern(&self, keys: &AttributeKeys) {
        self.partitions.write().values_mut().flatten().for_each(|m| m.intern(keys));
    }

    pub fn add(&self, metas: impl IntoIterator<Item = M>) {
        let mut parts = self.partitions.write();
        for m in metas {
            parts.entry(m.partition()).or_default().push(m);
        }
    }

    pub fn remove_partition(&self, part: u64) {
        self.partitions.write().remove(&part);
    }

    pub fn find(&self, part: u64, id: u64) -> Option<M> {
        self.partitions.read().get(&part).and_then(|segs| segs.iter().find(|m| m.id() == id)).cloned()
    }

    /// Segments of partitions `lo..=hi` whose time range meets `[from, to)`.
    pub fn segments(&self, lo: u64, hi: u64, from: u64, to: u64) -> Vec<M> {
        let parts = self.partitions.read();
        parts
            .range(lo..=hi)
            .flat_map(|(_, segs)| segs.iter())
            .filter(|m| {
                let (min, max) = m.time_range();
                max >= from && min < to
            })
            .cloned()
            .collect()
    }

    /// Partitions holding segments, ascending.
    pub fn partition_ids(&self) -> Vec<u64> {
        self.partitions.read().keys().copied().collect()
    }

    pub fn max_id(&self) -> Option<u64> {
        self.partitions.read().values().flatten().map(|m| m.id()).max()
    }

    pub fn stats(&self) -> TableStats {
        let parts = self.partitions.read();
        let all = || parts.values().flatten();
        TableStats {
            partitions: parts.len(),
            segments: all().count(),
            rows: all().map(|m| u64::from(m.rows())).sum(),
            bytes: all().map(|m| m.bytes()).sum(),
        }
    }

    /// Attribute key names by (partition, segment), for reporting bytes per column.
    pub fn attr_names(&self) -> BTreeMap<(u64, u64), Vec<String>> {
        let parts = self.partitions.read();
        parts
            .values()
            .flatten()
            .map(|m| ((m.partition(), m.id()), m.attr_keys().iter().map(|k| k.to_string()).collect()))
            .collect()
    }
}
