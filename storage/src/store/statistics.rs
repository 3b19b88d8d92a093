//! The statistics tables' side of sealing and maintenance: a seal writes the second rows of what
//! it seals (and minute and hour rows for late data whose minute or hour is already rolled up);
//! the roll-up merges complete minutes into minute rows and complete hours into hour rows; the
//! replay window drops second rows that have served their time.

use std::sync::atomic::Ordering;

use rocksdb::{ColumnFamily, WriteBatch, WriteOptions};

use super::Store;
use crate::error::StorageError;
use crate::keys;
use crate::stats::accumulate::Accumulator;
use crate::stats::table::Coverage;
use crate::stats::table::{self, HoursMeta, MinutesMeta, Resolution, Row, SecondsMeta, StatsMeta};
use crate::table::{SegmentMeta, Table};

/// A complete minute is rolled up once this much later: spans exported this late after their
/// second still make the roll-up; later ones are written as minute and hour rows of their own.
const ROLL_UP_LATENESS_S: u64 = 120;
/// At most this much is rolled up per pass, so a store that was down for days catches up in
/// bounded steps.
const ROLL_UP_MAX_S: u64 = 6 * 3600;

/// Metas of the statistics segments a seal or roll-up writes, to publish once the batch is.
#[derive(Default)]
pub(crate) struct StatsWritten {
    seconds: Vec<SecondsMeta>,
    minutes: Vec<MinutesMeta>,
    hours: Vec<HoursMeta>,
}

impl Store {
    /// Writes a seal's statistics into its batch.
    pub(crate) fn put_stats(
        &self,
        acc: &Accumulator,
        wb: &mut WriteBatch,
        meta: &ColumnFamily,
        chunks: &ColumnFamily,
    ) -> StatsWritten {
        let mut out = StatsWritten::default();
        if acc.is_empty() {
            return out;
        }
        let cover = *self.stats_coverage.lock();
        // Seconds the replay window has dropped are not written again.
        out.seconds =
            self.put_rows::<SecondsMeta>(&acc.rows(Resolution::Second, |t| t >= cover.seconds_from), wb, meta, chunks);
        out.minutes =
            self.put_rows::<MinutesMeta>(&acc.rows(Resolution::Minute, |t| t < cover.minutes_until), wb, meta, chunks);
        out.hours =
            self.put_rows::<HoursMeta>(&acc.rows(Resolution::Hour, |t| t < cover.hours_until), wb, meta, chunks);
        out
    }

    pub(crate) fn publish_stats(&self, w: StatsWritten) {
        self.stats_seconds.add(w.seconds);
        self.stats_minutes.add(w.minutes);
        self.stats_hours.add(w.hours);
    }

    /// Rows (sorted by time) as segments, one per partition, into the batch.
    fn put_rows<M: SegmentMeta + From<StatsMeta>>(
        &self,
        rows: &[Row],
        wb: &mut WriteBatch,
        meta: &ColumnFamily,
        chunks: &ColumnFamily,
    ) -> Vec<M> {
        let floor = self.floor.load(Ordering::Acquire);
        let mut out = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let part = self.partition_of(rows[start].0.saturating_mul(1_000_000_000));
            let end = start
                + rows[start..]
                    .iter()
                    .take_while(|r| self.partition_of(r.0.saturating_mul(1_000_000_000)) == part)
                    .count();
            if part >= floor {
                let id = self.next_segment.fetch_add(1, Ordering::Relaxed);
                let built = table::build(M::TABLE, part, id, &rows[start..end]);
                for (c, page, bytes) in &built.chunks {
                    wb.put_cf(chunks, keys::chunk(part, id, *c, *page), bytes);
                }
                let m = M::from(built.meta);
                Table::put_meta(wb, meta, &m);
                out.push(m);
            }
            start = end;
        }
        out
    }

    /// Merges complete minutes into minute rows and complete hours into hour rows, up to a few
    /// hours per call; true if it did anything. Runs under the maintenance lock, like seals,
    /// so that no seal writes seconds of a minute while it is being rolled up.
    pub fn roll_up(&self) -> Result<bool, StorageError> {
        let _one = self.maintenance.lock();
        let now = self.horizon.lock().projected(self.config.clock.mono_ns()) / 1_000_000_000;
        let cover = *self.stats_coverage.lock();
        let minute_to =
            Resolution::Minute.floor(now.saturating_sub(ROLL_UP_LATENESS_S)).min(cover.minutes_until + ROLL_UP_MAX_S);
        let mut did = false;
        if minute_to > cover.minutes_until {
            let rows = self.merged_rows(&self.stats_seconds, cover.minutes_until, minute_to, Resolution::Minute)?;
            let metas = self.write_roll_up::<MinutesMeta>(&rows, keys::META_ROLLED_MINUTES, minute_to)?;
            self.stats_minutes.add(metas);
            self.stats_coverage.lock().minutes_until = minute_to;
            did = true;
        }
        let minutes_until = self.stats_coverage.lock().minutes_until;
        let hour_to = Resolution::Hour.floor(minutes_until).min(cover.hours_until + ROLL_UP_MAX_S);
        if hour_to > cover.hours_until {
            let rows = self.merged_rows(&self.stats_minutes, cover.hours_until, hour_to, Resolution::Hour)?;
            let metas = self.write_roll_up::<HoursMeta>(&rows, keys::META_ROLLED_HOURS, hour_to)?;
            self.stats_hours.add(metas);
            self.stats_coverage.lock().hours_until = hour_to;
            did = true;
        }
        Ok(did)
    }

    /// Rolled-up rows and the new watermark, in one write.
    fn write_roll_up<M: SegmentMeta + From<StatsMeta>>(
        &self,
        rows: &[Row],
        watermark: &[u8],
        until: u64,
    ) -> Result<Vec<M>, StorageError> {
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let mut wb = WriteBatch::default();
        let metas = self.put_rows::<M>(rows, &mut wb, meta, chunks);
        wb.put_cf(meta, watermark, until.to_be_bytes());
        let mut w = WriteOptions::default();
        w.set_sync(self.config.sync);
        self.db.write_opt(wb, &w)?;
        Ok(metas)
    }

    /// The rows of a finer table in `[from, to)`, merged into buckets of `res`.
    fn merged_rows<M: SegmentMeta + AsRef<StatsMeta>>(
        &self,
        finer: &Table<M>,
        from: u64,
        to: u64,
        res: Resolution,
    ) -> Result<Vec<Row>, StorageError> {
        let ns = |s: u64| s.saturating_mul(1_000_000_000);
        let (lo, hi) = (self.partition_of(ns(from)), self.partition_of(ns(to.saturating_sub(1))));
        let mut merged: std::collections::BTreeMap<(u64, String), crate::stats::Cell> = Default::default();
        for m in finer.segments(lo, hi, from, to) {
            let fetch = |want: &[(u16, u32)]| self.fetch_chunks(m.partition(), m.id(), want);
            let rows = match table::read(&m, from, to, &|_| true, &fetch) {
                Ok(rows) => rows,
                Err(StorageError::PartitionDropped(_)) => continue,
                Err(e) => return Err(e),
            };
            for (t, k, c) in rows {
                merged.entry((res.floor(t), k)).or_default().merge(&c);
            }
        }
        Ok(merged.into_iter().map(|((t, k), c)| (t, k, c)).collect())
    }

    /// What the statistics' tables hold at which resolution, now.
    pub(crate) fn stats_coverage(&self) -> Coverage {
        *self.stats_coverage.lock()
    }

    /// Where coverage starts for a new store, or one from before the statistics: now.
    pub(crate) fn initial_coverage(&self, persisted: (Option<u64>, Option<u64>)) -> Coverage {
        let now = self.config.clock.wall_ns() / 1_000_000_000;
        // Second rows start where the replay window last cut them: at their oldest partition.
        let oldest = self.stats_seconds.partition_ids().first().copied();
        Coverage {
            minutes_until: persisted.0.unwrap_or_else(|| Resolution::Minute.floor(now)),
            hours_until: persisted.1.unwrap_or_else(|| Resolution::Hour.floor(now)),
            seconds_from: oldest.map_or(0, |p| p.saturating_mul(self.partition_ns) / 1_000_000_000),
        }
    }

    /// Writes rows of one resolution straight into its table, and then, if given, the roll-up
    /// watermarks: for building history (the server-map benchmark writes 30 days of it at the
    /// shop's rates). Rows are sorted by time and aligned to the resolution; nothing checks that
    /// they agree with the other resolutions, so this is not for a store that ingests.
    pub fn import_statistics(
        &self,
        res: Resolution,
        rows: &[Row],
        watermarks: Option<(u64, u64)>,
    ) -> Result<(), StorageError> {
        let _one = self.maintenance.lock();
        let meta = self.db.cf_handle(keys::CF_META).expect("opened");
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let mut wb = WriteBatch::default();
        let mut written = StatsWritten::default();
        match res {
            Resolution::Second => written.seconds = self.put_rows(rows, &mut wb, meta, chunks),
            Resolution::Minute => written.minutes = self.put_rows(rows, &mut wb, meta, chunks),
            Resolution::Hour => written.hours = self.put_rows(rows, &mut wb, meta, chunks),
        }
        if let Some((minutes, hours)) = watermarks {
            wb.put_cf(meta, keys::META_ROLLED_MINUTES, minutes.to_be_bytes());
            wb.put_cf(meta, keys::META_ROLLED_HOURS, hours.to_be_bytes());
        }
        self.db.write(wb)?;
        self.publish_stats(written);
        if let Some((minutes, hours)) = watermarks {
            let mut c = self.stats_coverage.lock();
            (c.minutes_until, c.hours_until) = (minutes, hours);
        }
        Ok(())
    }

    /// Drops the second rows of partitions older than the replay window (by whole segments).
    pub(crate) fn drop_old_seconds(&self, now_ns: u64) -> Result<(), StorageError> {
        let window = self.config.replay_window.min(self.config.retention).as_nanos() as u64;
        // Never seconds not rolled up into minutes yet: they would be lost at every resolution.
        let rolled = self.partition_of(self.stats_coverage.lock().minutes_until.saturating_mul(1_000_000_000));
        let floor = self.partition_of(now_ns.saturating_sub(window)).min(rolled);
        let old: Vec<SecondsMeta> = self
            .stats_seconds
            .partition_ids()
            .into_iter()
            .filter(|p| *p < floor)
            .flat_map(|p| self.stats_seconds.segments(p, p, 0, u64::MAX))
            .collect();
        let seconds_from = floor.saturating_mul(self.partition_ns) / 1_000_000_000;
        if !old.is_empty() {
            let meta = self.db.cf_handle(keys::CF_META).expect("opened");
            let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
            let mut wb = WriteBatch::default();
            for m in &old {
                let (p, id) = (m.partition(), m.id());
                wb.delete_range_cf(chunks, keys::chunk(p, id, 0, 0), keys::chunk(p, id + 1, 0, 0));
                wb.delete_cf(meta, keys::segment_meta(SecondsMeta::TABLE.meta_prefix, p, id));
            }
            // Readers stop asking for them first.
            self.stats_coverage.lock().seconds_from = seconds_from;
            self.db.write(wb)?;
            for p in old.iter().map(|m| m.partition()).collect::<std::collections::BTreeSet<_>>() {
                self.stats_seconds.remove_partition(p);
            }
        }
        let mut c = self.stats_coverage.lock();
        c.seconds_from = c.seconds_from.max(seconds_from);
        Ok(())
    }
}
