//! Sealing: the memtable out to column segments, the final XLog records with it, and the
//! write-ahead log cut back, in one atomic write. And the clean stop that leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::{WriteBatch, WriteOptions};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;

use crate::error::StorageError;
use crate::health::WritePath;
use crate::keys;
use crate::memtable::Memtable;
use crate::metrics;
use crate::model::{Span, SpanId, TraceId};
use crate::spans;
use crate::stats::accumulate::Accumulator;
use crate::stats::ActiveBounds;
use crate::store::Store;
use crate::table::{SegmentMeta, Table};
use crate::xlog::segment as xsegment;
use crate::xlog::XLog;

impl Store {
    pub fn should_seal(&self) -> bool {
        let st = self.state.read();
        let memtable = !st.active.is_empty()
            && (st.active.len() >= self.config.seal_rows || st.active.created.elapsed() >= self.config.seal_interval);
        memtable || self.deriver.lock().has_due(self.config.clock.mono_ns())
    }

    /// Writes the memtable out as one segment per partition it touches and drops its WAL records,
    /// all in one atomic write. XLog records whose entry spans have waited their grace period are
    /// sealed with it. Returns the number of spans sealed.
    pub fn seal(&self) -> Result<usize, StorageError> {
        self.seal_with(false)
    }

    /// Seals everything, finalizing every XLog record still waiting for children: at shutdown.
    pub fn seal_all(&self) -> Result<usize, StorageError> {
        self.seal_with(true)
    }

    fn seal_with(&self, all: bool) -> Result<usize, StorageError> {
        let _one = self.maintenance.lock();
        let (frozen, held) = {
            let mut st = self.state.write();
            let mut deriver = self.deriver.lock();
            let released = deriver.finalize(self.config.clock.mono_ns(), all);
            metrics::xlog_deriver(&deriver);
            if st.active.is_empty() && released.records.is_empty() && released.links.is_empty() {
                return Ok(0);
            }
            let mut m = std::mem::take(&mut st.active);
            m.xlogs.extend(released.records);
            m.links.extend(released.links);
            let m = Arc::new(m);
            st.frozen = Some(m.clone());
            // Taken with the memtable under one lock: both describe the same WAL records.
            (m, Held::of(deriver.held_traces()))
        };
        match self.write_segments(&frozen, held) {
            Ok(sealed) => {
                self.health.write_succeeded(WritePath::Seal);
                // Freeing a memtable's spans takes a while: never under the state lock, and not
                // on the sealing thread, which bounds ingest. This is the last reference.
                self.helper.run(move || drop(frozen));
                Ok(sealed)
            }
            Err(e) => {
                self.health.write_failed(WritePath::Seal, e.to_string());
                self.unfreeze(&frozen);
                Err(e)
            }
        }
    }

    /// After a failed seal: the frozen spans and records go back in front of the active
    /// memtable's, so nothing leaves memory before it is sealed; the WAL still holds them.
    fn unfreeze(&self, frozen: &Memtable) {
        let mut st = self.state.write();
        let newer = std::mem::take(&mut st.active);
        let mut restored = Memtable::default();
        for s in [frozen, &newer] {
            restored.xlogs.extend(s.xlogs.iter().cloned());
            restored.links.extend(s.links.iter().cloned());
            restored.batches.extend(s.batches.iter().copied());
            if let Some(seq) = s.max_seq {
                restored.insert(seq, s.spans().to_vec(), Vec::new(), s.bytes);
            }
        }
        st.active = restored;
        st.frozen = None;
        self.unsealed_bytes.store(st.unsealed_bytes(), Ordering::Relaxed);
    }

    fn write_segments(&self, frozen: &Arc<Memtable>, held: Held) -> Result<usize, StorageError> {
        let keep_wal_from = held.from_seq;
        let started = std::time::Instant::now();
        // Seals may use half the reserve that appends leave: they turn the log into smaller
        // chunks and let it be cut back, so they are what frees space.
        crate::disk::ensure_free(&self.config.path, self.config.min_free_disk_bytes / 2)?;
        let floor = self.floor.load(Ordering::Acquire);
        let mut by_partition: BTreeMap<u64, Vec<&Span>> = BTreeMap::new();
        for s in frozen.spans().iter().map(|s| &**s) {
            let p = self.partition_of(s.start_ns);
            // A partition dropped while these spans waited in memory stays dropped.
            if p >= floor {
                by_partition.entry(p).or_default().push(s);
            }
        }
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let tindex = self.db.cf_handle(keys::CF_TRACE_INDEX).expect("opened");
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        let mut wb = WriteBatch::default();
        // Span and XLog segments are encoded on two threads: sealing is what bounds sustained
        // ingest, and the other core has room while it runs.
        let (xtx, xrx) = std::sync::mpsc::channel();
        let (records, ids, partition_ns) = (frozen.clone(), self.next_segment.clone(), self.partition_ns);
        let active_bounds = self.config.active_bounds_s;
        self.helper.run(move || {
            let _ = xtx.send(build_xlog_segments(&records.xlogs, floor, partition_ns, &ids, active_bounds));
        });
        let mut next_id = || self.next_segment.fetch_add(1, Ordering::Relaxed);
        let built: Vec<spans::BuiltSegment> =
            by_partition.into_iter().flat_map(|(part, rows)| spans::build(part, &mut next_id, &rows)).collect();
        let (xbuilt, mut stats) =
            xrx.recv().map_err(|_| StorageError::Internal("the seal helper did not finish its job".into()))?;
        frozen.links.iter().for_each(|c| stats.call(c));
        let stats_written = self.put_stats(&stats, &mut wb, meta, chunks);
        let mut xmetas = Vec::new();
        for b in xbuilt {
            let (part, id) = (b.meta.partition, b.meta.id);
            for (c, page, bytes) in &b.chunks {
                wb.put_cf(chunks, keys::chunk(part, id, *c, *page), bytes);
            }
            Table::put_meta(&mut wb, meta, &b.meta);
            xmetas.push(b.meta);
        }
        let mut metas = Vec::new();
        let mut index = Vec::new();
        for built in built {
            let (part, id) = (built.meta.partition, built.meta.id);
            for (c, page, bytes) in &built.chunks {
                wb.put_cf(chunks, keys::chunk(part, id, *c, *page), bytes);
            }
            index.extend(built.traces.iter().map(|t| (keys::trace_index(&t.trace_id, part, id), *t)));
            Table::put_meta(&mut wb, meta, &built.meta);
            metas.push(built.meta);
        }
        // In key order: RocksDB's memtable inserts each key from where the one before went in,
        // so sorted keys cost a step or two each where the segment's order (by time, which is
        // random by trace id) costs a search from the top.
        index.sort_unstable_by_key(|(key, _)| *key);
        for (key, rows) in &index {
            wb.put_cf(tindex, key, rows.encode_value());
        }
        // This seal's batch fingerprints, and those past the retry window gone.
        let wall = self.config.clock.wall_ns();
        if !frozen.batches.is_empty() {
            let id = self.next_segment.fetch_add(1, Ordering::Relaxed);
            wb.put_cf(meta, keys::batches(wall, id), super::retries::encode(&frozen.batches));
        }
        wb.delete_range_cf(meta, keys::batches(0, 0), keys::batches(wall.saturating_sub(super::retries::WINDOW_NS), 0));
        let dirty = self.catalog.lock().take_dirty();
        for s in &dirty {
            wb.put_cf(meta, keys::service(&s.name), serde_json::to_vec(s).expect("service serializes"));
        }
        // Everything up to here is sealed, this seal's records and all earlier ones alike: a seal
        // of derived records alone (no new spans) cuts the log back too, or the records of entries
        // finalized by it would stay in the log and be derived again at every restart.
        let sealed_through = frozen.max_seq.max(*self.sealed_seq.lock());
        let mut wal_cut = None;
        if let Some(through) = sealed_through {
            // Records holding entry spans whose XLog records are not final stay, so that a
            // restart derives them again.
            let upto = keep_wal_from.map_or(through + 1, |k| k.min(through + 1));
            wb.delete_range_cf(wal, keys::wal(0), keys::wal(upto));
            wb.put_cf(meta, keys::META_SEALED_SEQ, through.to_be_bytes());
            wb.put_cf(meta, keys::META_HELD_TRACES, &held.traces);
            wb.put_cf(meta, keys::META_HELD_RELEASED, &held.released);
            wal_cut = Some(upto);
        }
        let mut w = WriteOptions::default();
        w.set_sync(self.config.sync);
        let written = self.config.failpoints.hit("seal-write").and_then(|()| Ok(self.db.write_opt(wb, &w)?));
        if let Err(e) = written {
            // The catalog entries are written by the next seal that succeeds.
            self.catalog.lock().mark_dirty(dirty);
            return Err(e);
        }
        *self.sealed_seq.lock() = sealed_through;
        if let Some(upto) = wal_cut {
            self.wal_cut.fetch_max(upto, Ordering::Relaxed);
        }
        let sealed = frozen.len();
        let bytes: u64 = metas.iter().map(|m| m.bytes).sum::<u64>() + xmetas.iter().map(|m| m.bytes).sum::<u64>();
        metrics::xlog_sealed(xmetas.iter().map(|m| m.rows as usize).sum());
        self.publish_stats(stats_written);
        // The new segments appear and the frozen memtable goes under one hold of the state lock:
        // a reader that takes a snapshot under it (`Store::span_snapshot`) sees each row once.
        let (mut metas, mut xmetas) = (metas, xmetas);
        metas.iter_mut().for_each(|m| m.intern(&self.attribute_keys));
        xmetas.iter_mut().for_each(|m| m.intern(&self.attribute_keys));
        let released = {
            let mut st = self.state.write();
            self.spans.add(metas);
            self.xlog.add(xmetas);
            let frozen = st.frozen.take();
            self.unsealed_bytes.store(st.unsealed_bytes(), Ordering::Relaxed);
            frozen
        };
        drop(released);
        metrics::sealed(sealed, bytes, started.elapsed());
        self.publish_gauges();
        tracing::debug!(spans = sealed, bytes, elapsed_ms = started.elapsed().as_millis() as u64, "sealed memtable");
        Ok(sealed)
    }

    /// Gives back the space of write-ahead-log records that seals deleted: table files wholly
    /// below the cut are dropped without being read, and compaction clears the rest. The work is
    /// bounded by the unsealed records the log still holds.
    pub fn compact_wal(&self) {
        let wal = self.db.cf_handle(keys::CF_WAL).expect("opened");
        if let Ok(Some(0)) = self.db.property_int_value_cf(wal, "rocksdb.total-sst-files-size") {
            return;
        }
        let cut = self.wal_cut.load(Ordering::Relaxed);
        if cut > 0 {
            if let Err(e) = self.db.delete_file_in_range_cf(wal, keys::wal(0), keys::wal(cut - 1)) {
                tracing::warn!(error = %e, "dropping the write-ahead log's sealed table files failed");
            }
        }
        self.db.compact_range_cf(wal, None::<&[u8]>, None::<&[u8]>);
        self.publish_gauges();
    }

    /// The last step of a clean stop, after `seal_all`: every column family flushed, so that
    /// RocksDB's own logs can go, and the write-ahead log's table files dropped. An idle store's
    /// directory then holds its data and nothing else.
    pub fn close(&self) -> Result<(), StorageError> {
        let _one = self.maintenance.lock();
        for cf in keys::COLUMN_FAMILIES {
            self.db.flush_cf(self.db.cf_handle(cf).expect("opened"))?;
        }
        drop(_one);
        self.compact_wal();
        Ok(())
    }
}

/// What the deriver still holds at a seal: the write-ahead log is kept from `from_seq`, and at
/// recovery these traces, and only these, are derived again from the records kept.
struct Held {
    from_seq: Option<u64>,
    /// The traces' ids, one after the other in no order (recovery reads them into a set).
    traces: Vec<u8>,
    /// Those whose transactions were sealed while their calls wait, each id followed by the last
    /// log record (big-endian) those came from (`Deriver::held_traces`).
    released: Vec<u8>,
}

impl Held {
    /// One pass over the deriver's traces, under the locks that stop ingest: no copy of a hundred
    /// thousand ids to sort and encode after (that sort took about 9 ms a seal).
    fn of<'a>(traces: impl ExactSizeIterator<Item = (&'a TraceId, u64, Option<u64>)>) -> Self {
        let mut held = Held { from_seq: None, traces: Vec::with_capacity(traces.len() * 16), released: Vec::new() };
        for (id, first_seq, released_through) in traces {
            held.from_seq = Some(held.from_seq.map_or(first_seq, |s: u64| s.min(first_seq)));
            held.traces.extend_from_slice(&id.0);
            if let Some(through) = released_through {
                held.released.extend_from_slice(&id.0);
                held.released.extend_from_slice(&through.to_be_bytes());
            }
        }
        held
    }
}

/// The held traces a seal wrote.
pub(crate) fn decode_held(v: &[u8]) -> Result<rustc_hash::FxHashSet<TraceId>, StorageError> {
    if v.len() % 16 != 0 {
        return Err(crate::codec::corrupt("held traces"));
    }
    Ok(v.chunks_exact(16).map(|c| TraceId(c.try_into().expect("chunks of 16"))).collect())
}

/// The held traces whose transactions a seal wrote, each with the last log record they came from.
pub(crate) fn decode_released(v: &[u8]) -> Result<FxHashMap<TraceId, u64>, StorageError> {
    if v.len() % 24 != 0 {
        return Err(crate::codec::corrupt("held traces' released records"));
    }
    Ok(v.chunks_exact(24)
        .map(|c| {
            let (id, seq) = c.split_at(16);
            (TraceId(id.try_into().expect("16 bytes")), u64::from_be_bytes(seq.try_into().expect("8 bytes")))
        })
        .collect())
}

/// The XLog segments of a seal: one per partition (by end time) unless attribute keys ask for
/// more, each record once per (trace id, span id); and the statistics of the transactions they
/// hold, each counted for its node exactly when its record is sealed.
fn build_xlog_segments(
    xlogs: &[Arc<XLog>],
    floor: u64,
    partition_ns: u64,
    next_segment: &AtomicU64,
    active_bounds: ActiveBounds,
) -> (Vec<xsegment::BuiltXSegment>, Accumulator) {
    // A record can be here twice: a retry that came after its trace left the deriver, or an
    // entry derived again after a crash. The most complete copy is kept (`XLog::completeness`).
    // Records keep their arrival order, nearly sorted by end time, which the segment's sort
    // is fast on.
    let mut first: FxHashMap<(TraceId, SpanId), usize> = FxHashMap::default();
    first.reserve(xlogs.len());
    let mut keep = vec![true; xlogs.len()];
    for (i, x) in xlogs.iter().enumerate() {
        match first.entry((x.trace_id, x.span_id)) {
            Entry::Vacant(v) => {
                v.insert(i);
            }
            Entry::Occupied(mut o) => {
                let held = *o.get();
                if x.completeness() > xlogs[held].completeness() {
                    keep[held] = false;
                    o.insert(i);
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    let mut by_partition: BTreeMap<u64, Vec<&XLog>> = BTreeMap::new();
    let mut stats = Accumulator::new(active_bounds);
    for (x, _) in xlogs.iter().zip(&keep).filter(|(_, k)| **k) {
        let p = x.end_ns() / partition_ns;
        if p >= floor {
            by_partition.entry(p).or_default().push(x);
            stats.transaction(x);
        }
    }
    let mut next_id = || next_segment.fetch_add(1, Ordering::Relaxed);
    let built =
        by_partition.into_iter().flat_map(|(part, records)| xsegment::build(part, &mut next_id, &records)).collect();
    (built, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::trace_id;

    #[test]
    fn held_traces_round_trip_with_the_lowest_record() {
        let ids = [trace_id(3), trace_id(1), trace_id(2)];
        let held = Held::of(ids.iter().zip([7, 5, 9]).zip([None, Some(8), None]).map(|((id, f), r)| (id, f, r)));
        assert_eq!(held.from_seq, Some(5));
        assert_eq!(decode_held(&held.traces).unwrap(), ids.into_iter().collect());
        assert_eq!(decode_released(&held.released).unwrap(), [(trace_id(1), 8)].into_iter().collect());
        let none = Held::of(std::iter::empty());
        assert_eq!((none.from_seq, none.traces.len(), none.released.len()), (None, 0, 0));
        assert!(decode_held(&held.traces[1..]).is_err(), "a torn list is refused");
        assert!(decode_released(&held.released[1..]).is_err(), "a torn list is refused");
    }
}
