//! Spans acknowledged but not yet sealed into column chunks. They are durable in the `wal`
//! column family; this is their queryable in-memory copy.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::model::{Span, TraceId};
use crate::stats::LinkCall;
use crate::store::retries::Fingerprint;
use crate::xlog::XLog;

pub struct Memtable {
    /// Shared with the XLog records of entry spans, which read their attributes from here.
    spans: Vec<Arc<Span>>,
    /// Native records, and records derived from spans once final. Shared, so that a read copies
    /// pointers under the state lock (the write path's) and does its work after letting go.
    pub xlogs: Vec<Arc<XLog>>,
    /// Calls over the map's links, resolved by the deriver: their statistics are written with
    /// the seal.
    pub links: Vec<LinkCall>,
    /// Fingerprints of the batches in here, with the wall time each was written: a seal keeps
    /// them, so a retry is recognised after a restart too.
    pub batches: Vec<(Fingerprint, u64)>,
    by_trace: HashMap<TraceId, Vec<u32>>,
    /// Highest WAL sequence number whose spans are in here.
    pub max_seq: Option<u64>,
    pub created: Instant,
    /// Approximate bytes held: spans' allocations (`Span::memory_bytes`), native XLog records'
    /// log records.
    pub bytes: usize,
}

impl Default for Memtable {
    fn default() -> Self {
        Self {
            spans: Vec::new(),
            xlogs: Vec::new(),
            links: Vec::new(),
            batches: Vec::new(),
            by_trace: HashMap::default(),
            max_seq: None,
            created: Instant::now(),
            bytes: 0,
        }
    }
}

impl Memtable {
    pub fn insert(&mut self, seq: u64, spans: Vec<Arc<Span>>, xlogs: Vec<XLog>, bytes: usize) {
        for s in spans {
            self.by_trace.entry(s.trace_id).or_default().push(self.spans.len() as u32);
            self.spans.push(s);
        }
        self.xlogs.extend(xlogs.into_iter().map(Arc::new));
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        self.bytes += bytes;
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.xlogs.is_empty() && self.links.is_empty()
    }

    pub fn spans(&self) -> &[Arc<Span>] {
        &self.spans
    }

    pub fn trace(&self, id: &TraceId) -> impl Iterator<Item = &Span> {
        self.by_trace.get(id).into_iter().flatten().map(|&i| &*self.spans[i as usize])
    }
}
