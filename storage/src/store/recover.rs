//! Recovery at start-up: the write-ahead log replayed into the memtable and the deriver.

use std::sync::Arc;

use rocksdb::IteratorMode;

use super::retries::Fingerprint;
use super::Store;
use crate::apm::derive::Extract;
use crate::codec::row;
use crate::error::StorageError;
use crate::keys;
use crate::model::Span;
use crate::xlog::wal as xwal;

impl Store {
    /// Replays acknowledged-but-unsealed batches into the memtable. Records at or below the last
    /// sealed sequence are still in the log only because they hold entry spans whose XLog records
    /// were not final: they go to the deriver alone.
    pub(super) fn recover_wal(&self) -> Result<(), StorageError> {
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let sealed = match self.db.get_cf(meta, keys::META_SEALED_SEQ)? {
            Some(v) => {
                Some(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| crate::codec::corrupt("sealed sequence"))?))
            }
            None => None,
        };
        // Traces the deriver held at the last seal: the only ones records at or below the sealed
        // sequence are derived again for (the others were released, and sealed). A store from
        // before this key derives them all, as it used to.
        let held = match self.db.get_cf(meta, keys::META_HELD_TRACES)? {
            Some(v) => Some(super::seal::decode_held(&v).map_err(|e| e.within(|| "held traces".into()))?),
            None => None,
        };
        let released = match self.db.get_cf(meta, keys::META_HELD_RELEASED)? {
            Some(v) => super::seal::decode_released(&v).map_err(|e| e.within(|| "held traces".into()))?,
            None => Default::default(),
        };
        let mut st = self.state.write();
        let mut deriver = self.deriver.lock();
        deriver.recovering(released);
        let mut catalog = self.catalog.lock();
        // New records number on from everything ever sealed, not just from what the log still
        // holds: after a clean stop the log is empty, and a record numbered at or below the sealed
        // sequence would be taken for sealed by the next recovery, and lost.
        let mut next = sealed.map_or(0, |s| s + 1);
        let mut recovered = 0usize;
        let now = self.config.clock.mono_ns();
        let wall = self.config.clock.wall_ns();
        // Fingerprints of the unsealed batches, remembered once the other locks are let go.
        let mut fingerprints = Vec::new();
        for item in self.db.iterator_cf(wal, IteratorMode::Start) {
            let (k, v) = item?;
            let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| crate::codec::corrupt("wal key"))?);
            let record = || format!("write-ahead log record {seq}");
            next = next.max(seq + 1);
            let unsealed = sealed.is_none_or(|s| seq > s);
            if xwal::is_xlog_batch(&v) {
                if unsealed {
                    let xlogs = xwal::decode_batch(&v).map_err(|e| e.within(record))?;
                    recovered += xlogs.len();
                    let fp = Fingerprint::of(&v);
                    fingerprints.push(fp);
                    st.active.batches.push((fp, wall));
                    st.active.insert(seq, Vec::new(), xlogs, v.len());
                }
                continue;
            }
            let spans: Vec<Arc<Span>> =
                row::decode_batch(&v).map_err(|e| e.within(record))?.into_iter().map(Arc::new).collect();
            if self.config.derive_xlog {
                let mut extract = Extract::from_spans(&spans);
                if let (false, Some(held)) = (unsealed, &held) {
                    extract.retain(|t| held.contains(t));
                }
                let early = deriver.observe(seq, extract, now);
                st.active.xlogs.extend(early.records);
                st.active.links.extend(early.links);
            }
            if unsealed {
                recovered += spans.len();
                let fp = Fingerprint::of(&v);
                fingerprints.push(fp);
                st.active.batches.push((fp, wall));
                catalog.apply(&crate::catalog::Sightings::of(spans.iter().map(|s| &**s)));
                let memory = spans.iter().map(|s| s.memory_bytes()).sum();
                st.active.insert(seq, spans, Vec::new(), memory);
            }
        }
        deriver.recovered();
        self.unsealed_bytes.store(st.unsealed_bytes(), std::sync::atomic::Ordering::Relaxed);
        drop((st, deriver, catalog));
        let mut recent = self.recent_batches.lock();
        fingerprints.into_iter().for_each(|fp| recent.insert(fp, wall));
        drop(recent);
        *self.next_seq.lock() = next;
        *self.sealed_seq.lock() = sealed;
        if recovered > 0 {
            tracing::info!(records = recovered, "recovered unsealed spans and records from the write-ahead log");
        }
        Ok(())
    }
}
