//! One long-lived helper thread for the sealing path: it encodes a seal's XLog segments while the
//! sealing thread encodes the span segments, and frees sealed memtables. Long-lived because a
//! thread per seal costs the allocator a fresh heap each time (and its pages, abandoned at exit,
//! are reclaimed by others): measured, that cost more than the work it moved.

use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::failpoint::Failpoints;
use crate::health::{spawn_reporting, Health};

type Job = Box<dyn FnOnce() + Send>;

pub struct Helper {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Helper {
    pub fn start(health: Arc<Health>, failpoints: Failpoints) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = spawn_reporting("rewind-seal-helper", health, move || {
            while let Ok(job) = rx.recv() {
                if let Err(e) = failpoints.hit("seal-helper") {
                    tracing::warn!(error = %e, "seal helper failpoint");
                }
                job();
            }
        })
        .ok();
        // Without the thread, jobs run on the caller's (see `run`).
        let tx = thread.as_ref().map(|_| tx);
        Self { tx: Mutex::new(tx), thread: Mutex::new(thread) }
    }

    /// Runs the job on the helper thread, or here if it is gone.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let tx = self.tx.lock().clone();
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(Box::new(job)) {
                    job();
                }
            }
            None => job(),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}
