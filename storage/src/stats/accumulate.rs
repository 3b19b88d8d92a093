//! Cells from what a seal writes: every transaction (an XLog record) counts for its node, every
//! call (a `LinkCall`, resolved by the deriver) for its link, in the second it started.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::table::{Resolution, Row};
use super::{ActiveBounds, Cell, Key, DEFAULT_ACTIVE_BOUNDS};
use crate::apm::semconv::NodeKind;
use crate::xlog::XLog;

/// One call over a link: caller → callee, as the caller saw it (Pinpoint's view of a link), or a
/// transaction's arrival from USER.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkCall {
    pub start_ns: u64,
    pub source: Arc<str>,
    pub source_instance: Arc<str>,
    pub target: Arc<str>,
    pub target_instance: Arc<str>,
    pub target_kind: NodeKind,
    pub elapsed_ns: u64,
    pub error: bool,
}

impl LinkCall {
    pub fn key(&self) -> Key {
        Key::Link {
            source: self.source.clone(),
            source_instance: self.source_instance.clone(),
            target: self.target.clone(),
            target_instance: self.target_instance.clone(),
            target_kind: self.target_kind,
        }
    }
}

/// The key of a transaction's node.
pub fn node_key(x: &XLog) -> Key {
    Key::Node { service: x.service.clone(), endpoint: x.endpoint.clone(), instance: x.instance.clone() }
}

/// Cells by (second, key). A seal counts a few hundred distinct keys, each thousands of times:
/// each key is stored once and cells name it by index, and a call or a transaction finds its
/// key by the addresses of its names (no text hashed, no name cloned) once those names have been
/// seen. The names are shared (`Arc<str>`), so most calls repeat the addresses of one before.
pub struct Accumulator {
    cells: FxHashMap<(u64, u32), Cell>,
    keys: Vec<Key>,
    by_text: FxHashMap<Key, u32>,
    /// The index of a key by its names' addresses (and the link's target kind). Each entry keeps
    /// the names it was made from alive, so an address here is never reused for another text.
    by_addr: FxHashMap<[usize; 5], (Key, u32)>,
    active_bounds: ActiveBounds,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new(DEFAULT_ACTIVE_BOUNDS)
    }
}

fn addr(s: &Arc<str>) -> usize {
    Arc::as_ptr(s) as *const u8 as usize
}

impl Accumulator {
    pub fn new(active_bounds: ActiveBounds) -> Self {
        Self {
            cells: FxHashMap::default(),
            keys: Vec::new(),
            by_text: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            active_bounds,
        }
    }

    /// The index of the key whose names are at `at`; `make` builds it (from those very names)
    /// the first time.
    fn index(&mut self, at: [usize; 5], make: impl FnOnce() -> Key) -> u32 {
        if let Some((_, i)) = self.by_addr.get(&at) {
            return *i;
        }
        let key = make();
        let i = match self.by_text.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.keys.len() as u32;
                self.keys.push(key.clone());
                self.by_text.insert(key.clone(), i);
                i
            }
        };
        self.by_addr.insert(at, (key, i));
        i
    }

    pub fn transaction(&mut self, x: &XLog) {
        let at = [addr(&x.service), addr(&x.endpoint), addr(&x.instance), 0, 0];
        let key = self.index(at, || node_key(x));
        let cells = &mut self.cells;
        super::in_flight(x.start_ns, x.elapsed_ns, self.active_bounds, |s, age| {
            cells.entry((s, key)).or_default().active[age] += 1;
        });
        self.cells.entry((x.start_ns / 1_000_000_000, key)).or_default().record(x.elapsed_ns, x.error);
    }

    pub fn call(&mut self, c: &LinkCall) {
        let at = [
            addr(&c.source),
            addr(&c.source_instance),
            addr(&c.target),
            addr(&c.target_instance),
            1 + c.target_kind as usize,
        ];
        let key = self.index(at, || c.key());
        self.cells.entry((c.start_ns / 1_000_000_000, key)).or_default().record(c.elapsed_ns, c.error);
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Rows of one resolution, sorted by (time, key), for those seconds `select` keeps.
    pub fn rows(&self, res: Resolution, select: impl Fn(u64) -> bool) -> Vec<Row> {
        let encoded: Vec<String> = self.keys.iter().map(Key::encode).collect();
        let mut merged: BTreeMap<(u64, &str), Cell> = BTreeMap::new();
        for ((t, key), cell) in &self.cells {
            if select(*t) {
                merged.entry((res.floor(*t), &encoded[*key as usize])).or_default().merge(cell);
            }
        }
        merged.into_iter().map(|((t, k), c)| (t, k.to_string(), c)).collect()
    }

    /// Every (second, key, cell), for reads that merge the unsealed in memory.
    pub fn cells(&self) -> impl Iterator<Item = ((u64, &Key), &Cell)> {
        self.cells.iter().map(|((t, key), cell)| ((*t, &self.keys[*key as usize]), cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(names: [&str; 4], kind: NodeKind, second: u64) -> LinkCall {
        let [source, source_instance, target, target_instance] = names.map(Arc::<str>::from);
        LinkCall {
            start_ns: second * 1_000_000_000,
            source,
            source_instance,
            target,
            target_instance,
            target_kind: kind,
            elapsed_ns: 1_000_000,
            error: false,
        }
    }

    /// A key is its names' text: calls naming one link through separate copies of its names
    /// count in one cell, shared copies too, and a different kind or name is another key.
    #[test]
    fn cells_follow_the_names_text_not_their_addresses() {
        let mut acc = Accumulator::default();
        let names = ["a", "a-1", "db", ""];
        let shared = call(names, NodeKind::Database, 5);
        for _ in 0..3 {
            acc.call(&shared);
            acc.call(&call(names, NodeKind::Database, 5));
        }
        acc.call(&call(names, NodeKind::Cache, 5));
        acc.call(&call(["a", "a-2", "db", ""], NodeKind::Database, 5));
        acc.call(&call(names, NodeKind::Database, 6));
        let mut got: Vec<(u64, String, u64)> = acc.cells().map(|((t, k), c)| (t, k.encode(), c.count())).collect();
        got.sort();
        let key = |n: [&str; 4], kind| call(n, kind, 0).key().encode();
        let mut want = vec![
            (5, key(names, NodeKind::Database), 6),
            (5, key(names, NodeKind::Cache), 1),
            (5, key(["a", "a-2", "db", ""], NodeKind::Database), 1),
            (6, key(names, NodeKind::Database), 1),
        ];
        want.sort();
        assert_eq!(got, want);
        let rows = acc.rows(Resolution::Minute, |_| true);
        assert_eq!(rows.len(), 3, "seconds 5 and 6 merge in their minute");
    }
}
