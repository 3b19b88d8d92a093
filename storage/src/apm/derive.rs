//! Deriving XLog records from OTLP spans. A transaction is an entry span (SERVER, CONSUMER or a
//! root); its CLIENT and PRODUCER descendants in the same service add to its sql counts (database
//! calls) or api counts (everything else): the roles of `semconv`.
//!
//! Spans of one trace come from several processes, in several requests, in any order. The deriver
//! keeps a light copy of recent spans per trace, and holds every entry span for `grace` after it
//! arrives so that children exported after it still count. Children that arrived first wait (as
//! part of their trace) up to `orphan_ttl` for their entry. Memory is bounded by `max_spans` and
//! by `max_bytes` (what the records keep alive, `held`): past either, the traces holding the most
//! are finalized early.
//!
//! A retried export repeats span ids: a span id already held in its trace is ignored, so a retry
//! never counts twice while the trace is held; reads deduplicate records by (trace id, span id)
//! for retries that come later than that.
//!
//! A trace is *released* when it has been quiet for the grace period and nothing in it waits any
//! more (or once the waits are over): its transactions and the calls over the map's links
//! (`links`) come out together. Until then it is *held*, and its write-ahead-log records with it:
//! after a crash, the held traces (and only those) are derived again, so nothing is lost and
//! nothing counted twice. A trace whose calls alone still wait for their callees (up to the link
//! wait, ten seconds, for every call to a peer not yet known to be uninstrumented: at start-up,
//! all of them) lets its transactions go after the grace, as final as the grace makes them, and
//! stays held for its calls: the records, most of what a trace holds, do not wait five times as
//! long as they need to. Which log records' transactions went that way is kept with the held
//! traces (`released_through`), so that a recovery does not make them again.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

use super::held::HeldBytes;
use super::links::{self, Learn, Uninstrumented};
use super::semconv::{self, NodeKind};
use super::trace::{CallInfo, Counts, Node, Origin, Pending, Role, TraceBuf};
use crate::model::{Resource, Span, SpanId, TraceId};
use crate::stats::LinkCall;
use crate::xlog::XLog;

#[derive(Debug, Clone)]
pub struct DeriveConfig {
    /// How long an entry span waits for children exported after it.
    pub grace: Duration,
    /// How long a call to another service waits for the callee's span (SDKs export every few
    /// seconds, each on its own schedule) before it counts as a call to an uninstrumented peer.
    pub link_wait: Duration,
    /// How long children wait for an entry span exported after them, and the longest a trace
    /// is held at all.
    pub orphan_ttl: Duration,
    /// Spans held, at most, over all traces.
    pub max_spans: usize,
    /// Spans held of one trace, at most: a trace that reaches it is released at once (and what
    /// comes after starts anew), so one endless trace cannot fill the deriver with itself.
    pub max_trace_spans: usize,
    /// Bytes the records held keep alive (their attributes, names and resources), and the names
    /// the calls held refer to, at most.
    pub max_bytes: usize,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(2),
            link_wait: Duration::from_secs(10),
            orphan_ttl: Duration::from_secs(120),
            max_spans: 2_000_000,
            max_trace_spans: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// What derivation needs of a batch of spans. Built where the batch is decoded, off the writer
/// thread, so the writer only merges it.
#[derive(Debug, Default)]
pub struct Extract {
    items: Vec<(TraceId, SpanId, Node, Option<Pending>)>,
}

impl Extract {
    pub fn from_spans(spans: &[Arc<Span>]) -> Self {
        // Spans of one request share their resource: its service and instance are made one
        // shared origin per resource, not per span.
        let mut origins: Vec<(*const Resource, Arc<Origin>)> = Vec::new();
        let items = spans
            .iter()
            .map(|s| {
                let role = match semconv::role(s) {
                    semconv::Role::Entry => Role::Entry,
                    semconv::Role::Database => Role::Sql(s.duration_ns),
                    semconv::Role::Remote => Role::Api(s.duration_ns),
                    semconv::Role::Other => Role::Other,
                };
                let call = (role != Role::Other).then(|| {
                    let ptr = Arc::as_ptr(&s.resource);
                    let origin = match origins.iter().find(|(p, _)| *p == ptr) {
                        Some((_, origin)) => origin.clone(),
                        None => {
                            let instance = s.resource.shared_instance().cloned().unwrap_or_default();
                            let origin = Arc::new(Origin { service: s.service.clone(), instance });
                            origins.push((ptr, origin.clone()));
                            origin
                        }
                    };
                    let peer = match role {
                        Role::Sql(_) | Role::Api(_) => semconv::peer_node(s),
                        _ => semconv::consumed_from(s),
                    };
                    Box::new(CallInfo {
                        origin,
                        start_ns: s.start_ns,
                        duration_ns: s.duration_ns,
                        error: s.status_code == crate::model::status::ERROR,
                        peer,
                    })
                });
                let record = match (&call, role) {
                    (Some(call), Role::Entry) => {
                        Some(Pending::new(Arc::new(semconv::transaction(s, call.origin.instance.clone()))))
                    }
                    _ => None,
                };
                let node = Node { parent: s.parent_span_id, service: service_hash(&s.service), role, call };
                (s.trace_id, s.span_id, node, record)
            })
            .collect();
        Self { items }
    }

    /// Keeps the spans of the traces `keep` accepts: at recovery, only held traces are derived
    /// again from records that were sealed.
    pub fn retain(&mut self, keep: impl Fn(&TraceId) -> bool) {
        self.items.retain(|(t, ..)| keep(t));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The peer of the `i`th span as `semconv::peer_node` names it, where extraction looked it up
    /// (calls out it counts); `None` where it did not.
    pub fn peer_of(&self, i: usize) -> Option<Option<(&str, NodeKind)>> {
        let (_, _, node, _) = self.items.get(i)?;
        match (node.role, &node.call) {
            (Role::Sql(_) | Role::Api(_), Some(call)) => Some(call.peer.as_ref().map(|(n, k)| (&**n, *k))),
            _ => None,
        }
    }
}

/// What the deriver lets go of: traces' transactions and the calls over the map's links.
#[derive(Debug, Default)]
pub struct Released {
    /// Shared as the memtable holds them: each record stays in the allocation derivation made.
    pub records: Vec<Arc<XLog>>,
    pub links: Vec<LinkCall>,
}

fn service_hash(service: &str) -> u64 {
    let mut h = FxHasher::default();
    service.hash(&mut h);
    h.finish()
}

/// A trace's transactions, with their children counted, and its calls over the map's links,
/// added to `out` (one pair of lists for all the traces a seal lets go of).
fn release(mut buf: TraceBuf, learn: Learn<'_>, out: &mut Released) {
    let counts = buf.take_counts();
    links::resolve(&buf, learn, &mut out.links);
    out.records.extend(buf.pending.into_iter().map(|p| complete(p.record, &counts)));
}

/// When a trace due now may be let go of: `None` for now, or the time something it waits
/// for is over.
fn release_at(config: &DeriveConfig, peers: &Uninstrumented, buf: &TraceBuf, now_ns: u64) -> Option<u64> {
    let grace = config.grace.as_nanos() as u64;
    let wait = config.link_wait.as_nanos() as u64;
    let ttl = config.orphan_ttl.as_nanos() as u64;
    // Held at most this long, whatever still waits: a trace that never stops (or children
    // whose entry never comes) is released in parts.
    let expires = (buf.last_ns + ttl).min(buf.first_ns + ttl);
    let release_at = if expires <= now_ns {
        now_ns
    } else if buf.last_ns + grace > now_ns {
        buf.last_ns + grace
    } else if buf.counts().1 {
        // Children waiting for their entry keep the trace up to the TTL ...
        expires
    } else if links::waiting(buf, peers, now_ns) {
        // ... calls waiting for their callee, up to the link wait.
        (buf.last_ns + wait).min(expires)
    } else {
        now_ns
    };
    (release_at > now_ns).then_some(release_at)
}

/// The record with its children counted, in place unless a read still holds it.
fn complete(mut record: Arc<XLog>, counts: &FxHashMap<SpanId, Counts>) -> Arc<XLog> {
    if let Some(c) = counts.get(&record.span_id).copied() {
        set_counts(Arc::make_mut(&mut record), c);
    }
    record
}

/// A record still waiting for children, as taken under the deriver's lock: a pointer and its
/// counts so far. `complete` copies it, after the lock is let go.
pub struct Provisional(Arc<XLog>, Option<Counts>);

impl Provisional {
    /// The record as it arrived, without its children's counts.
    pub fn record(&self) -> &XLog {
        &self.0
    }

    pub fn complete(self) -> XLog {
        with_counts(self.0, self.1)
    }
}

/// The record with its children's counts; a copy only if a read still holds it.
fn with_counts(record: Arc<XLog>, counts: Option<Counts>) -> XLog {
    let mut r = Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone());
    if let Some(c) = counts {
        set_counts(&mut r, c);
    }
    r
}

fn set_counts(r: &mut XLog, c: Counts) {
    r.sql_count = c.sql;
    r.sql_ns = c.sql_ns;
    r.api_count = c.api;
    r.api_ns = c.api_ns;
}

pub struct Deriver {
    config: DeriveConfig,
    traces: FxHashMap<TraceId, TraceBuf>,
    /// When to look at each trace held, earliest first, one entry per trace: `finalize` visits
    /// the traces due, not every trace held (tens of thousands at full rate, under the locks that
    /// stop ingest). A trace's entry is at its `queued_ns`, never after its `due_ns`: spans
    /// arriving move `due_ns` later without touching the queue (that would cost every span), and
    /// the trace is put back when its entry comes up early; a span arriving after `finalize` put
    /// the trace off further moves its entry earlier.
    due: BTreeSet<(u64, TraceId)>,
    spans: usize,
    pending: usize,
    peers: Uninstrumented,
    held: HeldBytes,
    /// The calls' names held (`CallInfo::name_bytes`), beside the records' `held`.
    call_bytes: usize,
    /// At recovery, the traces whose transactions were sealed while their calls waited, each
    /// with the last log record those came from (`TraceBuf::released_through`).
    recovering: FxHashMap<TraceId, u64>,
}

impl Deriver {
    pub fn new(config: DeriveConfig) -> Self {
        Self {
            config,
            traces: FxHashMap::default(),
            due: BTreeSet::new(),
            spans: 0,
            pending: 0,
            peers: Uninstrumented::default(),
            held: HeldBytes::default(),
            call_bytes: 0,
            recovering: FxHashMap::default(),
        }
    }

    /// Before a recovery derives the held traces again from the log: those whose transactions
    /// were sealed already (`held_traces`), and through which log record. `recovered` ends it.
    pub fn recovering(&mut self, released: FxHashMap<TraceId, u64>) {
        self.recovering = released;
    }

    pub fn recovered(&mut self) {
        self.recovering = FxHashMap::default();
    }

    /// Takes in the spans of one write-ahead-log record. Returns the traces released early
    /// because the deriver was full.
    pub fn observe(&mut self, seq: u64, extract: Extract, now_ns: u64) -> Released {
        let mut out = Released::default();
        for (trace_id, span_id, node, entry) in extract.items {
            let due_ns = now_ns.saturating_add(self.config.grace.as_nanos() as u64);
            let buf = self.traces.entry(trace_id).or_insert_with(|| {
                let mut buf = TraceBuf::new(now_ns, seq);
                buf.released_through = self.recovering.get(&trace_id).copied();
                buf
            });
            if due_ns < buf.queued_ns {
                // New, or put off past this by `finalize`: a span arriving makes it due earlier.
                if buf.queued_ns != u64::MAX {
                    self.due.remove(&(buf.queued_ns, trace_id));
                }
                buf.queued_ns = due_ns;
                self.due.insert((due_ns, trace_id));
            }
            buf.last_ns = now_ns;
            buf.due_ns = due_ns;
            buf.first_seq = buf.first_seq.min(seq);
            buf.last_seq = buf.last_seq.max(seq);
            let call_bytes = node.call.as_deref().map_or(0, CallInfo::name_bytes);
            if !buf.add(span_id, node) {
                continue; // a retry
            }
            self.spans += 1;
            buf.call_bytes += call_bytes;
            self.call_bytes += call_bytes;
            // An entry whose record was sealed before a crash, derived again with its trace.
            let sealed = buf.released_through.is_some_and(|through| seq <= through);
            if let Some(entry) = entry.filter(|_| !sealed) {
                self.held.add(&entry);
                buf.record_bytes += entry.bytes;
                buf.pending.push(entry);
                self.pending += 1;
            }
            if buf.nodes.len() >= self.config.max_trace_spans {
                let buf = self.traces.remove(&trace_id).expect("held");
                self.forget(&trace_id, &buf);
                crate::metrics::xlog_trace_cut();
                release(buf, Learn { peers: &mut self.peers, now_ns, waited: false }, &mut out);
            }
        }
        if self.spans > self.config.max_spans || self.bytes_held() > self.config.max_bytes {
            self.evict(now_ns, &mut out);
        }
        out
    }

    /// A trace no longer held, counted out and off the queue.
    fn forget(&mut self, id: &TraceId, buf: &TraceBuf) {
        self.due.remove(&(buf.queued_ns, *id));
        self.spans -= buf.nodes.len();
        self.pending -= buf.pending.len();
        self.held.remove(&buf.pending);
        self.call_bytes -= buf.call_bytes;
    }

    /// Releases traces until at most three quarters of each bound is used: the largest first by
    /// the bound exceeded (what fills the deriver is what must give way; a hostile trace must not
    /// push out the ordinary ones), the least recently active among equals.
    fn evict(&mut self, now_ns: u64, out: &mut Released) {
        let (keep_spans, keep_bytes) = (self.config.max_spans * 3 / 4, self.config.max_bytes * 3 / 4);
        let by_bytes = self.bytes_held() > self.config.max_bytes;
        let mut by_size: Vec<(Reverse<usize>, u64, TraceId)> = self
            .traces
            .iter()
            .map(|(id, b)| {
                (Reverse(if by_bytes { b.record_bytes + b.call_bytes } else { b.nodes.len() }), b.last_ns, *id)
            })
            .collect();
        by_size.sort_unstable();
        let before = out.records.len();
        for (_, _, id) in by_size {
            if self.spans <= keep_spans && self.bytes_held() <= keep_bytes {
                break;
            }
            if let Some(buf) = self.traces.remove(&id) {
                self.forget(&id, &buf);
                release(buf, Learn { peers: &mut self.peers, now_ns, waited: false }, out);
            }
        }
        crate::metrics::xlog_evicted(out.records.len() - before);
    }

    /// True when some trace may be released: the next `finalize` has something to do (exactly:
    /// a seal is not started for nothing).
    pub fn has_due(&mut self, now_ns: u64) -> bool {
        self.first_due(now_ns).is_some()
    }

    /// The trace of the queue's first entry, if it is due by `now_ns`. Entries that come up early
    /// (spans arrived since they were made) are put back at their trace's due time on the way.
    fn first_due(&mut self, now_ns: u64) -> Option<TraceId> {
        while let Some(&(at, id)) = self.due.first() {
            if at > now_ns {
                return None;
            }
            match self.traces.get_mut(&id) {
                Some(buf) if buf.due_ns > now_ns => {
                    self.due.pop_first();
                    buf.queued_ns = buf.due_ns;
                    self.due.insert((buf.due_ns, id));
                }
                _ => return Some(id),
            }
        }
        None
    }

    /// Releases the traces nothing waits in any more (every trace when `all`).
    pub fn finalize(&mut self, now_ns: u64, all: bool) -> Released {
        let mut out = Released::default();
        if all {
            self.due.clear();
            for (_, buf) in self.traces.drain() {
                release(buf, Learn { peers: &mut self.peers, now_ns, waited: false }, &mut out);
            }
            (self.spans, self.pending, self.held, self.call_bytes) = (0, 0, HeldBytes::default(), 0);
            return out;
        }
        while let Some(id) = self.first_due(now_ns) {
            let Some(buf) = self.traces.get_mut(&id) else {
                debug_assert!(false, "a queued trace is held");
                self.due.pop_first();
                continue;
            };
            match release_at(&self.config, &self.peers, buf, now_ns) {
                Some(later) => {
                    self.due.pop_first();
                    (buf.due_ns, buf.queued_ns) = (later, later);
                    self.due.insert((later, id));
                    self.release_final_records(&id, now_ns, &mut out);
                }
                None => {
                    // `forget` takes the trace's entry, the first, off the queue.
                    let buf = self.traces.remove(&id).expect("held");
                    self.forget(&id, &buf);
                    let waited = buf.last_ns.saturating_add(self.config.link_wait.as_nanos() as u64) <= now_ns;
                    release(buf, Learn { peers: &mut self.peers, now_ns, waited }, &mut out);
                }
            }
        }
        out
    }

    /// The transactions of a trace kept past its grace only for its calls (waiting for their
    /// callees), let go of: nothing else they wait for can still come.
    fn release_final_records(&mut self, id: &TraceId, now_ns: u64, out: &mut Released) {
        let Some(buf) = self.traces.get_mut(id) else { return };
        let quiet = buf.last_ns.saturating_add(self.config.grace.as_nanos() as u64) <= now_ns;
        if buf.pending.is_empty() || !quiet || buf.counts().1 {
            return;
        }
        let pending = std::mem::take(&mut buf.pending);
        self.held.remove(&pending);
        self.pending -= pending.len();
        buf.record_bytes = 0;
        buf.released_through = Some(buf.last_seq);
        let (counts, _) = buf.counts();
        out.records.extend(pending.into_iter().map(|p| complete(p.record, counts)));
    }

    /// The traces held, each with the lowest write-ahead-log record holding one of its spans and,
    /// if its transactions were let go of while it waits (`release_final_records`), the last
    /// record they came from: persisted with each seal, so that recovery derives again these
    /// traces and only these from the records it keeps, and not those transactions.
    pub fn held_traces(&self) -> impl ExactSizeIterator<Item = (&TraceId, u64, Option<u64>)> + '_ {
        self.traces.iter().map(|(id, b)| (id, b.first_seq, b.released_through))
    }

    /// The records of entries not yet finalized, counted as far as their children have arrived,
    /// that `keep` accepts (tested before counting and copying: a read of one minute does not
    /// copy every record held).
    pub fn provisional(&self, keep: impl Fn(&XLog) -> bool) -> Vec<Provisional> {
        let mut out = Vec::new();
        for buf in self.traces.values().filter(|b| !b.pending.is_empty()) {
            let mut wanted = buf.pending.iter().filter(|p| keep(&p.record)).peekable();
            if wanted.peek().is_none() {
                continue;
            }
            let (counts, _) = buf.counts();
            out.extend(wanted.map(|p| Provisional(p.record.clone(), counts.get(&p.record.span_id).copied())));
        }
        out
    }

    pub fn spans_held(&self) -> usize {
        self.spans
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    /// What the records and calls held keep alive, as the byte bound counts it.
    pub fn bytes_held(&self) -> usize {
        self.held.total() + self.call_bytes
    }
}

#[cfg(test)]
mod tests;
