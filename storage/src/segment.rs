//! A sealed segment: the spans of one partition written at one seal, sorted by trace, stored as
//! one chunk per (column, page of `PAGE_ROWS` rows). A query reads only the columns and pages it
//! needs; trace-by-id reads the pages that hold the trace's rows.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::column as col;
use crate::codec::groups::{key_runs, AttrColumns, ResourceTable, MAX_SEGMENT_KEYS};
use crate::codec::row::{put_events, put_links, read_events, read_kvs, read_links};
use crate::codec::{corrupt, varint, Reader};
use crate::error::StorageError;
use crate::model::{Resource, Span, SpanId, TraceId, Value};

pub const PAGE_ROWS: usize = 4096;

/// The stored chunks asked for, in order; `None` where a (column, page) has none.
pub type Fetched = Result<Vec<Option<Vec<u8>>>, StorageError>;

/// Column ids of the fixed columns; attribute key `i` of a segment is column `ATTR_BASE + i`.
pub mod cols {
    pub const TRACE_ID: u16 = 0;
    pub const SPAN_ID: u16 = 1;
    pub const PARENT: u16 = 2;
    pub const SERVICE: u16 = 3;
    pub const NAME: u16 = 4;
    pub const KIND: u16 = 5;
    pub const START: u16 = 6;
    pub const DURATION: u16 = 7;
    pub const STATUS_CODE: u16 = 8;
    pub const STATUS_MESSAGE: u16 = 9;
    pub const SCOPE_NAME: u16 = 10;
    pub const SCOPE_VERSION: u16 = 11;
    pub const TRACE_STATE: u16 = 12;
    pub const FLAGS: u16 = 13;
    pub const DROPPED: u16 = 14;
    pub const EVENTS: u16 = 15;
    pub const LINKS: u16 = 16;
    pub const RESOURCE: u16 = 17;
    /// Page 0 only: the segment's distinct resources.
    pub const RESOURCE_TABLE: u16 = 18;
    pub const FIXED: &[u16] = &[
        TRACE_ID,
        SPAN_ID,
        PARENT,
        SERVICE,
        NAME,
        KIND,
        START,
        DURATION,
        STATUS_CODE,
        STATUS_MESSAGE,
        SCOPE_NAME,
        SCOPE_VERSION,
        TRACE_STATE,
        FLAGS,
        DROPPED,
        EVENTS,
        LINKS,
        RESOURCE,
    ];
    pub const ATTR_BASE: u16 = 32;

    pub fn name(col: u16) -> &'static str {
        match col {
            TRACE_ID => "trace_id",
            SPAN_ID => "span_id",
            PARENT => "parent_span_id",
            SERVICE => "service",
            NAME => "name",
            KIND => "kind",
            START => "start",
            DURATION => "duration",
            STATUS_CODE => "status_code",
            STATUS_MESSAGE => "status_message",
            SCOPE_NAME => "scope_name",
            SCOPE_VERSION => "scope_version",
            TRACE_STATE => "trace_state",
            FLAGS => "flags",
            DROPPED => "dropped_counts",
            EVENTS => "events",
            LINKS => "links",
            RESOURCE => "resource",
            RESOURCE_TABLE => "resource_table",
            _ => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    pub partition: u64,
    pub id: u64,
    pub rows: u32,
    pub min_start_ns: u64,
    pub max_end_ns: u64,
    /// Attribute keys, in column order from `cols::ATTR_BASE`.
    pub attr_keys: Vec<String>,
    pub resources: u32,
    /// Stored bytes of all chunks (compressed).
    pub bytes: u64,
}

impl SegmentMeta {
    pub fn pages(&self) -> u32 {
        (self.rows as usize).div_ceil(PAGE_ROWS) as u32
    }

    pub fn page_rows(&self, page: u32) -> usize {
        let start = page as usize * PAGE_ROWS;
        (self.rows as usize - start).min(PAGE_ROWS)
    }
}

/// Where a trace's rows sit in a segment: rows are contiguous because segments sort by trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRows {
    pub trace_id: TraceId,
    pub first_row: u32,
    pub count: u32,
}

impl TraceRows {
    pub fn encode_value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(6);
        varint::put(&mut v, u64::from(self.first_row));
        varint::put(&mut v, u64::from(self.count));
        v
    }

    pub fn decode_value(trace_id: TraceId, v: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(v);
        Ok(Self { trace_id, first_row: r.varint_u32()?, count: r.varint_u32()? })
    }
}

pub struct BuiltSegment {
    pub meta: SegmentMeta,
    /// (column, page, stored bytes)
    pub chunks: Vec<(u16, u32, Vec<u8>)>,
    pub traces: Vec<TraceRows>,
}

/// (trace's earliest start, trace id, start, span id)
type SortKey = (u64, TraceId, u64, SpanId);

/// Sorts spans by (trace's earliest start, trace id, start) and encodes them column by column.
/// Ordering traces by their start keeps neighbouring rows close in time, so timestamps delta-encode
/// small, and keeps a trace's rows contiguous, so trace ids run-length encode and parents become
/// short back-references. Usually one segment; more when the spans carry more distinct attribute
/// keys than one segment holds (a trace cut in two is found through both segments' index entries).
pub fn build(partition: u64, next_id: &mut dyn FnMut() -> u64, spans: &[&Span]) -> Vec<BuiltSegment> {
    let mut trace_start: FxHashMap<TraceId, u64> = FxHashMap::default();
    for s in spans {
        let e = trace_start.entry(s.trace_id).or_insert(s.start_ns);
        *e = (*e).min(s.start_ns);
    }
    // Sort keys computed once, not per comparison.
    let mut keyed: Vec<(SortKey, &Span)> =
        spans.iter().map(|s| ((trace_start[&s.trace_id], s.trace_id, s.start_ns, s.span_id), *s)).collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);
    let order: Vec<&Span> = keyed.into_iter().map(|(_, s)| s).collect();

    let attrs = AttrColumns::new(order.iter().map(|s| s.attributes.as_slice()));
    if attrs.keys.len() <= MAX_SEGMENT_KEYS {
        return vec![encode(partition, next_id(), &order, attrs)];
    }
    key_runs(order.iter().map(|s| s.attributes.as_slice()), MAX_SEGMENT_KEYS)
        .into_iter()
        .map(|run| {
            let rows = &order[run];
            let mut attrs = AttrColumns::new(rows.iter().map(|s| s.attributes.as_slice()));
            let dropped = attrs.keep_keys(MAX_SEGMENT_KEYS);
            if dropped > 0 {
                tracing::warn!(dropped, "a span has more attribute keys than a segment holds; the rest are not kept");
            }
            encode(partition, next_id(), rows, attrs)
        })
        .collect()
}

/// One segment of spans already in segment order.
fn encode(partition: u64, id: u64, order: &[&Span], mut attrs: AttrColumns<'_>) -> BuiltSegment {
    let mut table = ResourceTable::default();
    let resource_idx: Vec<u64> = order.iter().map(|s| table.index(&s.resource).0).collect();

    let mut chunks = Vec::new();
    let mut compressor = col::Compressor::new();
    let mut push = |c: u16, page: u32, body: Vec<u8>| chunks.push((c, page, compressor.compress(&body)));
    for (p, rows) in order.chunks(PAGE_ROWS).enumerate() {
        let page = p as u32;
        let span_ids: Vec<_> = rows.iter().map(|s| s.span_id).collect();
        let trace_ids: Vec<_> = rows.iter().map(|s| s.trace_id).collect();
        push(cols::TRACE_ID, page, col::encode_trace_ids(&trace_ids));
        let parents: Vec<_> = rows.iter().map(|s| s.parent_span_id).collect();
        push(cols::PARENT, page, col::encode_parents(&parents, &span_ids));
        push(cols::SPAN_ID, page, col::encode_span_ids(&span_ids));
        let strs = |f: fn(&Span) -> &str| rows.iter().map(|s| f(s)).collect::<Vec<_>>();
        push(cols::SERVICE, page, col::encode_dict(&strs(|s| &s.service)));
        push(cols::NAME, page, col::encode_dict(&strs(|s| &s.name)));
        push(cols::STATUS_MESSAGE, page, col::encode_dict(&strs(|s| &s.status_message)));
        push(cols::SCOPE_NAME, page, col::encode_dict(&strs(|s| &s.scope_name)));
        push(cols::SCOPE_VERSION, page, col::encode_dict(&strs(|s| &s.scope_version)));
        push(cols::TRACE_STATE, page, col::encode_dict(&strs(|s| &s.trace_state)));
        push(cols::KIND, page, col::encode_u8(&rows.iter().map(|s| s.kind).collect::<Vec<_>>()));
        push(cols::STATUS_CODE, page, col::encode_u8(&rows.iter().map(|s| s.status_code).collect::<Vec<_>>()));
        push(cols::START, page, col::encode_delta(&rows.iter().map(|s| s.start_ns).collect::<Vec<_>>()));
        push(cols::DURATION, page, col::encode_varints(&rows.iter().map(|s| s.duration_ns).collect::<Vec<_>>()));
        push(cols::FLAGS, page, col::encode_varints(&rows.iter().map(|s| u64::from(s.flags)).collect::<Vec<_>>()));
        let dropped: Vec<u64> = rows
            .iter()
            .flat_map(|s| [s.dropped_attributes, s.dropped_events, s.dropped_links].map(u64::from))
            .collect();
        push(cols::DROPPED, page, col::encode_varints(&dropped));
        let events: Vec<Vec<u8>> = rows
            .iter()
            .map(|s| {
                let mut b = Vec::new();
                if !s.events.is_empty() {
                    put_events(&mut b, s.start_ns, &s.events);
                }
                b
            })
            .collect();
        push(cols::EVENTS, page, col::encode_blobs(&events));
        let links: Vec<Vec<u8>> = rows
            .iter()
            .map(|s| {
                let mut b = Vec::new();
                if !s.links.is_empty() {
                    put_links(&mut b, &s.links);
                }
                b
            })
            .collect();
        push(cols::LINKS, page, col::encode_blobs(&links));
        let start = p * PAGE_ROWS;
        push(cols::RESOURCE, page, col::encode_varints(&resource_idx[start..start + rows.len()]));
        for (c, body) in attrs.page(start, rows.len()) {
            push(cols::ATTR_BASE + c as u16, page, body);
        }
    }
    push(cols::RESOURCE_TABLE, 0, col::encode_blobs(&table.encoded));

    let mut traces: Vec<TraceRows> = Vec::new();
    for (i, s) in order.iter().enumerate() {
        match traces.last_mut() {
            Some(t) if t.trace_id == s.trace_id => t.count += 1,
            _ => traces.push(TraceRows { trace_id: s.trace_id, first_row: i as u32, count: 1 }),
        }
    }
    let meta = SegmentMeta {
        partition,
        id,
        rows: order.len() as u32,
        min_start_ns: order.iter().map(|s| s.start_ns).min().unwrap_or(0),
        max_end_ns: order.iter().map(|s| s.end_ns()).max().unwrap_or(0),
        attr_keys: attrs.keys.iter().map(|k| k.to_string()).collect(),
        resources: table.encoded.len() as u32,
        bytes: chunks.iter().map(|(_, _, b)| b.len() as u64).sum(),
    };
    BuiltSegment { meta, chunks, traces }
}

/// Reads rows `[first, first + count)` of a segment back into spans. `fetch` returns the stored
/// chunk of each (column, page) asked for, `None` where the page has no values (attributes).
pub fn read_rows(
    meta: &SegmentMeta,
    first: u32,
    count: u32,
    fetch: impl Fn(&[(u16, u32)]) -> Fetched,
) -> Result<Vec<Span>, StorageError> {
    let place = || format!("partition {} segment {}", meta.partition, meta.id);
    let end = first.checked_add(count).filter(|e| *e <= meta.rows).ok_or_else(|| corrupt("row range").within(place))?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if meta.attr_keys.len() > MAX_SEGMENT_KEYS {
        return Err(corrupt(&format!("{} attribute keys in one segment", meta.attr_keys.len())).within(place));
    }
    let resources = read_resources(meta, &fetch).map_err(|e| e.within(|| format!("{} resource table", place())))?;
    let first_page = first / PAGE_ROWS as u32;
    let last_page = (end - 1) / PAGE_ROWS as u32;
    let mut out = Vec::with_capacity(count as usize);
    for page in first_page..=last_page {
        let page_start = page * PAGE_ROWS as u32;
        let lo = first.max(page_start) - page_start;
        let hi = end.min(page_start + PAGE_ROWS as u32) - page_start;
        read_page(meta, page, lo as usize..hi as usize, &resources, &fetch, &mut out)
            .map_err(|e| e.within(|| format!("{} page {page}", place())))?;
    }
    Ok(out)
}

fn read_resources(
    meta: &SegmentMeta,
    fetch: &impl Fn(&[(u16, u32)]) -> Fetched,
) -> Result<Vec<Arc<Resource>>, StorageError> {
    let stored = fetch(&[(cols::RESOURCE_TABLE, 0)])?.pop().flatten().ok_or_else(|| corrupt("resource table"))?;
    let body = col::decompress(&stored)?;
    col::decode_blobs(&body, meta.resources as usize)?
        .into_iter()
        .map(|b| Ok(Arc::new(Resource { attributes: read_kvs(&mut Reader::new(b))? })))
        .collect()
}

fn read_page(
    meta: &SegmentMeta,
    page: u32,
    range: std::ops::Range<usize>,
    resources: &[Arc<Resource>],
    fetch: &impl Fn(&[(u16, u32)]) -> Fetched,
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    let n = meta.page_rows(page);
    let mut wanted: Vec<(u16, u32)> = cols::FIXED.iter().map(|c| (*c, page)).collect();
    wanted.extend((0..meta.attr_keys.len() as u16).map(|i| (cols::ATTR_BASE + i, page)));
    let stored = fetch(&wanted)?;
    let body = |c: u16| -> Result<std::borrow::Cow<'_, [u8]>, StorageError> {
        let i = wanted.iter().position(|(w, _)| *w == c).expect("asked for");
        let column = || format!("column {}", cols::name(c));
        let chunk = stored[i].as_deref().ok_or_else(|| corrupt("missing chunk").within(column))?;
        col::decompress(chunk).map_err(|e| e.within(column))
    };
    let trace_ids = col::decode_trace_ids(&body(cols::TRACE_ID)?, n)?;
    let span_ids = col::decode_span_ids(&body(cols::SPAN_ID)?, n)?;
    let parents = col::decode_parents(&body(cols::PARENT)?, &span_ids)?;
    // Strings and attributes are built only for the rows asked for; index them from `range.start`.
    let dict = |c: u16| col::decode_dict_range(&body(c)?, n, range.clone());
    let mut services = dict(cols::SERVICE)?;
    let mut names = dict(cols::NAME)?;
    let kinds = col::decode_u8(&body(cols::KIND)?, n)?;
    let starts = col::decode_delta(&body(cols::START)?, n)?;
    let durations = col::decode_varints(&body(cols::DURATION)?, n)?;
    let status_codes = col::decode_u8(&body(cols::STATUS_CODE)?, n)?;
    let mut status_messages = dict(cols::STATUS_MESSAGE)?;
    let mut scope_names = dict(cols::SCOPE_NAME)?;
    let mut scope_versions = dict(cols::SCOPE_VERSION)?;
    let mut trace_states = dict(cols::TRACE_STATE)?;
    let flags = col::decode_varints(&body(cols::FLAGS)?, n)?;
    let dropped = col::decode_varints(&body(cols::DROPPED)?, n * 3)?;
    let events_body = body(cols::EVENTS)?;
    let events = col::decode_blobs(&events_body, n)?;
    let links_body = body(cols::LINKS)?;
    let links = col::decode_blobs(&links_body, n)?;
    let resource_idx = col::decode_varints(&body(cols::RESOURCE)?, n)?;
    let mut attrs: Vec<(&str, Vec<Option<Value>>)> = Vec::new();
    for (i, key) in meta.attr_keys.iter().enumerate() {
        let j = cols::FIXED.len() + i;
        if let Some(chunk) = stored[j].as_deref() {
            attrs.push((key.as_str(), col::decode_values_range(&col::decompress(chunk)?, n, range.clone())?));
        }
    }
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| corrupt("u32 column value"));
    let take = std::mem::take::<String>;
    for (i, row) in range.enumerate() {
        let start_ns = starts[row];
        let attributes = attrs.iter_mut().filter_map(|(k, vals)| vals[i].take().map(|v| (k.to_string(), v))).collect();
        out.push(Span {
            trace_id: trace_ids[row],
            span_id: span_ids[row],
            parent_span_id: parents[row],
            trace_state: take(&mut trace_states[i]),
            flags: u32_of(flags[row])?,
            service: take(&mut services[i]),
            name: take(&mut names[i]),
            kind: kinds[row],
            start_ns,
            duration_ns: durations[row],
            status_code: status_codes[row],
            status_message: take(&mut status_messages[i]),
            scope_name: take(&mut scope_names[i]),
            scope_version: take(&mut scope_versions[i]),
            attributes,
            events: if events[row].is_empty() {
                Vec::new()
            } else {
                read_events(&mut Reader::new(events[row]), start_ns)?
            },
            links: if links[row].is_empty() { Vec::new() } else { read_links(&mut Reader::new(links[row]))? },
            dropped_attributes: u32_of(dropped[row * 3])?,
            dropped_events: u32_of(dropped[row * 3 + 1])?,
            dropped_links: u32_of(dropped[row * 3 + 2])?,
            resource: resources.get(resource_idx[row] as usize).cloned().ok_or_else(|| corrupt("resource index"))?,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::arb_batch;
    use proptest::prelude::*;

    fn fetch_from(chunks: &[(u16, u32, Vec<u8>)]) -> impl Fn(&[(u16, u32)]) -> Fetched + '_ {
        let map: std::collections::HashMap<(u16, u32), &Vec<u8>> =
            chunks.iter().map(|(c, p, b)| ((*c, *p), b)).collect();
        move |want| Ok(want.iter().map(|k| map.get(k).map(|b| b.to_vec())).collect())
    }

    /// Attributes are a map: a segment keeps one value per key and returns them in column order.
    fn sorted(mut v: Vec<Span>) -> Vec<Span> {
        for s in &mut v {
            s.attributes.sort_by(|a, b| a.0.cmp(&b.0));
        }
        v.sort_by_key(|s| (s.trace_id, s.start_ns, s.span_id));
        v
    }

    /// The collector guarantees unique keys per span (OTLP requires them).
    fn unique_keys(mut batch: Vec<Span>) -> Vec<Span> {
        for s in &mut batch {
            let mut seen = std::collections::HashSet::new();
            s.attributes.retain(|(k, _)| seen.insert(k.clone()));
        }
        batch
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn segment_round_trips(batch in arb_batch().prop_map(unique_keys)) {
            let refs: Vec<&Span> = batch.iter().collect();
            let built = build(7, &mut || 1, &refs).remove(0);
            let fetch = fetch_from(&built.chunks);
            let back = read_rows(&built.meta, 0, built.meta.rows, &fetch).unwrap();
            prop_assert_eq!(sorted(back), sorted(batch.clone()));
            // Every trace's rows are contiguous and readable on their own.
            for t in &built.traces {
                let rows = read_rows(&built.meta, t.first_row, t.count, &fetch).unwrap();
                let expect: Vec<Span> = batch.iter().filter(|s| s.trace_id == t.trace_id).cloned().collect();
                prop_assert_eq!(sorted(rows), sorted(expect));
            }
        }
    }

    #[test]
    fn traces_spanning_pages_read_back() {
        let res = Arc::new(Resource { attributes: vec![("service.name".into(), Value::Str("a".into()))] });
        let spans: Vec<Span> = (0..(PAGE_ROWS as u64 * 2 + 10))
            .map(|i| Span {
                trace_id: TraceId([(i / 3000) as u8 + 1; 16]),
                span_id: SpanId((i + 1).to_be_bytes()),
                parent_span_id: if i % 3000 == 0 { None } else { Some(SpanId(i.to_be_bytes())) },
                trace_state: String::new(),
                flags: 0,
                service: "a".into(),
                name: format!("op{}", i % 7),
                kind: 2,
                start_ns: 1_700_000_000_000_000_000 + i * 1000,
                duration_ns: i,
                status_code: 0,
                status_message: String::new(),
                scope_name: String::new(),
                scope_version: String::new(),
                attributes: if i % 2 == 0 { vec![("k".into(), Value::Int(i as i64))] } else { vec![] },
                events: vec![],
                links: vec![],
                dropped_attributes: 0,
                dropped_events: 0,
                dropped_links: 0,
                resource: res.clone(),
            })
            .collect();
        let refs: Vec<&Span> = spans.iter().collect();
        let built = build(1, &mut || 1, &refs).remove(0);
        assert_eq!(built.meta.pages(), 3);
        let fetch = fetch_from(&built.chunks);
        let t = built.traces[1];
        assert_eq!((t.first_row, t.count), (3000, 3000));
        let rows = read_rows(&built.meta, t.first_row, t.count, &fetch).unwrap();
        assert_eq!(rows, spans[3000..6000].to_vec());
        assert!(read_rows(&built.meta, built.meta.rows, 1, &fetch).is_err());
    }
}
