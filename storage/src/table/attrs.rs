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

/// A segment's attributes as one column per key, numbered by first appearance. Made in two
/// passes: `new` numbers every value's key, and each `page` places and encodes the values of its
/// own rows. Placing a page at a time keeps what is placed to one page (a segment of 200,000
/// spans placed whole held 16 bytes for each of its two million values), and reads each value
/// while its row is still in cache from placing it.
pub struct AttrColumns<'a> {
    pub keys: Vec<&'a str>,
    /// Each row's attributes, in segment order.
    rows: Vec<&'a [KeyValue]>,
    /// The column of every value, row after row.
    codes: Vec<u32>,
    /// Where the next page begins: its first row, and that row's first value in `codes`.
    next_row: usize,
    next_code: usize,
    /// Per key, the values of the page being encoded as (row in the page, value); emptied after
    /// each page, their allocations kept for the next.
    placed: Vec<Vec<(u32, &'a Value)>>,
    /// The keys with values in the page being encoded.
    touched: Vec<u32>,
}

impl<'a> AttrColumns<'a> {
    pub fn new(rows: impl Iterator<Item = &'a [KeyValue]>) -> Self {
        // Keys are numbered by first appearance, found by address before text: a request's spans
        // share one copy of each key, so a memtable holds a few copies of each, not one per row.
        let mut index = Distinct::with_capacity(MAX_SEGMENT_KEYS);
        // Neighbouring rows mostly carry the same keys in the same order: the previous row's key
        // at the same position (its address and length, and its column) is checked first.
        let mut prev: Vec<(usize, usize, u32)> = Vec::new();
        let rows: Vec<&'a [KeyValue]> = rows.collect();
        let mut codes = Vec::with_capacity(rows.iter().map(|r| r.len()).sum());
        for attrs in &rows {
            for (j, (k, _)) in attrs.iter().enumerate() {
                let here = (k.as_ptr() as usize, k.len());
                let c = match prev.get(j) {
                    Some(&(p, l, c)) if (p, l) == here && l > 0 => c,
                    _ => index.code(k),
                };
                if j < prev.len() {
                    prev[j] = (here.0, here.1, c);
                } else {
                    prev.push((here.0, here.1, c));
                }
                codes.push(c);
            }
        }
        let keys = index.list().to_vec();
        let placed = (0..keys.len()).map(|_| Vec::new()).collect();
        Self { keys, rows, codes, next_row: 0, next_code: 0, placed, touched: Vec::new() }
    }

    /// Keeps the first `max` keys; returns how many were dropped. Only a single row with more
    /// keys than a segment holds gets here (see `key_runs`).
    pub fn keep_keys(&mut self, max: usize) -> usize {
        let dropped = self.keys.len().saturating_sub(max);
        self.keys.truncate(max);
        self.placed.truncate(max);
        dropped
    }

    /// The encoded page of every key with values in rows `[start, start + len)`, as (key index,
    /// body), in key order. Pages must be asked for in order, each starting where the last ended.
    pub fn page(&mut self, start: usize, len: usize) -> Vec<(usize, Vec<u8>)> {
        assert_eq!(start, self.next_row, "attribute pages are encoded in order");
        let Self { keys, rows, codes, next_code, placed, touched, .. } = self;
        let mut at = *next_code;
        for (r, attrs) in rows[start..start + len].iter().enumerate() {
            for ((_, v), &c) in attrs.iter().zip(&codes[at..]) {
                // Past `keep_keys`' cut, a key is not kept.
                if let Some(list) = placed.get_mut(c as usize) {
                    match list.last_mut() {
                        None => touched.push(c),
                        // A key twice in one row: the last value is kept, as a map would.
                        Some(last) if last.0 == r as u32 => {
                            last.1 = v;
                            continue;
                        }
                        Some(_) => {}
                    }
                    list.push((r as u32, v));
                }
            }
            at += attrs.len();
        }
        self.next_row = start + len;
        self.next_code = at;
        touched.sort_unstable();
        let mut out = Vec::with_capacity(touched.len());
        for &c in touched.iter() {
            let list = &mut placed[c as usize];
            out.push((c as usize, col::encode_present_values(len, list)));
            list.clear();
        }
        touched.clear();
        debug_assert!(out.iter().all(|(c, _)| *c < keys.len()));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::model::Key;

    /// A page's attribute columns: (key index, body).
    type Page = Vec<(usize, Vec<u8>)>;

    /// What a page must hold, from first principles: keys numbered by first appearance in the
    /// segment, and for each in turn that has values in the page, its values there.
    fn reference(rows: &[Vec<KeyValue>], page_rows: usize, keep: usize) -> (Vec<String>, Vec<Page>) {
        let mut keys: Vec<String> = Vec::new();
        for (k, _) in rows.iter().flatten() {
            if !keys.iter().any(|x| **x == **k) {
                keys.push(k.to_string());
            }
        }
        keys.truncate(keep);
        let pages = rows
            .chunks(page_rows)
            .map(|page| {
                keys.iter()
                    .enumerate()
                    .filter_map(|(c, key)| {
                        let values: Vec<Option<&Value>> =
                            page.iter().map(|r| r.iter().rev().find(|(k, _)| **k == **key).map(|(_, v)| v)).collect();
                        values.iter().any(Option::is_some).then(|| (c, col::encode_values(&values)))
                    })
                    .collect()
            })
            .collect();
        (keys, pages)
    }

    fn rows() -> impl Strategy<Value = Vec<Vec<KeyValue>>> {
        // Keys from a small set, some rows sharing one copy of a key and others their own, so
        // that both the address and the text paths number them.
        let names: Vec<Key> = (0..12).map(|i| Key::from(format!("k{i}"))).collect();
        let kv = (0usize..12, any::<bool>(), 0u8..4).prop_map(move |(k, own, v)| {
            let key = if own { Key::from(&*names[k]) } else { names[k].clone() };
            let value = match v {
                0 => Value::Str(Arc::from(format!("s{k}"))),
                1 => Value::Int(i64::from(v) * k as i64),
                2 => Value::Bool(k % 2 == 0),
                _ => Value::Empty,
            };
            (key, value)
        });
        proptest::collection::vec(
            // Keys may repeat within a row: the last value is kept.
            proptest::collection::vec(kv, 0..8),
            0..300,
        )
    }

    proptest! {
        /// Page by page, the columns are those of the reference, whatever the page size and
        /// however many keys are kept.
        #[test]
        fn pages_hold_each_keys_values(rows in rows(), page_rows in 1usize..70, keep in 1usize..14) {
            let (keys, want) = reference(&rows, page_rows, keep);
            let mut attrs = AttrColumns::new(rows.iter().map(|r| r.as_slice()));
            attrs.keep_keys(keep);
            prop_assert_eq!(attrs.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), keys);
            for (p, want) in want.iter().enumerate() {
                let start = p * page_rows;
                let got = attrs.page(start, page_rows.min(rows.len() - start));
                prop_assert_eq!(&got, want, "page {}", p);
            }
        }
    }
}
