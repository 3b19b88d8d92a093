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
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, StorageError> {
        let (sum_ns, max_ns) = (r.varint()?, r.varint()?);
        let mut within = [0u64; 6];
        for w in &mut within {
            *w = r.varint()?;
        }
        Ok(Self { sum_ns, max_ns, within, ok: Hist::decode(r)?, err: Hist::decode(r)? })
    }
}
