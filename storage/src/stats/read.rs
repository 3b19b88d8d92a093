//! Statistics over a range: the range cut into pieces each answered by the coarsest rows that
//! fit (whole hours from hour rows, whole minutes from minute rows, the rest from second rows),
//! the rows merged by key, over the whole range or by step. Seconds the store no longer keeps at
//! one-second resolution (older than the replay window) round the range out to whole minutes.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::accumulate::{Accumulator, LinkCall};
use super::table::{self, Resolution, Row, StatsMeta, Visitor};
pub use super::table::{Coverage, HoursTable, MinutesTable, SecondsTable};
use super::{Cell, Key};
use crate::codec::Reader;
use crate::error::StorageError;
use crate::store::Store;
use crate::table::{Fetched, SegmentMeta, Table};
use crate::xlog::XLog;

/// A piece of a range and the resolution that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub resolution: Resolution,
    pub from: u64,
    pub to: u64,
}

/// The range actually answered (seconds): `[from, to)` rounded out to whole minutes where second
/// rows are gone.
pub fn effective_range(from: u64, to: u64, c: Coverage) -> (u64, u64) {
    let minute = Resolution::Minute;
    let from = if from < c.seconds_from { minute.floor(from) } else { from };
    let to = if to < c.seconds_from { minute.floor(to.saturating_add(59)) } else { to };
    (from, to)
}

/// Cuts `[from, to)` (already `effective_range`) into pieces, coarsest first where they fit:
/// whole hours from hour rows, whole minutes beside them from minute rows, seconds at the edges.
/// In closed form, so that a range of centuries costs what a range of an hour does.
pub fn plan(from: u64, to: u64, c: Coverage) -> Vec<Piece> {
    let mut pieces = Vec::new();
    if from >= to {
        return pieces;
    }
    let (hour, minute) = (Resolution::Hour, Resolution::Minute);
    match middle(from, to, hour, c.hours_until) {
        Some((a, b)) => {
            finer(from, a, minute, c.minutes_until, &mut pieces);
            pieces.push(Piece { resolution: hour, from: a, to: b });
            finer(b, to, minute, c.minutes_until, &mut pieces);
        }
        None => finer(from, to, minute, c.minutes_until, &mut pieces),
    }
    pieces
}

/// The whole rows of `res` inside `[from, to)` that exist (before `until`), if any.
fn middle(from: u64, to: u64, res: Resolution, until: u64) -> Option<(u64, u64)> {
    let a = res.floor(from.saturating_add(res.seconds() - 1));
    let b = res.floor(to.min(until));
    (a < b).then_some((a, b))
}

/// `[from, to)` from minute rows where whole minutes fit, from second rows at its edges.
fn finer(from: u64, to: u64, minute: Resolution, until: u64, out: &mut Vec<Piece>) {
    if from >= to {
        return;
    }
    let second = |a: u64, b: u64, out: &mut Vec<Piece>| {
        if a < b {
            out.push(Piece { resolution: Resolution::Second, from: a, to: b });
        }
    };
    match middle(from, to, minute, until) {
        Some((a, b)) => {
            second(from, a, out);
            out.push(Piece { resolution: minute, from: a, to: b });
            second(b, to, out);
        }
        None => second(from, to, out),
    }
}

/// Which rows a read wants: by encoded key.
pub type KeyFilter<'a> = &'a (dyn Fn(&str) -> bool + Sync);

impl Store {
    /// Every row of `[from, to)` (seconds) whose key `wants`, from the tables and from what waits
    /// in memory for the next seal; rows of one key and time may come more than once (merge them).
    pub fn stats_rows(&self, from: u64, to: u64, wants: KeyFilter<'_>) -> Result<(Vec<Row>, (u64, u64)), StorageError> {
        self.stats_rows_finer_than(from, to, wants, Resolution::Hour)
    }

    /// `stats_rows`, using no rows coarser than `coarsest` (for a series of a finer step).
    pub fn stats_rows_finer_than(
        &self,
        from: u64,
        to: u64,
        wants: KeyFilter<'_>,
        coarsest: Resolution,
    ) -> Result<(Vec<Row>, (u64, u64)), StorageError> {
        let mut rows = Vec::new();
        let range = self.stats_visit(from, to, wants, coarsest, &mut |t, k, cell| {
            rows.push((t, k.to_string(), Cell::decode(&mut Reader::new(cell))?));
            Ok(())
        })?;
        Ok((rows, range))
    }

    /// Every row of `[from, to)` whose key `wants`, no coarser than `coarsest`, handed to `f`
    /// with its cell still encoded, tables and memory alike; the range answered.
    pub fn stats_visit(
        &self,
        from: u64,
        to: u64,
        wants: KeyFilter<'_>,
        coarsest: Resolution,
        f: &mut Visitor<'_>,
    ) -> Result<(u64, u64), StorageError> {
        let (pieces, range) = self.stats_pieces(from, to, coarsest);
        for piece in pieces {
            self.stats_visit_piece(piece, wants, f)?;
        }
        self.stats_visit_unsealed(range.0, range.1, wants, f)?;
        Ok(range)
    }

    /// The pieces that answer `[from, to)` (seconds), none coarser than `coarsest`, and the
    /// range they answer.
    pub fn stats_pieces(&self, from: u64, to: u64, coarsest: Resolution) -> (Vec<Piece>, (u64, u64)) {
        let mut cover = self.stats_coverage();
        if coarsest < Resolution::Hour {
            cover.hours_until = 0;
        }
        if coarsest < Resolution::Minute {
            cover.minutes_until = 0;
        }
        let (from, to) = effective_range(from, to, cover);
        (plan(from, to, cover), (from, to))
    }

    /// The stored rows of one piece whose key `wants`.
    pub fn stats_visit_piece(
        &self,
        piece: Piece,
        wants: KeyFilter<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        match piece.resolution {
            Resolution::Second => self.visit_stats(&self.stats_seconds, piece, wants, f),
            Resolution::Minute => self.visit_stats(&self.stats_minutes, piece, wants, f),
            Resolution::Hour => self.visit_stats(&self.stats_hours, piece, wants, f),
        }
    }

    /// Rows of seconds `[from, to)` not sealed yet (the memtables' transactions and calls), at
    /// one-second resolution.
    pub fn stats_visit_unsealed(
        &self,
        from: u64,
        to: u64,
        wants: KeyFilter<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        let unsealed = self.unsealed_stats(from, to);
        let mut buf = Vec::new();
        for ((t, key), cell) in unsealed.cells() {
            if t >= from && t < to {
                let k = key.encode();
                if wants(&k) {
                    buf.clear();
                    cell.encode(&mut buf);
                    f(t, &k, &buf)?;
                }
            }
        }
        Ok(())
    }

    /// The statistics of what the memtables hold (transactions and calls final but not sealed)
    /// that count in seconds `[from, to)`: the others are passed over without being counted, so
    /// a read of the past does not pay for the present's unsealed traffic.
    fn unsealed_stats(&self, from: u64, to: u64) -> Accumulator {
        const S: u64 = 1_000_000_000;
        let mut acc = Accumulator::new(self.config.active_bounds_s);
        // Pointers taken under the state lock (the write path's); counted after letting go.
        let (xlogs, links): (Vec<Arc<XLog>>, Vec<LinkCall>) = {
            let st = self.state.read();
            let tables = || std::iter::once(&st.active).chain(st.frozen.as_deref());
            (
                // A transaction counts in its start second, and in flight until its end.
                tables()
                    .flat_map(|m| m.xlogs.iter())
                    .filter(|x| x.start_ns / S < to && x.end_ns().div_ceil(S) >= from)
                    .cloned()
                    .collect(),
                tables()
                    .flat_map(|m| m.links.iter())
                    .filter(|c| (from..to).contains(&(c.start_ns / S)))
                    .cloned()
                    .collect(),
            )
        };
        xlogs.iter().for_each(|x| acc.transaction(x));
        links.iter().for_each(|c| acc.call(c));
        acc
    }

    fn visit_stats<M: SegmentMeta + AsRef<StatsMeta>>(
        &self,
        table: &Table<M>,
        piece: Piece,
        wants: KeyFilter<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), StorageError> {
        let ns = |s: u64| s.saturating_mul(1_000_000_000);
        let (lo, hi) = (self.partition_of(ns(piece.from)), self.partition_of(ns(piece.to.saturating_sub(1))));
        for meta in table.segments(lo, hi, piece.from, piece.to) {
            let fetch = |want: &[(u16, u32)]| -> Fetched { self.fetch_chunks(meta.partition(), meta.id(), want) };
            match table::visit(&meta, piece.from, piece.to, wants, &fetch, f) {
                Ok(()) | Err(StorageError::PartitionDropped(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Rows merged by key over the whole range.
pub fn totals(rows: Vec<Row>) -> Result<Vec<(Key, Cell)>, StorageError> {
    let mut by_key: FxHashMap<String, Cell> = FxHashMap::default();
    for (_, k, c) in rows {
        match by_key.entry(k) {
            std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().merge(&c),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(c);
            }
        }
    }
    by_key.into_iter().map(|(k, c)| Ok((Key::decode(&k)?, c))).collect()
}

/// Rows merged into steps of `step` seconds (aligned on multiples of it): (step start, cell).
pub fn series(rows: &[Row], step: u64) -> BTreeMap<u64, Cell> {
    let step = step.max(1);
    let mut out: BTreeMap<u64, Cell> = BTreeMap::new();
    for (t, _, c) in rows {
        out.entry(t - t % step).or_default().merge(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn cover(minutes_until: u64, hours_until: u64, seconds_from: u64) -> Coverage {
        Coverage { minutes_until, hours_until, seconds_from }
    }

    #[test]
    fn ranges_are_answered_by_the_coarsest_rows_that_fit() {
        let c = cover(100 * H, 100 * H, 0);
        let p = plan(10 * H - 90, 12 * H + 75, c);
        let got: Vec<(Resolution, u64, u64)> = p.iter().map(|p| (p.resolution, p.from, p.to)).collect();
        assert_eq!(
            got,
            vec![
                (Resolution::Second, 10 * H - 90, 10 * H - 60),
                (Resolution::Minute, 10 * H - 60, 10 * H),
                (Resolution::Hour, 10 * H, 12 * H),
                (Resolution::Minute, 12 * H, 12 * H + 60),
                (Resolution::Second, 12 * H + 60, 12 * H + 75),
            ]
        );
        // Nothing rolled up yet: seconds only.
        let p = plan(10 * H, 10 * H + 125, cover(0, 0, 0));
        assert!(p.iter().all(|p| p.resolution == Resolution::Second));
        assert_eq!((p[0].from, p.last().unwrap().to), (10 * H, 10 * H + 125));
        // Minutes rolled up, hours not yet.
        let p = plan(10 * H, 11 * H, cover(11 * H, 10 * H, 0));
        assert_eq!(p, vec![Piece { resolution: Resolution::Minute, from: 10 * H, to: 11 * H }]);
        // Hours rolled up part of the way: minutes beyond, then seconds.
        let p = plan(10 * H, 12 * H + 30, cover(11 * H + 120, 11 * H, 0));
        let got: Vec<(Resolution, u64, u64)> = p.iter().map(|p| (p.resolution, p.from, p.to)).collect();
        assert_eq!(
            got,
            vec![
                (Resolution::Hour, 10 * H, 11 * H),
                (Resolution::Minute, 11 * H, 11 * H + 120),
                (Resolution::Second, 11 * H + 120, 12 * H + 30),
            ]
        );
        // The whole of time is a handful of pieces.
        assert!(plan(0, u64::MAX / 1_000_000_000, cover(500_000 * H, 500_000 * H, 0)).len() <= 3);
        assert!(plan(5, 5, c).is_empty());
    }

    proptest::proptest! {
        /// The pieces tile the range, in order, each aligned to its resolution and within what
        /// the tables cover.
        #[test]
        fn pieces_tile_the_range(from in 0u64..20 * H, len in 0u64..20 * H, m in 0u64..30 * H, h in 0u64..30 * H) {
            let c = cover(m, h.min(m), 0);
            let to = from + len;
            let p = plan(from, to, c);
            let mut at = from;
            for piece in &p {
                proptest::prop_assert_eq!(piece.from, at);
                proptest::prop_assert!(piece.to > piece.from);
                let s = piece.resolution.seconds();
                proptest::prop_assert!(piece.from % s == 0 && piece.to % s == 0);
                match piece.resolution {
                    Resolution::Hour => proptest::prop_assert!(piece.to <= c.hours_until),
                    Resolution::Minute => proptest::prop_assert!(piece.to <= c.minutes_until),
                    Resolution::Second => {}
                }
                at = piece.to;
            }
            proptest::prop_assert_eq!(at, to);
        }
    }

    #[test]
    fn seconds_past_the_replay_window_round_out_to_minutes() {
        let c = cover(100 * H, 100 * H, 50 * H);
        assert_eq!(effective_range(10 * H + 30, 10 * H + 90, c), (10 * H, 10 * H + 120));
        assert_eq!(effective_range(60 * H + 30, 60 * H + 90, c), (60 * H + 30, 60 * H + 90));
    }
}
