//! What the deriver's records keep alive, for its byte bound. Its nodes are bounded by count
//! (`max_spans`), but a record is as large as its entry span's attributes (up to 128 values of
//! 16 KiB) and its resource, and a trace with a child waiting for its entry is held for the
//! orphan TTL: counted by spans alone, a client sending such traces could make the deriver hold
//! gigabytes after their spans were sealed and freed. The names a call refers to (its service,
//! instance and peer, `CallInfo::name_bytes`) count toward the same bound, in the deriver.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::trace::Pending;

/// The bytes of the records held: each record's own (`Pending::bytes`), and each resource
/// once however many records share it (the spans of a request share one).
#[derive(Debug, Default)]
pub(super) struct HeldBytes {
    total: usize,
    /// Records holding each resource, and its bytes. Keyed by address: the records' references
    /// keep it from being reused while it is a key.
    resources: FxHashMap<usize, (usize, usize)>,
}

impl HeldBytes {
    /// Counts a record in.
    pub(super) fn add(&mut self, p: &Pending) {
        self.total += p.bytes;
        match self.resources.entry(Arc::as_ptr(&p.record.resource) as usize) {
            Entry::Occupied(mut e) => e.get_mut().0 += 1,
            Entry::Vacant(e) => {
                let bytes = p.record.resource.memory_bytes();
                self.total += bytes;
                e.insert((1, bytes));
            }
        }
    }

    /// Counts out the records of a trace let go of, each counted in by `add`.
    pub(super) fn remove(&mut self, released: &[Pending]) {
        for p in released {
            self.total -= p.bytes;
            if let Entry::Occupied(mut e) = self.resources.entry(Arc::as_ptr(&p.record.resource) as usize) {
                let (refs, bytes) = e.get_mut();
                *refs -= 1;
                if *refs == 0 {
                    self.total -= *bytes;
                    e.remove();
                }
            }
        }
    }

    pub(super) fn total(&self) -> usize {
        self.total
    }
}
