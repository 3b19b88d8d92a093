//! Elapsed-time histograms as the statistics store them: HdrHistogram's log-linear buckets (two
//! significant digits, microseconds), kept *sparse*, as (bucket index, count) pairs. A second of
//! one node holds a few dozen distinct buckets, where a dense HDR histogram of the same range is
//! 4,000 counters: sparse ones merge in time proportional to what they hold, which is what makes
//! a 30-day map a merge of hourly rows rather than of millions of arrays. Quantiles come from the
//! `hdrhistogram` crate, fed the merged buckets; a property test holds the bucketing to the
//! crate's.

use hdrhistogram::Histogram;

use crate::codec::{corrupt, varint, Reader};
use crate::error::StorageError;

/// 2 significant digits: HDR's sub-buckets of 256 (2 × 10² rounded up to a power of two).
const SUB_BUCKET_MAGNITUDE: u32 = 8;
const SUB_BUCKET_HALF_MAGNITUDE: u32 = SUB_BUCKET_MAGNITUDE - 1;
const SUB_BUCKET_HALF: u64 = 1 << SUB_BUCKET_HALF_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (1 << SUB_BUCKET_MAGNITUDE) - 1;
pub const SIGNIFICANT_DIGITS: u8 = 2;
/// The largest value kept, in microseconds: 7 days, the longest span or transaction accepted.
pub const MAX_US: u64 = 7 * 24 * 3_600_000_000;

/// The bucket of `MAX_US`, the last one.
const MAX_INDEX: u32 = index_of(MAX_US);
/// A bucket's count, at most, in what a decoder accepts: a trillion calls, so that sums over
/// thousands of merged cells stay far from overflowing.
pub const MAX_COUNT: u64 = 1 << 40;
/// Buckets in groups of 16, for quantiles without sorting.
const GROUP_SHIFT: u32 = 4;
const GROUP_MASK: u32 = (1 << GROUP_SHIFT) - 1;
const GROUPS: usize = (MAX_INDEX >> GROUP_SHIFT) as usize + 1;

/// HDR's bucket index of a value.
pub const fn index_of(us: u64) -> u32 {
    let bucket = 63 - SUB_BUCKET_HALF_MAGNITUDE - (us | SUB_BUCKET_MASK).leading_zeros();
    let sub = us >> bucket;
    ((bucket + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub as u32 - SUB_BUCKET_HALF as u32
}

/// The lowest value of a bucket.
pub fn lowest_of(index: u32) -> u64 {
    let mut bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let mut sub = u64::from(index & (SUB_BUCKET_HALF as u32 - 1)) + SUB_BUCKET_HALF;
    if bucket < 0 {
        sub -= SUB_BUCKET_HALF;
        bucket = 0;
    }
    sub << bucket
}

/// The highest value of a bucket.
pub fn highest_of(index: u32) -> u64 {
    lowest_of(index + 1) - 1
}

/// (bucket index, count), by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist(Vec<(u32, u64)>);

impl Hist {
    pub fn record(&mut self, us: u64) {
        self.add(index_of(us.min(MAX_US)), 1);
    }

    fn add(&mut self, index: u32, n: u64) {
        match self.0.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.0[at].1 += n,
            Err(at) => self.0.insert(at, (index, n)),
        }
    }

    pub fn merge(&mut self, other: &Hist) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        // One key's cells over time fill mostly the same buckets: add in place, and rebuild only
        // from the first bucket that is new (a 30-day map merges hundreds of cells per key).
        let (a, b) = (&mut self.0, &other.0);
        let (mut j, mut k) = (0, 0);
        while k < b.len() {
            while j < a.len() && a[j].0 < b[k].0 {
                j += 1;
            }
            if j < a.len() && a[j].0 == b[k].0 {
                a[j].1 += b[k].1;
                (j, k) = (j + 1, k + 1);
            } else {
                break;
            }
        }
        if k == b.len() {
            return;
        }
        let mut out = Vec::with_capacity(a.len() + b.len() - k);
        out.extend_from_slice(&a[..j]);
        let (mut x, mut y) = (a[j..].iter().peekable(), b[k..].iter().peekable());
        loop {
            match (x.peek(), y.peek()) {
                (Some(p), Some(q)) if p.0 == q.0 => {
                    out.push((p.0, p.1 + q.1));
                    x.next();
                    y.next();
                }
                (Some(p), Some(q)) if p.0 < q.0 => out.extend(x.next().copied()),
                (Some(_), Some(_)) => out.extend(y.next().copied()),
                (Some(_), None) => out.extend(x.next().copied()),
                (None, Some(_)) => out.extend(y.next().copied()),
                (None, None) => break,
            }
        }
        *a = out;
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Values at most `us` (exact at bucket boundaries; within a bucket, counted by its lowest
    /// value, HDR's precision: 1% at 2 significant digits).
    pub fn count_at_most(&self, us: u64) -> u64 {
        self.0.iter().take_while(|(i, _)| lowest_of(*i) <= us).map(|(_, n)| n).sum()
    }

    /// The value at each quantile (0..=1), µs, as HDR's `value_at_quantile` answers it, straight
    /// from the sparse buckets of one or more histograms taken together: for a replay's
    /// thousands of frames, where filling a dense histogram per frame would cost more than the
    /// frame. A property test holds it to the crate's answer.
    pub fn quantiles(parts: &[&Hist], qs: &[f64]) -> Vec<u64> {
        let total: u64 = parts.iter().map(|h| h.count()).sum();
        if parts.len() == 1 {
            return Self::walk(&parts[0].0, total, qs);
        }
        let mut merged: Vec<(u32, u64)> = parts.iter().flat_map(|h| h.0.iter().copied()).collect();
        merged.sort_unstable_by_key(|(i, _)| *i);
        Self::walk(&merged, total, qs)
    }

    /// Feeds the buckets into an HDR histogram (reset first) for its quantiles.
    pub fn fill(&self, h: &mut Histogram<u64>) {
        h.reset();
        for (i, n) in &self.0 {
            h.saturating_record_n(lowest_of(*i), *n);
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::put(out, self.0.len() as u64);
        let mut prev = 0;
        for (i, n) in &self.0 {
            varint::put(out, u64::from(i - prev));
            varint::put(out, *n);
            prev = *i;
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, StorageError> {
        let mut v = Vec::new();
        Self::decode_into(r, &mut v)?;
        Ok(Self(v))
    }

    /// Appends the buckets of an encoded histogram to `out` (not merged with what is there);
    /// their total count.
    pub fn decode_into(r: &mut Reader<'_>, out: &mut Vec<(u32, u64)>) -> Result<u64, StorageError> {
        let len = r.count(2)?;
        out.reserve(len);
        let (mut prev, mut total) = (0u32, 0u64);
        for k in 0..len {
            let delta = u32::try_from(r.varint()?).map_err(|_| corrupt("histogram bucket"))?;
            if k > 0 && delta == 0 {
                return Err(corrupt("histogram buckets out of order"));
            }
            prev = prev.checked_add(delta).filter(|i| *i <= MAX_INDEX).ok_or_else(|| corrupt("histogram bucket"))?;
            let n = r.varint()?;
            if n > MAX_COUNT {
                return Err(corrupt("histogram count"));
            }
            total = total.saturating_add(n);
            out.push((prev, n));
        }
        Ok(total)
    }

    /// The total count of an encoded histogram, read past without keeping its buckets.
    pub fn skip_counting(r: &mut Reader<'_>) -> Result<u64, StorageError> {
        let len = r.count(2)?;
        let mut total = 0u64;
        for _ in 0..len {
            r.varint()?;
            let n = r.varint()?;
            if n > MAX_COUNT {
                return Err(corrupt("histogram count"));
            }
            total = total.saturating_add(n);
        }
        Ok(total)
    }

    /// `quantiles` of buckets gathered in any order (several histograms' `decode_into`), without
    /// sorting them: counts by group of 16 buckets find the group each quantile falls in, then
    /// that group's buckets are counted alone. Linear in the buckets, where a replay's thousands
    /// of frames would spend most of their time sorting.
    pub fn quantiles_unsorted(buckets: &[(u32, u64)], qs: &[f64]) -> Vec<u64> {
        let mut groups = [0u64; GROUPS];
        let mut total = 0u64;
        for (i, n) in buckets {
            groups[(*i >> GROUP_SHIFT) as usize] += n;
            total += n;
        }
        if total == 0 {
            return vec![0; qs.len()];
        }
        qs.iter()
            .map(|q| {
                let target = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
                let (mut seen, mut group) = (0u64, 0usize);
                for (g, n) in groups.iter().enumerate() {
                    if seen + n >= target {
                        group = g;
                        break;
                    }
                    seen += n;
                }
                let mut within = [0u64; 1 << GROUP_SHIFT];
                for (i, n) in buckets.iter().filter(|(i, _)| (*i >> GROUP_SHIFT) as usize == group) {
                    within[(*i & GROUP_MASK) as usize] += n;
                }
                for (k, n) in within.iter().enumerate() {
                    seen += n;
                    if *n > 0 && seen >= target {
                        let index = ((group as u32) << GROUP_SHIFT) | k as u32;
                        return if *q <= 0.0 { lowest_of(index) } else { highest_of(index) };
                    }
                }
                unreachable!("the group's counts reach the target")
            })
            .collect()
    }

    fn walk(sorted: &[(u32, u64)], total: u64, qs: &[f64]) -> Vec<u64> {
        if total == 0 {
            return vec![0; qs.len()];
        }
        qs.iter()
            .map(|q| {
                let target = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
                let mut seen = 0;
                for (i, n) in sorted {
                    seen += n;
                    if seen >= target {
                        return if *q <= 0.0 { lowest_of(*i) } else { highest_of(*i) };
                    }
                }
                sorted.last().map_or(0, |(i, _)| highest_of(*i))
            })
            .collect()
    }
}

/// An HDR histogram able to hold every bucket `Hist` keeps: one per query, reused.
pub fn quantile_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, SIGNIFICANT_DIGITS).expect("valid bounds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn buckets_are_hdr_buckets(v in 1u64..MAX_US) {
            let h = quantile_histogram();
            let i = index_of(v);
            prop_assert_eq!(lowest_of(i), h.lowest_equivalent(v));
            prop_assert_eq!(highest_of(i), h.highest_equivalent(v));
        }

        #[test]
        fn encoding_round_trips_and_merging_adds(a in proptest::collection::vec(0u64..10_000_000, 0..200), b in proptest::collection::vec(0u64..MAX_US, 0..50)) {
            let (mut x, mut y) = (Hist::default(), Hist::default());
            a.iter().for_each(|v| x.record(*v));
            b.iter().for_each(|v| y.record(*v));
            let mut buf = Vec::new();
            x.encode(&mut buf);
            prop_assert_eq!(Hist::decode(&mut Reader::new(&buf)).unwrap(), x.clone());
            let mut all = Hist::default();
            a.iter().chain(&b).for_each(|v| all.record(*v));
            x.merge(&y);
            prop_assert_eq!(&x, &all);
            // Merging buckets already present (the in-place path), and into an empty one.
            let mut twice = all.clone();
            twice.merge(&all);
            let mut doubled = Hist::default();
            a.iter().chain(&b).chain(&a).chain(&b).for_each(|v| doubled.record(*v));
            prop_assert_eq!(twice, doubled);
        }
    }

    proptest! {
        #[test]
        fn quantiles_are_the_crates(a in proptest::collection::vec(0u64..20_000_000, 1..300), b in proptest::collection::vec(0u64..MAX_US, 0..20)) {
            let (mut x, mut y) = (Hist::default(), Hist::default());
            a.iter().for_each(|v| x.record(*v));
            b.iter().for_each(|v| y.record(*v));
            let mut all = x.clone();
            all.merge(&y);
            let mut h = quantile_histogram();
            all.fill(&mut h);
            let qs = [0.0, 0.01, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0];
            let want: Vec<u64> = qs.iter().map(|q| h.value_at_quantile(*q)).collect();
            prop_assert_eq!(Hist::quantiles(&[&x, &y], &qs), want.clone());
            // Gathered unsorted, as a replay gathers them, one histogram after another.
            let mut gathered = y.0.clone();
            gathered.extend_from_slice(&x.0);
            prop_assert_eq!(Hist::quantiles_unsorted(&gathered, &qs), want);
        }
    }

    #[test]
    fn quantiles_are_within_hdr_precision() {
        let mut h = Hist::default();
        for ms in 1..=1000u64 {
            h.record(ms * 1000);
        }
        let mut q = quantile_histogram();
        h.fill(&mut q);
        for (quantile, want_ms) in [(0.5, 500u64), (0.9, 900), (0.99, 990), (1.0, 1000)] {
            let got = q.value_at_quantile(quantile);
            let want = want_ms * 1000;
            assert!(got.abs_diff(want) * 100 <= want, "p{quantile}: {got} vs {want}");
        }
        // At most 500 ms: 500 of them, within a bucket's width (1% at two significant digits).
        assert!((495..=505).contains(&h.count_at_most(500_000)), "{}", h.count_at_most(500_000));
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn corrupt_histograms_are_errors() {
        for bad in [&[5u8][..], &[2, 1, 1, 0, 1], &[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1]] {
            assert!(Hist::decode(&mut Reader::new(bad)).is_err(), "{bad:?}");
        }
    }
}
