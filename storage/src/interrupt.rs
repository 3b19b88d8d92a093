//! Stopping a read that has run out of time. A query runs on a blocking thread, where nothing
//! can cancel it from outside; instead, the thread carries an `Interrupt` while it runs, and
//! every fetch of stored chunks (the unit of work of every scan) checks it first, so a read
//! stops within one page of its deadline or of being cancelled.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::StorageError;

#[derive(Debug, Clone)]
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

impl Interrupt {
    pub fn new(deadline: Instant) -> Self {
        Self { stop: Arc::new(AtomicBool::new(false)), deadline }
    }

    /// Stops the read at its next fetch, whatever its deadline.
    pub fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn hit(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Runs `f` on this thread with this interrupt in force.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Reset(Option<Interrupt>);
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _reset = Reset(CURRENT.with(|c| c.borrow_mut().replace(self.clone())));
        f()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Interrupt>> = const { RefCell::new(None) };
}

/// `Err(Interrupted)` once the running read's interrupt is hit; reads without one never are.
pub fn check() -> Result<(), StorageError> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(i) if i.hit() => Err(StorageError::Interrupted),
        _ => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_the_thread_running_under_an_interrupt_is_stopped() {
        let i = Interrupt::new(Instant::now() + Duration::from_secs(60));
        assert!(i.run(check).is_ok());
        i.cancel();
        assert!(matches!(i.run(check), Err(StorageError::Interrupted)));
        assert!(check().is_ok(), "outside `run`, nothing is interrupted");
        let late = Interrupt::new(Instant::now());
        assert!(matches!(late.run(check), Err(StorageError::Interrupted)));
        // Nested runs restore the outer interrupt.
        let outer = Interrupt::new(Instant::now() + Duration::from_secs(60));
        outer.run(|| {
            assert!(late.run(check).is_err());
            assert!(check().is_ok());
        });
    }
}
