//! The background thread that seals memtables and enforces retention.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::store::Store;

const TICK: Duration = Duration::from_millis(100);
pub const RETENTION_EVERY: Duration = Duration::from_secs(30);

pub struct Maintenance {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Maintenance {
    pub fn start(store: Arc<Store>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rewind-maintenance".into())
            .spawn(move || {
                let mut last_retention: Option<Instant> = None;
                while !flag.load(Ordering::Relaxed) {
                    if store.should_seal() {
                        if let Err(e) = store.seal() {
                            tracing::error!(error = %e, "sealing failed; spans stay in the write-ahead log");
                        }
                    }
                    if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
                        if let Err(e) = store.enforce_retention(now_ns()) {
                            tracing::error!(error = %e, "retention pass failed");
                        }
                        store.compact_wal();
                        last_retention = Some(Instant::now());
                    }
                    std::thread::sleep(TICK);
                }
            })
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

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.shutdown();
    }
}
