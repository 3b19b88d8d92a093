//! Reading spans back: the rows of one trace in one segment (trace by id).

use std::sync::Arc;

use super::{cols, SpanSegmentMeta};
use crate::codec::row::{read_events, read_links};
use crate::codec::{column as col, corrupt, Reader};
use crate::error::StorageError;
use crate::model::{Resource, Span};
use crate::table::page::Page;
use crate::table::{Fetched, SegmentMeta, PAGE_ROWS};

/// Reads rows `[first, first + count)` of a segment back into spans. `fetch` returns the stored
/// chunk of each (column, page) asked for, `None` where the page has no values (attributes).
pub fn read_rows(
    meta: &SpanSegmentMeta,
    first: u32,
    count: u32,
    fetch: impl Fn(&[(u16, u32)]) -> Fetched,
) -> Result<Vec<Span>, StorageError> {
    let end = first
        .checked_add(count)
        .filter(|e| *e <= meta.rows)
        .ok_or_else(|| corrupt("row range").within(|| meta.place()))?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let first_page = first / PAGE_ROWS as u32;
    let last_page = (end - 1) / PAGE_ROWS as u32;
    let mut out = Vec::with_capacity(count as usize);
    let mut resources: Option<Vec<Arc<Resource>>> = None;
    for number in first_page..=last_page {
        let page_start = number * PAGE_ROWS as u32;
        let lo = first.max(page_start) - page_start;
        let hi = end.min(page_start + PAGE_ROWS as u32) - page_start;
        // Every column of the page, and the resource table with the first page read.
        let mut columns = cols::FIXED.to_vec();
        if resources.is_none() {
            columns.push(cols::RESOURCE_TABLE);
        }
        columns.extend(Page::attr_columns(meta));
        let page = Page::fetch(meta, number, &columns, &fetch)?;
        let rows = (|| {
            let resources = match &resources {
                Some(r) => r,
                None => resources.insert(page.resources()?),
            };
            read_page(&page, lo as usize..hi as usize, resources, &mut out)
        })();
        rows.map_err(|e| e.within(|| page.place()))?;
    }
    Ok(out)
}

fn read_page(
    page: &Page<'_, SpanSegmentMeta>,
    range: std::ops::Range<usize>,
    resources: &[Arc<Resource>],
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    let n = page.rows;
    let trace_ids = page.trace_ids(cols::TRACE_ID)?;
    let span_ids = page.span_ids(cols::SPAN_ID)?;
    let parents = col::decode_parents(&page.fixed(cols::PARENT)?, &span_ids)?;
    // Strings and attributes are built only for the rows asked for; index them from `range.start`.
    let strings = |c: u16| page.strings(c, range.clone());
    let services = page.shared_strings(cols::SERVICE, range.clone())?;
    let names = page.shared_strings(cols::NAME, range.clone())?;
    let kinds = page.u8s(cols::KIND)?;
    let starts = page.deltas(cols::START)?;
    let durations = page.varints(cols::DURATION)?;
    let status_codes = page.u8s(cols::STATUS_CODE)?;
    let mut status_messages = strings(cols::STATUS_MESSAGE)?;
    let scope_names = page.shared_strings(cols::SCOPE_NAME, range.clone())?;
    let scope_versions = page.shared_strings(cols::SCOPE_VERSION, range.clone())?;
    let mut trace_states = strings(cols::TRACE_STATE)?;
    let flags = page.varints(cols::FLAGS)?;
    let dropped = col::decode_varints(&page.fixed(cols::DROPPED)?, n * 3)?;
    let events_body = page.fixed(cols::EVENTS)?;
    let events = col::decode_blobs(&events_body, n)?;
    let links_body = page.fixed(cols::LINKS)?;
    let links = col::decode_blobs(&links_body, n)?;
    let resource_idx = page.varints(cols::RESOURCE)?;
    let mut attrs = page.attributes(range.clone())?;
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| corrupt("u32 column value"));
    let take = std::mem::take::<String>;
    for (i, row) in range.enumerate() {
        let start_ns = starts[row];
        let attributes =
            attrs.iter_mut().filter_map(|(k, vals)| vals[i].take().map(|v| (crate::model::Key::clone(k), v))).collect();
        out.push(Span {
            trace_id: trace_ids[row],
            span_id: span_ids[row],
            parent_span_id: parents[row],
            trace_state: take(&mut trace_states[i]),
            flags: u32_of(flags[row])?,
            service: services[i].clone(),
            name: names[i].clone(),
            kind: kinds[row],
            start_ns,
            duration_ns: durations[row],
            status_code: status_codes[row],
            status_message: take(&mut status_messages[i]),
            scope_name: scope_names[i].clone(),
            scope_version: scope_versions[i].clone(),
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
