//! What the deriver's records keep alive, for its byte bound. Its nodes are bounded by count
//! (`max_spans`), but a record is as large as its entry span's attributes (up to 128 values of
//! 16 KiB) and its resource, and a trace with a child waiting for its entry is held for the
//! orphan TTL: counted by spans alone, a client sending such traces could make the deriver hold
//! gigabytes after their spans were sealed and freed.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::xlog::XLog;

/// The bytes of the records held: each record's own (`XLog::memory_bytes`), and each resource
/// once however many records share it (the spans of a request share one).
#[derive(Debug, Default)]
pub(super) struct HeldBytes {
    total: usize,
    /// Records holding each resource, and its bytes. Keyed by address: the records' references
    /// keep it from being reused while it is a key.
    resources: FxHashMap<usize, (usize, usize)>,
}

impl HeldBytes {
    /// Counts a record in. Returns its own bytes: its trace's share, by which eviction chooses.
    pub(super) fn add(&mut self, x: &XLog) -> usize {
        let own = x.memory_bytes();
        self.total += own;
        match self.resources.entry(Arc::as_ptr(&x.resource) as usize) {
            Entry::Occupied(mut e) => e.get_mut().0 += 1,
            Entry::Vacant(e) => {
                let bytes = x.resource.memory_bytes();
                self.total += bytes;
                e.insert((1, bytes));
            }
        }
        own
    }

    /// Counts out a record counted in by `add`, with the bytes `add` returned.
    pub(super) fn remove(&mut self, x: &XLog, own: usize) {
        self.total -= own;
        if let Entry::Occupied(mut e) = self.resources.entry(Arc::as_ptr(&x.resource) as usize) {
            let (refs, bytes) = e.get_mut();
            *refs -= 1;
            if *refs == 0 {
                self.total -= *bytes;
                e.remove();
            }
        }
    }

    pub(super) fn total(&self) -> usize {
        self.total
    }
}
