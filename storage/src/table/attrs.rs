//! Attribute columns: one column per attribute key of a segment, numbered from `ATTR_BASE` by
//! first appearance, and the cutting of rows into segments that keeps the keys of each bounded.

use std::ops::Range;

use rustc_hash::FxHashSet;

use crate::codec::column as col;
use crate::codec::distinct::Distinct;
use crate::model::{KeyValue, Value};

/// Distinct attribute keys one segment holds at most. Attribute key `i` is column `ATTR_BASE + i`
/// of a 16-bit column id, so past about 65,000 keys ids would wrap onto the fixed columns; well
/// below that, this also bounds the chunks a row read fetches (one per key).
pub const MAX_SEGMENT_KEYS: usize = 4096;

/// Cuts rows (in segment order) into runs of at most `max` distinct attribute keys, one segment
/// per run. A row is never split: one with more than `max` keys alone (the collector keeps spans
/// to 128) is a run of its own, cut by `AttrColumns::keep_keys`.
pub fn key_runs<'a>(rows: impl ExactSizeIterator<Item = &'a [KeyValue]>, max: usize) -> Vec<Range<usize>> {
    let n = rows.len();
    let mut runs = Vec::new();
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let mut start = 0;
    for (i, attrs) in rows.enumerate() {
        let new = attrs.iter().filter(|(k, _)| !seen.contains(&**k)).count();
        if seen.len() + new > max && i > start {
            runs.push(start..i);
            seen.clear();
            start = i;
        }
        seen.extend(attrs.iter().map(|(k, _)| &**k));
    }
    if start < n {
        runs.push(start..n);
    }
    runs
}

/// The (row, value) pairs of one attribute key, in row order.
type Placed<'a> = Vec<(u32, &'a Value)>;

/// A segment's attributes as one column per key, numbered by first appearance, each a list of
/// (row, value): one pass over the rows places every value, and a page encodes only the keys it has.
pub struct AttrColumns<'a> {
    pub keys: Vec<&'a str>,
    rows: Vec<Placed<'a>>,
    /// Per key, how far its list has been consumed by earlier pages.
    cursor: Vec<usize>,
    /// One page of values, all `None` between uses: allocated once, not once per key and page.
    scratch: Vec<Option<&'a Value>>,
}

impl<'a> AttrColumns<'a> {
    pub fn new(rows: impl Iterator<Item = &'a [KeyValue]>) -> Self {
        // Keys are numbered by first appearance, found by address before text: a request's spans
        // share one copy of each key, so a memtable holds a few copies of each, not one per row.
        let mut index = Distinct::with_capacity(MAX_SEGMENT_KEYS);
        let mut lists: Vec<Placed> = Vec::new();
        // Neighbouring rows mostly carry the same keys in the same order: the previous row's key
        // at the same position (its address and length, and its column) is checked first.
        let mut prev: Vec<(usize, usize, usize)> = Vec::new();
        for (row, attrs) in rows.enumerate() {
            for (j, (k, v)) in attrs.iter().enumerate() {
                let here = (k.as_ptr() as usize, k.len());
                let c = match prev.get(j) {
                    Some(&(p, l, c)) if (p, l) == here && l > 0 => c,
                    _ => {
                        let c = index.code(k) as usize;
                        if c == lists.len() {
                            lists.push(Vec::new());
                        }
                        c
                    }
                };
                if j < prev.len() {
                    prev[j] = (here.0, here.1, c);
                } else {
                    prev.push((here.0, here.1, c));
                }
                lists[c].push((row as u32, v));
            }
        }
        let keys = index.list().to_vec();
        let cursor = vec![0; keys.len()];
        Self { keys, rows: lists, cursor, scratch: Vec::new() }
    }

    /// Keeps the first `max` keys; returns how many were dropped. Only a single row with more
    /// keys than a segment holds gets here (see `key_runs`).
    pub fn keep_keys(&mut self, max: usize) -> usize {
        let dropped = self.keys.len().saturating_sub(max);
        self.keys.truncate(max);
        self.rows.truncate(max);
        self.cursor.truncate(max);
        dropped
    }

    /// The encoded page of every key with values in rows `[start, start + len)`, as (key index,
    /// body). Pages must be asked for in order.
    pub fn page(&mut self, start: usize, len: usize) -> Vec<(usize, Vec<u8>)> {
        let end = (start + len) as u32;
        let mut out = Vec::new();
        for (c, present) in self.rows.iter().enumerate() {
            let from = self.cursor[c];
            let to = from + present[from..].iter().take_while(|(r, _)| *r < end).count();
            self.cursor[c] = to;
            if from == to {
                continue;
            }
            self.scratch.resize(len, None);
            for (r, v) in &present[from..to] {
                self.scratch[*r as usize - start] = Some(*v);
            }
            out.push((c, col::encode_values(&self.scratch[..len])));
            for (r, _) in &present[from..to] {
                self.scratch[*r as usize - start] = None;
            }
        }
        out
    }
}
