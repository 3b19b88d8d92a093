//! Retried exports, recognised and acknowledged without being stored or counted again.
//!
//! An exporter that got no answer sends the same request again (OTLP SDKs back off for up to a
//! minute; an OpenTelemetry Collector's queue for up to five): reads keep one copy of each span,
//! but the map's statistics are sums and would count the retry twice. So every batch has a
//! fingerprint of what it carries, and a batch whose fingerprint was made durable within
//! `WINDOW` is answered as written and otherwise dropped. The fingerprints of sealed batches are
//! kept in the meta column family (one key per seal, `keys::META_BATCHES_PREFIX`), and those of
//! unsealed ones are recomputed from the write-ahead log, so a retry that follows a crash is
//! recognised too.
//!
//! A fingerprint is of the batch's encoding: only a batch identical in every byte is taken for a
//! retry (a batch that repeats some spans of another is stored, and reads keep one copy of each).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::codec::corrupt;
use crate::error::StorageError;

/// How long a batch is remembered: longer than any exporter's retries.
pub const WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;
/// At most this many batches are remembered (about 20 MB); past it the oldest are forgotten
/// early, which only matters above ~400 requests a second sustained for the whole window.
const CAPACITY: usize = 1 << 18;

/// A batch's identity: 128 bits, so that two different batches never share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

impl Fingerprint {
    /// Of a batch's write-ahead-log record: what recovery reads back, byte for byte.
    pub fn of(record: &[u8]) -> Self {
        let mut h = Hasher::default();
        h.word(record.len() as u64);
        h.bytes(record);
        h.finish()
    }
}

/// Two 64-bit lanes of multiply-and-fold mixing (as in wyhash), seeded apart. Not for an
/// adversary (a client can only make its own batches look alike), and stable across builds, as
/// the fingerprints on disk require.
struct Hasher {
    a: u64,
    b: u64,
}

impl Default for Hasher {
    fn default() -> Self {
        Self { a: 0x243f_6a88_85a3_08d3, b: 0x1319_8a2e_0370_7344 }
    }
}

fn fold(x: u64, y: u64) -> u64 {
    let m = u128::from(x) * u128::from(y);
    (m as u64) ^ ((m >> 64) as u64)
}

impl Hasher {
    fn word(&mut self, w: u64) {
        self.a = fold(self.a ^ w, 0xa076_1d64_78bd_642f);
        self.b = fold(self.b ^ w.rotate_left(29), 0xe703_7ed1_a0b4_28db);
    }

    fn bytes(&mut self, b: &[u8]) {
        for c in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
    }

    fn finish(&self) -> Fingerprint {
        Fingerprint(u128::from(fold(self.a, self.b ^ 0x8ebc_6af0_9c88_c6e3)) << 64 | u128::from(self.b ^ self.a))
    }
}

/// The batches made durable within the window, with the wall time they were.
#[derive(Default)]
pub struct RecentBatches {
    seen: FxHashMap<Fingerprint, u64>,
    order: VecDeque<(u64, Fingerprint)>,
}

impl RecentBatches {
    pub fn contains(&self, fp: Fingerprint, now_ns: u64) -> bool {
        self.seen.get(&fp).is_some_and(|&at| at.saturating_add(WINDOW_NS) > now_ns)
    }

    pub fn insert(&mut self, fp: Fingerprint, at_ns: u64) {
        self.seen.insert(fp, at_ns);
        self.order.push_back((at_ns, fp));
        while self.order.len() > CAPACITY {
            self.forget_oldest();
        }
    }

    /// Forgets batches older than the window.
    pub fn expire(&mut self, now_ns: u64) {
        while self.order.front().is_some_and(|(at, _)| at.saturating_add(WINDOW_NS) <= now_ns) {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((at, fp)) = self.order.pop_front() {
            // A later insert of the same fingerprint keeps it.
            if self.seen.get(&fp) == Some(&at) {
                self.seen.remove(&fp);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// The fingerprints sealed within the window before `now_ns`, from the meta column family.
pub fn load(db: &rocksdb::DB, now_ns: u64) -> Result<RecentBatches, StorageError> {
    let meta = db.cf_handle(crate::keys::CF_META).expect("opened");
    let from = crate::keys::batches(now_ns.saturating_sub(WINDOW_NS), 0);
    let mut recent = RecentBatches::default();
    let mode = rocksdb::IteratorMode::From(&from, rocksdb::Direction::Forward);
    for item in db.iterator_cf(meta, mode) {
        let (k, v) = item?;
        if k.first() != Some(&crate::keys::META_BATCHES_PREFIX) {
            break;
        }
        for (fp, at) in decode(&v).map_err(|e| e.within(|| "a seal's batch fingerprints".into()))? {
            recent.insert(fp, at);
        }
    }
    Ok(recent)
}

/// One seal's fingerprints, as its meta value: (fingerprint, wall time) pairs of 24 bytes.
pub fn encode(batches: &[(Fingerprint, u64)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(batches.len() * 24);
    for (fp, at) in batches {
        v.extend_from_slice(&fp.0.to_be_bytes());
        v.extend_from_slice(&at.to_be_bytes());
    }
    v
}

pub fn decode(v: &[u8]) -> Result<Vec<(Fingerprint, u64)>, StorageError> {
    if v.len() % 24 != 0 {
        return Err(corrupt("retried-batch fingerprints: length not a multiple of 24"));
    }
    Ok(v.chunks_exact(24)
        .map(|c| {
            let fp = u128::from_be_bytes(c[..16].try_into().expect("16 bytes"));
            let at = u64::from_be_bytes(c[16..].try_into().expect("8 bytes"));
            (Fingerprint(fp), at)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn a_fingerprint_tells_batches_apart_byte_by_byte() {
        let a = crate::codec::row::encode_batch(&[testing::span(1, 1).start(10).build()]);
        let mut b = a.clone();
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        for i in [0, b.len() / 2, b.len() - 1] {
            b[i] ^= 1;
            assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
            b[i] ^= 1;
        }
        assert_ne!(Fingerprint::of(&[]), Fingerprint::of(&[0]));
        // Fixed across builds: the fingerprints on disk depend on it.
        assert_eq!(Fingerprint::of(b"rewind").0, 159_140_577_230_308_862_255_503_286_424_164_276_915);
    }

    #[test]
    fn batches_are_remembered_for_the_window_and_up_to_the_capacity() {
        let mut r = RecentBatches::default();
        r.insert(Fingerprint(1), 100);
        assert!(r.contains(Fingerprint(1), 100 + WINDOW_NS - 1));
        assert!(!r.contains(Fingerprint(1), 100 + WINDOW_NS));
        assert!(!r.contains(Fingerprint(2), 100));
        r.insert(Fingerprint(1), 200);
        r.expire(100 + WINDOW_NS);
        assert!(r.contains(Fingerprint(1), 150 + WINDOW_NS), "the later insert is kept");
        for i in 0..CAPACITY as u128 + 10 {
            r.insert(Fingerprint(i + 10), 300);
        }
        assert_eq!(r.len(), CAPACITY);
        let v = encode(&[(Fingerprint(7), 9), (Fingerprint(u128::MAX), u64::MAX)]);
        assert_eq!(decode(&v).unwrap(), vec![(Fingerprint(7), 9), (Fingerprint(u128::MAX), u64::MAX)]);
        assert!(decode(&v[1..]).is_err());
    }
}
