//! The store: RocksDB with four column families (see `keys`), two tables on the table layer
//! (`crate::table`: spans and XLog transactions), the memtable of what is acknowledged but not yet
//! sealed, and the services catalog. One file per operation: `open` (format checks, loading the
//! tables), `recover` (the write-ahead log at start-up), `write` (the durable write path), `seal`,
//! `retention` (age, disk budget), `read` (trace by id; XLog reads are in `crate::xlog::read`) and
//! `stats`.
//!
//! **Lock order.** Locks are taken in this order and never the other way round:
//! `maintenance` (one seal or retention pass at a time) → `next_seq` (held across a durable write,
//! so that sequence numbers reach the memtable in log order) → `state` → `deriver`. The
//! `catalog`, `recent_batches`, `sealed_seq`, `horizon` and the tables' partition maps are leaves: taken last, and
//! nothing else is taken while one is held. (Appends and recovery hold state, deriver and catalog
//! together, in that order; seals take the catalog alone.)

mod open;
mod read;
mod recover;
mod retention;
pub(crate) mod retries;
mod scan;
mod seal;
mod statistics;
mod stats;
mod write;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rocksdb::DB;

pub use scan::Snapshot;
pub use stats::StoreStats;
pub use write::EncodedBatch;

use crate::apm::derive::{DeriveConfig, Deriver};
use crate::attr_keys::AttributeKeys;
use crate::catalog::{Catalog, ServiceInfo};
use crate::clock::{Clock, Horizon, SystemClock};
use crate::failpoint::Failpoints;
use crate::health::Health;
use crate::helper::Helper;
use crate::memtable::Memtable;
use crate::spans::SpanSegmentMeta;
use crate::stats::table::{Coverage, HoursTable, MinutesTable, SecondsTable};
use crate::stats::{ActiveBounds, DEFAULT_ACTIVE_BOUNDS};
use crate::table::Table;
use crate::xlog::segment::XLogSegmentMeta;

/// Version 5: version 4 plus WAL records whose name table holds short string values too (row
/// format 3); formats 1 and 2 still read. An older build would find such records unreadable at
/// recovery, so it must refuse the store before that.
/// Version 4 was version 3 plus WAL records with a name table (row format 2) and XLog segments
/// that compute their promoted fields from their attribute columns (`computed` in their metas).
/// Version 3 was version 2 plus the server map's statistics (three tables under the meta prefixes
/// `1`, `2`, `3`, their roll-up watermarks), the held traces and the retried-batch fingerprints.
/// Version 2 was version 1 (column families meta/wal/chunks/tindex, row format 1, the span segment
/// layout) plus XLog segments and native XLog records in the WAL. Older stores are upgraded in
/// place when opened: each version only added, and their statistics start at the upgrade. A build
/// older than a store refuses it, rather than writing data its statistics would miss.
pub const FORMAT_VERSION: u32 = 5;
const UPGRADABLE_VERSIONS: [u32; 4] = [1, 2, 3, 4];

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
    /// Memory of acknowledged-but-unsealed spans (`Span::memory_bytes`) beyond which the store is
    /// `backlogged`: memory stays bounded even if sealing falls behind ingest.
    pub max_unsealed_bytes: usize,
    /// Derive an XLog record from every OTLP entry span.
    pub derive_xlog: bool,
    /// Statistics keep one-second resolution this long (never longer than `retention`); older
    /// seconds are answered by minute and hour rows.
    pub replay_window: Duration,
    /// The equalizer's age buckets (seconds): applied as transactions are sealed.
    pub active_bounds_s: ActiveBounds,
    pub derive: DeriveConfig,
    /// Writes are refused (retryably) while the filesystem has less free space than this, so that
    /// RocksDB itself never runs out in the middle of a write; seals go on down to half of it.
    pub min_free_disk_bytes: u64,
    pub clock: Arc<dyn Clock>,
    pub failpoints: Failpoints,
    /// Entries of the services catalog at most (services and the peers they call).
    pub max_services: usize,
    /// Distinct attribute keys within the retention at most (`crate::attr_keys`).
    pub max_attribute_keys: usize,
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
            replay_window: Duration::from_secs(7 * 86400),
            active_bounds_s: DEFAULT_ACTIVE_BOUNDS,
            derive: DeriveConfig::default(),
            min_free_disk_bytes: 1 << 30,
            clock: Arc::new(SystemClock::default()),
            failpoints: Failpoints::default(),
            max_services: crate::catalog::MAX_SERVICES,
            max_attribute_keys: crate::attr_keys::MAX_ATTRIBUTE_KEYS,
        }
    }
}

impl State {
    pub(crate) fn unsealed_bytes(&self) -> u64 {
        (self.active.bytes + self.frozen.as_ref().map_or(0, |f| f.bytes)) as u64
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) active: Memtable,
    /// Being sealed: still answered from memory until its chunks are written.
    pub(crate) frozen: Option<Arc<Memtable>>,
}

pub struct Store {
    pub(crate) db: DB,
    pub(crate) config: StoreConfig,
    pub(crate) partition_ns: u64,
    pub(crate) state: RwLock<State>,
    /// Span segments, by partition of their spans' start time.
    pub(crate) spans: Table<SpanSegmentMeta>,
    /// XLog segments, by partition of their records' end time.
    pub(crate) xlog: Table<XLogSegmentMeta>,
    /// The map's statistics at three resolutions (`crate::stats`), by partition of their time.
    pub(crate) stats_seconds: SecondsTable,
    pub(crate) stats_minutes: MinutesTable,
    pub(crate) stats_hours: HoursTable,
    pub(crate) stats_coverage: Mutex<Coverage>,
    pub(crate) deriver: Mutex<Deriver>,
    pub(crate) catalog: Mutex<Catalog>,
    /// The attribute keys segment metas share; ingest admits keys against it.
    pub(crate) attribute_keys: Arc<AttributeKeys>,
    pub(crate) next_seq: Mutex<u64>,
    /// Batches stored within the retry window (`retries`); a leaf, taken under `next_seq`.
    pub(crate) recent_batches: Mutex<retries::RecentBatches>,
    /// The highest write-ahead-log sequence sealed (`keys::META_SEALED_SEQ`): every record at or
    /// below it is in segments, and the log keeps only those that pending XLog entries still need.
    pub(crate) sealed_seq: Mutex<Option<u64>>,
    /// Write-ahead-log keys below this are deleted (by seals); their table files can go.
    pub(crate) wal_cut: AtomicU64,
    /// Chunks fetched by reads since open: what proves a scan's projection and time pruning.
    pub(crate) chunks_read: AtomicU64,
    /// Encoded bytes of the unsealed spans (active and frozen memtables), kept beside the state
    /// lock so that admission (`backlogged`, on the async runtime's threads) never waits for it.
    pub(crate) unsealed_bytes: AtomicU64,
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

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.config.path).finish_non_exhaustive()
    }
}

impl Store {
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

    /// The attribute keys ingest admits against (`crate::attr_keys`): conversion asks it before a
    /// key becomes a span's attribute, so keys past the cap never reach a segment.
    pub fn attribute_keys(&self) -> &Arc<AttributeKeys> {
        &self.attribute_keys
    }

    /// The catalog's entries, shared: copying them is a pointer each, under the lock appends take.
    pub fn services(&self) -> Vec<Arc<ServiceInfo>> {
        self.catalog.lock().list()
    }

    pub fn has_service(&self, name: &str) -> bool {
        self.catalog.lock().contains(name)
    }

    /// One entry of the catalog, shared.
    pub fn service(&self, name: &str) -> Option<Arc<ServiceInfo>> {
        self.catalog.lock().get(name)
    }
}

#[cfg(test)]
mod tests;
