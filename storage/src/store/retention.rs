//! Retention by age and by disk budget: whole partitions dropped, oldest first. Age is measured
//! against the retention horizon (`clock`), not the raw wall clock, and the partition holding the
//! present is never dropped for the budget, whatever partitions lie beyond it.

use std::sync::atomic::Ordering;

use rocksdb::{WriteBatch, WriteOptions};

use crate::clock::Step;
use crate::error::StorageError;
use crate::keys;
use crate::metrics;
use crate::spans::SpanSegmentMeta;
use crate::stats::table::{HoursMeta, MinutesMeta, SecondsMeta};
use crate::store::Store;
use crate::table::Table;
use crate::xlog::segment::XLogSegmentMeta;

impl Store {
    /// Advances the retention horizon, persists it, and returns it.
    fn advance_horizon(&self) -> Result<u64, StorageError> {
        let (wall, mono) = (self.config.clock.wall_ns(), self.config.clock.mono_ns());
        let (at, step) = {
            let mut h = self.horizon.lock();
            let step = h.advance(wall, mono, self.partition_ns);
            (h.at_ns(), step)
        };
        match step {
            Step::None => {}
            Step::Forward(ahead) => tracing::warn!(
                ahead_secs = ahead / 1_000_000_000,
                "the wall clock is ahead of where monotonic time says it should be; retention follows it \
                 one partition per pass"
            ),
            Step::Backward(behind) => tracing::warn!(
                behind_secs = behind / 1_000_000_000,
                "the wall clock went back; retention waits for it to catch up"
            ),
        }
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        self.db.put_cf(meta, keys::META_HORIZON, at.to_be_bytes())?;
        Ok(at)
    }

    /// Drops partitions past retention, then the oldest ones while over the disk budget (never
    /// the one holding the present, nor any after it). Returns the partitions dropped.
    pub fn enforce_retention(&self) -> Result<Vec<u64>, StorageError> {
        let _one = self.maintenance.lock();
        let now = self.advance_horizon()?;
        let cutoff = now.saturating_sub(self.config.retention.as_nanos() as u64);
        let expired: Vec<u64> = {
            self.partition_ids().into_iter().filter(|p| (p + 1).saturating_mul(self.partition_ns) <= cutoff).collect()
        };
        let mut dropped = Vec::new();
        for p in expired {
            self.drop_partition(p)?;
            dropped.push(p);
        }
        self.drop_old_seconds(now)?;
        // Services and peers not seen within the retention go with their spans.
        let gone = self.catalog.lock().prune(cutoff);
        if !gone.is_empty() {
            let meta = self.db.cf_handle(keys::CF_META).expect("opened");
            let mut wb = rocksdb::WriteBatch::default();
            for name in &gone {
                wb.delete_cf(meta, keys::service(name));
            }
            self.db.write(wb)?;
            tracing::info!(entries = gone.len(), "pruned services and peers not seen within the retention");
        }
        // Partitions that were never written still move the floor forward.
        let retention_floor = cutoff / self.partition_ns;
        if retention_floor > self.floor.load(Ordering::Relaxed) {
            self.set_floor(retention_floor)?;
        }
        self.attribute_keys.prune(self.floor.load(Ordering::Acquire));
        if let Some(budget) = self.config.max_disk_bytes {
            let present = self.partition_of(now.min(self.config.clock.wall_ns()));
            loop {
                let used = self.reclaimable_bytes()?;
                if used <= budget {
                    break;
                }
                let Some(oldest) = self.partition_ids().into_iter().next().filter(|p| *p < present) else {
                    tracing::warn!(used, budget, "over the disk budget with only the present partition left");
                    break;
                };
                tracing::info!(partition = oldest, used, budget, "over the disk budget: dropping the oldest partition");
                self.drop_partition(oldest)?;
                dropped.push(oldest);
            }
        }
        self.publish_gauges();
        Ok(dropped)
    }

    /// Bytes that dropping every partition would give back: the segments' chunks (exact, from
    /// their metas, so a dropped partition stops counting at once, whether its chunks were still
    /// in a memtable or not) and the trace index (table files and memtable; dropping compacts it).
    pub fn reclaimable_bytes(&self) -> Result<u64, StorageError> {
        let (spans, xlogs) = (self.spans.stats().bytes, self.xlog.stats().bytes);
        let stats =
            self.stats_seconds.stats().bytes + self.stats_minutes.stats().bytes + self.stats_hours.stats().bytes;
        let h = self.db.cf_handle(keys::CF_TRACE_INDEX).expect("opened");
        let mut index = 0;
        for p in ["rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"] {
            index += self.db.property_int_value_cf(h, p)?.unwrap_or(0);
        }
        Ok(spans + xlogs + stats + index)
    }

    fn set_floor(&self, floor: u64) -> Result<(), StorageError> {
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        self.db.put_cf(meta, keys::META_FLOOR_PARTITION, floor.to_be_bytes())?;
        self.floor.fetch_max(floor, Ordering::AcqRel);
        Ok(())
    }

    fn drop_partition(&self, p: u64) -> Result<(), StorageError> {
        // The floor moves first: a read that then finds chunks missing knows why (see
        // `fetch_chunks`), instead of taking the partition for corrupt.
        self.floor.fetch_max(p + 1, Ordering::AcqRel);
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(chunks, keys::chunk_partition_start(p), keys::chunk_partition_start(p + 1));
        Table::<SpanSegmentMeta>::delete_partition(&mut wb, meta, p);
        Table::<XLogSegmentMeta>::delete_partition(&mut wb, meta, p);
        Table::<SecondsMeta>::delete_partition(&mut wb, meta, p);
        Table::<MinutesMeta>::delete_partition(&mut wb, meta, p);
        Table::<HoursMeta>::delete_partition(&mut wb, meta, p);
        wb.put_cf(meta, keys::META_FLOOR_PARTITION, self.floor.load(Ordering::Acquire).to_be_bytes());
        let mut w = WriteOptions::default();
        w.set_sync(true);
        self.db.write_opt(wb, &w)?;
        self.spans.remove_partition(p);
        self.xlog.remove_partition(p);
        self.stats_seconds.remove_partition(p);
        self.stats_minutes.remove_partition(p);
        self.stats_hours.remove_partition(p);
        // Range deletes only hide data; compaction gives the space back.
        self.db.compact_range_cf(
            chunks,
            Some(keys::chunk_partition_start(p)),
            Some(keys::chunk_partition_start(p + 1)),
        );
        let tindex = self.db.cf_handle(keys::CF_TRACE_INDEX).expect("opened");
        self.db.compact_range_cf(tindex, None::<&[u8]>, None::<&[u8]>);
        metrics::partition_dropped();
        Ok(())
    }
}
