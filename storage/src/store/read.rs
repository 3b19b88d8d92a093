//! Trace by id: the memtable, then the segments the trace index names, whatever their time.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::Store;
use crate::error::StorageError;
use crate::keys;
use crate::model::{Span, TraceId};
use crate::spans::{self, TraceRows};
use crate::table::Fetched;

impl Store {
    /// All stored spans of a trace, in start order. Point lookups: the trace index names the
    /// segments and rows, whatever time they are from.
    pub fn trace(&self, id: &TraceId) -> Result<Vec<Span>, StorageError> {
        let mut out: Vec<Span> = Vec::new();
        {
            let st = self.state.read();
            out.extend(st.active.trace(id).cloned());
            if let Some(f) = &st.frozen {
                out.extend(f.trace(id).cloned());
            }
        }
        let tindex = self.db.cf_handle(keys::CF_TRACE_INDEX).expect("opened");
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(next_prefix(id));
        let mut hits = Vec::new();
        for item in self.db.iterator_cf_opt(tindex, ro, IteratorMode::From(&id.0, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&id.0) {
                break;
            }
            let (part, seg) = keys::parse_trace_index(&k).ok_or_else(|| crate::codec::corrupt("trace index key"))?;
            hits.push((part, seg, TraceRows::decode_value(*id, &v)?));
        }
        for (part, seg, rows) in hits {
            let meta = self.spans.find(part, seg);
            // Absent: the partition was dropped and compaction has not yet met its index entry.
            let Some(meta) = meta else { continue };
            match spans::read_rows(&meta, rows.first_row, rows.count, |want| self.fetch_chunks(part, seg, want)) {
                Ok(spans) => out.extend(spans),
                // Dropped by retention while this read ran: as if the read had come a moment later.
                Err(StorageError::PartitionDropped(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        // A span can be both in the frozen memtable and in its fresh segment while a seal
        // finishes, and a retried export stores a span twice: show it once.
        let mut seen = HashSet::new();
        out.retain(|s| seen.insert(s.span_id));
        out.sort_by_key(|s| (s.start_ns, s.span_id));
        Ok(out)
    }

    /// The stored chunks of a segment. A partition below the floor is being dropped (the floor
    /// moves before its chunks go): its reads answer `PartitionDropped`, whatever was still found.
    pub(crate) fn fetch_chunks(&self, part: u64, seg: u64, want: &[(u16, u32)]) -> Fetched {
        crate::interrupt::check()?;
        self.config.failpoints.hit("chunk-fetch")?;
        self.chunks_read.fetch_add(want.len() as u64, Ordering::Relaxed);
        let chunks = self.db.cf_handle(keys::CF_CHUNKS).expect("opened");
        let keys: Vec<_> = want.iter().map(|(c, p)| (chunks, keys::chunk(part, seg, *c, *p))).collect();
        let got: Result<Vec<_>, StorageError> =
            self.db.multi_get_cf(keys).into_iter().map(|r| r.map_err(StorageError::from)).collect();
        if part < self.floor.load(Ordering::Acquire) {
            return Err(StorageError::PartitionDropped(part));
        }
        got
    }
}

fn next_prefix(id: &TraceId) -> Vec<u8> {
    let mut v = id.0.to_vec();
    for b in v.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return v;
        }
    }
    // All 0xff: no upper bound needed beyond the keyspace; 17 bytes sorts after every 32-byte key
    // starting with it.
    let mut v = id.0.to_vec();
    v.push(0xff);
    v.extend_from_slice(&[0xff; 16]);
    v
}
