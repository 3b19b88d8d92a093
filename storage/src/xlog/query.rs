//! Reading XLog: the scatter's points and the transaction list, over the in-memory records and
//! the sealed segments, with filters, deduplication by (trace id, span id) and a limit that keeps
//! the most recent matches.

use std::borrow::Cow;

use rustc_hash::{FxHashMap, FxHashSet};

use super::segment::{cols, Page, XSegmentMeta};
use super::{XLog, XLogKey};
use crate::codec::column as col;
use crate::error::StorageError;
use crate::model::{TraceId, Value};
use crate::segment::Fetched;

/// Which transactions: end time in `[from_ns, to_ns)` and every filter given.
#[derive(Debug, Clone, Default)]
pub struct XLogFilter {
    pub from_ns: u64,
    pub to_ns: u64,
    pub service: Option<String>,
    pub endpoint: Option<String>,
    pub min_elapsed_ns: Option<u64>,
    pub max_elapsed_ns: Option<u64>,
    pub error: Option<bool>,
    pub client_ip: Option<String>,
    pub user_id: Option<String>,
    /// Substring of the user agent.
    pub user_agent: Option<String>,
    /// Substring of the endpoint or the error message.
    pub text: Option<String>,
    pub trace_id: Option<TraceId>,
    /// Attribute (or resource attribute) equal to the value, in its text form.
    pub attributes: Vec<(String, String)>,
    /// The most recent this many matches are kept.
    pub limit: usize,
}

/// An attribute value as text, the form filters compare with.
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Double(d) => Cow::Owned(d.to_string()),
        Value::Empty => Cow::Borrowed(""),
        Value::Bytes(b) => Cow::Owned(hex::encode(b)),
        Value::Array(_) | Value::KvList(_) => Cow::Owned(format!("{v:?}")),
    }
}

impl XLogFilter {
    pub fn matches(&self, x: &XLog) -> bool {
        let end = x.end_ns();
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        end >= self.from_ns
            && end < self.to_ns
            && eq(&self.service, &x.service)
            && eq(&self.endpoint, &x.endpoint)
            && self.min_elapsed_ns.is_none_or(|m| x.elapsed_ns >= m)
            && self.max_elapsed_ns.is_none_or(|m| x.elapsed_ns <= m)
            && self.error.is_none_or(|e| e == x.error)
            && eq(&self.client_ip, &x.client_ip)
            && eq(&self.user_id, &x.user_id)
            && self.user_agent.as_deref().is_none_or(|u| x.user_agent.contains(u))
            && self.text.as_deref().is_none_or(|t| x.endpoint.contains(t) || x.error_message.contains(t))
            && self.trace_id.is_none_or(|t| t == x.trace_id)
            && self.attributes.iter().all(|(k, v)| x.attribute(k).is_some_and(|a| value_text(a) == v.as_str()))
    }

    fn may_match_segment(&self, m: &XSegmentMeta) -> bool {
        m.max_end_ns >= self.from_ns
            && m.min_end_ns < self.to_ns
            && self.service.as_ref().is_none_or(|s| m.services.contains(s))
            && self.attributes.iter().all(|(k, _)| m.attr_column(k).is_some() || m.resource_keys.contains(k))
    }

    /// Columns a page must have to evaluate the filter.
    fn columns(&self, meta: &XSegmentMeta) -> Vec<u16> {
        let mut c = vec![cols::END, cols::TRACE_ID, cols::SPAN_ID];
        let mut add = |on: bool, col: u16| {
            if on && !c.contains(&col) {
                c.push(col);
            }
        };
        add(self.service.is_some(), cols::SERVICE);
        add(self.endpoint.is_some() || self.text.is_some(), cols::ENDPOINT);
        add(self.text.is_some(), cols::ERROR_MESSAGE);
        add(self.min_elapsed_ns.is_some() || self.max_elapsed_ns.is_some(), cols::ELAPSED);
        add(self.error.is_some(), cols::ERROR);
        add(self.client_ip.is_some(), cols::CLIENT_IP);
        add(self.user_id.is_some(), cols::USER_ID);
        add(self.user_agent.is_some(), cols::USER_AGENT);
        for (k, _) in &self.attributes {
            if let Some(a) = meta.attr_column(k) {
                add(true, a);
            }
            if meta.resource_keys.contains(k) {
                add(true, cols::RESOURCE);
                add(true, cols::RESOURCE_TABLE);
            }
        }
        c
    }

    /// Rows of the page that pass the filter.
    fn page_matches(&self, page: &Page<'_>) -> Result<Vec<usize>, StorageError> {
        let n = page.rows;
        let ends = col::decode_delta(&page.fixed(cols::END)?, n)?;
        let mut keep: Vec<bool> = ends.iter().map(|e| *e >= self.from_ns && *e < self.to_ns).collect();
        if self.min_elapsed_ns.is_some() || self.max_elapsed_ns.is_some() {
            let (lo, hi) = (self.min_elapsed_ns.unwrap_or(0), self.max_elapsed_ns.unwrap_or(u64::MAX));
            for (k, e) in keep.iter_mut().zip(page.varints(cols::ELAPSED)?) {
                *k &= e >= lo && e <= hi;
            }
        }
        if let Some(want) = self.error {
            for (k, e) in keep.iter_mut().zip(col::decode_u8(&page.fixed(cols::ERROR)?, n)?) {
                *k &= (e != 0) == want;
            }
        }
        let strings: [(u16, Option<&str>, bool); 5] = [
            (cols::SERVICE, self.service.as_deref(), false),
            (cols::ENDPOINT, self.endpoint.as_deref(), false),
            (cols::CLIENT_IP, self.client_ip.as_deref(), false),
            (cols::USER_ID, self.user_id.as_deref(), false),
            (cols::USER_AGENT, self.user_agent.as_deref(), true),
        ];
        for (c, want, substring) in strings {
            if let Some(w) = want {
                dict_filter(page, c, &mut keep, |s| if substring { s.contains(w) } else { s == w })?;
            }
        }
        if let Some(t) = &self.text {
            let body = page.fixed(cols::ENDPOINT)?;
            let (dict, endpoint) = col::decode_dict_codes(&body, n)?;
            let in_endpoint: Vec<bool> = dict.iter().map(|s| s.contains(t.as_str())).collect();
            let body = page.fixed(cols::ERROR_MESSAGE)?;
            let (dict, message) = col::decode_dict_codes(&body, n)?;
            let in_message: Vec<bool> = dict.iter().map(|s| s.contains(t.as_str())).collect();
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= in_endpoint[endpoint[i] as usize] || in_message[message[i] as usize];
            }
        }
        for (key, want) in &self.attributes {
            // The record's own attribute wins; without one, its resource's counts.
            let by_resource: Option<(Vec<bool>, Vec<usize>)> = if page.meta.resource_keys.contains(key) {
                let ok = page
                    .resources()?
                    .iter()
                    .map(|r| r.get(key).is_some_and(|v| value_text(v) == want.as_str()))
                    .collect();
                Some((ok, page.resource_index()?))
            } else {
                None
            };
            let own = match page.meta.attr_column(key) {
                Some(c) => page.body(c)?.map(|b| col::decode_values(&b, n)).transpose()?,
                None => None,
            };
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= match own.as_ref().and_then(|v| v[i].as_ref()) {
                    Some(v) => value_text(v) == want.as_str(),
                    None => by_resource.as_ref().is_some_and(|(ok, idx)| ok[idx[i]]),
                };
            }
        }
        if let Some(t) = &self.trace_id {
            for (k, id) in keep.iter_mut().zip(col::decode_trace_ids(&page.fixed(cols::TRACE_ID)?, n)?) {
                *k &= id == *t;
            }
        }
        Ok(keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect())
    }
}

fn dict_filter(page: &Page<'_>, c: u16, keep: &mut [bool], pred: impl Fn(&str) -> bool) -> Result<(), StorageError> {
    let body = page.fixed(c)?;
    let (dict, codes) = col::decode_dict_codes(&body, page.rows)?;
    let ok: Vec<bool> = dict.iter().map(|s| pred(s)).collect();
    for (k, code) in keep.iter_mut().zip(codes) {
        *k &= ok[code as usize];
    }
    Ok(())
}

/// The `limit` items with the latest end times, in bounded memory (at most twice the limit).
struct Latest<T> {
    limit: usize,
    items: Vec<(u64, T)>,
    /// Once `limit` items are kept, nothing ending before this can enter.
    floor: Option<u64>,
    truncated: bool,
}

impl<T> Latest<T> {
    fn new(limit: usize) -> Self {
        Self { limit, items: Vec::new(), floor: None, truncated: false }
    }

    fn wants(&self, end: u64) -> bool {
        self.floor.is_none_or(|f| end >= f)
    }

    fn push(&mut self, end: u64, item: T) {
        if !self.wants(end) {
            self.truncated = true;
            return;
        }
        self.items.push((end, item));
        if self.items.len() >= self.limit.max(1) * 2 {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.items.len() <= self.limit {
            return;
        }
        self.truncated = true;
        if self.limit == 0 {
            self.items.clear();
            return;
        }
        let k = self.items.len() - self.limit;
        self.items.select_nth_unstable_by_key(k, |(e, _)| *e);
        self.items.drain(..k);
        self.floor = self.items.iter().map(|(e, _)| *e).min();
    }

    /// Kept items with their end times, oldest first.
    fn finish(mut self) -> (Vec<(u64, T)>, bool) {
        self.cut();
        self.items.sort_by_key(|(e, _)| *e);
        (self.items, self.truncated)
    }
}

/// Scatter points, columnar. `service` indexes `services`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Points {
    pub end_ns: Vec<u64>,
    pub elapsed_ns: Vec<u64>,
    pub error: Vec<bool>,
    pub trace_id: Vec<TraceId>,
    pub service: Vec<u32>,
    pub services: Vec<String>,
    pub sql_ns: Vec<u64>,
    pub api_ns: Vec<u64>,
    pub cpu_ns: Vec<u64>,
    pub truncated: bool,
}

#[derive(Clone, Copy)]
struct Point {
    elapsed_ns: u64,
    error: bool,
    trace_id: TraceId,
    service: u32,
    sql_ns: u64,
    api_ns: u64,
    cpu_ns: u64,
}

/// What a scan reads: records in memory and sealed segments with a way to fetch their chunks.
pub struct Sources<'a, F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched> {
    pub memory: &'a [XLog],
    pub segments: Vec<&'a XSegmentMeta>,
    pub fetch: F,
}

impl<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched> Sources<'_, F> {
    /// Pages that may hold matches, latest segments first so the limit's floor rises early.
    fn pages<'s>(&'s self, filter: &'s XLogFilter) -> impl Iterator<Item = (&'s XSegmentMeta, u32)> + 's {
        let mut segs: Vec<&XSegmentMeta> =
            self.segments.iter().copied().filter(|m| filter.may_match_segment(m)).collect();
        segs.sort_by_key(|m| std::cmp::Reverse(m.max_end_ns));
        segs.into_iter().flat_map(move |m| {
            (0..m.pages()).rev().filter_map(move |p| {
                let (lo, hi) = m.page_ends[p as usize];
                (hi >= filter.from_ns && lo < filter.to_ns).then_some((m, p))
            })
        })
    }
}

pub fn points<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
) -> Result<Points, StorageError> {
    let mut seen: FxHashSet<XLogKey> = FxHashSet::default();
    let mut services: FxHashMap<String, u32> = FxHashMap::default();
    let mut intern = |s: &str| -> u32 {
        if let Some(i) = services.get(s) {
            return *i;
        }
        let i = services.len() as u32;
        services.insert(s.to_owned(), i);
        i
    };
    let mut latest: Latest<Point> = Latest::new(filter.limit);
    for x in src.memory.iter().filter(|x| filter.matches(x)) {
        if seen.insert((x.trace_id, x.span_id)) {
            let p = Point {
                elapsed_ns: x.elapsed_ns,
                error: x.error,
                trace_id: x.trace_id,
                service: intern(&x.service),
                sql_ns: x.sql_ns,
                api_ns: x.api_ns,
                cpu_ns: x.cpu_ns,
            };
            latest.push(x.end_ns(), p);
        }
    }
    for (meta, page) in src.pages(filter) {
        if !latest.wants(meta.page_ends[page as usize].1) {
            latest.truncated = true;
            continue;
        }
        let mut columns = filter.columns(meta);
        for c in [cols::ELAPSED, cols::ERROR, cols::SERVICE, cols::SQL_NS, cols::API_NS, cols::CPU] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let page = Page::fetch(meta, page, &columns, |want| (src.fetch)(meta, want))?;
        let rows = filter.page_matches(&page)?;
        if rows.is_empty() {
            continue;
        }
        let n = page.rows;
        let ends = col::decode_delta(&page.fixed(cols::END)?, n)?;
        let trace_ids = col::decode_trace_ids(&page.fixed(cols::TRACE_ID)?, n)?;
        let span_ids = col::decode_span_ids(&page.fixed(cols::SPAN_ID)?, n)?;
        let elapsed = page.varints(cols::ELAPSED)?;
        let errors = col::decode_u8(&page.fixed(cols::ERROR)?, n)?;
        let (sql, api, cpu) = (page.varints(cols::SQL_NS)?, page.varints(cols::API_NS)?, page.varints(cols::CPU)?);
        let body = page.fixed(cols::SERVICE)?;
        let (dict, codes) = col::decode_dict_codes(&body, n)?;
        let global: Vec<u32> = dict.iter().map(|s| intern(s)).collect();
        for r in rows {
            if !seen.insert((trace_ids[r], span_ids[r])) {
                continue;
            }
            let p = Point {
                elapsed_ns: elapsed[r],
                error: errors[r] != 0,
                trace_id: trace_ids[r],
                service: global[codes[r] as usize],
                sql_ns: sql[r],
                api_ns: api[r],
                cpu_ns: cpu[r],
            };
            latest.push(ends[r], p);
        }
    }
    let (kept, truncated) = latest.finish();
    let mut names = vec![String::new(); services.len()];
    for (s, i) in services {
        names[i as usize] = s;
    }
    let mut out = Points { services: names, truncated, ..Points::default() };
    for (end, p) in kept {
        out.end_ns.push(end);
        out.elapsed_ns.push(p.elapsed_ns);
        out.error.push(p.error);
        out.trace_id.push(p.trace_id);
        out.service.push(p.service);
        out.sql_ns.push(p.sql_ns);
        out.api_ns.push(p.api_ns);
        out.cpu_ns.push(p.cpu_ns);
    }
    Ok(out)
}

/// Full records of the matching transactions, oldest first, and whether the limit cut some.
pub fn records<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
) -> Result<(Vec<XLog>, bool), StorageError> {
    let mut seen: FxHashSet<XLogKey> = FxHashSet::default();
    let mut latest: Latest<XLog> = Latest::new(filter.limit);
    for x in src.memory.iter().filter(|x| filter.matches(x)) {
        if seen.insert((x.trace_id, x.span_id)) {
            latest.push(x.end_ns(), x.clone());
        }
    }
    for (meta, page) in src.pages(filter) {
        if !latest.wants(meta.page_ends[page as usize].1) {
            latest.truncated = true;
            continue;
        }
        let fetch = |want: &[(u16, u32)]| (src.fetch)(meta, want);
        let probe = Page::fetch(meta, page, &filter.columns(meta), fetch)?;
        let rows = filter.page_matches(&probe)?;
        if rows.is_empty() {
            continue;
        }
        let ends = col::decode_delta(&probe.fixed(cols::END)?, probe.rows)?;
        let trace_ids = col::decode_trace_ids(&probe.fixed(cols::TRACE_ID)?, probe.rows)?;
        let span_ids = col::decode_span_ids(&probe.fixed(cols::SPAN_ID)?, probe.rows)?;
        let rows: Vec<usize> =
            rows.into_iter().filter(|&r| latest.wants(ends[r]) && seen.insert((trace_ids[r], span_ids[r]))).collect();
        if rows.is_empty() {
            continue;
        }
        let full = Page::fetch(meta, page, &super::segment::all_columns(meta), fetch)?;
        for x in full.records(&rows)? {
            latest.push(x.end_ns(), x);
        }
    }
    let (kept, truncated) = latest.finish();
    Ok((kept.into_iter().map(|(_, x)| x).collect(), truncated))
}

#[cfg(test)]
mod tests;
