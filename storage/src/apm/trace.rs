//! A trace held by the deriver until its spans stop arriving: its spans as nodes (parent,
//! service, role, and for entries and calls out what the map's links need), its provisional
//! transactions, and the counting of each transaction's children. Shared by derivation
//! (`derive`, which holds and releases traces) and the links (`links`, which read a released one).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::semconv::NodeKind;
use crate::model::SpanId;
use crate::xlog::XLog;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Role {
    Entry,
    Sql(u64),
    Api(u64),
    Other,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) parent: Option<SpanId>,
    /// A hash of the service name: only compared for equality.
    pub(super) service: u64,
    pub(super) role: Role,
    /// For entries and calls out: what the map's links need.
    pub(super) call: Option<Box<CallInfo>>,
}

/// What an entry span or a call out tells the map.
#[derive(Debug, Clone)]
pub(super) struct CallInfo {
    pub(super) service: Arc<str>,
    pub(super) instance: Arc<str>,
    pub(super) start_ns: u64,
    pub(super) duration_ns: u64,
    pub(super) error: bool,
    /// The virtual node a call out names (database, cache, queue, external), if any.
    pub(super) peer: Option<(Arc<str>, NodeKind)>,
}

pub(super) struct Pending {
    pub(super) record: Box<XLog>,
}

/// Parents walked up from a client span to find its entry, at most. Same-service chains of
/// internal spans are a few levels deep in practice.
pub(super) const MAX_WALK: usize = 256;

/// Past this many spans a trace's nodes get a hash index; below it a linear scan is faster.
const INDEX_FROM: usize = 32;

pub(super) struct TraceBuf {
    pub(super) nodes: Vec<(SpanId, Node)>,
    index: Option<FxHashMap<SpanId, u32>>,
    pub(super) pending: Vec<Pending>,
    pub(super) first_ns: u64,
    pub(super) last_ns: u64,
    /// When the trace may next be released: worth looking at no earlier.
    pub(super) due_ns: u64,
    /// The lowest write-ahead-log record holding a span of the trace: the log is kept from there
    /// while the trace is held.
    pub(super) first_seq: u64,
}

#[derive(Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) sql: u32,
    pub(super) sql_ns: u64,
    pub(super) api: u32,
    pub(super) api_ns: u64,
}

enum Owner {
    Entry(SpanId),
    Unresolved,
    None,
}

impl TraceBuf {
    pub(super) fn new(now_ns: u64, seq: u64) -> Self {
        Self {
            nodes: Vec::new(),
            index: None,
            pending: Vec::new(),
            first_ns: now_ns,
            last_ns: now_ns,
            due_ns: now_ns,
            first_seq: seq,
        }
    }

    pub(super) fn get(&self, id: &SpanId) -> Option<&Node> {
        match &self.index {
            Some(ix) => ix.get(id).map(|&i| &self.nodes[i as usize].1),
            None => self.nodes.iter().find(|(s, _)| s == id).map(|(_, n)| n),
        }
    }

    /// Adds a span; false if it is held already (a retry).
    pub(super) fn add(&mut self, id: SpanId, node: Node) -> bool {
        if self.get(&id).is_some() {
            return false;
        }
        self.nodes.push((id, node));
        match &mut self.index {
            Some(ix) => {
                ix.insert(id, self.nodes.len() as u32 - 1);
            }
            None if self.nodes.len() > INDEX_FROM => {
                self.index = Some(self.nodes.iter().enumerate().map(|(i, (s, _))| (*s, i as u32)).collect());
            }
            None => {}
        }
        true
    }

    /// The entry a contributor belongs to: the nearest entry up its chain of same-service parents.
    fn owner(&self, node: &Node) -> Owner {
        let mut parent = node.parent;
        // Bounded by the spans held: a cyclic parent chain ends here.
        // Bounded: a cyclic chain ends here, and a hostile trace of one long chain with a client
        // at every level costs at most this many steps per client.
        for _ in 0..=self.nodes.len().min(MAX_WALK) {
            let Some(id) = parent else { return Owner::None };
            let Some(p) = self.get(&id) else { return Owner::Unresolved };
            if p.service != node.service {
                return Owner::None;
            }
            if p.role == Role::Entry {
                return Owner::Entry(id);
            }
            parent = p.parent;
        }
        Owner::None
    }

    /// Counts per entry, and whether some contributor still waits for its entry.
    pub(super) fn counts(&self) -> (FxHashMap<SpanId, Counts>, bool) {
        let mut out: FxHashMap<SpanId, Counts> = FxHashMap::default();
        let mut unresolved = false;
        for (_, node) in &self.nodes {
            let (sql, ns) = match node.role {
                Role::Sql(ns) => (true, ns),
                Role::Api(ns) => (false, ns),
                Role::Entry | Role::Other => continue,
            };
            match self.owner(node) {
                Owner::Entry(e) => {
                    let c = out.entry(e).or_default();
                    if sql {
                        c.sql += 1;
                        c.sql_ns += ns;
                    } else {
                        c.api += 1;
                        c.api_ns += ns;
                    }
                }
                Owner::Unresolved => unresolved = true,
                Owner::None => {}
            }
        }
        (out, unresolved)
    }
}
