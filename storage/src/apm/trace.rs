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
    pub(super) origin: Arc<Origin>,
    pub(super) start_ns: u64,
    pub(super) duration_ns: u64,
    pub(super) error: bool,
    /// The virtual node a call out names (database, cache, queue, external), if any.
    pub(super) peer: Option<(Arc<str>, NodeKind)>,
}

impl CallInfo {
    /// The bytes of the names the call keeps alive once its span is sealed and freed: its
    /// service, instance and peer, each counted whole even where spans share it (those of a
    /// request do), an upper bound as `Value::heap_bytes` is. A value may be 16 KiB, and a trace
    /// waiting for a parent never sent is held for the orphan TTL: counted by spans alone, calls
    /// naming a new long peer each could hold gigabytes.
    pub(super) fn name_bytes(&self) -> usize {
        self.origin.service.len() + self.origin.instance.len() + self.peer.as_ref().map_or(0, |(p, _)| p.len())
    }
}

/// The service and instance a span came from: one for all the spans of a resource, so that each
/// call held costs a pointer rather than two.
#[derive(Debug)]
pub(super) struct Origin {
    pub(super) service: Arc<str>,
    pub(super) instance: Arc<str>,
}

#[derive(Debug)]
pub(super) struct Pending {
    /// Shared, so that a read of the records still pending copies a pointer under the deriver's
    /// lock, not the record.
    pub(super) record: Arc<XLog>,
    /// Its own bytes (`XLog::memory_bytes`), as the deriver's byte bound counts them: measured
    /// where the batch is extracted, off the writer thread.
    pub(super) bytes: usize,
}

impl Pending {
    pub(super) fn new(record: Arc<XLog>) -> Self {
        let bytes = record.memory_bytes();
        Self { record, bytes }
    }
}

#[cfg(test)]
thread_local! {
    /// Steps `owner_of` has taken up chains of parents on this thread: the cost of counting,
    /// which the tests hold to about one step per span whatever the trace's shape.
    pub(super) static WALK_STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Past this many spans a trace's nodes get a hash index; below it a linear scan is faster.
const INDEX_FROM: usize = 32;

pub(super) struct TraceBuf {
    pub(super) nodes: Vec<(SpanId, Node)>,
    index: Option<FxHashMap<SpanId, u32>>,
    /// `counts()` as of the last span added: finalizing and XLog reads ask for it again and
    /// again while the trace is held, and it only changes when a span arrives.
    counted: std::cell::OnceCell<(FxHashMap<SpanId, Counts>, bool)>,
    pub(super) pending: Vec<Pending>,
    /// The pending records' own bytes (`XLog::memory_bytes`). With `call_bytes`, what evicting
    /// the trace frees.
    pub(super) record_bytes: usize,
    /// The names its calls keep alive (`CallInfo::name_bytes`).
    pub(super) call_bytes: usize,
    pub(super) first_ns: u64,
    pub(super) last_ns: u64,
    /// When the trace may next be released: worth looking at no earlier.
    pub(super) due_ns: u64,
    /// Its entry in the deriver's queue (`Deriver::due`): at or before `due_ns`; `u64::MAX`
    /// until it has one.
    pub(super) queued_ns: u64,
    /// The lowest write-ahead-log record holding a span of the trace: the log is kept from there
    /// while the trace is held.
    pub(super) first_seq: u64,
    /// The highest record holding one.
    pub(super) last_seq: u64,
    /// Set once the trace's records were let go of while its calls still wait for their callees
    /// (`Deriver::finalize`): the records of entries in log records up to this one are sealed,
    /// and a recovery that derives the trace again must not make them again.
    pub(super) released_through: Option<u64>,
}

#[derive(Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) sql: u32,
    pub(super) sql_ns: u64,
    pub(super) api: u32,
    pub(super) api_ns: u64,
}

#[derive(Clone, Copy)]
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
            counted: std::cell::OnceCell::new(),
            pending: Vec::new(),
            record_bytes: 0,
            call_bytes: 0,
            first_ns: now_ns,
            last_ns: now_ns,
            due_ns: now_ns,
            queued_ns: u64::MAX,
            first_seq: seq,
            last_seq: seq,
            released_through: None,
        }
    }

    pub(super) fn get(&self, id: &SpanId) -> Option<&Node> {
        self.position(id).map(|i| &self.nodes[i].1)
    }

    fn position(&self, id: &SpanId) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(id).map(|&i| i as usize),
            None => self.nodes.iter().position(|(s, _)| s == id),
        }
    }

    /// Adds a span; false if it is held already (a retry).
    pub(super) fn add(&mut self, id: SpanId, node: Node) -> bool {
        if self.get(&id).is_some() {
            return false;
        }
        self.nodes.push((id, node));
        self.counted = std::cell::OnceCell::new();
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

    /// Counts per entry, and whether some contributor still waits for its entry. Computed once
    /// per change of the trace.
    pub(super) fn counts(&self) -> &(FxHashMap<SpanId, Counts>, bool) {
        self.counted.get_or_init(|| self.count())
    }

    /// The counts, taken: for a trace being released.
    pub(super) fn take_counts(&mut self) -> FxHashMap<SpanId, Counts> {
        self.counts();
        self.counted.take().map(|(c, _)| c).unwrap_or_default()
    }

    /// Each contributor's entry is the nearest entry up its chain of same-service parents. Owners
    /// are memoized along the chains walked, so a count costs about one step per span whatever
    /// the trace's shape (a hostile chain of a million clients, each with the whole chain above
    /// it, is a million steps, not a million walks), and the answer does not depend on the order
    /// spans arrived in. A cycle of parents ends without an owner.
    fn count(&self) -> (FxHashMap<SpanId, Counts>, bool) {
        let n = self.nodes.len();
        let mut memo: Vec<Option<Owner>> = vec![None; n];
        // The walk that last passed each node: meeting the current walk's own stamp is a cycle.
        let mut stamp: Vec<u32> = vec![0; n];
        let mut out: FxHashMap<SpanId, Counts> = FxHashMap::default();
        let mut unresolved = false;
        let mut path: Vec<usize> = Vec::new();
        for i in 0..n {
            let (sql, ns) = match self.nodes[i].1.role {
                Role::Sql(ns) => (true, ns),
                Role::Api(ns) => (false, ns),
                Role::Entry | Role::Other => continue,
            };
            match self.owner_of(i, &mut memo, &mut stamp, i as u32 + 1, &mut path) {
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

    /// The owner of node `i` (as a contributor: found from its parent up), memoized for every
    /// same-service node passed on the way, which share it.
    fn owner_of(
        &self,
        i: usize,
        memo: &mut [Option<Owner>],
        stamp: &mut [u32],
        walk: u32,
        path: &mut Vec<usize>,
    ) -> Owner {
        if let Some(o) = memo[i] {
            return o;
        }
        let service = self.nodes[i].1.service;
        path.clear();
        path.push(i);
        stamp[i] = walk;
        let mut cur = i;
        let found = loop {
            #[cfg(test)]
            WALK_STEPS.with(|n| n.set(n.get() + 1));
            let Some(parent) = self.nodes[cur].1.parent else { break Owner::None };
            let Some(j) = self.position(&parent) else { break Owner::Unresolved };
            let p = &self.nodes[j].1;
            if p.service != service {
                break Owner::None;
            }
            if p.role == Role::Entry {
                break Owner::Entry(parent);
            }
            if let Some(o) = memo[j] {
                break o;
            }
            if stamp[j] == walk {
                break Owner::None; // a cycle
            }
            stamp[j] = walk;
            path.push(j);
            cur = j;
        };
        for &k in path.iter() {
            memo[k] = Some(found);
        }
        found
    }
}
