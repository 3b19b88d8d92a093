//! What the store holds, for `/metrics`, benchmarks and tests.

use std::collections::BTreeMap;

use rocksdb::IteratorMode;

use super::Store;
use crate::error::StorageError;
use crate::keys;
use crate::metrics;
use crate::spans;
use crate::table::ATTR_BASE;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreStats {
    pub memtable_spans: usize,
    pub memtable_bytes: usize,
    pub partitions: usize,
    pub segments: usize,
    pub sealed_spans: u64,
    pub sealed_bytes: u64,
    pub memtable_xlogs: usize,
    pub pending_xlogs: usize,
    pub xlog_segments: usize,
    pub sealed_xlogs: u64,
    pub sealed_xlog_bytes: u64,
    /// The map's statistics, at all three resolutions.
    pub stats_segments: usize,
    pub stats_rows: u64,
    pub stats_bytes: u64,
}

impl Store {
    /// Bytes of all the store's files on disk.
    pub fn disk_bytes(&self) -> Result<u64, StorageError> {
        let path = &self.config.path;
        let io = |source| StorageError::Io { path: path.clone(), source };
        let mut total = 0;
        for e in std::fs::read_dir(path).map_err(io)? {
            let e = e.map_err(io)?;
            // Files can vanish between listing and stat while RocksDB compacts.
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    total += m.len();
                }
            }
        }
        Ok(total)
    }

    pub fn stats(&self) -> StoreStats {
        let (memtable_spans, memtable_bytes, memtable_xlogs) = {
            let st = self.state.read();
            let frozen = st.frozen.as_ref();
            (
                st.active.len() + frozen.map_or(0, |f| f.len()),
                st.active.bytes + frozen.map_or(0, |f| f.bytes),
                st.active.xlogs.len() + frozen.map_or(0, |f| f.xlogs.len()),
            )
        };
        let pending_xlogs = self.deriver.lock().pending();
        let (spans, xlog) = (self.spans.stats(), self.xlog.stats());
        let stat_tables = [self.stats_seconds.stats(), self.stats_minutes.stats(), self.stats_hours.stats()];
        StoreStats {
            memtable_xlogs,
            pending_xlogs,
            xlog_segments: xlog.segments,
            sealed_xlogs: xlog.rows,
            sealed_xlog_bytes: xlog.bytes,
            memtable_spans,
            memtable_bytes,
            partitions: self.partition_ids().len(),
            segments: spans.segments,
            sealed_spans: spans.rows,
            sealed_bytes: spans.bytes,
            stats_segments: stat_tables.iter().map(|t| t.segments).sum(),
            stats_rows: stat_tables.iter().map(|t| t.rows).sum(),
            stats_bytes: stat_tables.iter().map(|t| t.bytes).sum(),
        }
    }

    /// Stored (compressed) chunk bytes per column name, attribute columns as `attr:<key>`: where
    /// the bytes go, for benchmarks and tuning.
    pub fn column_bytes(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let (names, xnames) = (self.spans.attr_names(), self.xlog.attr_names());
        let mut stats: BTreeMap<(u64, u64), &str> = BTreeMap::new();
        for (table, segments) in [
            ("stats_1s", self.stats_seconds.attr_names()),
            ("stats_1m", self.stats_minutes.attr_names()),
            ("stats_1h", self.stats_hours.attr_names()),
        ] {
            stats.extend(segments.into_keys().map(|k| (k, table)));
        }
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let mut out = BTreeMap::new();
        for item in self.db.iterator_cf(chunks, IteratorMode::Start) {
            let (k, v) = item?;
            let Some((part, seg, col)) = keys::parse_chunk(&k) else {
                continue;
            };
            if let Some(table) = stats.get(&(part, seg)) {
                *out.entry(format!("{table}:{col}")).or_default() += v.len() as u64;
                continue;
            }
            if let Some(keys) = xnames.get(&(part, seg)) {
                let name = match col.checked_sub(ATTR_BASE) {
                    Some(i) => format!("xlog:attr:{}", keys.get(i as usize).map_or("?", String::as_str)),
                    None => format!("xlog:{col}"),
                };
                *out.entry(name).or_default() += v.len() as u64;
                continue;
            }
            let name = match col.checked_sub(ATTR_BASE) {
                Some(i) => names
                    .get(&(part, seg))
                    .and_then(|n| n.get(i as usize))
                    .map_or_else(|| "attr:?".to_string(), |k| format!("attr:{k}")),
                None => spans::cols::name(col).to_string(),
            };
            *out.entry(name).or_default() += v.len() as u64;
        }
        Ok(out)
    }

    /// Compacts every column family fully: for measuring bytes on disk.
    pub fn compact(&self) {
        for cf in keys::COLUMN_FAMILIES {
            let h = self.db.cf_handle(cf).expect("opened");
            self.db.compact_range_cf(h, None::<&[u8]>, None::<&[u8]>);
        }
    }

    /// Partitions holding span or XLog segments, ascending.
    pub(crate) fn partition_ids(&self) -> Vec<u64> {
        let mut ids = self.spans.partition_ids();
        ids.extend(self.xlog.partition_ids());
        ids.extend(self.stats_seconds.partition_ids());
        ids.extend(self.stats_minutes.partition_ids());
        ids.extend(self.stats_hours.partition_ids());
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(crate) fn publish_gauges(&self) {
        let s = self.stats();
        metrics::memtable(s.memtable_spans, s.memtable_bytes);
        metrics::store(s.segments, s.partitions);
        if let Ok(b) = self.disk_bytes() {
            metrics::disk_bytes(b);
        }
        for (cf, b) in self.family_bytes() {
            metrics::table_bytes(cf, b);
        }
        for (cf, b) in self.family_property("rocksdb.size-all-mem-tables") {
            metrics::rocksdb_memtable_bytes(cf, b);
        }
    }

    /// Table-file bytes per column family (chunks, trace index, metas, WAL spill): where the bytes
    /// outside the column chunks go.
    pub fn family_bytes(&self) -> BTreeMap<&'static str, u64> {
        self.family_property("rocksdb.total-sst-files-size")
    }

    /// An integer property of each column family; those RocksDB does not answer are left out.
    fn family_property(&self, property: &str) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for cf in keys::COLUMN_FAMILIES {
            let h = self.db.cf_handle(cf).expect("opened");
            if let Ok(Some(b)) = self.db.property_int_value_cf(h, property) {
                out.insert(cf, b);
            }
        }
        out
    }
}
