//! The store: RocksDB with four column families (see `keys`), the memtable of unsealed spans and
//! XLog records, and the partition catalog. Sealing is in `seal`, retention and the disk budget in
//! `retention`, XLog reads in `xlog::read`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions, DB,
};

use crate::catalog::{Catalog, ServiceInfo};
use crate::clock::{Clock, Horizon, SystemClock};
use crate::codec::row;
use crate::error::StorageError;
use crate::failpoint::Failpoints;
use crate::health::{Health, WritePath};
use crate::helper::Helper;
use crate::keys;
use crate::memtable::Memtable;
use crate::metrics;
use crate::model::{Span, TraceId};
use crate::segment::{self, SegmentMeta, TraceRows};
use crate::xlog::derive::{DeriveConfig, Deriver, Extract};
use crate::xlog::segment::{self as xsegment, XSegmentMeta};
use crate::xlog::{wal as xwal, XLog};

/// Version 2: version 1 (column families meta/wal/chunks/tindex, row format 1, segment layout of
/// `segment.rs`) plus XLog segments and native XLog records in the WAL. A version 1 store is
/// upgraded in place when opened: it has no XLog data, and nothing else changed.
pub const FORMAT_VERSION: u32 = 2;
const UPGRADABLE_VERSIONS: [u32; 1] = [1];

/// RocksDB's own write-ahead logs, at most (beside the data the disk budget counts).
pub const MAX_TOTAL_WAL_BYTES: u64 = 128 << 20;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Width of a time partition; fixed when the store is created.
    pub partition: Duration,
    pub retention: Duration,
    pub max_disk_bytes: Option<u64>,
    /// Seal the memtable when its oldest span is this old ...
    pub seal_interval: Duration,
    /// ... or when it holds this many spans.
    pub seal_rows: usize,
    /// fsync every acknowledged write; off survives a process crash but not a power cut.
    pub sync: bool,
    /// Encoded bytes of acknowledged-but-unsealed spans beyond which the store is `backlogged`:
    /// memory stays bounded even if sealing falls behind ingest.
    pub max_unsealed_bytes: usize,
    /// Derive an XLog record from every OTLP entry span.
    pub derive_xlog: bool,
    pub derive: DeriveConfig,
    /// Writes are refused (retryably) while the filesystem has less free space than this, so that
    /// RocksDB itself never runs out in the middle of a write; seals go on down to half of it.
    pub min_free_disk_bytes: u64,
    pub clock: Arc<dyn Clock>,
    pub failpoints: Failpoints,
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            partition: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 86400),
            max_disk_bytes: None,
            seal_interval: Duration::from_secs(10),
            seal_rows: 100_000,
            sync: true,
            max_unsealed_bytes: 256 << 20,
            derive_xlog: true,
            derive: DeriveConfig::default(),
            min_free_disk_bytes: 1 << 30,
            clock: Arc::new(SystemClock::default()),
            failpoints: Failpoints::default(),
        }
    }
}

/// A batch of validated spans, or of native XLog records, with its write-ahead-log encoding and
/// what XLog derivation needs of it; build it off the writer thread.
pub struct EncodedBatch {
    pub spans: Vec<Arc<Span>>,
    pub xlogs: Vec<XLog>,
    pub wal: Vec<u8>,
    extract: Extract,
}

impl EncodedBatch {
    pub fn new(spans: Vec<Span>) -> Self {
        let wal = row::encode_batch(&spans);
        let spans: Vec<Arc<Span>> = spans.into_iter().map(Arc::new).collect();
        let extract = Extract::from_spans(&spans);
        Self { spans, xlogs: Vec::new(), wal, extract }
    }

    pub fn xlogs(xlogs: Vec<XLog>) -> Self {
        let wal = xwal::encode_batch(&xlogs);
        Self { spans: Vec::new(), xlogs, wal, extract: Extract::default() }
    }

    pub fn len(&self) -> usize {
        self.spans.len() + self.xlogs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) active: Memtable,
    /// Being sealed: still answered from memory until its chunks are written.
    pub(crate) frozen: Option<Arc<Memtable>>,
}

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
}

pub struct Store {
    pub(crate) db: DB,
    pub(crate) config: StoreConfig,
    pub(crate) partition_ns: u64,
    pub(crate) state: RwLock<State>,
    pub(crate) partitions: RwLock<BTreeMap<u64, Vec<SegmentMeta>>>,
    /// XLog segments, by partition of their records' end time.
    pub(crate) xpartitions: RwLock<BTreeMap<u64, Vec<XSegmentMeta>>>,
    /// Lock order: `state`, then `deriver`.
    pub(crate) deriver: Mutex<Deriver>,
    pub(crate) catalog: Mutex<Catalog>,
    next_seq: Mutex<u64>,
    /// The highest write-ahead-log sequence sealed (`keys::META_SEALED_SEQ`): every record at or
    /// below it is in segments, and the log keeps only those that pending XLog entries still need.
    pub(crate) sealed_seq: Mutex<Option<u64>>,
    /// Write-ahead-log keys below this are deleted (by seals); their table files can go.
    pub(crate) wal_cut: AtomicU64,
    /// Shared with the helper thread, which numbers the XLog segments it encodes.
    pub(crate) next_segment: Arc<AtomicU64>,
    pub(crate) helper: Helper,
    /// Lowest partition still kept; shared with the trace index's compaction filter.
    pub(crate) floor: Arc<AtomicU64>,
    /// One seal or retention pass at a time.
    pub(crate) maintenance: Mutex<()>,
    pub(crate) horizon: Mutex<Horizon>,
    pub(crate) health: Arc<Health>,
}

fn cf_options(name: &str, floor: &Arc<AtomicU64>) -> Options {
    let mut o = Options::default();
    match name {
        // Chunks are compressed page by page already.
        keys::CF_CHUNKS => o.set_compression_type(DBCompressionType::None),
        keys::CF_TRACE_INDEX => {
            o.set_compression_type(DBCompressionType::Lz4);
            let mut b = BlockBasedOptions::default();
            b.set_bloom_filter(10.0, false);
            o.set_block_based_table_factory(&b);
            let floor = floor.clone();
            // Index entries of dropped partitions go away as compaction meets them.
            o.set_compaction_filter("rewind_dropped_partitions", move |_lvl, key: &[u8], _v: &[u8]| {
                match keys::parse_trace_index(key) {
                    Some((part, _)) if part < floor.load(Ordering::Relaxed) => {
                        rocksdb::compaction_filter::Decision::Remove
                    }
                    _ => rocksdb::compaction_filter::Decision::Keep,
                }
            });
        }
        keys::CF_WAL => {
            // Records live until the next seal deletes them, a second or so under load: most
            // never reach an SST, and compressing the few that do is wasted work.
            o.set_compression_type(DBCompressionType::None);
        }
        _ => o.set_compression_type(DBCompressionType::Lz4),
    }
    o
}

impl Store {
    pub fn open(config: StoreConfig) -> Result<Arc<Self>, StorageError> {
        let path = config.path.clone();
        let existed = path.join("CURRENT").exists();
        if !existed && dir_has_entries(&path)? {
            return Err(StorageError::NotARewindStore(path));
        }
        std::fs::create_dir_all(&path).map_err(|source| StorageError::Io { path: path.clone(), source })?;
        // RocksDB writes as it opens (a new log, a manifest) and does not survive running out of
        // space doing so: with too little room, refuse to start, saying why.
        crate::disk::ensure_free(&path, config.min_free_disk_bytes / 4)?;
        let floor = Arc::new(AtomicU64::new(0));
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_keep_log_file_num(4);
        // RocksDB keeps a log file until every column family's data in it is flushed; `meta`
        // takes only small writes and would pin gigabytes of logs behind it. Past this total, the
        // column families holding the oldest log are flushed.
        db_opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        let mut cf_names: Vec<String> = keys::COLUMN_FAMILIES.map(String::from).to_vec();
        if existed {
            // A store from another build may have column families this one does not know: open
            // them all so the version check below can speak, instead of RocksDB refusing first.
            for cf in DB::list_cf(&db_opts, &path)? {
                if !cf_names.contains(&cf) {
                    cf_names.push(cf);
                }
            }
        }
        let cfs = cf_names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(n, &floor)));
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)?;

        let meta = db.cf_handle(keys::CF_META).expect("opened");
        let partition_ns = match db.get_cf(meta, keys::META_FORMAT_VERSION)? {
            Some(v) => {
                let found = u32::from_be_bytes(v.as_slice().try_into().map_err(|_| crate::codec::corrupt("version"))?);
                if UPGRADABLE_VERSIONS.contains(&found) {
                    tracing::info!(from = found, to = FORMAT_VERSION, "upgrading the store's format version");
                    let mut w = WriteOptions::default();
                    w.set_sync(true);
                    db.put_cf_opt(meta, keys::META_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes(), &w)?;
                } else if found != FORMAT_VERSION {
                    return Err(StorageError::UnsupportedVersion { path, found, supported: FORMAT_VERSION });
                }
                let p = db
                    .get_cf(meta, keys::META_PARTITION_NS)?
                    .ok_or_else(|| crate::codec::corrupt("partition width"))?;
                u64::from_be_bytes(p.as_slice().try_into().map_err(|_| crate::codec::corrupt("partition width"))?)
            }
            None if existed => return Err(StorageError::NotARewindStore(path)),
            None => {
                let p = config.partition.as_nanos().max(1) as u64;
                let mut b = WriteBatch::default();
                b.put_cf(meta, keys::META_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes());
                b.put_cf(meta, keys::META_PARTITION_NS, p.to_be_bytes());
                let mut w = WriteOptions::default();
                w.set_sync(true);
                db.write_opt(b, &w)?;
                p
            }
        };
        if partition_ns != config.partition.as_nanos() as u64 {
            tracing::warn!(
                stored_secs = partition_ns / 1_000_000_000,
                "partition width is fixed when a store is created; keeping the stored one"
            );
        }
        if let Some(f) = db.get_cf(meta, keys::META_FLOOR_PARTITION)? {
            floor.store(
                u64::from_be_bytes(f.as_slice().try_into().map_err(|_| crate::codec::corrupt("floor"))?),
                Ordering::Relaxed,
            );
        }

        let mut partitions: BTreeMap<u64, Vec<SegmentMeta>> = BTreeMap::new();
        let mut xpartitions: BTreeMap<u64, Vec<XSegmentMeta>> = BTreeMap::new();
        let mut services = Vec::new();
        for item in db.iterator_cf(meta, IteratorMode::Start) {
            let (k, v) = item?;
            match k.first() {
                Some(&keys::META_SEGMENT_PREFIX) => {
                    let m: SegmentMeta =
                        serde_json::from_slice(&v).map_err(|e| crate::codec::corrupt(&format!("segment meta: {e}")))?;
                    partitions.entry(m.partition).or_default().push(m);
                }
                Some(&keys::META_XSEGMENT_PREFIX) => {
                    let m: XSegmentMeta =
                        serde_json::from_slice(&v).map_err(|e| crate::codec::corrupt(&format!("xlog meta: {e}")))?;
                    xpartitions.entry(m.partition).or_default().push(m);
                }
                Some(&keys::META_SERVICE_PREFIX) => services
                    .push(serde_json::from_slice(&v).map_err(|e| crate::codec::corrupt(&format!("service: {e}")))?),
                _ => {}
            }
        }
        let next_segment = partitions
            .values()
            .flatten()
            .map(|m| m.id + 1)
            .chain(xpartitions.values().flatten().map(|m| m.id + 1))
            .max()
            .unwrap_or(1);
        let deriver = Mutex::new(Deriver::new(config.derive.clone()));
        let persisted_horizon = match db.get_cf(meta, keys::META_HORIZON)? {
            Some(v) => Some(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| crate::codec::corrupt("horizon"))?)),
            None => None,
        };
        let horizon = Horizon::new(persisted_horizon, config.clock.wall_ns(), config.clock.mono_ns());
        let health = Arc::new(Health::default());

        let store = Self {
            db,
            partition_ns,
            state: RwLock::new(State::default()),
            partitions: RwLock::new(partitions),
            xpartitions: RwLock::new(xpartitions),
            deriver,
            catalog: Mutex::new(Catalog::from_entries(services)),
            next_seq: Mutex::new(0),
            sealed_seq: Mutex::new(None),
            wal_cut: AtomicU64::new(0),
            next_segment: Arc::new(AtomicU64::new(next_segment)),
            helper: Helper::start(health.clone(), config.failpoints.clone()),
            floor,
            maintenance: Mutex::new(()),
            horizon: Mutex::new(horizon),
            health,
            config,
        };
        store.recover_wal()?;
        store.publish_gauges();
        Ok(Arc::new(store))
    }

    /// Replays acknowledged-but-unsealed batches into the memtable. Records at or below the last
    /// sealed sequence are still in the log only because they hold entry spans whose XLog records
    /// were not final: they go to the deriver alone.
    fn recover_wal(&self) -> Result<(), StorageError> {
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let sealed = match self.db.get_cf(meta, keys::META_SEALED_SEQ)? {
            Some(v) => {
                Some(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| crate::codec::corrupt("sealed sequence"))?))
            }
            None => None,
        };
        let mut st = self.state.write();
        let mut deriver = self.deriver.lock();
        let mut catalog = self.catalog.lock();
        // New records number on from everything ever sealed, not just from what the log still
        // holds: after a clean stop the log is empty, and a record numbered at or below the sealed
        // sequence would be taken for sealed by the next recovery, and lost.
        let mut next = sealed.map_or(0, |s| s + 1);
        let mut recovered = 0usize;
        let now = self.config.clock.mono_ns();
        for item in self.db.iterator_cf(wal, IteratorMode::Start) {
            let (k, v) = item?;
            let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| crate::codec::corrupt("wal key"))?);
            let record = || format!("write-ahead log record {seq}");
            next = next.max(seq + 1);
            let unsealed = sealed.is_none_or(|s| seq > s);
            if xwal::is_xlog_batch(&v) {
                if unsealed {
                    let xlogs = xwal::decode_batch(&v).map_err(|e| e.within(record))?;
                    recovered += xlogs.len();
                    st.active.insert(seq, Vec::new(), xlogs, v.len());
                }
                continue;
            }
            let spans: Vec<Arc<Span>> =
                row::decode_batch(&v).map_err(|e| e.within(record))?.into_iter().map(Arc::new).collect();
            if self.config.derive_xlog {
                let early = deriver.observe(seq, Extract::from_spans(&spans), now);
                st.active.xlogs.extend(early);
            }
            if unsealed {
                recovered += spans.len();
                spans.iter().for_each(|s| catalog.observe(s));
                st.active.insert(seq, spans, Vec::new(), v.len());
            }
        }
        *self.next_seq.lock() = next;
        *self.sealed_seq.lock() = sealed;
        if recovered > 0 {
            tracing::info!(records = recovered, "recovered unsealed spans and records from the write-ahead log");
        }
        Ok(())
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn partition_of(&self, start_ns: u64) -> u64 {
        start_ns / self.partition_ns
    }

    /// Now, for judging whether a span starts too far in the future: the wall clock, or where
    /// the retention horizon has got to if the wall clock was stepped back behind it.
    pub fn now_ns(&self) -> u64 {
        let horizon = self.horizon.lock().projected(self.config.clock.mono_ns());
        self.config.clock.wall_ns().max(horizon)
    }

    /// Spans starting before this are refused: their partition is gone or about to go. Measured
    /// from the earlier of the wall clock and the retention horizon, so a wall clock stepped
    /// forward does not refuse the spans of the present.
    pub fn min_accepted_start_ns(&self) -> u64 {
        let by_floor = self.floor.load(Ordering::Relaxed).saturating_mul(self.partition_ns);
        let horizon = self.horizon.lock().projected(self.config.clock.mono_ns());
        let now = self.config.clock.wall_ns().min(horizon);
        by_floor.max(now.saturating_sub(self.config.retention.as_nanos() as u64))
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Makes batches durable (one write, fsync'd when configured) and then visible to queries.
    /// Returns only once the write is on disk: the caller may acknowledge after it.
    pub fn append(&self, batches: Vec<EncodedBatch>) -> Result<(), StorageError> {
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        // Held across the write so sequence numbers reach the memtable in WAL order.
        let mut next = self.next_seq.lock();
        let mut wb = WriteBatch::default();
        for (i, b) in batches.iter().enumerate() {
            wb.put_cf(wal, keys::wal(*next + i as u64), &b.wal);
        }
        let mut w = WriteOptions::default();
        w.set_sync(self.config.sync);
        let written = crate::disk::ensure_free(&self.config.path, self.config.min_free_disk_bytes)
            .and_then(|()| self.config.failpoints.hit("wal-write"))
            .and_then(|()| Ok(self.db.write_opt(wb, &w)?));
        if let Err(e) = written {
            self.health.write_failed(WritePath::Log, e.to_string());
            return Err(e);
        }
        self.health.write_succeeded(WritePath::Log);
        let first = *next;
        *next += batches.len() as u64;
        let mut catalog = self.catalog.lock();
        let mut st = self.state.write();
        let mut deriver = self.deriver.lock();
        let now = self.config.clock.mono_ns();
        for (i, b) in batches.into_iter().enumerate() {
            let seq = first + i as u64;
            b.spans.iter().for_each(|s| catalog.observe(s));
            if self.config.derive_xlog && !b.spans.is_empty() {
                let early = deriver.observe(seq, b.extract, now);
                st.active.xlogs.extend(early);
            }
            st.active.insert(seq, b.spans, b.xlogs, b.wal.len());
        }
        metrics::memtable(st.active.len(), st.active.bytes);
        metrics::xlog_deriver(deriver.pending(), deriver.spans_held());
        Ok(())
    }

    /// A small durable write to find out whether the store can write again (see `Maintenance`).
    /// A success clears the append path's error; the seal path clears its own when a seal works.
    pub fn probe_write(&self) -> Result<(), StorageError> {
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let mut w = WriteOptions::default();
        w.set_sync(true);
        let probed = crate::disk::ensure_free(&self.config.path, self.config.min_free_disk_bytes)
            .and_then(|()| self.config.failpoints.hit("wal-write"))
            .and_then(|()| {
                Ok(self.db.put_cf_opt(meta, keys::META_PROBE, self.config.clock.wall_ns().to_be_bytes(), &w)?)
            });
        match probed {
            Ok(()) => {
                self.health.write_succeeded(WritePath::Log);
                Ok(())
            }
            Err(e) => {
                self.health.write_failed(WritePath::Log, e.to_string());
                Err(e)
            }
        }
    }

    /// True while more acknowledged spans wait for sealing than `max_unsealed_bytes`: writers
    /// should answer "retry later" until sealing catches up.
    pub fn backlogged(&self) -> bool {
        let st = self.state.read();
        st.active.bytes + st.frozen.as_ref().map_or(0, |f| f.bytes) > self.config.max_unsealed_bytes
    }

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

    /// All stored spans of a trace, in start order. Point lookups: the trace index names the
    /// segments and rows, whatever time they are from.
    pub fn trace(&self, id: &TraceId) -> Result<Vec<Span>, StorageError> {
        let mut out: Vec<Span> = Vec::new();
        {
            let st = self.state.read();
            out.extend(st.active.trace(id).cloned());
            if let Some(f) = &st.frozen {
                out.extend(f.trace(id).cloned());
            }
        }
        let tindex = self.db.cf_handle(keys::CF_TRACE_INDEX).expect("opened");
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(next_prefix(id));
        let mut hits = Vec::new();
        for item in self.db.iterator_cf_opt(tindex, ro, IteratorMode::From(&id.0, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&id.0) {
                break;
            }
            let (part, seg) = keys::parse_trace_index(&k).ok_or_else(|| crate::codec::corrupt("trace index key"))?;
            hits.push((part, seg, TraceRows::decode_value(*id, &v)?));
        }
        for (part, seg, rows) in hits {
            let meta = {
                let parts = self.partitions.read();
                parts.get(&part).and_then(|segs| segs.iter().find(|m| m.id == seg)).cloned()
            };
            // Absent: the partition was dropped and compaction has not yet met its index entry.
            let Some(meta) = meta else { continue };
            match segment::read_rows(&meta, rows.first_row, rows.count, |want| self.fetch_chunks(part, seg, want)) {
                Ok(spans) => out.extend(spans),
                // Dropped by retention while this read ran: as if the read had come a moment later.
                Err(StorageError::PartitionDropped(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        // A span can be both in the frozen memtable and in its fresh segment while a seal
        // finishes, and a retried export stores a span twice: show it once.
        let mut seen = HashSet::new();
        out.retain(|s| seen.insert(s.span_id));
        out.sort_by_key(|s| (s.start_ns, s.span_id));
        Ok(out)
    }

    /// The stored chunks of a segment. A partition below the floor is being dropped (the floor
    /// moves before its chunks go): its reads answer `PartitionDropped`, whatever was still found.
    pub(crate) fn fetch_chunks(&self, part: u64, seg: u64, want: &[(u16, u32)]) -> segment::Fetched {
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let keys: Vec<_> = want.iter().map(|(c, p)| (chunks, keys::chunk(part, seg, *c, *p))).collect();
        let got: Result<Vec<_>, StorageError> =
            self.db.multi_get_cf(keys).into_iter().map(|r| r.map_err(StorageError::from)).collect();
        if part < self.floor.load(Ordering::Acquire) {
            return Err(StorageError::PartitionDropped(part));
        }
        got
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        self.catalog.lock().list()
    }

    pub fn stats(&self) -> StoreStats {
        let st = self.state.read();
        let pending_xlogs = self.deriver.lock().pending();
        let parts = self.partitions.read();
        let xparts = self.xpartitions.read();
        StoreStats {
            memtable_xlogs: st.active.xlogs.len() + st.frozen.as_ref().map_or(0, |f| f.xlogs.len()),
            pending_xlogs,
            xlog_segments: xparts.values().map(Vec::len).sum(),
            sealed_xlogs: xparts.values().flatten().map(|m| u64::from(m.rows)).sum(),
            sealed_xlog_bytes: xparts.values().flatten().map(|m| m.bytes).sum(),
            memtable_spans: st.active.len() + st.frozen.as_ref().map_or(0, |f| f.len()),
            memtable_bytes: st.active.bytes + st.frozen.as_ref().map_or(0, |f| f.bytes),
            partitions: parts.keys().chain(xparts.keys()).collect::<std::collections::BTreeSet<_>>().len(),
            segments: parts.values().map(Vec::len).sum(),
            sealed_spans: parts.values().flatten().map(|m| u64::from(m.rows)).sum(),
            sealed_bytes: parts.values().flatten().map(|m| m.bytes).sum(),
        }
    }

    /// Stored (compressed) chunk bytes per column name, attribute columns as `attr:<key>`: where
    /// the bytes go, for benchmarks and tuning.
    pub fn column_bytes(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let names: std::collections::HashMap<(u64, u64), Vec<String>> =
            self.partitions.read().values().flatten().map(|m| ((m.partition, m.id), m.attr_keys.clone())).collect();
        let xnames: std::collections::HashMap<(u64, u64), Vec<String>> =
            self.xpartitions.read().values().flatten().map(|m| ((m.partition, m.id), m.attr_keys.clone())).collect();
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let mut out = BTreeMap::new();
        for item in self.db.iterator_cf(chunks, IteratorMode::Start) {
            let (k, v) = item?;
            let Some((part, seg, col)) = keys::parse_chunk(&k) else {
                continue;
            };
            if let Some(keys) = xnames.get(&(part, seg)) {
                let name = match col.checked_sub(xsegment::cols::ATTR_BASE) {
                    Some(i) => format!("xlog:attr:{}", keys.get(i as usize).map_or("?", String::as_str)),
                    None => format!("xlog:{col}"),
                };
                *out.entry(name).or_default() += v.len() as u64;
                continue;
            }
            let name = match col.checked_sub(segment::cols::ATTR_BASE) {
                Some(i) => names
                    .get(&(part, seg))
                    .and_then(|n| n.get(i as usize))
                    .map_or_else(|| "attr:?".to_string(), |k| format!("attr:{k}")),
                None => segment::cols::name(col).to_string(),
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
        let mut ids: Vec<u64> = self.partitions.read().keys().copied().collect();
        ids.extend(self.xpartitions.read().keys().copied());
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(crate) fn publish_gauges(&self) {
        let s = self.stats();
        metrics::store(&s);
        if let Ok(b) = self.disk_bytes() {
            metrics::disk_bytes(b);
        }
        for cf in keys::COLUMN_FAMILIES {
            let h = self.db.cf_handle(cf).expect("opened");
            if let Ok(Some(b)) = self.db.property_int_value_cf(h, "rocksdb.total-sst-files-size") {
                metrics::table_bytes(cf, b);
            }
        }
    }
}

fn next_prefix(id: &TraceId) -> Vec<u8> {
    let mut v = id.0.to_vec();
    for b in v.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return v;
        }
    }
    // All 0xff: no upper bound needed beyond the keyspace; 17 bytes sorts after every 32-byte key
    // starting with it.
    let mut v = id.0.to_vec();
    v.push(0xff);
    v.extend_from_slice(&[0xff; 16]);
    v
}

fn dir_has_entries(path: &Path) -> Result<bool, StorageError> {
    match std::fs::read_dir(path) {
        Ok(mut d) => Ok(d.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StorageError::Io { path: path.to_owned(), source }),
    }
}
