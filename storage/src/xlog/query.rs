//! Reading XLog: the scatter's points and the transaction list, over the in-memory records and
//! the sealed segments, with filters, deduplication by (trace id, span id) and a limit that keeps
//! the most recent matches.

use std::borrow::Cow;

use rustc_hash::{FxHashMap, FxHashSet};

use super::segment::{cols, Page, XSegmentMeta};
use super::XLog;
use crate::codec::column as col;
use crate::error::StorageError;
use crate::model::{SpanId, TraceId, Value};
use crate::segment::Fetched;

/// A time a transaction spends besides its elapsed time: the scatter's other Y axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Sql,
    Api,
    Cpu,
}

impl Metric {
    fn of(self, x: &XLog) -> u64 {
        match self {
            Metric::Sql => x.sql_ns,
            Metric::Api => x.api_ns,
            Metric::Cpu => x.cpu_ns,
        }
    }

    fn column(self) -> u16 {
        match self {
            Metric::Sql => cols::SQL_NS,
            Metric::Api => cols::API_NS,
            Metric::Cpu => cols::CPU,
        }
    }
}

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
    /// SQL, API or CPU time within `[lo, hi]` nanoseconds.
    pub times: Vec<(Metric, u64, u64)>,
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
            && self.times.iter().all(|(m, lo, hi)| (*lo..=*hi).contains(&m.of(x)))
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
        for (m, _, _) in &self.times {
            add(true, m.column());
        }
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

    /// Rows of the page that pass the filter, and the page's end times (decoded for the time
    /// window; the callers need them too).
    fn page_matches(&self, page: &Page<'_>) -> Result<(Vec<usize>, Vec<u64>), StorageError> {
        let n = page.rows;
        let ends = col::decode_delta(&page.fixed(cols::END)?, n)?;
        let mut keep: Vec<bool> = ends.iter().map(|e| *e >= self.from_ns && *e < self.to_ns).collect();
        if self.min_elapsed_ns.is_some() || self.max_elapsed_ns.is_some() {
            let (lo, hi) = (self.min_elapsed_ns.unwrap_or(0), self.max_elapsed_ns.unwrap_or(u64::MAX));
            for (k, e) in keep.iter_mut().zip(page.varints(cols::ELAPSED)?) {
                *k &= e >= lo && e <= hi;
            }
        }
        for (m, lo, hi) in &self.times {
            for (k, v) in keep.iter_mut().zip(page.varints(m.column())?) {
                *k &= (*lo..=*hi).contains(&v);
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
        Ok((keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect(), ends))
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

/// A record's identity folded into 128 bits for the deduplication set: equal for equal ids, and
/// distinct ids collide with a chance of about n² / 2^128.
fn identity(trace_id: &TraceId, span_id: &SpanId) -> u128 {
    u128::from_le_bytes(trace_id.0) ^ u128::from(u64::from_le_bytes(span_id.0)).rotate_left(32)
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
    /// `expect`: about how many items will be offered, to size the buffer once.
    fn new(limit: usize, expect: usize) -> Self {
        let items = Vec::with_capacity(expect.min(limit.saturating_mul(2)).min(1 << 24));
        Self { limit, items, floor: None, truncated: false }
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
        self.items.sort_unstable_by_key(|(e, _)| *e);
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

/// Scatter points as they are found, column by column, with each one's identity.
struct Gather {
    p: Points,
    ids: Vec<u128>,
    limit: usize,
    /// Once `limit` points are kept, nothing ending before this can enter.
    floor: Option<u64>,
}

fn gather<T: Copy>(v: &[T], order: &[u32]) -> Vec<T> {
    order.iter().map(|&i| v[i as usize]).collect()
}

impl Gather {
    fn new(limit: usize, expect: usize) -> Self {
        let cap = expect.min(limit.saturating_mul(2)).min(1 << 24);
        let p = Points {
            end_ns: Vec::with_capacity(cap),
            elapsed_ns: Vec::with_capacity(cap),
            error: Vec::with_capacity(cap),
            trace_id: Vec::with_capacity(cap),
            service: Vec::with_capacity(cap),
            services: Vec::new(),
            sql_ns: Vec::with_capacity(cap),
            api_ns: Vec::with_capacity(cap),
            cpu_ns: Vec::with_capacity(cap),
            truncated: false,
        };
        Self { p, ids: Vec::with_capacity(cap), limit, floor: None }
    }

    fn wants(&self, end: u64) -> bool {
        self.floor.is_none_or(|f| end >= f)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        end: u64,
        elapsed: u64,
        error: bool,
        trace: TraceId,
        span: &SpanId,
        service: u32,
        sql: u64,
        api: u64,
        cpu: u64,
    ) {
        if !self.wants(end) {
            self.p.truncated = true;
            return;
        }
        let p = &mut self.p;
        p.end_ns.push(end);
        p.elapsed_ns.push(elapsed);
        p.error.push(error);
        p.trace_id.push(trace);
        p.service.push(service);
        p.sql_ns.push(sql);
        p.api_ns.push(api);
        p.cpu_ns.push(cpu);
        self.ids.push(identity(&trace, span));
        if self.ids.len() >= self.limit.max(1) * 2 {
            self.cut();
        }
    }

    /// Sorts oldest first, keeps each record once and the `limit` latest. Copies of one record
    /// end at the same time (a retry or a re-derivation repeats the span), so sorting by (end,
    /// identity) puts them side by side; of those, the copy that counted the most child time
    /// stays (`XLog::completeness`: points carry no counts, and more children never means less
    /// time). Copies are rare, so they are compared only when met, not in the sort key.
    fn cut(&mut self) {
        let mut order: Vec<(u64, u128, u32)> =
            self.p.end_ns.iter().zip(&self.ids).enumerate().map(|(i, (e, id))| (*e, *id, i as u32)).collect();
        order.sort_unstable();
        let (sql, api) = (&self.p.sql_ns, &self.p.api_ns);
        let child_ns = |i: u32| sql[i as usize].saturating_add(api[i as usize]);
        order.dedup_by(|later, kept| {
            let same = (later.0, later.1) == (kept.0, kept.1);
            if same && child_ns(later.2) > child_ns(kept.2) {
                kept.2 = later.2;
            }
            same
        });
        if order.len() > self.limit {
            self.p.truncated = true;
            order.drain(..order.len() - self.limit);
            self.floor = Some(order.first().map_or(u64::MAX, |(e, _, _)| *e));
        }
        let idx: Vec<u32> = order.iter().map(|(_, _, i)| *i).collect();
        let p = &mut self.p;
        p.end_ns = gather(&p.end_ns, &idx);
        p.elapsed_ns = gather(&p.elapsed_ns, &idx);
        p.error = gather(&p.error, &idx);
        p.trace_id = gather(&p.trace_id, &idx);
        p.service = gather(&p.service, &idx);
        p.sql_ns = gather(&p.sql_ns, &idx);
        p.api_ns = gather(&p.api_ns, &idx);
        p.cpu_ns = gather(&p.cpu_ns, &idx);
        self.ids = order.into_iter().map(|(_, id, _)| id).collect();
    }

    fn finish(mut self, services: Vec<String>) -> Points {
        self.cut();
        self.p.services = services;
        self.p
    }
}

/// What a scan reads: records in memory and sealed segments with a way to fetch their chunks.
pub struct Sources<'a, F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched> {
    pub memory: &'a [XLog],
    pub segments: Vec<&'a XSegmentMeta>,
    pub fetch: F,
}

impl<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched> Sources<'_, F> {
    /// Pages that may hold matches, latest segments first so the limit's floor rises early.
    /// Records that may match, at most: sizes the buffers of a scan.
    fn estimate(&self, filter: &XLogFilter) -> usize {
        self.memory.len()
            + self.segments.iter().filter(|m| filter.may_match_segment(m)).map(|m| m.rows as usize).sum::<usize>()
    }

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

/// Scans run on this many threads: page decoding is most of a large scatter's time.
const SCAN_THREADS: usize = 2;

pub fn points<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched + Sync>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
) -> Result<Points, StorageError> {
    let expect = src.estimate(filter);
    let mut out = Gather::new(filter.limit, expect);
    let mut names = Names::default();
    for x in src.memory.iter().filter(|x| filter.matches(x)) {
        let service = names.intern(&x.service);
        out.push(x.end_ns(), x.elapsed_ns, x.error, x.trace_id, &x.span_id, service, x.sql_ns, x.api_ns, x.cpu_ns);
    }
    // Pages dealt out in turn, so that every thread starts with the most recent ones.
    let pages: Vec<(&XSegmentMeta, u32)> = src.pages(filter).collect();
    let parts: Vec<Result<(Gather, Names), StorageError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..SCAN_THREADS)
            .map(|t| {
                let mine: Vec<(&XSegmentMeta, u32)> = pages.iter().skip(t).step_by(SCAN_THREADS).copied().collect();
                sc.spawn(move || scan_points(src, filter, &mine, expect / SCAN_THREADS + 1))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("scan threads do not panic")).collect()
    });
    for part in parts {
        let (g, part_names) = part?;
        let map: Vec<u32> = part_names.list.iter().map(|s| names.intern(s)).collect();
        out.p.truncated |= g.p.truncated;
        let p = &mut out.p;
        p.end_ns.extend(&g.p.end_ns);
        p.elapsed_ns.extend(&g.p.elapsed_ns);
        p.error.extend(&g.p.error);
        p.trace_id.extend(&g.p.trace_id);
        p.service.extend(g.p.service.iter().map(|i| map[*i as usize]));
        p.sql_ns.extend(&g.p.sql_ns);
        p.api_ns.extend(&g.p.api_ns);
        p.cpu_ns.extend(&g.p.cpu_ns);
        out.ids.extend(&g.ids);
    }
    Ok(out.finish(names.list))
}

/// Service names of a scan, numbered by first appearance.
#[derive(Default)]
struct Names {
    index: FxHashMap<String, u32>,
    list: Vec<String>,
}

impl Names {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), self.list.len() as u32 - 1);
        self.list.len() as u32 - 1
    }
}

fn scan_points<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
    pages: &[(&XSegmentMeta, u32)],
    expect: usize,
) -> Result<(Gather, Names), StorageError> {
    let mut out = Gather::new(filter.limit, expect);
    let mut names = Names::default();
    for &(meta, page) in pages {
        if !out.wants(meta.page_ends[page as usize].1) {
            out.p.truncated = true;
            continue;
        }
        let mut columns = filter.columns(meta);
        for c in [cols::ELAPSED, cols::ERROR, cols::SERVICE, cols::SQL_NS, cols::API_NS, cols::CPU] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let page = match Page::fetch(meta, page, &columns, |want| (src.fetch)(meta, want)) {
            Ok(p) => p,
            // Dropped by retention while the scan ran: as if it had run a moment later.
            Err(StorageError::PartitionDropped(_)) => continue,
            Err(e) => return Err(e),
        };
        let found = scan_page_points(&page, filter, &mut out, &mut names).map_err(|e| e.within(|| page.place()));
        found?;
    }
    Ok((out, names))
}

/// The matching points of one page.
fn scan_page_points(
    page: &Page<'_>,
    filter: &XLogFilter,
    out: &mut Gather,
    names: &mut Names,
) -> Result<(), StorageError> {
    let (rows, ends) = filter.page_matches(page)?;
    if rows.is_empty() {
        return Ok(());
    }
    let n = page.rows;
    let trace_ids = col::decode_trace_ids(&page.fixed(cols::TRACE_ID)?, n)?;
    let span_ids = col::decode_span_ids(&page.fixed(cols::SPAN_ID)?, n)?;
    let elapsed = page.varints(cols::ELAPSED)?;
    let errors = col::decode_u8(&page.fixed(cols::ERROR)?, n)?;
    let (sql, api, cpu) = (page.varints(cols::SQL_NS)?, page.varints(cols::API_NS)?, page.varints(cols::CPU)?);
    let body = page.fixed(cols::SERVICE)?;
    let (dict, codes) = col::decode_dict_codes(&body, n)?;
    let global: Vec<u32> = dict.iter().map(|s| names.intern(s)).collect();
    for r in rows {
        let service = global[codes[r] as usize];
        out.push(ends[r], elapsed[r], errors[r] != 0, trace_ids[r], &span_ids[r], service, sql[r], api[r], cpu[r]);
    }
    Ok(())
}

/// Full records of the matching transactions, oldest first, and whether the limit cut some.
/// Each record once: of several copies, the most complete (`XLog::completeness`).
pub fn records<F: Fn(&XSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
) -> Result<(Vec<XLog>, bool), StorageError> {
    // The best copy of each record seen so far: a copy enters only if it beats it.
    let mut best: FxHashMap<u128, (u64, u64)> = FxHashMap::default();
    let mut better = |id: u128, c: (u64, u64)| match best.get(&id) {
        Some(b) if *b >= c => false,
        _ => {
            best.insert(id, c);
            true
        }
    };
    let mut latest: Latest<XLog> = Latest::new(filter.limit, filter.limit);
    for x in src.memory.iter().filter(|x| filter.matches(x)) {
        if better(identity(&x.trace_id, &x.span_id), x.completeness()) {
            latest.push(x.end_ns(), x.clone());
        }
    }
    for (meta, page) in src.pages(filter) {
        if !latest.wants(meta.page_ends[page as usize].1) {
            latest.truncated = true;
            continue;
        }
        let fetch = |want: &[(u16, u32)]| (src.fetch)(meta, want);
        let mut columns = filter.columns(meta);
        for c in [cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let probe = match Page::fetch(meta, page, &columns, fetch) {
            Ok(p) => p,
            Err(StorageError::PartitionDropped(_)) => continue,
            Err(e) => return Err(e),
        };
        let at = |e: StorageError| e.within(|| probe.place());
        let (rows, ends) = filter.page_matches(&probe).map_err(at)?;
        if rows.is_empty() {
            continue;
        }
        let trace_ids = col::decode_trace_ids(&probe.fixed(cols::TRACE_ID)?, probe.rows).map_err(at)?;
        let span_ids = col::decode_span_ids(&probe.fixed(cols::SPAN_ID)?, probe.rows).map_err(at)?;
        let [sql_count, sql_ns, api_count, api_ns] =
            [cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS].map(|c| probe.varints(c).map_err(at));
        let (sql_count, sql_ns, api_count, api_ns) = (sql_count?, sql_ns?, api_count?, api_ns?);
        let rows: Vec<usize> = rows
            .into_iter()
            .filter(|&r| {
                let c = (sql_count[r].saturating_add(api_count[r]), sql_ns[r].saturating_add(api_ns[r]));
                latest.wants(ends[r]) && better(identity(&trace_ids[r], &span_ids[r]), c)
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let full = match Page::fetch(meta, page, &super::segment::all_columns(meta), fetch) {
            Ok(p) => p,
            Err(StorageError::PartitionDropped(_)) => continue,
            Err(e) => return Err(e),
        };
        for x in full.records(&rows).map_err(|e| e.within(|| full.place()))? {
            latest.push(x.end_ns(), x);
        }
    }
    let (kept, truncated) = latest.finish();
    // A copy that was beaten after it entered is left out here.
    let mut emitted: FxHashSet<u128> = FxHashSet::default();
    let records = kept
        .into_iter()
        .map(|(_, x)| x)
        .filter(|x| {
            let id = identity(&x.trace_id, &x.span_id);
            best.get(&id) == Some(&x.completeness()) && emitted.insert(id)
        })
        .collect();
    Ok((records, truncated))
}

#[cfg(test)]
mod tests;
