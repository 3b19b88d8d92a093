//! The server map's statistics: for every node (a service, by endpoint and instance) and every
//! link (caller → callee, by caller and callee instance), per second of the transactions' and
//! calls' own start time: count, errors, total and largest elapsed time, and HDR histograms of
//! elapsed time (successful calls and errors apart, so Pinpoint's buckets and any slow threshold
//! come out exact). Computed once, when a seal writes the transactions and calls it holds, and
//! written at three resolutions, seconds, minutes and hours, as three tables of the table layer:
//! any range is answered by merging rows, the coarsest that fit, never by rescanning spans.
//!
//! `hist`: the histograms; `table`: the three tables and their rows; `accumulate`: cells from
//! a seal's transactions and calls; `read`: ranges merged back, whole or as a time series.

pub mod accumulate;
pub mod hist;
pub mod read;
pub mod table;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::apm::semconv::NodeKind;
use crate::codec::{corrupt, varint, Reader};
use crate::error::StorageError;
use hist::Hist;

pub use accumulate::LinkCall;

/// What a row counts. Node keys come from transactions (XLog records); link keys from calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Node {
        service: Arc<str>,
        endpoint: Arc<str>,
        instance: Arc<str>,
    },
    Link {
        source: Arc<str>,
        source_instance: Arc<str>,
        target: Arc<str>,
        target_instance: Arc<str>,
        target_kind: NodeKind,
    },
}

/// Separates the fields of a key in its stored form; a separator or backslash inside a name is
/// escaped.
const SEP: char = '\u{1f}';

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            SEP => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Arc<str> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(SEP),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.into()
}

impl Key {
    /// The stored form: a string the pages' dictionaries compress well.
    pub fn encode(&self) -> String {
        let esc = escape;
        match self {
            Key::Node { service, endpoint, instance } => {
                format!("N{SEP}{}{SEP}{}{SEP}{}", esc(service), esc(endpoint), esc(instance))
            }
            Key::Link { source, source_instance, target, target_instance, target_kind } => format!(
                "L{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}",
                esc(source),
                esc(source_instance),
                esc(target),
                esc(target_instance),
                *target_kind as u8
            ),
        }
    }

    pub fn decode(s: &str) -> Result<Self, StorageError> {
        let unesc = unescape;
        let parts: Vec<&str> = s.split(SEP).collect();
        match parts.as_slice() {
            ["N", service, endpoint, instance] => {
                Ok(Key::Node { service: unesc(service), endpoint: unesc(endpoint), instance: unesc(instance) })
            }
            ["L", source, source_instance, target, target_instance, kind] => Ok(Key::Link {
                source: unesc(source),
                source_instance: unesc(source_instance),
                target: unesc(target),
                target_instance: unesc(target_instance),
                target_kind: kind.parse::<u8>().ok().and_then(NodeKind::from_u8).ok_or_else(|| corrupt("node kind"))?,
            }),
            _ => Err(corrupt("statistics key")),
        }
    }
}

/// Pinpoint's bucket bounds, in milliseconds: 100 / 300 / 500 ms for caches (its fast schema),
/// 1 / 3 / 5 s for the rest (normal). Counted exactly; other thresholds come from the
/// histograms, within their precision.
pub const BUCKET_BOUNDS_MS: [u64; 6] = [100, 300, 500, 1000, 3000, 5000];

/// The figures of one key over some time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    /// Elapsed times of the successful ones (µs) ...
    pub ok: Hist,
    /// ... and of the failed ones.
    pub err: Hist,
    pub sum_ns: u64,
    pub max_ns: u64,
    /// Successful ones within each of `BUCKET_BOUNDS_MS`.
    pub within: [u64; 6],
    /// Node cells only: the transactions in flight at the start of each second of the cell
    /// (`start <= t < end`), by how long they had been running then (`ActiveBounds`): the
    /// equalizer. Summed over a minute or an hour, transaction-seconds.
    pub active: [u64; 3],
}

/// A count of a cell as stored, bounded like a histogram bucket's (`hist::MAX_COUNT`) times the
/// buckets there can be: corrupt data is an error, not an overflow later.
fn count(r: &mut Reader<'_>) -> Result<u64, StorageError> {
    let n = r.varint()?;
    if n > hist::MAX_COUNT << 13 {
        return Err(corrupt("statistics count"));
    }
    Ok(n)
}

/// Part of a cell: see `Cell::summarize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub errors: u64,
    pub sum_ns: u64,
    pub max_ns: u64,
    pub within: [u64; 6],
    pub active: [u64; 3],
}

impl Summary {
    pub fn add(&mut self, o: &Summary) {
        self.count += o.count;
        self.errors += o.errors;
        self.sum_ns = self.sum_ns.saturating_add(o.sum_ns);
        self.max_ns = self.max_ns.max(o.max_ns);
        for (a, b) in self.within.iter_mut().zip(o.within) {
            *a += b;
        }
        for (a, b) in self.active.iter_mut().zip(o.active) {
            *a += b;
        }
    }
}

/// The equalizer's age buckets, seconds: in flight for less than `[0]`, from `[0]` to `[1]`, or
/// `[1]` or more. Scouter's are 3 and 8 (`--active-thresholds`); they apply when transactions
/// are sealed.
pub type ActiveBounds = [u64; 2];
pub const DEFAULT_ACTIVE_BOUNDS: ActiveBounds = [3, 8];
/// A transaction counts as in flight for at most its first hour: its later seconds would cost a
/// cell each.
pub const ACTIVE_MAX_S: u64 = 3600;

/// Each second `s` at whose start (`s * 10^9` ns) a transaction of `[start, start + elapsed)`
/// is in flight, with the index in `active` of its age then.
pub fn in_flight(start_ns: u64, elapsed_ns: u64, bounds: ActiveBounds, mut f: impl FnMut(u64, usize)) {
    const S: u64 = 1_000_000_000;
    let end = start_ns.saturating_add(elapsed_ns);
    let first = start_ns.div_ceil(S);
    let until = end.div_ceil(S).min(first.saturating_add(ACTIVE_MAX_S));
    for s in first..until {
        let age = s * S - start_ns;
        let bucket = match age / S {
            a if a < bounds[0] => 0,
            a if a < bounds[1] => 1,
            _ => 2,
        };
        f(s, bucket);
    }
}

impl Cell {
    pub fn record(&mut self, elapsed_ns: u64, error: bool) {
        let us = elapsed_ns / 1000;
        if error {
            self.err.record(us);
        } else {
            self.ok.record(us);
            for (w, ms) in self.within.iter_mut().zip(BUCKET_BOUNDS_MS) {
                *w += u64::from(elapsed_ns <= ms * 1_000_000);
            }
        }
        self.sum_ns = self.sum_ns.saturating_add(elapsed_ns);
        self.max_ns = self.max_ns.max(elapsed_ns);
    }

    pub fn merge(&mut self, other: &Cell) {
        self.ok.merge(&other.ok);
        self.err.merge(&other.err);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        for (w, o) in self.within.iter_mut().zip(other.within) {
            *w += o;
        }
        for (a, o) in self.active.iter_mut().zip(other.active) {
            *a += o;
        }
    }

    pub fn count(&self) -> u64 {
        self.ok.count() + self.err.count()
    }

    pub fn errors(&self) -> u64 {
        self.err.count()
    }

    /// Every call, failed or not.
    pub fn all(&self) -> Hist {
        let mut h = self.ok.clone();
        h.merge(&self.err);
        h
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::put(out, self.sum_ns);
        varint::put(out, self.max_ns);
        for w in self.within {
            varint::put(out, w);
        }
        self.ok.encode(out);
        self.err.encode(out);
        // Optional, last: cells without it (links, short transactions, and every cell written
        // before the equalizer was kept) end here.
        if self.active != [0; 3] {
            for a in self.active {
                varint::put(out, a);
            }
        }
    }

    /// What a replay needs of an encoded cell, without building it: the counts, the sum, the
    /// equalizer, and every histogram bucket (successes and errors) appended to `buckets`.
    pub fn summarize(r: &mut Reader<'_>, buckets: &mut Vec<(u32, u64)>) -> Result<Summary, StorageError> {
        Self::summary_of(r, Some(buckets))
    }

    /// The sums `summarize` reads from an encoded cell, of a decoded one.
    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count(),
            errors: self.errors(),
            sum_ns: self.sum_ns,
            max_ns: self.max_ns,
            within: self.within,
            active: self.active,
        }
    }

    /// `summarize` without the buckets.
    pub fn sums(r: &mut Reader<'_>) -> Result<Summary, StorageError> {
        Self::summary_of(r, None)
    }

    fn summary_of(r: &mut Reader<'_>, mut buckets: Option<&mut Vec<(u32, u64)>>) -> Result<Summary, StorageError> {
        let (sum_ns, max_ns) = (r.varint()?, r.varint()?);
        let mut within = [0u64; 6];
        for w in &mut within {
            *w = count(r)?;
        }
        let mut hist = |r: &mut Reader<'_>| match buckets.as_deref_mut() {
            Some(b) => Hist::decode_into(r, b),
            None => Hist::skip_counting(r),
        };
        let ok = hist(r)?;
        let errors = hist(r)?;
        let mut active = [0u64; 3];
        if !r.is_empty() {
            for a in &mut active {
                *a = count(r)?;
            }
        }
        Ok(Summary { count: ok + errors, errors, sum_ns, max_ns, within, active })
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, StorageError> {
        let (sum_ns, max_ns) = (r.varint()?, r.varint()?);
        let mut within = [0u64; 6];
        for w in &mut within {
            *w = count(r)?;
        }
        let (ok, err) = (Hist::decode(r)?, Hist::decode(r)?);
        let mut active = [0u64; 3];
        if !r.is_empty() {
            for a in &mut active {
                *a = count(r)?;
            }
        }
        Ok(Self { sum_ns, max_ns, within, ok, err, active })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_says_what_the_cell_does() {
        let mut c = Cell::default();
        for (ms, err) in [(3, false), (250, false), (1200, true), (7000, false), (2, false)] {
            c.record(ms * 1_000_000, err);
        }
        in_flight(500_000_000, 9_000_000_000, DEFAULT_ACTIVE_BOUNDS, |_, age| c.active[age] += 1);
        let mut buf = Vec::new();
        c.encode(&mut buf);
        let mut buckets = Vec::new();
        let s = Cell::summarize(&mut Reader::new(&buf), &mut buckets).unwrap();
        assert_eq!((s.count, s.errors, s.sum_ns, s.max_ns, s.within), (5, 1, c.sum_ns, c.max_ns, c.within));
        assert_eq!(s.active, [3, 5, 1]);
        // Other thresholds, other buckets: 1 s and 5 s.
        let mut ages = [0u64; 3];
        in_flight(500_000_000, 9_000_000_000, [1, 5], |_, age| ages[age] += 1);
        assert_eq!(ages, [1, 4, 4]);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert_eq!(Cell::sums(&mut Reader::new(&buf)).unwrap(), s);
        assert_eq!(c.summary(), s);
        assert_eq!(Cell::decode(&mut Reader::new(&buf)).unwrap(), c);
        // A cell from before the equalizer (no trailing counts) reads as none in flight.
        let mut old = Cell::default();
        old.record(5_000_000, false);
        let mut buf = Vec::new();
        old.encode(&mut buf);
        assert_eq!(Cell::decode(&mut Reader::new(&buf)).unwrap().active, [0; 3]);
    }
}
