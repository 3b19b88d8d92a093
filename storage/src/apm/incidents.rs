//! The incident finder: the windows where a service, a dependency or a link left its own
//! baseline, found in the statistics alone. The method (documented in `docs/INCIDENTS.md`):
//!
//! 1. Every subject (a service's transactions, the calls a virtual node receives, the calls over
//!    a link) is cut into minutes; each minute's error rate, slow rate and average latency is
//!    scored against the subject's own trailing baseline, the minutes before it that were not
//!    flagged themselves, as a robust z-score: (x − median) / (1.4826 · MAD), with a floor on
//!    the scale so that a flat baseline does not turn noise into incidents.
//! 2. Flagged minutes of a subject merge into windows, and each window's edges are found to the
//!    second from second rows: the stretch of seconds around it whose calls exceed, in sum, the
//!    level halfway between the baseline and the window (a scan statistic).
//! 3. Overlapping windows of all subjects are one incident; its worst service and worst link are
//!    the highest scores, walking down to a callee that scores at least half as high (the
//!    dependency that failed, rather than every caller it dragged along).

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::figures::Schema;
use super::semconv::NodeKind;
use crate::codec::Reader;
use crate::error::StorageError;
use crate::stats::hist::Hist;
use crate::stats::table::Resolution;
use crate::stats::{Cell, Key, Summary};
use crate::store::Store;

/// The finder's parameters (see `docs/INCIDENTS.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinderParams {
    /// The trailing baseline, seconds (whole minutes).
    pub baseline_s: u64,
    /// A minute whose robust z-score reaches this is flagged.
    pub z: f64,
    /// Minutes with fewer calls are not judged.
    pub min_count: u64,
    /// A baseline needs this many judged minutes.
    pub min_baseline_minutes: usize,
    /// Scale floors: error and slow rates (a share), and latency (a share of the median).
    pub rate_floor: f64,
    pub latency_floor: f64,
    /// Windows shorter than this (after refinement), seconds, are dropped.
    pub min_len_s: u64,
    /// Windows of different subjects this close, seconds, are one incident.
    pub join_s: u64,
}

impl Default for FinderParams {
    fn default() -> Self {
        Self {
            baseline_s: 1800,
            z: 5.0,
            min_count: 10,
            min_baseline_minutes: 10,
            rate_floor: 0.01,
            latency_floor: 0.1,
            min_len_s: 5,
            join_s: 30,
        }
    }
}

/// How far before and after its flagged minutes a window's edges are looked for, seconds.
const EDGE_SEARCH_S: u64 = 180;

/// Subject windows refined and explained per search, the highest scores: each reads its own
/// second rows and histograms.
pub const MAX_WINDOWS: usize = 200;

#[derive(Debug, Clone)]
pub struct IncidentQuery {
    /// Unix seconds, `[from, to)`.
    pub from_s: u64,
    pub to_s: u64,
    /// Only this service and the links into and out of it.
    pub service: Option<String>,
    pub params: FinderParams,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LinkName {
    pub source: String,
    pub target: String,
}

/// One subject's part in an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct SubjectWindow {
    /// A service or virtual node's name, or `source → target`.
    pub subject: String,
    pub kind: &'static str,
    pub start_ms: u64,
    pub end_ms: u64,
    pub score: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Incident {
    pub start_ms: u64,
    pub end_ms: u64,
    /// `critical` at three times the threshold's score, else `warning`.
    pub severity: &'static str,
    pub score: f64,
    pub worst_service: Option<String>,
    pub worst_link: Option<LinkName>,
    pub reason: String,
    /// Every subject that left its baseline, worst first.
    pub subjects: Vec<SubjectWindow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Incidents {
    pub from_ms: u64,
    pub to_ms: u64,
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Subject {
    Node(Arc<str>),
    Link(Arc<str>, Arc<str>),
}

impl Subject {
    fn name(&self) -> String {
        match self {
            Subject::Node(n) => n.to_string(),
            Subject::Link(s, t) => format!("{s} → {t}"),
        }
    }
}

/// What a key counts for: a service's own transactions, or a call that counts for its link and,
/// when the callee is virtual, for the callee.
fn subjects_of(key: &Key, only: Option<&str>) -> (Option<Subject>, Option<Subject>) {
    match key {
        Key::Node { service, .. } => {
            (only.is_none_or(|s| s == &**service).then(|| Subject::Node(service.clone())), None)
        }
        Key::Link { source, target, target_kind, .. } => {
            if only.is_some_and(|s| s != &**source && s != &**target) {
                return (None, None);
            }
            let node = (*target_kind != NodeKind::Server).then(|| Subject::Node(target.clone()));
            (Some(Subject::Link(source.clone(), target.clone())), node)
        }
    }
}

/// Which stored keys count for `subject`: a filter for reading its rows alone.
fn counts_for(subject: Subject, only: Option<&str>) -> impl Fn(&str) -> bool + Sync {
    let only = only.map(str::to_owned);
    move |k: &str| {
        Key::decode(k).is_ok_and(|key| {
            let (a, b) = subjects_of(&key, only.as_deref());
            a.as_ref() == Some(&subject) || b.as_ref() == Some(&subject)
        })
    }
}

/// The three measures of a stretch of calls.
#[derive(Debug, Clone, Copy)]
struct Measures {
    count: u64,
    error_rate: f64,
    slow_rate: f64,
    latency_ms: f64,
}

fn measures(c: &Summary, schema: Schema) -> Measures {
    let n = c.count.max(1) as f64;
    Measures {
        count: c.count,
        error_rate: Measure::Errors.numerator(c, schema) / n,
        slow_rate: Measure::Slow.numerator(c, schema) / n,
        latency_ms: Measure::Latency.numerator(c, schema) / n,
    }
}

/// What a stretch of calls is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Errors,
    Slow,
    Latency,
}

impl Measure {
    /// What the measure counts in a stretch of calls: errors, slow calls, or milliseconds of
    /// latency (its rate or average is this over the calls).
    fn numerator(self, c: &Summary, schema: Schema) -> f64 {
        let slow_bound = match schema {
            Schema::Fast => 2,
            Schema::Normal => 5,
        };
        match self {
            Measure::Errors => c.errors as f64,
            Measure::Slow => (c.count - c.errors).saturating_sub(c.within[slow_bound]) as f64,
            Measure::Latency => c.sum_ns as f64 / 1e6,
        }
    }
}

/// A cell's sums, without its histograms (which detection does not need).
fn summary(cell: &[u8]) -> Result<Summary, StorageError> {
    Cell::sums(&mut Reader::new(cell))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// A baseline of one measure: its median and the scale of a z-score.
#[derive(Debug, Clone, Copy)]
struct Base {
    median: f64,
    scale: f64,
}

fn base(values: &[f64], floor: f64) -> Base {
    let mut v = values.to_vec();
    let med = median(&mut v);
    let mut dev: Vec<f64> = values.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&mut dev);
    Base { median: med, scale: (1.4826 * mad).max(floor) }
}

/// A subject's baseline at some minute: error, slow and latency, and the median count of its
/// minutes.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    error: Base,
    slow: Base,
    latency: Base,
    calls_per_minute: f64,
}

impl Baseline {
    /// The score of a stretch, and which measure gave it. A stretch of fewer calls than a
    /// baseline minute varies more (the spread of a mean grows as 1/√n): its scale grows alike,
    /// or every quiet second with two slow calls would be an incident.
    fn score(&self, m: &Measures) -> (f64, Measure) {
        let widen = (self.calls_per_minute / m.count.max(1) as f64).sqrt().max(1.0);
        let z = |x: f64, b: &Base| (x - b.median) / (b.scale * widen);
        [
            (z(m.error_rate, &self.error), Measure::Errors),
            (z(m.slow_rate, &self.slow), Measure::Slow),
            (z(m.latency_ms, &self.latency), Measure::Latency),
        ]
        .into_iter()
        .fold((f64::MIN, Measure::Errors), |a, b| if b.0 > a.0 { b } else { a })
    }
}

/// One subject's cells by minute, and what kind of calls they are.
struct Series {
    minutes: BTreeMap<u64, Summary>,
    schema: Schema,
}

/// A flagged stretch of one subject: minutes `[from, to)` (seconds) and the baseline before it.
struct Window {
    subject: Subject,
    from: u64,
    to: u64,
    score: f64,
    baseline: Baseline,
    /// Where the baseline's minutes start, for the reason's figures.
    baseline_from: u64,
    schema: Schema,
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn fmt_pct(r: f64) -> String {
    let p = r * 100.0;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn p99_ms(c: &Cell) -> f64 {
    Hist::quantiles(&[&c.ok, &c.err], &[0.99])[0] as f64 / 1000.0
}

/// "mysql: p99 2.1 s vs 35 ms baseline, errors 18% vs 0.2%".
fn reason(name: &str, during: &Cell, before: &Cell, schema: Schema) -> String {
    let (d, b) = (measures(&during.summary(), schema), measures(&before.summary(), schema));
    let mut parts = vec![format!("p99 {} vs {} baseline", fmt_ms(p99_ms(during)), fmt_ms(p99_ms(before)))];
    if d.error_rate > b.error_rate {
        parts.push(format!("errors {} vs {}", fmt_pct(d.error_rate), fmt_pct(b.error_rate)));
    }
    if d.slow_rate > b.slow_rate {
        parts.push(format!("slow {} vs {}", fmt_pct(d.slow_rate), fmt_pct(b.slow_rate)));
    }
    format!("{name}: {}", parts.join(", "))
}

impl Store {
    pub fn incidents(&self, q: &IncidentQuery) -> Result<Incidents, StorageError> {
        let p = q.params;
        let minute = Resolution::Minute;
        let from = minute.floor(q.from_s);
        let to = minute.floor(q.to_s.saturating_add(59));
        let lookback = from.saturating_sub(p.baseline_s);
        let only = q.service.clone();
        let wants = move |k: &str| match Key::decode(k) {
            Ok(key) => {
                let (a, b) = subjects_of(&key, only.as_deref());
                a.is_some() || b.is_some()
            }
            Err(_) => false,
        };
        let mut series: BTreeMap<Subject, Series> = BTreeMap::new();
        let mut decoded: FxHashMap<String, (Option<Subject>, Option<Subject>, Schema)> = FxHashMap::default();
        let only = q.service.as_deref();
        self.stats_visit(lookback, to, &wants, Resolution::Minute, &mut |t, k, cell| {
            if !decoded.contains_key(k) {
                let key = Key::decode(k)?;
                let schema = match &key {
                    Key::Link { target_kind, .. } => Schema::of(*target_kind),
                    Key::Node { .. } => Schema::Normal,
                };
                let (a, b) = subjects_of(&key, only);
                decoded.insert(k.to_string(), (a, b, schema));
            }
            let (a, b, schema) = &decoded[k];
            let sum = summary(cell)?;
            for s in [a, b].into_iter().flatten() {
                let e = series.entry(s.clone()).or_insert_with(|| Series { minutes: BTreeMap::new(), schema: *schema });
                e.minutes.entry(minute.floor(t)).or_default().add(&sum);
            }
            Ok(())
        })?;
        let mut windows = Vec::new();
        for (subject, s) in &series {
            windows.extend(flag(subject, s, from, to, &p));
        }
        // Each window costs reads of its own: a search answers the worst `MAX_WINDOWS`.
        windows.sort_by(|a, b| b.score.total_cmp(&a.score));
        windows.truncate(MAX_WINDOWS);
        // Edges to the second.
        for w in &mut windows {
            self.refine(w, q.service.as_deref())?;
        }
        windows.retain(|w| w.to - w.from >= p.min_len_s);
        let mut reasons = Vec::with_capacity(windows.len());
        for w in &windows {
            let during = self.subject_cell(&w.subject, q.service.as_deref(), w.from, w.to)?;
            let before = self.subject_cell(&w.subject, q.service.as_deref(), w.baseline_from, minute.floor(w.from))?;
            reasons.push(reason(&w.subject.name(), &during, &before, w.schema));
        }
        let windows: Vec<(Window, String)> = windows.into_iter().zip(reasons).collect();
        let incidents = self.group(windows, &p)?;
        Ok(Incidents { from_ms: from * 1000, to_ms: to * 1000, incidents })
    }

    /// Finds a window's edges to the second, from the subject's second rows from `EDGE_SEARCH_S`
    /// before its flagged minutes to as long after: a weak shift may begin minutes before the
    /// first minute it moved by `z`.
    fn refine(&self, w: &mut Window, only: Option<&str>) -> Result<(), StorageError> {
        let (lo, hi) = (w.from.saturating_sub(EDGE_SEARCH_S), w.to + EDGE_SEARCH_S);
        let wants = counts_for(w.subject.clone(), only);
        let mut secs: BTreeMap<u64, Summary> = BTreeMap::new();
        let (got_lo, _) = self.stats_visit(lo, hi, &wants, Resolution::Second, &mut |t, _, cell| {
            secs.entry(t).or_default().add(&summary(cell)?);
            Ok(())
        })?;
        if got_lo != lo {
            // Second rows are gone (older than the replay window): minutes it is.
            return Ok(());
        }
        // The scan statistic of a shift in the mean: each second's excess over the level halfway
        // between the baseline and the window's own, and the stretch of seconds whose excesses
        // add up to the most. It integrates over the stretch, so a weak shift (a few points of
        // errors, a few calls a second) gets edges as sharp as a strong one.
        let mut during = Summary::default();
        secs.range(w.from..w.to).for_each(|(_, c)| during.add(c));
        let d = measures(&during, w.schema);
        let b = &w.baseline;
        let which = b.score(&d).1;
        let (base, level) = match which {
            Measure::Errors => (b.error.median, d.error_rate),
            Measure::Slow => (b.slow.median, d.slow_rate),
            Measure::Latency => (b.latency.median, d.latency_ms),
        };
        let numerator = |c: &Summary| which.numerator(c, w.schema);
        if level <= base {
            return Ok(());
        }
        let halfway = (base + level) / 2.0;
        let (mut best, mut best_at) = (0.0, None);
        let (mut run, mut run_from) = (0.0, lo);
        for t in lo..hi {
            let excess = secs.get(&t).map_or(0.0, |c| numerator(c) - c.count as f64 * halfway);
            if run <= 0.0 {
                (run, run_from) = (0.0, t);
            }
            run += excess;
            if run > best {
                (best, best_at) = (run, Some((run_from, t + 1)));
            }
        }
        if let Some((from, to)) = best_at {
            (w.from, w.to) = (from, to);
        }
        Ok(())
    }

    /// The subject's full cells over `[from, to)`, merged: for the reason's percentiles.
    fn subject_cell(&self, subject: &Subject, only: Option<&str>, from: u64, to: u64) -> Result<Cell, StorageError> {
        let wants = counts_for(subject.clone(), only);
        let mut cell = Cell::default();
        self.stats_visit(from, to, &wants, Resolution::Hour, &mut |_, _, c| {
            cell.merge(&Cell::decode(&mut Reader::new(c))?);
            Ok(())
        })?;
        Ok(cell)
    }

    /// Overlapping windows as incidents, worst first.
    fn group(&self, mut windows: Vec<(Window, String)>, p: &FinderParams) -> Result<Vec<Incident>, StorageError> {
        windows.sort_by_key(|(w, _)| w.from);
        let mut groups: Vec<Vec<(Window, String)>> = Vec::new();
        for w in windows {
            match groups.last_mut() {
                Some(g) if w.0.from <= g.iter().map(|x| x.0.to).max().unwrap_or(0) + p.join_s => g.push(w),
                _ => groups.push(vec![w]),
            }
        }
        let mut out: Vec<Incident> = groups.into_iter().map(|g| incident(g, p)).collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    }
}

/// The flagged minutes of one subject in `[from, to)`, merged into windows.
fn flag(subject: &Subject, s: &Series, from: u64, to: u64, p: &FinderParams) -> Vec<Window> {
    let baseline_minutes = (p.baseline_s / 60).max(1) as usize;
    // Judged, unflagged minutes: the baseline's pool, most recent last.
    let mut pool: Vec<(u64, Measures)> = Vec::new();
    let mut out: Vec<Window> = Vec::new();
    let mut open: Option<Window> = None;
    for (t, sum) in &s.minutes {
        let m = measures(sum, s.schema);
        let recent: Vec<&(u64, Measures)> =
            pool.iter().rev().take_while(|(pt, _)| t - pt <= p.baseline_s).take(baseline_minutes).collect();
        let mut flagged = None;
        if *t >= from && *t < to && m.count >= p.min_count && recent.len() >= p.min_baseline_minutes {
            let vals = |f: fn(&Measures) -> f64| recent.iter().map(|(_, m)| f(m)).collect::<Vec<f64>>();
            let lat = vals(|m| m.latency_ms);
            let lat_med = median(&mut lat.clone());
            let b = Baseline {
                error: base(&vals(|m| m.error_rate), p.rate_floor),
                slow: base(&vals(|m| m.slow_rate), p.rate_floor),
                latency: base(&lat, (lat_med * p.latency_floor).max(0.1)),
                calls_per_minute: median(&mut vals(|m| m.count as f64)),
            };
            let (score, _) = b.score(&m);
            if score >= p.z {
                let oldest = recent.last().map_or(*t, |(pt, _)| *pt);
                flagged = Some((score, b, oldest));
            }
        }
        match flagged {
            Some((score, b, oldest)) => match &mut open {
                Some(w) if *t <= w.to + 60 => {
                    w.to = t + 60;
                    w.score = w.score.max(score);
                }
                _ => {
                    out.extend(open.take());
                    open = Some(Window {
                        subject: subject.clone(),
                        from: *t,
                        to: t + 60,
                        score,
                        baseline: b,
                        baseline_from: oldest,
                        schema: s.schema,
                    });
                }
            },
            None => {
                if m.count >= p.min_count {
                    pool.push((*t, m));
                }
            }
        }
    }
    out.extend(open);
    out
}

fn incident(mut g: Vec<(Window, String)>, p: &FinderParams) -> Incident {
    g.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    let worst_of = |link: bool| -> Option<usize> {
        let is = |w: &Window| matches!(w.subject, Subject::Link(..)) == link;
        let mut at = g.iter().position(|(w, _)| is(w))?;
        // Down the call chain while a callee scores at least half as high.
        loop {
            let next = g.iter().position(|(w, _)| {
                is(w)
                    && w.score >= 0.5 * g[at].0.score
                    && match (&g[at].0.subject, &w.subject) {
                        (Subject::Node(a), Subject::Node(b)) => {
                            g.iter().any(|(l, _)| matches!(&l.subject, Subject::Link(s, t) if s == a && t == b))
                        }
                        (Subject::Link(_, t), Subject::Link(s, _)) => s == t,
                        _ => false,
                    }
            });
            match next {
                Some(n) if n != at => at = n,
                _ => return Some(at),
            }
        }
    };
    let (ws, wl) = (worst_of(false), worst_of(true));
    let score = g.first().map_or(0.0, |(w, _)| w.score);
    let start = g.iter().map(|(w, _)| w.from).min().unwrap_or(0);
    let end = g.iter().map(|(w, _)| w.to).max().unwrap_or(0);
    let subjects: Vec<SubjectWindow> = g
        .iter()
        .map(|(w, reason)| SubjectWindow {
            subject: w.subject.name(),
            kind: if matches!(w.subject, Subject::Link(..)) { "link" } else { "node" },
            start_ms: w.from * 1000,
            end_ms: w.to * 1000,
            score: (w.score * 10.0).round() / 10.0,
            reason: reason.clone(),
        })
        .collect();
    let name = |i: Option<usize>| i.map(|i| &g[i].0.subject);
    Incident {
        start_ms: start * 1000,
        end_ms: end * 1000,
        severity: if score >= 3.0 * p.z { "critical" } else { "warning" },
        score: (score * 10.0).round() / 10.0,
        worst_service: name(ws).map(Subject::name),
        worst_link: match name(wl) {
            Some(Subject::Link(s, t)) => Some(LinkName { source: s.to_string(), target: t.to_string() }),
            _ => None,
        },
        reason: ws.or(wl).map_or_else(String::new, |i| subjects[i].reason.clone()),
        subjects,
    }
}
