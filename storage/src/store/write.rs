//! The write path: a batch made durable in one write to the `wal` column family (fsync'd when
//! configured), then made visible in the memtable and taken in by the deriver.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rocksdb::{WriteBatch, WriteOptions};

use super::retries::Fingerprint;
use super::Store;
use crate::apm::derive::Extract;
use crate::catalog::Sightings;
use crate::codec::row;
use crate::error::StorageError;
use crate::health::WritePath;
use crate::keys;
use crate::metrics;
use crate::model::Span;
use crate::xlog::{wal as xwal, XLog};

/// A batch of validated spans, or of native XLog records, with its write-ahead-log encoding and
/// what XLog derivation needs of it; build it off the writer thread.
pub struct EncodedBatch {
    pub spans: Vec<Arc<Span>>,
    pub xlogs: Vec<XLog>,
    pub wal: Vec<u8>,
    /// What the batch holds in memory until it is sealed (see `Span::memory_bytes`).
    memory: usize,
    extract: Extract,
    sightings: Sightings,
    fingerprint: Fingerprint,
}

impl EncodedBatch {
    pub fn new(spans: Vec<Span>) -> Self {
        let wal = row::encode_batch(&spans);
        let fingerprint = Fingerprint::of(&wal);
        let memory = spans.iter().map(Span::memory_bytes).sum();
        let spans: Vec<Arc<Span>> = spans.into_iter().map(Arc::new).collect();
        let extract = Extract::from_spans(&spans);
        let sightings = Sightings::with_peers(spans.iter().map(|s| &**s), |i| extract.peer_of(i));
        Self { spans, xlogs: Vec::new(), wal, memory, extract, sightings, fingerprint }
    }

    pub fn xlogs(xlogs: Vec<XLog>) -> Self {
        let wal = xwal::encode_batch(&xlogs);
        let fingerprint = Fingerprint::of(&wal);
        Self {
            spans: Vec::new(),
            xlogs,
            memory: wal.len(),
            wal,
            extract: Extract::default(),
            sightings: Sightings::default(),
            fingerprint,
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len() + self.xlogs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store {
    /// Makes batches durable (one write, fsync'd when configured) and then visible to queries.
    /// Returns only once the write is on disk: the caller may acknowledge after it. A batch
    /// that repeats one already stored (a retried export, see `retries`) is acknowledged and
    /// dropped.
    pub fn append(&self, batches: Vec<EncodedBatch>) -> Result<(), StorageError> {
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        // Held across the write so sequence numbers reach the memtable in WAL order, and so no
        // other append stores a retry of these batches meanwhile.
        let mut next = self.next_seq.lock();
        let wall = self.config.clock.wall_ns();
        let batches = {
            let recent = self.recent_batches.lock();
            let mut fresh: Vec<EncodedBatch> = Vec::with_capacity(batches.len());
            let n = batches.len();
            for b in batches {
                if !recent.contains(b.fingerprint, wall) && fresh.iter().all(|f| f.fingerprint != b.fingerprint) {
                    fresh.push(b);
                }
            }
            if fresh.len() < n {
                metrics::retried_batches(n - fresh.len());
            }
            fresh
        };
        if batches.is_empty() {
            return Ok(());
        }
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
        {
            let mut recent = self.recent_batches.lock();
            recent.expire(wall);
            batches.iter().for_each(|b| recent.insert(b.fingerprint, wall));
        }
        let first = *next;
        *next += batches.len() as u64;
        // In the store's lock order (see `store`): state, deriver, then the catalog, a leaf.
        let mut st = self.state.write();
        let mut deriver = self.deriver.lock();
        let mut catalog = self.catalog.lock();
        let now = self.config.clock.mono_ns();
        for (i, b) in batches.into_iter().enumerate() {
            let seq = first + i as u64;
            catalog.apply(&b.sightings);
            st.active.batches.push((b.fingerprint, wall));
            if self.config.derive_xlog && !b.spans.is_empty() {
                let early = deriver.observe(seq, b.extract, now);
                st.active.xlogs.extend(early.records);
                st.active.links.extend(early.links);
            }
            st.active.insert(seq, b.spans, b.xlogs, b.memory);
        }
        metrics::memtable(st.active.len(), st.active.bytes);
        metrics::xlog_deriver(&deriver);
        self.unsealed_bytes.store(st.unsealed_bytes(), Ordering::Relaxed);
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
        self.unsealed_bytes.load(Ordering::Relaxed) > self.config.max_unsealed_bytes as u64
    }
}
