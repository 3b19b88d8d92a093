//! Whether the store can do its job, for readiness and for the process to give up when it cannot.
//! Two kinds of trouble: the disk refusing writes (transient: full, or an I/O error; writes answer
//! "retry later" and readiness turns false until a write succeeds again), and a background thread
//! that died (fatal: nothing would ever seal or write again, so the process should exit and let
//! its supervisor restart it; everything acknowledged is in the write-ahead log).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

/// The two writes the store makes: appends to the write-ahead log, and seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    Log = 0,
    Seal = 1,
}

#[derive(Debug, Default)]
pub struct Health {
    /// Why the last write of each path failed; `None` once one succeeds.
    write_errors: Mutex<[Option<String>; 2]>,
    fatal: Mutex<Option<String>>,
}

impl Health {
    pub(crate) fn write_failed(&self, path: WritePath, why: String) {
        let mut e = self.write_errors.lock();
        if e[path as usize].is_none() {
            tracing::warn!(?path, error = %why, "the store cannot write; it is not ready until it can");
        }
        e[path as usize] = Some(why);
    }

    pub(crate) fn write_succeeded(&self, path: WritePath) {
        let mut e = self.write_errors.lock();
        if e[path as usize].take().is_some() {
            tracing::info!(?path, "the store writes again");
        }
    }

    pub(crate) fn set_fatal(&self, why: String) {
        tracing::error!(error = %why, "the store cannot continue");
        self.fatal.lock().get_or_insert(why);
    }

    /// Why the store cannot write now, if it cannot.
    pub fn write_error(&self) -> Option<String> {
        let e = self.write_errors.lock();
        e.iter().flatten().next().cloned()
    }

    /// Why the store cannot continue at all, if a background thread died.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().clone()
    }

    /// `Ok` when the store can take writes; otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        if let Some(f) = self.fatal() {
            return Err(f);
        }
        match self.write_error() {
            Some(e) => Err(format!("the store cannot write: {e}")),
            None => Ok(()),
        }
    }
}

/// Spawns a background thread whose panic is reported as fatal instead of vanishing with it.
pub(crate) fn spawn_reporting(
    name: &'static str,
    health: Arc<Health>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(body)) {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            health.set_fatal(format!("the {name} thread died: {msg}"));
        }
    })
}

/// Doubling waits between attempts that keep failing, from `first` up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: std::time::Duration,
    max: std::time::Duration,
    wait: Option<std::time::Duration>,
    next: Option<std::time::Instant>,
}

impl Backoff {
    pub(crate) fn new(first: std::time::Duration, max: std::time::Duration) -> Self {
        Self { first, max, wait: None, next: None }
    }

    /// True unless the last failure asked to wait longer.
    pub(crate) fn due(&self) -> bool {
        self.next.is_none_or(|t| std::time::Instant::now() >= t)
    }

    pub(crate) fn failed(&mut self) -> std::time::Duration {
        let wait = self.wait.map_or(self.first, |w| (w * 2).min(self.max));
        self.wait = Some(wait);
        self.next = Some(std::time::Instant::now() + wait);
        wait
    }

    pub(crate) fn succeeded(&mut self) {
        self.wait = None;
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        assert!(b.due());
        let waits: Vec<u64> = (0..5).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert!(!b.due());
        b.succeeded();
        assert!(b.due());
    }

    #[test]
    fn a_panicking_thread_is_reported_as_fatal() {
        let health = Arc::new(Health::default());
        spawn_reporting("test", health.clone(), || panic!("boom")).unwrap().join().unwrap();
        assert_eq!(health.fatal().as_deref(), Some("the test thread died: boom"));
        assert!(health.ready().is_err());
    }
}
