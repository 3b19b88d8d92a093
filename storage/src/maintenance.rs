//! The background thread that seals memtables and enforces retention. A failing seal or
//! retention pass is retried with backoff, not every tick; while the store cannot write, a small
//! probe write finds out when it can again, so readiness comes back without waiting for traffic
//! (a load balancer that took the instance out of service sends none).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::health::{spawn_reporting, Backoff};
use crate::store::Store;

/// Seals start at most this often, so that a trickle of spans is sealed in batches.
const TICK: Duration = Duration::from_millis(100);
/// How often the thread looks. At full rate (300,000 spans a second) a seal takes about a quarter
/// of a second and the next one starts as soon as it ends: waiting a whole tick after each, as
/// this thread did, let the memtable grow by half again or more, and the memory it holds twice
/// over (as the active memtable, then as the frozen one being sealed).
const POLL: Duration = Duration::from_millis(10);
pub const RETENTION_EVERY: Duration = Duration::from_secs(30);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct Maintenance {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub fn start(store: Arc<Store>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let health = store.health.clone();
        let thread = spawn_reporting("rewind-maintenance", health, move || run(&store, &flag))
            .expect("spawn maintenance thread");
        Self { stop, thread: Some(thread) }
    }

    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(store: &Store, stop: &AtomicBool) {
    let mut last_retention: Option<Instant> = None;
    let (mut seal_retry, mut retention_retry, mut probe_retry) = (
        Backoff::new(BACKOFF_FIRST, BACKOFF_MAX),
        Backoff::new(BACKOFF_FIRST, BACKOFF_MAX),
        Backoff::new(BACKOFF_FIRST, BACKOFF_MAX),
    );
    // When the last seal started.
    let mut last_seal: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = store.config.failpoints.hit("maintenance-thread") {
            tracing::warn!(error = %e, "maintenance failpoint");
        }
        if seal_retry.due() && last_seal.is_none_or(|t| t.elapsed() >= TICK) && store.should_seal() {
            last_seal = Some(Instant::now());
            match store.seal() {
                Ok(_) => seal_retry.succeeded(),
                Err(e) => {
                    let wait = seal_retry.failed();
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64,
                        "sealing failed; spans stay in the write-ahead log");
                }
            }
        }
        if retention_retry.due() && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            match store.enforce_retention() {
                Ok(_) => {
                    retention_retry.succeeded();
                    store.compact_wal();
                    if let Err(e) = store.roll_up() {
                        tracing::error!(error = %e, "rolling statistics up failed; the next pass tries again");
                    }
                    last_retention = Some(Instant::now());
                }
                Err(e) => {
                    let wait = retention_retry.failed();
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "retention pass failed");
                }
            }
        }
        if store.health.write_error().is_some() && probe_retry.due() {
            match store.probe_write() {
                Ok(()) => probe_retry.succeeded(),
                Err(_) => {
                    probe_retry.failed();
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.shutdown();
    }
}
