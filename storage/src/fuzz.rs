//! Bodies of the fuzz targets over the store's decoders (`fuzz/`), here so that the test suite
//! replays every input the fuzzer ever kept as a regression (`fuzz/regressions/`) through the
//! same code. Each takes arbitrary bytes: decoders must answer an error, never panic, and what
//! decodes must encode back to the same thing.

use std::sync::Arc;

use crate::codec::{column as col, row, Reader};
use crate::model::{Span, SpanId};
use crate::spans::{self, SpanSegmentMeta};
use crate::stats::hist::Hist;
use crate::stats::Cell;
use crate::table::{build, Fetched, SegmentMeta, PAGE_ROWS};
use crate::xlog::segment::{self as xsegment, XLogSegmentMeta, XPage};
use crate::xlog::{wal as xwal, XLog};

/// A write-ahead-log record of either kind.
pub fn wal_record(data: &[u8]) {
    if let Ok(spans) = row::decode_batch(data) {
        let again = row::decode_batch(&row::encode_batch(&spans)).expect("a decoded batch encodes back");
        assert_eq!(row::encode_batch(&again), row::encode_batch(&spans));
    }
    if let Ok(records) = xwal::decode_batch(data) {
        let again = xwal::decode_batch(&xwal::encode_batch(&records)).expect("a decoded batch encodes back");
        assert_eq!(xwal::encode_batch(&again), xwal::encode_batch(&records));
    }
}

/// A statistics cell, and the three ways readers take one apart: whole (maps, histograms),
/// summarised with its buckets (the replay), summed (the incident finder). They agree, what
/// decodes encodes back, and merging and quantiles never overflow on what a decoder accepts.
pub fn stats_cell(data: &[u8]) {
    let whole = Cell::decode(&mut Reader::new(data));
    let mut buckets = Vec::new();
    let summary = Cell::summarize(&mut Reader::new(data), &mut buckets);
    let sums = Cell::sums(&mut Reader::new(data));
    let Ok(c) = whole else { return };
    let mut buf = Vec::new();
    c.encode(&mut buf);
    assert_eq!(Cell::decode(&mut Reader::new(&buf)).expect("an encoded cell decodes"), c);
    let s = summary.expect("a cell that decodes summarises");
    assert_eq!(s, sums.expect("a cell that decodes sums"));
    assert_eq!(s, c.summary());
    let mut merged = c.clone();
    for _ in 0..64 {
        merged.merge(&c);
    }
    let q = Hist::quantiles(&[&merged.ok, &merged.err], &[0.0, 0.5, 0.99, 1.0]);
    buckets.extend(buckets.clone());
    let _ = Hist::quantiles_unsorted(&buckets, &[0.0, 0.5, 0.99, 1.0]);
    assert!(q.windows(2).all(|w| w[0] <= w[1]), "quantiles in order: {q:?}");
}

/// Every column page decoder, on a page of up to `PAGE_ROWS` rows: the first two bytes give the
/// row count, the rest is the stored (compressed or raw) page.
pub fn column_pages(data: &[u8]) {
    let Some((head, stored)) = data.split_first_chunk::<2>() else { return };
    let rows = usize::from(u16::from_le_bytes(*head)) % (PAGE_ROWS + 1);
    let Ok(body) = col::decompress(stored) else { return };
    let _ = col::decode_trace_ids(&body, rows);
    let _ = col::decode_dict(&body, rows);
    let _ = col::decode_dict_range(&body, rows, rows / 3..rows / 2);
    let _ = col::decode_dict_codes(&body, rows);
    let _ = col::decode_u8(&body, rows);
    let _ = col::decode_delta(&body, rows);
    let _ = col::decode_varints(&body, rows);
    let _ = col::decode_values(&body, rows);
    let _ = col::decode_values_range(&body, rows, rows / 4..rows);
    let _ = col::decode_blobs(&body, rows);
    if let Ok(ids) = col::decode_span_ids(&body, rows) {
        let _ = col::decode_parents(&body, &ids);
    }
    let _ = col::decode_parents(&body, &vec![SpanId([1; 8]); rows]);
    let _ = row::read_kvs(&mut Reader::new(&body));
    let _ = row::read_events(&mut Reader::new(&body), 1 << 60);
    let _ = row::read_links(&mut Reader::new(&body));
}

/// Whole segments read from chunks the input supplies: the readers of span and XLog segments
/// over corrupt chunks and metas that lie about them.
pub fn segment_read(data: &[u8]) {
    let mut r = Reader::new(data);
    let (Ok(rows), Ok(keys), Ok(resources)) = (r.varint(), r.u8(), r.u8()) else { return };
    let rows = (rows % (2 * PAGE_ROWS as u64 + 2)) as u32;
    let attr_keys: Vec<crate::attr_keys::Key> = (0..keys % 8).map(|k| format!("k{k}").into()).collect();
    // The rest of the input, cut into chunks handed out in the order they are asked for.
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    while let Ok(n) = r.varint() {
        let Ok(b) = r.bytes((n % 4096) as usize) else { break };
        chunks.push(b.to_vec());
    }
    let fetch = |want: &[(u16, u32)]| -> Fetched {
        Ok(want.iter().enumerate().map(|(i, _)| chunks.get(i % chunks.len().max(1)).cloned()).collect())
    };
    let meta = SpanSegmentMeta {
        partition: 1,
        id: 2,
        rows,
        min_start_ns: 0,
        max_end_ns: 0,
        attr_keys: attr_keys.clone(),
        resources: u32::from(resources % 4),
        bytes: 0,
        page_starts: vec![],
    };
    let _ = spans::read_rows(&meta, 0, rows, fetch);
    let _ = spans::read_rows(&meta, rows / 2, rows - rows / 2, fetch);
    let xmeta = XLogSegmentMeta {
        partition: 1,
        id: 3,
        rows,
        min_end_ns: 0,
        max_end_ns: u64::MAX,
        page_ends: vec![(0, u64::MAX); rows.div_ceil(PAGE_ROWS as u32) as usize],
        services: vec![],
        services_unlisted: false,
        attr_keys,
        resources: u32::from(resources % 4),
        resource_keys: vec![],
        bytes: 0,
        // Columns computed from attributes, from the same byte: both kinds of segment are read.
        computed: (resources >> 3) & 0x1f,
    };
    for p in 0..xmeta.pages() {
        if let Ok(page) = XPage::fetch(&xmeta, p, &xsegment::all_columns(&xmeta), fetch) {
            let _ = xsegment::records(&page, &(0..page.rows).collect::<Vec<_>>());
        }
    }
}

/// Spans that passed validation: through the write-ahead log's encoding and a sealed segment,
/// and back, unchanged. (Segments return a span's attributes in column order.)
pub fn round_trip_spans(spans: &[Span]) {
    let wal = row::encode_batch(spans);
    let back = row::decode_batch(&wal).expect("the write-ahead log reads back what it wrote");
    assert_eq!(row::encode_batch(&back), wal);
    if spans.is_empty() {
        return;
    }
    let refs: Vec<&Span> = spans.iter().collect();
    let built = spans::build(1, &mut build::counter(), &refs);
    let mut read = Vec::new();
    for b in &built {
        let fetch = build::in_memory(&b.chunks);
        read.extend(spans::read_rows(&b.meta, 0, b.meta.rows, fetch).expect("a segment reads back"));
    }
    assert_eq!(row::encode_batch(&normalized(read)), row::encode_batch(&normalized(spans.to_vec())));
}

/// Records that passed validation: through the write-ahead log and an XLog segment, unchanged.
pub fn round_trip_xlogs(records: &[XLog]) {
    let wal = xwal::encode_batch(records);
    let back = xwal::decode_batch(&wal).expect("the write-ahead log reads back what it wrote");
    assert_eq!(xwal::encode_batch(&back), wal);
    if records.is_empty() {
        return;
    }
    let refs: Vec<&XLog> = records.iter().collect();
    let built = xsegment::build(1, &mut build::counter(), &refs);
    let mut read = Vec::new();
    for b in &built {
        let fetch = build::in_memory(&b.chunks);
        for p in 0..b.meta.pages() {
            let page = XPage::fetch(&b.meta, p, &xsegment::all_columns(&b.meta), &fetch).expect("page");
            read.extend(
                xsegment::records(&page, &(0..page.rows).collect::<Vec<_>>()).expect("an xlog segment reads back"),
            );
        }
    }
    let mut want: Vec<XLog> = records.to_vec();
    // In a canonical order: by each record's own encoding, attributes sorted by key.
    let sort = |v: &mut Vec<XLog>| {
        for x in v.iter_mut() {
            let mut a = x.attributes.to_vec();
            a.sort_by(|p, q| p.0.cmp(&q.0));
            x.attributes = a.into();
        }
        v.sort_by_cached_key(|x| xwal::encode_batch(std::slice::from_ref(x)));
    };
    sort(&mut want);
    sort(&mut read);
    assert_eq!(xwal::encode_batch(&read), xwal::encode_batch(&want));
}

/// In a canonical order: by each span's own encoding, attributes sorted by key, each resource its
/// own (segments keep resources by value, not by identity).
fn normalized(mut spans: Vec<Span>) -> Vec<Span> {
    for s in &mut spans {
        s.attributes.sort_by(|a, b| a.0.cmp(&b.0));
        s.resource = Arc::new((*s.resource).clone());
    }
    spans.sort_by_cached_key(|s| row::encode_batch(std::slice::from_ref(s)));
    spans
}
