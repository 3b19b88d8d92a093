//! One trace as a call stack, in Pinpoint's columns: every span a row in tree order (children by
//! start time), its span events (exceptions first of all) as rows of their own.
//!
//! Real traces are not always trees, and each departure is shown rather than hidden:
//! - **a missing parent** (not exported, dropped, or still on its way): its orphans go under one
//!   placeholder row per missing id, at the top level;
//! - **clock skew** between hosts: a child on another host that starts before its parent or ends
//!   after it is moved inside it, centred, with its subtree, as Jaeger's adjuster does; the row
//!   carries the shift (`skew_ms`);
//! - **a span id repeated** with different content (reads already keep one copy of a retried
//!   span): the later copies are shown as siblings of the first, flagged, and children attach to
//!   the first;
//! - **a cycle** of parent links: broken at its earliest span, which is shown as a root, flagged.
//!
//! Work is O(n log n) in spans and events; the answer is one page of rows (`offset`, `limit`), so
//! a trace of 100,000 spans costs one sort and returns what a screen shows.

use std::cmp::Reverse;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::model::{kind, status, Span, SpanId, Value};

/// Rows per page when none is asked, and at most.
pub const DEFAULT_ROWS: usize = 2_000;
pub const MAX_ROWS: usize = 20_000;

/// Attributes that say what a call was about, in order of preference: the statement, the URL,
/// the destination (old and new semantic-convention names).
const ARGUMENT: &[&str] = &[
    "db.query.text",
    "db.statement",
    "url.full",
    "http.url",
    "http.target",
    "url.path",
    "messaging.destination.name",
    "messaging.destination",
    "rpc.method",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowType {
    Span,
    /// A span event named `exception`.
    Exception,
    /// Any other span event.
    Event,
    /// Stands for a parent span the trace refers to but does not hold.
    MissingParent,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExceptionInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub stacktrace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Row {
    /// Position in tree order, from 0 (over the whole tree, not the page).
    pub row: usize,
    pub depth: u32,
    #[serde(rename = "type")]
    pub row_type: RowType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The span's (or event's) name: Pinpoint's "method".
    pub name: String,
    /// The SQL statement, URL or destination; an event's attributes.
    pub argument: String,
    /// Milliseconds from the trace's start (after skew adjustment).
    pub start_ms: f64,
    /// Milliseconds from the previous row's start.
    pub gap_ms: f64,
    pub exec_ms: f64,
    /// Share of the trace's duration, percent.
    pub exec_pct: f64,
    /// Exec time not covered by any child.
    pub self_ms: f64,
    pub service: String,
    pub instance: String,
    /// The span kind (`server`, `client`, …); empty on event and placeholder rows.
    pub kind: &'static str,
    /// `ok`, `error` or `unset`.
    pub status: &'static str,
    pub error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionInfo>,
    /// How far the row was moved to fit inside its parent (clock skew between hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<f64>,
    /// `skew_adjusted`, `duplicate_id`, `cycle`, `orphan`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
}

/// What the trace held that a tree does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Anomalies {
    pub missing_parents: usize,
    pub orphans: usize,
    pub skew_adjusted: usize,
    pub duplicate_ids: usize,
    pub cycles_broken: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallTree {
    /// Unix milliseconds of the trace's first start (after adjustment).
    pub start_ms: f64,
    pub duration_ms: f64,
    pub span_count: usize,
    pub total_rows: usize,
    pub offset: usize,
    /// Where the next page starts, when there is one.
    pub next_offset: Option<usize>,
    pub anomalies: Anomalies,
    pub rows: Vec<Row>,
}

/// An entry of the tree, before it becomes a row.
#[derive(Clone, Copy)]
enum Item {
    Span(usize),
    Event {
        span: usize,
        event: usize,
    },
    /// The index into the missing parent ids.
    Missing(usize),
}

struct Placed {
    item: Item,
    depth: u32,
}

/// How the spans hang together.
struct Shape {
    /// The tree parent of each span: `None` for roots, orphans and broken cycles.
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// Of each missing parent id: its orphans.
    missing: Vec<(SpanId, Vec<usize>)>,
    /// Spans at the top: roots (no parent id) and, later, broken cycles.
    roots: Vec<usize>,
    duplicate: Vec<bool>,
    orphan: Vec<bool>,
    cycle: Vec<bool>,
}

fn shape(spans: &[Span]) -> Shape {
    let n = spans.len();
    let mut first: FxHashMap<SpanId, usize> = FxHashMap::default();
    let mut duplicate = vec![false; n];
    for (i, s) in spans.iter().enumerate() {
        match first.entry(s.span_id) {
            std::collections::hash_map::Entry::Occupied(_) => duplicate[i] = true,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    let mut sh = Shape {
        parent: vec![None; n],
        children: vec![Vec::new(); n],
        missing: Vec::new(),
        roots: Vec::new(),
        duplicate,
        orphan: vec![false; n],
        cycle: vec![false; n],
    };
    let mut missing_at: FxHashMap<SpanId, usize> = FxHashMap::default();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id {
            None => sh.roots.push(i),
            Some(p) => match first.get(&p) {
                Some(&at) => {
                    sh.parent[i] = Some(at);
                    sh.children[at].push(i);
                }
                None => {
                    let m = *missing_at.entry(p).or_insert_with(|| {
                        sh.missing.push((p, Vec::new()));
                        sh.missing.len() - 1
                    });
                    sh.missing[m].1.push(i);
                    sh.orphan[i] = true;
                }
            },
        }
    }
    sh
}

impl CallTree {
    /// The tree of a trace's spans (in any order), and the rows `[offset, offset + limit)` of it.
    pub fn build(mut spans: Vec<Span>, offset: usize, limit: usize) -> CallTree {
        spans.sort_by_key(|s| (s.start_ns, s.span_id));
        build_sorted(&spans, offset, limit.clamp(1, MAX_ROWS))
    }
}

fn build_sorted(spans: &[Span], offset: usize, limit: usize) -> CallTree {
    let n = spans.len();
    let mut sh = shape(spans);
    let mut anomalies = Anomalies {
        missing_parents: sh.missing.len(),
        orphans: sh.orphan.iter().filter(|o| **o).count(),
        duplicate_ids: sh.duplicate.iter().filter(|d| **d).count(),
        ..Anomalies::default()
    };
    // Shift of each span for clock skew (ns, signed), known once its tree parent's is.
    let mut shift: Vec<i64> = vec![0; n];
    let mut adjusted = vec![false; n];
    let mut visited = vec![false; n];
    let mut order: Vec<Placed> = Vec::with_capacity(n);

    // The top level: roots and placeholders, by start.
    let mut top: Vec<(u64, Item)> = sh.roots.iter().map(|&i| (spans[i].start_ns, Item::Span(i))).collect();
    for (m, (_, orphans)) in sh.missing.iter().enumerate() {
        top.push((orphans.iter().map(|&i| spans[i].start_ns).min().unwrap_or(0), Item::Missing(m)));
    }
    top.sort_by_key(|(t, _)| *t);
    let mut stack: Vec<Placed> = top.into_iter().rev().map(|(_, item)| Placed { item, depth: 0 }).collect();
    let clock_of = |s: &Span| -> (String, String) {
        match s.resource.get_str("host.name") {
            Some(h) => (String::new(), h.to_owned()),
            None => (s.service.to_string(), s.resource.instance().unwrap_or_default().to_owned()),
        }
    };
    loop {
        while let Some(p) = stack.pop() {
            let mut next: Vec<(u64, Item)> = Vec::new();
            match p.item {
                Item::Span(i) => {
                    if visited[i] {
                        continue;
                    }
                    visited[i] = true;
                    if let Some(par) = sh.parent[i] {
                        shift[i] = shift[par];
                        if clock_of(&spans[i]) != clock_of(&spans[par]) {
                            let skew = skew(&spans[par], shift[par], &spans[i], shift[i]);
                            if skew != 0 {
                                shift[i] += skew;
                                adjusted[i] = true;
                            }
                        }
                    }
                    for &c in &sh.children[i] {
                        next.push((spans[c].start_ns, Item::Span(c)));
                    }
                    for (e, ev) in spans[i].events.iter().enumerate() {
                        next.push((ev.time_ns, Item::Event { span: i, event: e }));
                    }
                }
                Item::Missing(m) => {
                    for &c in &sh.missing[m].1 {
                        next.push((spans[c].start_ns, Item::Span(c)));
                    }
                }
                Item::Event { .. } => {}
            }
            let depth = p.depth;
            order.push(p);
            next.sort_by_key(|(t, _)| Reverse(*t));
            // Children were sorted by start; events by time among them (stable for equal times).
            stack.extend(next.into_iter().map(|(_, item)| Placed { item, depth: depth + 1 }));
        }
        // What no root reaches hangs from a cycle: break it at its earliest span.
        let Some(first) = (0..n).find(|&i| !visited[i]) else { break };
        let start = in_cycle(&sh.parent, first, &visited);
        let members = cycle_members(&sh.parent, start);
        let root = members.into_iter().min_by_key(|&i| (spans[i].start_ns, i)).expect("a cycle has members");
        if let Some(par) = sh.parent[root].take() {
            sh.children[par].retain(|&c| c != root);
        }
        sh.cycle[root] = true;
        anomalies.cycles_broken += 1;
        stack.push(Placed { item: Item::Span(root), depth: 0 });
    }
    anomalies.skew_adjusted = adjusted.iter().filter(|a| **a).count();

    let start = |i: usize| (spans[i].start_ns as i64).saturating_add(shift[i]);
    let end = |i: usize| start(i).saturating_add(spans[i].duration_ns as i64);
    let trace_start = (0..n).map(start).min().unwrap_or(0);
    let trace_end = (0..n).map(end).max().unwrap_or(0);
    let duration = (trace_end - trace_start).max(0);
    let ms = |ns: i64| ns as f64 / 1e6;
    let pct = |ns: i64| if duration == 0 { 0.0 } else { ns as f64 * 100.0 / duration as f64 };

    let total_rows = order.len();
    let offset = offset.min(total_rows);
    let page_end = offset.saturating_add(limit).min(total_rows);
    let mut rows = Vec::with_capacity(page_end - offset);
    for (r, placed) in order.iter().enumerate().take(page_end).skip(offset) {
        let (t0, row) = match placed.item {
            Item::Span(i) => {
                let s = &spans[i];
                let (t0, t1) = (start(i), end(i));
                let mut flags = Vec::new();
                if adjusted[i] {
                    flags.push("skew_adjusted");
                }
                if sh.duplicate[i] {
                    flags.push("duplicate_id");
                }
                if sh.cycle[i] {
                    flags.push("cycle");
                }
                if sh.orphan[i] {
                    flags.push("orphan");
                }
                let row = Row {
                    row: r,
                    depth: placed.depth,
                    row_type: RowType::Span,
                    span_id: Some(s.span_id.to_string()),
                    parent_span_id: s.parent_span_id.map(|p| p.to_string()),
                    name: s.name.to_string(),
                    argument: argument(s),
                    start_ms: ms(t0 - trace_start),
                    gap_ms: 0.0,
                    exec_ms: ms(t1 - t0),
                    exec_pct: pct(t1 - t0),
                    self_ms: ms(self_ns(i, &sh.children[i], &start, &end)),
                    service: s.service.to_string(),
                    instance: s.resource.instance().unwrap_or_default().to_owned(),
                    kind: kind::name(s.kind),
                    status: status_name(s.status_code),
                    error: s.status_code == status::ERROR,
                    exception: None,
                    skew_ms: adjusted[i].then(|| ms(shift[i] - sh.parent[i].map_or(0, |p| shift[p]))),
                    flags,
                };
                (t0, row)
            }
            Item::Event { span, event } => {
                let s = &spans[span];
                let e = &s.events[event];
                let t0 = (e.time_ns as i64).saturating_add(shift[span]);
                let attr = |k: &str| {
                    e.attributes.iter().find(|(ek, _)| **ek == *k).map(|(_, v)| value_text(v)).unwrap_or_default()
                };
                let exception = (e.name == "exception").then(|| ExceptionInfo {
                    kind: attr("exception.type"),
                    message: attr("exception.message"),
                    stacktrace: attr("exception.stacktrace"),
                });
                let argument = match &exception {
                    Some(x) if x.message.is_empty() => x.kind.clone(),
                    Some(x) => format!("{}: {}", x.kind, x.message),
                    None => {
                        e.attributes.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(" ")
                    }
                };
                let row = Row {
                    row: r,
                    depth: placed.depth,
                    row_type: if exception.is_some() { RowType::Exception } else { RowType::Event },
                    span_id: Some(s.span_id.to_string()),
                    parent_span_id: None,
                    name: e.name.clone(),
                    argument,
                    start_ms: ms(t0 - trace_start),
                    gap_ms: 0.0,
                    exec_ms: 0.0,
                    exec_pct: 0.0,
                    self_ms: 0.0,
                    service: s.service.to_string(),
                    instance: s.resource.instance().unwrap_or_default().to_owned(),
                    kind: "",
                    status: if exception.is_some() { "error" } else { "unset" },
                    error: exception.is_some(),
                    exception,
                    skew_ms: None,
                    flags: Vec::new(),
                };
                (t0, row)
            }
            Item::Missing(m) => {
                let (id, orphans) = &sh.missing[m];
                let t0 = orphans.iter().map(|&i| start(i)).min().unwrap_or(trace_start);
                let t1 = orphans.iter().map(|&i| end(i)).max().unwrap_or(t0);
                let row = Row {
                    row: r,
                    depth: placed.depth,
                    row_type: RowType::MissingParent,
                    span_id: Some(id.to_string()),
                    parent_span_id: None,
                    name: format!("(missing span {id})"),
                    argument: format!("{} span(s) refer to this parent, which the trace does not hold", orphans.len()),
                    start_ms: ms(t0 - trace_start),
                    gap_ms: 0.0,
                    exec_ms: ms(t1 - t0),
                    exec_pct: pct(t1 - t0),
                    self_ms: 0.0,
                    service: String::new(),
                    instance: String::new(),
                    kind: "",
                    status: "unset",
                    error: false,
                    exception: None,
                    skew_ms: None,
                    flags: vec!["missing_parent"],
                };
                (t0, row)
            }
        };
        let _ = t0;
        rows.push(row);
    }
    // Gaps: from the previous row's start, the previous row of the whole tree for the first of
    // a page.
    let row_start = |p: &Placed| -> i64 {
        match p.item {
            Item::Span(i) => start(i),
            Item::Event { span, event } => (spans[span].events[event].time_ns as i64).saturating_add(shift[span]),
            Item::Missing(m) => sh.missing[m].1.iter().map(|&i| start(i)).min().unwrap_or(trace_start),
        }
    };
    for (k, row) in rows.iter_mut().enumerate() {
        let r = offset + k;
        if r > 0 {
            row.gap_ms = ms(row_start(&order[r]) - row_start(&order[r - 1]));
        }
    }
    CallTree {
        start_ms: ms(trace_start),
        duration_ms: ms(duration),
        span_count: n,
        total_rows,
        offset,
        next_offset: (page_end < total_rows).then_some(page_end),
        anomalies,
        rows,
    }
}

/// Jaeger's skew: how far to move a child (already moved by `child_shift`) on another host so
/// it fits inside its parent (moved by `parent_shift`); 0 when it fits. A child longer than its
/// parent is only moved to start with it.
fn skew(parent: &Span, parent_shift: i64, child: &Span, child_shift: i64) -> i64 {
    let ps = parent.start_ns as i64 + parent_shift;
    let pd = parent.duration_ns as i64;
    let cs = child.start_ns as i64 + child_shift;
    let cd = child.duration_ns as i64;
    if cd > pd {
        return if cs < ps { ps - cs } else { 0 };
    }
    if cs >= ps && cs + cd <= ps + pd {
        return 0;
    }
    ps + (pd - cd) / 2 - cs
}

/// A span's time not covered by its children (their union, within the span).
fn self_ns(i: usize, children: &[usize], start: &impl Fn(usize) -> i64, end: &impl Fn(usize) -> i64) -> i64 {
    let (s, e) = (start(i), end(i));
    let mut spans: Vec<(i64, i64)> =
        children.iter().map(|&c| (start(c).max(s), end(c).min(e))).filter(|(a, b)| a < b).collect();
    spans.sort_unstable();
    let mut covered = 0;
    let mut at = s;
    for (a, b) in spans {
        let a = a.max(at);
        if b > a {
            covered += b - a;
            at = b;
        }
    }
    (e - s) - covered
}

/// A span on the parent chain of `from` that is on a cycle (the chain of a span no root reaches
/// never ends at a root, so it comes back on itself).
fn in_cycle(parent: &[Option<usize>], from: usize, visited: &[bool]) -> usize {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut at = from;
    loop {
        if !seen.insert(at) {
            return at;
        }
        match parent[at] {
            Some(p) if !visited[p] => at = p,
            // Reaches the visited part: cannot happen for an unvisited span (it would have been
            // visited from there); treat `at` as the top.
            _ => return at,
        }
    }
}

fn cycle_members(parent: &[Option<usize>], start: usize) -> Vec<usize> {
    let mut out = vec![start];
    let mut at = start;
    while let Some(p) = parent[at] {
        if p == start || out.len() > parent.len() {
            break;
        }
        out.push(p);
        at = p;
    }
    out
}

fn argument(s: &Span) -> String {
    ARGUMENT.iter().find_map(|k| s.attribute(k).map(value_text)).unwrap_or_default()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Empty => String::new(),
        Value::Str(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Array(a) => format!("[{}]", a.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        Value::KvList(kv) => {
            format!("{{{}}}", kv.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

fn status_name(code: u8) -> &'static str {
    match code {
        status::OK => "ok",
        status::ERROR => "error",
        _ => "unset",
    }
}

#[cfg(test)]
mod tests;
