//! Group commit: one thread takes every batch waiting, writes them in one durable RocksDB write,
//! then answers each. One fsync is shared by all concurrent exports.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::error::StorageError;
use crate::store::{EncodedBatch, Store};

pub type Done = Box<dyn FnOnce(Result<(), Arc<StorageError>>) + Send>;

/// Upper bounds of one group: latency of the first batch in it stays bounded.
const MAX_GROUP_BATCHES: usize = 256;
const MAX_GROUP_BYTES: usize = 64 << 20;

pub struct Writer {
    tx: Mutex<Option<Sender<(EncodedBatch, Done)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(store: Arc<Store>) -> Self {
        let (tx, rx) = mpsc::channel();
        let health = store.health.clone();
        // A writer that died would leave every export waiting for "retry later" forever: its
        // panic is reported as fatal, and the process exits for its supervisor to restart it.
        let thread = crate::health::spawn_reporting("rewind-writer", health, move || run(store, rx))
            .expect("spawn writer thread");
        Self { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) }
    }

    /// Queues a batch; `done` is called once it is durable and visible, or failed.
    pub fn submit(&self, batch: EncodedBatch, done: Done) {
        let tx = self.tx.lock().clone();
        let Some(tx) = tx else {
            return done(Err(Arc::new(StorageError::ShuttingDown)));
        };
        if let Err(mpsc::SendError((_, done))) = tx.send((batch, done)) {
            done(Err(Arc::new(StorageError::ShuttingDown)));
        }
    }

    /// Writes everything already queued, then stops.
    pub fn shutdown(&self) {
        self.tx.lock().take();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(store: Arc<Store>, rx: Receiver<(EncodedBatch, Done)>) {
    while let Ok(first) = rx.recv() {
        let mut bytes = first.0.wal.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.0.wal.len();
                    group.push(job);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (batches, dones): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let result =
            store.config.failpoints.hit("writer-thread").and_then(|()| store.append(batches)).map_err(Arc::new);
        if let Err(e) = &result {
            tracing::error!(error = %e, "write-ahead log write failed; exports are answered with an error");
        }
        for done in dones {
            done(result.clone());
        }
    }
}
