//! Sealing spans into segments of the spans table.

use rustc_hash::FxHashMap;

use super::{cols, SpanSegmentMeta, TraceRows, TABLE};
use crate::codec::column as col;
use crate::codec::row::{put_events, put_links};
use crate::model::{Span, TraceId};
use crate::table::attrs::AttrColumns;
use crate::table::build::{self, Chunk, SegmentWriter};

pub struct BuiltSegment {
    pub meta: SpanSegmentMeta,
    pub chunks: Vec<Chunk>,
    pub traces: Vec<TraceRows>,
}

/// Sorts spans by (trace's earliest start, trace id, start) and encodes them column by column.
/// Ordering traces by their start keeps neighbouring rows close in time, so timestamps delta-encode
/// small, and keeps a trace's rows contiguous, so trace ids run-length encode and parents become
/// short back-references. Usually one segment; more when the spans carry more distinct attribute
/// keys than one segment holds (a trace cut in two is found through both segments' index entries).
pub fn build(partition: u64, next_id: &mut dyn FnMut() -> u64, spans: &[&Span]) -> Vec<BuiltSegment> {
    let order = segment_order(spans);
    build::segments(&order, |s| s.attributes.as_slice(), |rows, attrs| encode(partition, next_id(), rows, attrs))
}

/// Spans in segment order: traces by (earliest start, id), each trace's spans by (start, span id).
/// Traces are ranked, their spans placed by rank (a counting sort), and only each trace's own
/// few spans compared: sorting every span on the whole key cost more than any column's encoding.
pub(super) fn segment_order<'a>(spans: &[&'a Span]) -> Vec<&'a Span> {
    let Some(&placeholder) = spans.first() else { return Vec::new() };
    // Each trace as (earliest start, id, its index), and each span's trace index.
    let mut index: FxHashMap<TraceId, u32> = FxHashMap::default();
    let mut traces: Vec<(u64, TraceId, u32)> = Vec::new();
    let trace_of: Vec<u32> = spans
        .iter()
        .map(|s| {
            let i = *index.entry(s.trace_id).or_insert_with(|| {
                traces.push((s.start_ns, s.trace_id, traces.len() as u32));
                traces.len() as u32 - 1
            });
            let t = &mut traces[i as usize];
            t.0 = t.0.min(s.start_ns);
            i
        })
        .collect();
    drop(index);
    let mut rows = vec![0u32; traces.len()];
    for &t in &trace_of {
        rows[t as usize] += 1;
    }
    traces.sort_unstable();
    // Where each trace's run begins, in rank order.
    let mut run_start = vec![0u32; traces.len()];
    let mut at = 0;
    for &(_, _, t) in &traces {
        run_start[t as usize] = at;
        at += rows[t as usize];
    }
    let mut order = vec![placeholder; spans.len()];
    let mut next = run_start.clone();
    for (s, &t) in spans.iter().zip(&trace_of) {
        order[next[t as usize] as usize] = s;
        next[t as usize] += 1;
    }
    for &(_, _, t) in &traces {
        let run = run_start[t as usize] as usize..(run_start[t as usize] + rows[t as usize]) as usize;
        if run.len() > 1 {
            order[run].sort_unstable_by_key(|s| (s.start_ns, s.span_id));
        }
    }
    order
}

/// One segment of spans already in segment order.
fn encode(partition: u64, id: u64, order: &[&Span], attrs: AttrColumns<'_>) -> BuiltSegment {
    let mut w = SegmentWriter::new(&TABLE, attrs, order.iter().map(|s| &s.resource));
    let mut page_starts = Vec::new();
    for (page, start, len) in build::pages(order.len()) {
        let rows = &order[start..start + len];
        let span_ids: Vec<_> = rows.iter().map(|s| s.span_id).collect();
        let trace_ids: Vec<_> = rows.iter().map(|s| s.trace_id).collect();
        w.put(cols::TRACE_ID, page, &col::encode_trace_ids(&trace_ids));
        let parents: Vec<_> = rows.iter().map(|s| s.parent_span_id).collect();
        w.put(cols::PARENT, page, &col::encode_parents(&parents, &span_ids, &trace_ids));
        w.put(cols::SPAN_ID, page, &col::encode_span_ids(&span_ids));
        let strs = |f: fn(&Span) -> &str| rows.iter().map(|s| f(s)).collect::<Vec<_>>();
        w.put(cols::SERVICE, page, &col::encode_dict(&strs(|s| &s.service)));
        w.put(cols::NAME, page, &col::encode_dict(&strs(|s| &s.name)));
        w.put(cols::STATUS_MESSAGE, page, &col::encode_dict(&strs(|s| &s.status_message)));
        w.put(cols::SCOPE_NAME, page, &col::encode_dict(&strs(|s| &s.scope_name)));
        w.put(cols::SCOPE_VERSION, page, &col::encode_dict(&strs(|s| &s.scope_version)));
        w.put(cols::TRACE_STATE, page, &col::encode_dict(&strs(|s| &s.trace_state)));
        w.put(cols::KIND, page, &col::encode_u8(&rows.iter().map(|s| s.kind).collect::<Vec<_>>()));
        w.put(cols::STATUS_CODE, page, &col::encode_u8(&rows.iter().map(|s| s.status_code).collect::<Vec<_>>()));
        let starts: Vec<u64> = rows.iter().map(|s| s.start_ns).collect();
        page_starts.push((*starts.iter().min().expect("pages have rows"), *starts.iter().max().expect("rows")));
        w.put(cols::START, page, &col::encode_delta(&starts));
        w.put(cols::DURATION, page, &col::encode_varints(&rows.iter().map(|s| s.duration_ns).collect::<Vec<_>>()));
        w.put(cols::FLAGS, page, &col::encode_varints(&rows.iter().map(|s| u64::from(s.flags)).collect::<Vec<_>>()));
        let dropped: Vec<u64> = rows
            .iter()
            .flat_map(|s| [s.dropped_attributes, s.dropped_events, s.dropped_links].map(u64::from))
            .collect();
        w.put(cols::DROPPED, page, &col::encode_varints(&dropped));
        let blob = |put: &dyn Fn(&mut Vec<u8>, &Span)| -> Vec<Vec<u8>> {
            rows.iter()
                .map(|s| {
                    let mut b = Vec::new();
                    put(&mut b, s);
                    b
                })
                .collect()
        };
        let events = blob(&|b, s| {
            if !s.events.is_empty() {
                put_events(b, s.start_ns, &s.events);
            }
        });
        w.put(cols::EVENTS, page, &col::encode_blobs(&events));
        let links = blob(&|b, s| {
            if !s.links.is_empty() {
                put_links(b, &s.links);
            }
        });
        w.put(cols::LINKS, page, &col::encode_blobs(&links));
        w.put_shared(page, start, len);
    }
    let written = w.finish();

    let mut traces: Vec<TraceRows> = Vec::new();
    for (i, s) in order.iter().enumerate() {
        match traces.last_mut() {
            Some(t) if t.trace_id == s.trace_id => t.count += 1,
            _ => traces.push(TraceRows { trace_id: s.trace_id, first_row: i as u32, count: 1 }),
        }
    }
    let meta = SpanSegmentMeta {
        partition,
        id,
        rows: order.len() as u32,
        min_start_ns: order.iter().map(|s| s.start_ns).min().unwrap_or(0),
        max_end_ns: order.iter().map(|s| s.end_ns()).max().unwrap_or(0),
        attr_keys: written.attr_keys,
        resources: written.resources,
        bytes: written.bytes,
        page_starts,
    };
    BuiltSegment { meta, chunks: written.chunks, traces }
}
