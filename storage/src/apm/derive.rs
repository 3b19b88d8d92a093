//! Deriving XLog records from OTLP spans. A transaction is an entry span (SERVER, CONSUMER or a
//! root); its CLIENT and PRODUCER descendants in the same service add to its sql counts (database
//! calls) or api counts (everything else): the roles of `semconv`.
//!
//! Spans of one trace come from several processes, in several requests, in any order. The deriver
//! keeps a light copy of recent spans per trace, and holds every entry span for `grace` after it
//! arrives so that children exported after it still count. Children that arrived first wait (as
//! part of their trace) up to `orphan_ttl` for their entry. Memory is bounded by `max_spans`: past
//! it, the oldest traces are finalized early.
//!
//! A retried export repeats span ids: a span id already held in its trace is ignored, so a retry
//! never counts twice while the trace is held; reads deduplicate records by (trace id, span id)
//! for retries that come later than that.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

use super::semconv;
use crate::model::{Span, SpanId, TraceId};
use crate::xlog::XLog;

#[derive(Debug, Clone)]
pub struct DeriveConfig {
    /// How long an entry span waits for children exported after it.
    pub grace: Duration,
    /// How long children wait for an entry span exported after them.
    pub orphan_ttl: Duration,
    /// Spans held, at most, over all traces.
    pub max_spans: usize,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        Self { grace: Duration::from_secs(2), orphan_ttl: Duration::from_secs(120), max_spans: 1_000_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Entry,
    Sql(u64),
    Api(u64),
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: Option<SpanId>,
    /// A hash of the service name: only compared for equality.
    service: u64,
    role: Role,
}

/// What derivation needs of a batch of spans. Built where the batch is decoded, off the writer
/// thread, so the writer only merges it.
#[derive(Debug, Default)]
pub struct Extract {
    items: Vec<(TraceId, SpanId, Node, Option<Box<XLog>>)>,
}

impl Extract {
    pub fn from_spans(spans: &[Arc<Span>]) -> Self {
        let items = spans
            .iter()
            .map(|s| {
                let role = match semconv::role(s) {
                    semconv::Role::Entry => Role::Entry,
                    semconv::Role::Database => Role::Sql(s.duration_ns),
                    semconv::Role::Remote => Role::Api(s.duration_ns),
                    semconv::Role::Other => Role::Other,
                };
                let node = Node { parent: s.parent_span_id, service: service_hash(&s.service), role };
                (s.trace_id, s.span_id, node, (role == Role::Entry).then(|| Box::new(semconv::transaction(s))))
            })
            .collect();
        Self { items }
    }
}

fn service_hash(service: &str) -> u64 {
    let mut h = FxHasher::default();
    service.hash(&mut h);
    h.finish()
}

struct Pending {
    record: Box<XLog>,
    /// Write-ahead-log record holding the entry span: kept until the record is sealed.
    seq: u64,
    arrived_ns: u64,
}

/// Parents walked up from a client span to find its entry, at most. Same-service chains of
/// internal spans are a few levels deep in practice.
const MAX_WALK: usize = 256;

/// Past this many spans a trace's nodes get a hash index; below it a linear scan is faster.
const INDEX_FROM: usize = 32;

#[derive(Default)]
struct TraceBuf {
    nodes: Vec<(SpanId, Node)>,
    index: Option<FxHashMap<SpanId, u32>>,
    pending: Vec<Pending>,
    last_ns: u64,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    sql: u32,
    sql_ns: u64,
    api: u32,
    api_ns: u64,
}

enum Owner {
    Entry(SpanId),
    Unresolved,
    None,
}

impl TraceBuf {
    fn get(&self, id: &SpanId) -> Option<&Node> {
        match &self.index {
            Some(ix) => ix.get(id).map(|&i| &self.nodes[i as usize].1),
            None => self.nodes.iter().find(|(s, _)| s == id).map(|(_, n)| n),
        }
    }

    /// Adds a span; false if it is held already (a retry).
    fn add(&mut self, id: SpanId, node: Node) -> bool {
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
    fn counts(&self) -> (FxHashMap<SpanId, Counts>, bool) {
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

/// The record with its children counted.
fn complete(record: Box<XLog>, counts: &FxHashMap<SpanId, Counts>) -> XLog {
    let mut r = *record;
    if let Some(c) = counts.get(&r.span_id) {
        r.sql_count = c.sql;
        r.sql_ns = c.sql_ns;
        r.api_count = c.api;
        r.api_ns = c.api_ns;
    }
    r
}

pub struct Deriver {
    config: DeriveConfig,
    traces: FxHashMap<TraceId, TraceBuf>,
    spans: usize,
    pending: usize,
}

impl Deriver {
    pub fn new(config: DeriveConfig) -> Self {
        Self { config, traces: FxHashMap::default(), spans: 0, pending: 0 }
    }

    /// Takes in the spans of one write-ahead-log record. Returns records finalized early because
    /// the deriver was full.
    pub fn observe(&mut self, seq: u64, extract: Extract, now_ns: u64) -> Vec<XLog> {
        for (trace_id, span_id, node, entry) in extract.items {
            let buf = self.traces.entry(trace_id).or_default();
            buf.last_ns = now_ns;
            if !buf.add(span_id, node) {
                continue; // a retry
            }
            self.spans += 1;
            if let Some(record) = entry {
                buf.pending.push(Pending { record, seq, arrived_ns: now_ns });
                self.pending += 1;
            }
        }
        if self.spans > self.config.max_spans {
            self.evict(self.config.max_spans * 3 / 4)
        } else {
            Vec::new()
        }
    }

    /// Finalizes the oldest traces until at most `keep` spans are held.
    fn evict(&mut self, keep: usize) -> Vec<XLog> {
        let mut by_age: Vec<(u64, TraceId)> = self.traces.iter().map(|(id, b)| (b.last_ns, *id)).collect();
        by_age.sort_unstable();
        let mut out = Vec::new();
        for (_, id) in by_age {
            if self.spans <= keep {
                break;
            }
            if let Some(buf) = self.traces.remove(&id) {
                self.spans -= buf.nodes.len();
                let (counts, _) = buf.counts();
                self.pending -= buf.pending.len();
                out.extend(buf.pending.into_iter().map(|p| complete(p.record, &counts)));
            }
        }
        crate::metrics::xlog_evicted(out.len());
        out
    }

    /// True when some entry has waited its grace period.
    pub fn has_due(&self, now_ns: u64) -> bool {
        self.pending > 0 && self.oldest_pending_ns().is_some_and(|t| t + self.grace_ns() <= now_ns)
    }

    fn grace_ns(&self) -> u64 {
        self.config.grace.as_nanos() as u64
    }

    fn oldest_pending_ns(&self) -> Option<u64> {
        self.traces.values().flat_map(|b| b.pending.iter().map(|p| p.arrived_ns)).min()
    }

    /// Finalizes the entries whose grace period is over (every entry when `all`), and lets go of
    /// traces nothing waits in any more.
    pub fn finalize(&mut self, now_ns: u64, all: bool) -> Vec<XLog> {
        let grace = self.grace_ns();
        let ttl = self.config.orphan_ttl.as_nanos() as u64;
        let mut out = Vec::new();
        let (mut spans, mut pending) = (0, 0);
        self.traces.retain(|_, buf| {
            let due = |p: &Pending| all || p.arrived_ns + grace <= now_ns;
            // Counted at most once per trace and pass: finalizing and the keep decision share it.
            let mut counted = None;
            if buf.pending.iter().any(due) {
                let (counts, unresolved) = buf.counts();
                let (now_due, waiting): (Vec<Pending>, Vec<Pending>) =
                    std::mem::take(&mut buf.pending).into_iter().partition(|p| due(p));
                out.extend(now_due.into_iter().map(|p| complete(p.record, &counts)));
                buf.pending = waiting;
                counted = Some(unresolved);
            }
            // A trace stays while an entry waits, and while it was active lately or children in it
            // still wait for their entry (up to the TTL).
            let quiet = buf.last_ns + grace <= now_ns;
            let expired = buf.last_ns + ttl <= now_ns;
            let unresolved = || counted.unwrap_or_else(|| buf.counts().1);
            let keep = !all && (!buf.pending.is_empty() || (!expired && (!quiet || unresolved())));
            if keep {
                spans += buf.nodes.len();
                pending += buf.pending.len();
            }
            keep
        });
        self.spans = spans;
        self.pending = pending;
        out
    }

    /// The lowest write-ahead-log record still holding an entry span not yet finalized: the log
    /// is kept from there so a crash loses no transaction.
    pub fn min_pending_seq(&self) -> Option<u64> {
        self.traces.values().flat_map(|b| b.pending.iter().map(|p| p.seq)).min()
    }

    /// The records of entries not yet finalized, counted as far as their children have arrived.
    pub fn provisional(&self) -> Vec<XLog> {
        let mut out = Vec::with_capacity(self.pending);
        for buf in self.traces.values().filter(|b| !b.pending.is_empty()) {
            let (counts, _) = buf.counts();
            out.extend(buf.pending.iter().map(|p| complete(p.record.clone(), &counts)));
        }
        out
    }

    pub fn spans_held(&self) -> usize {
        self.spans
    }

    pub fn pending(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests;
