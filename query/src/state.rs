//! What every handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rewind_storage::Store;
use tokio::sync::Semaphore;

pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct QueryState {
    pub store: Arc<Store>,
    /// Set once the store is open and every listener is bound.
    pub ready: Arc<AtomicBool>,
    pub metrics: MetricsRenderer,
    /// When set, `/api/*` requires `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Answers `POST /api/sql`; without it the endpoint answers 404.
    pub sql: Option<Arc<dyn crate::sql_service::SqlService>>,
    pub limits: Arc<QueryLimits>,
    /// Where the Jaeger query API is served (`/jaeger`), or nowhere.
    pub jaeger_prefix: Option<String>,
}

/// Trace reads by id allowed at once for each scan slot.
pub const LOOKUPS_PER_SCAN: usize = 8;

/// What kind of store read a request is, for its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    Scan,
    Lookup,
}

/// What the store-reading endpoints may take at once (SQL has its own, in its engine).
pub struct QueryLimits {
    pub timeout: Duration,
    /// One permit per request that scans the store (the scatter, lists, the map, histograms,
    /// replays, the finder, comparisons).
    pub(crate) scans: Arc<Semaphore>,
    /// One permit per trace read by id: point reads, many more of them at once.
    pub(crate) lookups: Arc<Semaphore>,
    /// Bytes of answers being built, each request reserving its bound before it starts.
    pub(crate) memory: Arc<Semaphore>,
    pub(crate) memory_bytes: usize,
}

impl QueryLimits {
    pub fn new(timeout: Duration, concurrency: usize, memory_bytes: usize) -> Self {
        Self {
            timeout,
            scans: Arc::new(Semaphore::new(concurrency)),
            lookups: Arc::new(Semaphore::new(concurrency * LOOKUPS_PER_SCAN)),
            memory: Arc::new(Semaphore::new(memory_bytes)),
            memory_bytes,
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), 8, 1 << 30)
    }
}
