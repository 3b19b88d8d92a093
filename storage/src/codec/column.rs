//! Column page encodings of sealed segments. A page holds up to `PAGE_ROWS` values of one column;
//! each encoder below writes the page body, and [`compress`] wraps it for storage.

use super::distinct::{same, Distinct};
use super::row::{put_value, read_value};
use super::{corrupt, put_strs, varint, Reader};
use crate::error::StorageError;
use crate::model::{SpanId, TraceId, Value};
use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// zstd level 3, by `bench-compression` on shop pages (benches/README.md): lz4 stores 25% more
/// (30.1 vs 24.1 B/span of chunks); zstd-1 1.4% more at about the same speed; zstd-6 3% less at
/// less than half the compression speed, on a path (sealing) that bounds ingest.
const ZSTD_LEVEL: i32 = 3;
/// Decompressed pages are bounded so a corrupt header cannot ask for gigabytes.
const MAX_PAGE_BYTES: usize = 256 << 20;

pub fn compress(body: &[u8]) -> Vec<u8> {
    Compressor::new().compress(body)
}

/// Keeps one zstd context across the pages of a seal instead of creating one per page.
pub struct Compressor(Option<zstd::bulk::Compressor<'static>>);

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        Self(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok())
    }

    pub fn compress(&mut self, body: &[u8]) -> Vec<u8> {
        match &mut self.0 {
            Some(z) if body.len() >= 64 => compress_with(z, body),
            _ => raw(body),
        }
    }
}

fn raw(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(RAW);
    out.extend_from_slice(body);
    out
}

fn compress_with(z: &mut zstd::bulk::Compressor<'static>, body: &[u8]) -> Vec<u8> {
    match z.compress(body) {
        Ok(c) if c.len() + 5 < body.len() => {
            let mut out = Vec::with_capacity(c.len() + 6);
            out.push(ZSTD);
            varint::put(&mut out, body.len() as u64);
            out.extend_from_slice(&c);
            out
        }
        _ => raw(body),
    }
}

pub fn decompress(stored: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, StorageError> {
    let (&codec, rest) = stored.split_first().ok_or_else(|| corrupt("empty page"))?;
    match codec {
        RAW => Ok(std::borrow::Cow::Borrowed(rest)),
        ZSTD => {
            let (len, n) = varint::decode(rest).ok_or_else(|| corrupt("page length"))?;
            let len = len as usize;
            if len > MAX_PAGE_BYTES {
                return Err(corrupt("page too large"));
            }
            // One decompression context per thread: creating one per page cost more than
            // decompressing a small page.
            thread_local! {
                static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
            }
            let out = DCTX
                .with(|d| match d.borrow_mut().as_mut() {
                    Some(d) => d.decompress(&rest[n..], len),
                    None => zstd::bulk::decompress(&rest[n..], len),
                })
                .map_err(|e| corrupt(&format!("zstd: {e}")))?;
            if out.len() != len {
                return Err(corrupt("page length mismatch"));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        _ => Err(corrupt("unknown page codec")),
    }
}

/// Trace ids as runs: rows are sorted by trace, so a page holds few distinct ids.
pub fn encode_trace_ids(ids: &[TraceId]) -> Vec<u8> {
    let mut runs: Vec<(TraceId, u64)> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some((last, n)) if last == id => *n += 1,
            _ => runs.push((*id, 1)),
        }
    }
    let mut out = Vec::with_capacity(runs.len() * 18 + 4);
    varint::put(&mut out, runs.len() as u64);
    for (id, n) in runs {
        out.extend_from_slice(&id.0);
        varint::put(&mut out, n);
    }
    out
}

pub fn decode_trace_ids(body: &[u8], rows: usize) -> Result<Vec<TraceId>, StorageError> {
    let mut r = Reader::new(body);
    let runs = r.count(17)?;
    let mut out = Vec::with_capacity(rows);
    for _ in 0..runs {
        let id = TraceId(r.array()?);
        let n = r.varint()? as usize;
        // `out.len() <= rows` holds here; `out.len() + n` could wrap on a corrupt run length.
        if n > rows - out.len() {
            return Err(corrupt("trace id runs exceed page rows"));
        }
        out.extend(std::iter::repeat_n(id, n));
    }
    expect_rows(out, rows)
}

pub fn encode_span_ids(ids: &[SpanId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0).collect()
}

pub fn decode_span_ids(body: &[u8], rows: usize) -> Result<Vec<SpanId>, StorageError> {
    if Some(body.len()) != rows.checked_mul(8) {
        return Err(corrupt("span id page length"));
    }
    Ok(body.chunks_exact(8).map(|c| SpanId(c.try_into().expect("chunks of 8"))).collect())
}

const PARENT_NONE: u8 = 0;
const PARENT_EXPLICIT: u8 = 1;
const PARENT_BACK: u8 = 2;

/// Rows back a parent is first looked for by a plain scan: most parents are a few rows up.
const PARENT_NEAR: usize = 32;

/// Parents as a back-reference to an earlier row of the page where possible: spans of a trace are
/// adjacent and sorted by start, so the parent is usually a few rows up. A parent is looked for
/// among its own trace's rows only (`trace_ids`, one per row), nearest first: by a scan over the
/// last `PARENT_NEAR` rows, and past those, for a long trace, in a map of its older rows. A map of
/// every row of the page cost more than the rest of the column.
pub fn encode_parents(parents: &[Option<SpanId>], span_ids: &[SpanId], trace_ids: &[TraceId]) -> Vec<u8> {
    debug_assert!(parents.len() == span_ids.len() && parents.len() == trace_ids.len());
    let mut out = Vec::with_capacity(parents.len() * 2);
    // Rows of the current trace older than the scan's reach: their latest row per span id.
    let mut older: HashMap<SpanId, usize> = HashMap::default();
    let mut first = 0;
    for (i, parent) in parents.iter().enumerate() {
        if i > 0 && trace_ids[i] != trace_ids[i - 1] {
            first = i;
            if !older.is_empty() {
                older.clear();
            }
        }
        let near = first.max(i.saturating_sub(PARENT_NEAR));
        if near > first {
            // The row that has just left the scan's reach.
            older.insert(span_ids[near - 1], near - 1);
        }
        match parent {
            None => out.push(PARENT_NONE),
            Some(p) => match (near..i).rev().find(|&j| span_ids[j] == *p).or_else(|| older.get(p).copied()) {
                Some(row) => {
                    out.push(PARENT_BACK);
                    varint::put(&mut out, (i - row) as u64);
                }
                None => {
                    out.push(PARENT_EXPLICIT);
                    out.extend_from_slice(&p.0);
                }
            },
        }
    }
    out
}

pub fn decode_parents(body: &[u8], span_ids: &[SpanId]) -> Result<Vec<Option<SpanId>>, StorageError> {
    let mut r = Reader::new(body);
    let mut out = Vec::with_capacity(span_ids.len());
    for i in 0..span_ids.len() {
        out.push(match r.u8()? {
            PARENT_NONE => None,
            PARENT_EXPLICIT => Some(SpanId(r.array()?)),
            PARENT_BACK => {
                let d = r.varint()? as usize;
                if d == 0 || d > i {
                    return Err(corrupt("parent back-reference"));
                }
                Some(span_ids[i - d])
            }
            _ => return Err(corrupt("parent tag")),
        });
    }
    end(r, out)
}

/// Strings through a page-local dictionary.
pub fn encode_dict<S: AsRef<str>>(values: &[S]) -> Vec<u8> {
    let mut dict = Distinct::with_capacity(values.len());
    // Sorted pages repeat the previous row's value most of the time: compare before hashing.
    let mut prev: Option<(&str, u32)> = None;
    let codes: Vec<u32> = values
        .iter()
        .map(|v| {
            let v = v.as_ref();
            if let Some((p, code)) = prev {
                if same(p, v) {
                    return code;
                }
            }
            let code = dict.code(v);
            prev = Some((v, code));
            code
        })
        .collect();
    let mut out = Vec::new();
    put_strs(&mut out, dict.list());
    for c in codes {
        varint::put(&mut out, u64::from(c));
    }
    out
}

pub fn decode_dict(body: &[u8], rows: usize) -> Result<Vec<String>, StorageError> {
    decode_dict_range(body, rows, 0..rows)
}

/// Rows `range` of a page of `rows` strings. The whole page is validated; only the range is
/// materialised (a trace lookup wants a dozen rows of 4096).
pub fn decode_dict_range(body: &[u8], rows: usize, range: Range<usize>) -> Result<Vec<String>, StorageError> {
    let mut r = Reader::new(body);
    let n = r.count(1)?;
    let mut dict = Vec::with_capacity(n);
    for _ in 0..n {
        dict.push(r.str()?);
    }
    let mut out = Vec::with_capacity(range.len());
    for i in 0..rows {
        let c = r.varint()? as usize;
        let s = dict.get(c).ok_or_else(|| corrupt("dictionary code"))?;
        if range.contains(&i) {
            out.push(s.to_string());
        }
    }
    end(r, out)
}

/// A page of dictionary strings as (dictionary, code per row), borrowing the page: scans compare
/// and group by code instead of building a string per row.
pub fn decode_dict_codes(body: &[u8], rows: usize) -> Result<(Vec<&str>, Vec<u32>), StorageError> {
    let mut r = Reader::new(body);
    let n = r.count(1)?;
    let mut dict = Vec::with_capacity(n);
    for _ in 0..n {
        dict.push(r.str()?);
    }
    let mut codes = Vec::with_capacity(rows);
    for _ in 0..rows {
        let c = r.varint()?;
        if c >= n as u64 {
            return Err(corrupt("dictionary code"));
        }
        codes.push(c as u32);
    }
    end(r, (dict, codes))
}

pub fn encode_u8(values: &[u8]) -> Vec<u8> {
    values.to_vec()
}

pub fn decode_u8(body: &[u8], rows: usize) -> Result<Vec<u8>, StorageError> {
    if body.len() != rows {
        return Err(corrupt("u8 page length"));
    }
    Ok(body.to_vec())
}

/// Timestamps: zigzag deltas from the previous row.
pub fn encode_delta(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 3);
    let mut prev = 0u64;
    for &v in values {
        varint::put(&mut out, varint::zigzag(v.wrapping_sub(prev) as i64));
        prev = v;
    }
    out
}

pub fn decode_delta(body: &[u8], rows: usize) -> Result<Vec<u64>, StorageError> {
    let mut r = Reader::new(body);
    let mut out = Vec::with_capacity(rows);
    let mut prev = 0u64;
    for _ in 0..rows {
        prev = prev.wrapping_add(varint::unzigzag(r.varint()?) as u64);
        out.push(prev);
    }
    end(r, out)
}

pub fn encode_varints(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for &v in values {
        varint::put(&mut out, v);
    }
    out
}

pub fn decode_varints(body: &[u8], rows: usize) -> Result<Vec<u64>, StorageError> {
    let mut r = Reader::new(body);
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        out.push(r.varint()?);
    }
    end(r, out)
}

/// Values of one attribute key across the page's rows: a presence bitmap, then the present values,
/// strings through a page-local dictionary.
pub fn encode_values(values: &[Option<&Value>]) -> Vec<u8> {
    let present: Vec<(u32, &Value)> = values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as u32, v))).collect();
    encode_present_values(values.len(), &present)
}

/// `encode_values` from the rows that have a value, as (row, value), rows ascending and each once:
/// a key is in a few of a page's rows as often as in all, and walking every row of the page for
/// each key cost more than its values.
pub fn encode_present_values(rows: usize, present: &[(u32, &Value)]) -> Vec<u8> {
    let mut bitmap = vec![0u8; rows.div_ceil(8)];
    let mut dict = Distinct::with_capacity(present.len()).room_for(present.len() / 4);
    let mut prev: Option<(&str, u32)> = None;
    let mut body = Vec::with_capacity(present.len() * 2);
    for &(i, v) in present {
        let i = i as usize;
        debug_assert!(i < rows, "row {i} of {rows}");
        bitmap[i / 8] |= 1 << (i % 8);
        match v {
            Value::Str(s) => {
                let code = match prev {
                    Some((p, code)) if same(p, s) => code,
                    _ => {
                        let code = dict.code(s);
                        prev = Some((s, code));
                        code
                    }
                };
                body.push(TAG_DICT_STR);
                varint::put(&mut body, u64::from(code));
            }
            other => put_value(&mut body, other),
        }
    }
    let mut out = bitmap;
    put_strs(&mut out, dict.list());
    out.extend_from_slice(&body);
    out
}

const TAG_DICT_STR: u8 = 0x80;

pub fn decode_values(body: &[u8], rows: usize) -> Result<Vec<Option<Value>>, StorageError> {
    decode_values_range(body, rows, 0..rows)
}

/// Rows `range` of a page of `rows` attribute values (index 0 is row `range.start`). The whole
/// page is validated; values outside the range are skipped without building them where possible.
pub fn decode_values_range(body: &[u8], rows: usize, range: Range<usize>) -> Result<Vec<Option<Value>>, StorageError> {
    let mut r = Reader::new(body);
    let bitmap = r.bytes(rows.div_ceil(8))?;
    let n = r.count(1)?;
    // Each distinct string of the page: its text, and the copy the wanted rows share, made when
    // first wanted (a trace lookup reads a dozen rows of a page of thousands of values).
    let mut dict: Vec<(&str, Option<Arc<str>>)> = Vec::with_capacity(n);
    for _ in 0..n {
        dict.push((r.str()?, None));
    }
    let mut out = Vec::with_capacity(range.len());
    for i in 0..rows {
        let wanted = range.contains(&i);
        if bitmap[i / 8] & (1 << (i % 8)) == 0 {
            if wanted {
                out.push(None);
            }
            continue;
        }
        if r.peek() == Some(TAG_DICT_STR) {
            r.u8()?;
            let c = r.varint()? as usize;
            let (text, copy) = dict.get_mut(c).ok_or_else(|| corrupt("dictionary code"))?;
            if wanted {
                out.push(Some(Value::Str(copy.get_or_insert_with(|| Arc::from(*text)).clone())));
            }
        } else {
            let v = read_value(&mut r, 0)?;
            if wanted {
                out.push(Some(v));
            }
        }
    }
    end(r, out)
}

/// Variable-length per-row records (events, links) written by the row codec.
pub fn encode_blobs(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(Vec::len).sum::<usize>() + rows.len());
    for b in rows {
        varint::put(&mut out, b.len() as u64);
        out.extend_from_slice(b);
    }
    out
}

pub fn decode_blobs(body: &[u8], rows: usize) -> Result<Vec<&[u8]>, StorageError> {
    let mut r = Reader::new(body);
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let n = r.varint()? as usize;
        out.push(r.bytes(n)?);
    }
    end(r, out)
}

fn expect_rows<T>(v: Vec<T>, rows: usize) -> Result<Vec<T>, StorageError> {
    if v.len() != rows {
        return Err(corrupt("page row count"));
    }
    Ok(v)
}

fn end<T>(r: Reader<'_>, out: T) -> Result<T, StorageError> {
    if !r.is_empty() {
        return Err(corrupt("trailing bytes in page"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::arb_value;
    use proptest::prelude::*;

    #[test]
    fn rows_of_a_page_share_one_copy_of_each_string_they_repeat() {
        let (get, post) = (Value::Str("GET".into()), Value::Str("POST".into()));
        let page = encode_values(&[Some(&get), Some(&post), Some(&get), None, Some(&get)]);
        let rows = decode_values_range(&page, 5, 1..5).unwrap();
        let text = |v: &Option<Value>| match v {
            Some(Value::Str(s)) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!((&*text(&rows[0]), &*text(&rows[1]), &rows[2]), ("POST", "GET", &None));
        assert!(Arc::ptr_eq(&text(&rows[1]), &text(&rows[3])));
    }

    proptest! {
        #[test]
        fn compress_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2000), repeat in 1usize..20) {
            let body: Vec<u8> = body.iter().cycle().take(body.len() * repeat).copied().collect();
            let stored = compress(&body);
            let back = decompress(&stored).unwrap();
            prop_assert_eq!(back.as_ref(), &body[..]);
        }

        #[test]
        fn trace_ids_round_trip(ids in proptest::collection::vec((any::<[u8; 16]>(), 1usize..5), 0..50)) {
            let ids: Vec<TraceId> = ids.into_iter().flat_map(|(id, n)| std::iter::repeat_n(TraceId(id), n)).collect();
            prop_assert_eq!(decode_trace_ids(&encode_trace_ids(&ids), ids.len()).unwrap(), ids);
        }

        #[test]
        fn span_ids_and_parents_round_trip(rows in proptest::collection::vec((any::<[u8; 8]>(), 0u8..3, any::<[u8; 8]>(), any::<prop::sample::Index>()), 0..60), trace_len in 1usize..8) {
            let span_ids: Vec<SpanId> = rows.iter().map(|r| SpanId(r.0)).collect();
            let trace_ids: Vec<TraceId> = (0..rows.len()).map(|i| TraceId([(i / trace_len) as u8; 16])).collect();
            let parents: Vec<Option<SpanId>> = rows.iter().enumerate().map(|(i, (_, how, other, pick))| match how {
                0 => None,
                1 if i > 0 => Some(span_ids[pick.index(i)]),
                _ => Some(SpanId(*other)),
            }).collect();
            let ids = decode_span_ids(&encode_span_ids(&span_ids), span_ids.len()).unwrap();
            prop_assert_eq!(&ids, &span_ids);
            prop_assert_eq!(decode_parents(&encode_parents(&parents, &span_ids, &trace_ids), &span_ids).unwrap(), parents);
        }

        /// Every parent found earlier in its own trace is a back-reference to the nearest row
        /// with its id, however far up (past the scan's reach, through the map); any other parent
        /// is explicit. Span ids come from a small set, so they repeat within and across traces.
        #[test]
        fn parents_refer_to_the_nearest_row_of_their_trace(
            traces in proptest::collection::vec(proptest::collection::vec((0u8..40, proptest::option::of(0u8..40)), 1..120), 0..6),
        ) {
            let rows: Vec<(TraceId, SpanId, Option<SpanId>)> = traces.iter().enumerate().flat_map(|(t, spans)| {
                spans.iter().map(move |(id, parent)| (TraceId([t as u8; 16]), SpanId([*id; 8]), parent.map(|p| SpanId([p; 8]))))
            }).collect();
            let trace_ids: Vec<TraceId> = rows.iter().map(|r| r.0).collect();
            let span_ids: Vec<SpanId> = rows.iter().map(|r| r.1).collect();
            let parents: Vec<Option<SpanId>> = rows.iter().map(|r| r.2).collect();
            let mut want = Vec::new();
            for (i, (trace, _, parent)) in rows.iter().enumerate() {
                match parent {
                    None => want.push(PARENT_NONE),
                    Some(p) => match (0..i).rev().take_while(|&j| rows[j].0 == *trace).find(|&j| rows[j].1 == *p) {
                        Some(j) => {
                            want.push(PARENT_BACK);
                            varint::put(&mut want, (i - j) as u64);
                        }
                        None => {
                            want.push(PARENT_EXPLICIT);
                            want.extend_from_slice(&p.0);
                        }
                    },
                }
            }
            let got = encode_parents(&parents, &span_ids, &trace_ids);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(decode_parents(&got, &span_ids).unwrap(), parents);
        }

        #[test]
        fn dict_round_trips(values in proptest::collection::vec("[a-c]{0,3}|.{0,8}", 0..80)) {
            prop_assert_eq!(decode_dict(&encode_dict(&values), values.len()).unwrap(), values);
        }

        #[test]
        fn delta_round_trips(values in proptest::collection::vec(any::<u64>(), 0..80)) {
            prop_assert_eq!(decode_delta(&encode_delta(&values), values.len()).unwrap(), values.clone());
            prop_assert_eq!(decode_varints(&encode_varints(&values), values.len()).unwrap(), values);
        }

        #[test]
        fn u8_round_trips(values in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(decode_u8(&encode_u8(&values), values.len()).unwrap(), values);
        }

        #[test]
        fn values_round_trip(values in proptest::collection::vec(proptest::option::of(arb_value()), 0..70)) {
            let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
            prop_assert_eq!(decode_values(&encode_values(&refs), values.len()).unwrap(), values);
        }

        #[test]
        fn ranges_decode_the_same_rows(values in proptest::collection::vec(proptest::option::of(arb_value()), 1..70), a: prop::sample::Index, b: prop::sample::Index) {
            let (lo, hi) = { let (x, y) = (a.index(values.len() + 1), b.index(values.len() + 1)); (x.min(y), x.max(y)) };
            let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
            prop_assert_eq!(decode_values_range(&encode_values(&refs), values.len(), lo..hi).unwrap(), values[lo..hi].to_vec());
            let strs: Vec<String> = values.iter().map(|v| format!("{v:?}").chars().take(3).collect()).collect();
            prop_assert_eq!(decode_dict_range(&encode_dict(&strs), strs.len(), lo..hi).unwrap(), strs[lo..hi].to_vec());
        }

        #[test]
        fn blobs_round_trip(rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..40)) {
            let encoded = encode_blobs(&rows);
            let decoded = decode_blobs(&encoded, rows.len()).unwrap();
            prop_assert_eq!(decoded.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), rows);
        }

        #[test]
        fn corrupt_pages_are_errors_not_panics(body in proptest::collection::vec(any::<u8>(), 0..200), rows in 0usize..50) {
            let _ = decompress(&body);
            let _ = decode_trace_ids(&body, rows);
            let _ = decode_dict(&body, rows);
            let _ = decode_delta(&body, rows);
            let _ = decode_values(&body, rows);
            let _ = decode_blobs(&body, rows);
            let ids = vec![SpanId([1u8; 8]); rows];
            let _ = decode_parents(&body, &ids);
        }
    }
}
