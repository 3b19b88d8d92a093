//! The scatter: one point per matching transaction, gathered column by column on several threads,
//! each record once, the latest `limit` kept.

use rustc_hash::FxHashMap;

use super::filter::XLogFilter;
use super::scan::{identity, Sources};
use super::segment::{cols, XLogSegmentMeta, XPage};
use crate::codec::column as col;
use crate::error::StorageError;
use crate::model::{SpanId, TraceId};
use crate::table::top::Cutoff;
use crate::table::Fetched;

/// Scans run on this many threads: page decoding is most of a large scatter's time.
const SCAN_THREADS: usize = 2;

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
    cutoff: Cutoff,
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
        Self { p, ids: Vec::with_capacity(cap), cutoff: Cutoff::new(limit) }
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
        if !self.cutoff.admit(end) {
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
        if self.cutoff.full(self.ids.len()) {
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
        let held = order.len();
        order.drain(..held.saturating_sub(self.cutoff.limit));
        self.cutoff.cut(held, order.first().map(|(e, _, _)| *e));
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
        self.p.truncated = self.cutoff.truncated();
        self.p
    }
}

pub fn points<F: Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched + Sync>(
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
    let pages: Vec<(&XLogSegmentMeta, u32)> = src.pages(filter);
    let parts: Vec<Result<(Gather, Names), StorageError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..SCAN_THREADS)
            .map(|t| {
                let mine: Vec<(&XLogSegmentMeta, u32)> = pages.iter().skip(t).step_by(SCAN_THREADS).copied().collect();
                sc.spawn(move || scan_points(src, filter, &mine, expect / SCAN_THREADS + 1))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("scan threads do not panic")).collect()
    });
    for part in parts {
        let (g, part_names) = part?;
        let map: Vec<u32> = part_names.list.iter().map(|s| names.intern(s)).collect();
        out.cutoff.merge(&g.cutoff);
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

fn scan_points<F: Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
    pages: &[(&XLogSegmentMeta, u32)],
    expect: usize,
) -> Result<(Gather, Names), StorageError> {
    let mut out = Gather::new(filter.limit, expect);
    let mut names = Names::default();
    for &(meta, page) in pages {
        if !out.cutoff.wants(meta.page_ends[page as usize].1) {
            out.cutoff.skipped();
            continue;
        }
        let mut columns = filter.columns(meta);
        for c in [cols::ELAPSED, cols::ERROR, cols::SERVICE, cols::SQL_NS, cols::API_NS, cols::CPU] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let page = match XPage::fetch(meta, page, &columns, |want| (src.fetch)(meta, want)) {
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
    page: &XPage<'_>,
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
