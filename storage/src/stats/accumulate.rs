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

/// Cells by (second, key).
pub struct Accumulator {
    cells: FxHashMap<(u64, Key), Cell>,
    active_bounds: ActiveBounds,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new(DEFAULT_ACTIVE_BOUNDS)
    }
}

impl Accumulator {
    pub fn new(active_bounds: ActiveBounds) -> Self {
        Self { cells: FxHashMap::default(), active_bounds }
    }

    pub fn transaction(&mut self, x: &XLog) {
        let key = node_key(x);
        super::in_flight(x.start_ns, x.elapsed_ns, self.active_bounds, |s, age| {
            self.cells.entry((s, key.clone())).or_default().active[age] += 1;
        });
        self.cells.entry((x.start_ns / 1_000_000_000, key)).or_default().record(x.elapsed_ns, x.error);
    }

    pub fn call(&mut self, c: &LinkCall) {
        self.cells.entry((c.start_ns / 1_000_000_000, c.key())).or_default().record(c.elapsed_ns, c.error);
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Rows of one resolution, sorted by (time, key), for those seconds `select` keeps.
    pub fn rows(&self, res: Resolution, select: impl Fn(u64) -> bool) -> Vec<Row> {
        let mut merged: BTreeMap<(u64, String), Cell> = BTreeMap::new();
        for ((t, key), cell) in &self.cells {
            if select(*t) {
                merged.entry((res.floor(*t), key.encode())).or_default().merge(cell);
            }
        }
        merged.into_iter().map(|((t, k), c)| (t, k, c)).collect()
    }

    /// Every (second, key, cell), for reads that merge the unsealed in memory.
    pub fn cells(&self) -> impl Iterator<Item = (&(u64, Key), &Cell)> {
        self.cells.iter()
    }
}
