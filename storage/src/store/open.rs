//! Opening a store: the directory checked, RocksDB opened with every column family, the format
//! version checked (or upgraded), the tables' segment metas and the services catalog loaded, the
//! write-ahead log recovered.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use super::{State, Store, StoreConfig, FORMAT_VERSION, MAX_TOTAL_WAL_BYTES, UPGRADABLE_VERSIONS};
use crate::apm::derive::Deriver;
use crate::attr_keys::AttributeKeys;
use crate::catalog::Catalog;
use crate::clock::Horizon;
use crate::codec::corrupt;
use crate::error::StorageError;
use crate::health::Health;
use crate::helper::Helper;
use crate::keys;
use crate::spans::SpanSegmentMeta;
use crate::stats::table::{HoursMeta, MinutesMeta, SecondsMeta};
use crate::stats::table::{HoursTable, MinutesTable, SecondsTable};
use crate::table::{SegmentMeta, Table};
use crate::xlog::segment::XLogSegmentMeta;

/// RocksDB's default memtable and file size, which the default 1 GiB reserve covers.
const ROCKSDB_FILE_BYTES: u64 = 64 << 20;

/// Memtables, files and compactions small enough for the disk reserve (`min_free_disk_bytes`).
/// Writes stop at the reserve and seals at half of it; what RocksDB writes beyond that (a
/// memtable flush, a compaction's outputs before its inputs go) has to fit in the other half, or
/// it meets ENOSPC, which it does not survive. With a small reserve (a small volume, a test),
/// memtables and files are a sixteenth of it and compactions a quarter; the default reserve
/// keeps RocksDB's defaults.
fn size_for_reserve(o: &mut Options, reserve: u64) {
    let unit = reserve / 16;
    if reserve == 0 || unit >= ROCKSDB_FILE_BYTES {
        return;
    }
    let unit = unit.max(1 << 20);
    o.set_write_buffer_size(unit as usize);
    o.set_target_file_size_base(unit);
    o.set_max_compaction_bytes((reserve / 4).max(2 * unit));
}

fn cf_options(name: &str, floor: &Arc<AtomicU64>, reserve: u64) -> Options {
    let mut o = Options::default();
    size_for_reserve(&mut o, reserve);
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
        let cfs =
            cf_names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(n, &floor, config.min_free_disk_bytes)));
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs).map_err(|e| {
            // RocksDB's words when the lock file is held: "While lock file: <dir>/LOCK: …" by
            // another process, "lock hold by current process … <dir>/LOCK: …" by this one.
            let detail = e.to_string();
            let lock = detail.contains("/LOCK: ");
            if lock && (detail.contains("While lock file") || detail.contains("lock hold by current process")) {
                StorageError::InUse { path: path.clone(), detail }
            } else {
                e.into()
            }
        })?;

        let meta = db.cf_handle(keys::CF_META).expect("opened");
        let partition_ns = match db.get_cf(meta, keys::META_FORMAT_VERSION)? {
            Some(v) => {
                let found = u32::from_be_bytes(v.as_slice().try_into().map_err(|_| corrupt("version"))?);
                if UPGRADABLE_VERSIONS.contains(&found) {
                    tracing::info!(from = found, to = FORMAT_VERSION, "upgrading the store's format version");
                    let mut w = WriteOptions::default();
                    w.set_sync(true);
                    db.put_cf_opt(meta, keys::META_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes(), &w)?;
                } else if found != FORMAT_VERSION {
                    return Err(StorageError::UnsupportedVersion { path, found, supported: FORMAT_VERSION });
                }
                let p = db.get_cf(meta, keys::META_PARTITION_NS)?.ok_or_else(|| corrupt("partition width"))?;
                u64::from_be_bytes(p.as_slice().try_into().map_err(|_| corrupt("partition width"))?)
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
            floor.store(u64::from_be_bytes(f.as_slice().try_into().map_err(|_| corrupt("floor"))?), Ordering::Relaxed);
        }

        let (spans, xlog) = (Table::<SpanSegmentMeta>::default(), Table::<XLogSegmentMeta>::default());
        let (seconds, minutes, hours) = (SecondsTable::default(), MinutesTable::default(), HoursTable::default());
        let mut services = Vec::new();
        for item in db.iterator_cf(meta, IteratorMode::Start) {
            let (k, v) = item?;
            match k.first().copied() {
                Some(p) if p == SpanSegmentMeta::TABLE.meta_prefix => spans.load(&k, &v)?,
                Some(p) if p == XLogSegmentMeta::TABLE.meta_prefix => xlog.load(&k, &v)?,
                Some(p) if p == SecondsMeta::TABLE.meta_prefix => seconds.load(&k, &v)?,
                Some(p) if p == MinutesMeta::TABLE.meta_prefix => minutes.load(&k, &v)?,
                Some(p) if p == HoursMeta::TABLE.meta_prefix => hours.load(&k, &v)?,
                Some(keys::META_SERVICE_PREFIX) => services
                    .push(serde_json::from_slice(&v).map_err(|e| corrupt(&format!("service catalog entry: {e}")))?),
                _ => {}
            }
        }
        let attribute_keys = Arc::new(AttributeKeys::new(config.max_attribute_keys));
        spans.intern(&attribute_keys);
        xlog.intern(&attribute_keys);
        // Segment ids are unique across tables: retention drops a partition of all of them at once.
        let next_segment = [spans.max_id(), xlog.max_id(), seconds.max_id(), minutes.max_id(), hours.max_id()]
            .into_iter()
            .flatten()
            .max()
            .map_or(1, |id| id + 1);
        let watermark = |key: &[u8]| -> Result<Option<u64>, StorageError> {
            match db.get_cf(meta, key)? {
                Some(v) => {
                    Ok(Some(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| corrupt("roll-up watermark"))?)))
                }
                None => Ok(None),
            }
        };
        let rolled = (watermark(keys::META_ROLLED_MINUTES)?, watermark(keys::META_ROLLED_HOURS)?);
        let deriver = Mutex::new(Deriver::new(config.derive.clone()));
        let persisted_horizon = match db.get_cf(meta, keys::META_HORIZON)? {
            Some(v) => Some(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| corrupt("horizon"))?)),
            None => None,
        };
        let horizon = Horizon::new(persisted_horizon, config.clock.wall_ns(), config.clock.mono_ns());
        let health = Arc::new(Health::default());
        let recent_batches = super::retries::load(&db, config.clock.wall_ns())?;

        let store = Self {
            db,
            partition_ns,
            state: RwLock::new(State::default()),
            spans,
            xlog,
            stats_seconds: seconds,
            stats_minutes: minutes,
            stats_hours: hours,
            stats_coverage: Mutex::new(crate::stats::table::Coverage {
                minutes_until: 0,
                hours_until: 0,
                seconds_from: 0,
            }),
            deriver,
            catalog: Mutex::new(Catalog::from_entries(services, config.max_services)),
            attribute_keys,
            next_seq: Mutex::new(0),
            recent_batches: Mutex::new(recent_batches),
            sealed_seq: Mutex::new(None),
            wal_cut: AtomicU64::new(0),
            chunks_read: AtomicU64::new(0),
            unsealed_bytes: AtomicU64::new(0),
            next_segment: Arc::new(AtomicU64::new(next_segment)),
            helper: Helper::start(health.clone(), config.failpoints.clone()),
            floor,
            maintenance: Mutex::new(()),
            horizon: Mutex::new(horizon),
            health,
            config,
        };
        let cover = store.initial_coverage(rolled);
        if rolled.0.is_none() {
            // A new store, or one from before the statistics: roll-ups start from now.
            let meta = store.db.cf_handle(keys::CF_META).expect("opened");
            let mut b = WriteBatch::default();
            b.put_cf(meta, keys::META_ROLLED_MINUTES, cover.minutes_until.to_be_bytes());
            b.put_cf(meta, keys::META_ROLLED_HOURS, cover.hours_until.to_be_bytes());
            store.db.write(b)?;
        }
        *store.stats_coverage.lock() = cover;
        store.recover_wal()?;
        store.publish_gauges();
        Ok(Arc::new(store))
    }
}

fn dir_has_entries(path: &Path) -> Result<bool, StorageError> {
    match std::fs::read_dir(path) {
        Ok(mut d) => Ok(d.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StorageError::Io { path: path.to_owned(), source }),
    }
}
