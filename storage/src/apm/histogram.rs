//! Response times of one service (or one of its endpoints or instances) or one link over a
//! range: percentiles, Pinpoint's buckets, and a time series whose step adapts to the range.

use serde::Serialize;

use super::figures::{buckets, percentiles, Buckets, Calc, Schema, Thresholds};
use super::semconv::NodeKind;
use crate::error::StorageError;
use crate::stats::read::{self, Coverage};
use crate::stats::table::Resolution;
use crate::stats::{Cell, Key};
use crate::store::Store;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A service's transactions, all of them or one endpoint's or one instance's.
    Node { service: String, endpoint: Option<String>, instance: Option<String> },
    /// The calls from one node to another.
    Link { source: String, target: String },
}

impl Subject {
    fn wants(&self, key: &Key) -> bool {
        match (self, key) {
            (Subject::Node { service, endpoint, instance }, Key::Node { service: s, endpoint: e, instance: i }) => {
                **s == **service
                    && endpoint.as_deref().is_none_or(|w| w == &**e)
                    && instance.as_deref().is_none_or(|w| w == &**i)
            }
            (Subject::Link { source, target }, Key::Link { source: s, target: t, .. }) => {
                **s == **source && **t == **target
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HistogramQuery {
    pub from_s: u64,
    pub to_s: u64,
    pub subject: Subject,
    /// Seconds between points; at least what keeps the series to about `MAX_POINTS`.
    pub step_s: Option<u64>,
    pub thresholds: Thresholds,
}

/// The series has about this many points at most, unless a coarser step is asked for.
pub const MAX_POINTS: u64 = 1500;
/// Steps a series takes, seconds: the finest that keeps it within `MAX_POINTS`. None between
/// 10 minutes and an hour: a step of 15 or 30 minutes would read minute rows over weeks, where an
/// hour reads hour rows (30 days: 720 points instead of 1,440, and 60 times fewer rows).
const STEPS: [u64; 14] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 3600, 7200, 21_600, 86_400];

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Point {
    pub time_ms: u64,
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct HistogramAnswer {
    pub from_ms: u64,
    pub to_ms: u64,
    /// The series' step.
    pub step_ms: u64,
    pub count: u64,
    pub errors: u64,
    pub slow: u64,
    pub avg_ms: f64,
    pub apdex: Option<f64>,
    pub percentiles: Percentiles,
    pub histogram: Buckets,
    pub series: Vec<Point>,
}

/// The step of a series over `[from, to)`: the finest of `STEPS` within `MAX_POINTS`, no finer
/// than asked, and no finer than the rows kept (minutes, where second rows are gone).
pub fn step_for(from: u64, to: u64, asked: Option<u64>, cover: Coverage) -> u64 {
    step_within(from, to, asked, cover, MAX_POINTS)
}

/// `step_for` with another bound on the points.
pub fn step_within(from: u64, to: u64, asked: Option<u64>, cover: Coverage, max_points: u64) -> u64 {
    let span = to.saturating_sub(from).max(1);
    let finest = if from < cover.seconds_from { 60 } else { 1 };
    let want = span.div_ceil(max_points).max(asked.unwrap_or(1)).max(finest);
    // Past the longest listed step (a range of years): whole days, still within the bound.
    STEPS.iter().copied().find(|s| *s >= want).unwrap_or_else(|| want.div_ceil(86_400).saturating_mul(86_400))
}

/// The coarsest rows a series of this step may read.
pub fn rows_for_step(step: u64) -> Resolution {
    match step {
        s if s >= 3600 => Resolution::Hour,
        s if s >= 60 => Resolution::Minute,
        _ => Resolution::Second,
    }
}

impl Store {
    pub fn histogram(&self, q: &HistogramQuery) -> Result<HistogramAnswer, StorageError> {
        let cover = self.stats_coverage();
        let step = step_for(q.from_s, q.to_s, q.step_s, cover);
        let finest = rows_for_step(step);
        let subject = q.subject.clone();
        let wants = move |k: &str| Key::decode(k).is_ok_and(|k| subject.wants(&k));
        let (mut rows, (from, to)) = self.stats_rows_finer_than(q.from_s, q.to_s, &wants, finest)?;
        // A virtual node (a database, USER…) has no transactions of its own: its figures are
        // those of the calls it receives, as on the map.
        if let (true, Subject::Node { service, endpoint: None, instance: None }) = (rows.is_empty(), &q.subject) {
            let callee = service.clone();
            let calls = move |k: &str| matches!(Key::decode(k), Ok(Key::Link { target, .. }) if *target == *callee);
            rows = self.stats_rows_finer_than(q.from_s, q.to_s, &calls, finest)?.0;
        }
        let mut total = Cell::default();
        let mut kind = NodeKind::Server;
        for (_, k, c) in &rows {
            total.merge(c);
            if let Ok(Key::Link { target_kind, .. }) = Key::decode(k) {
                kind = target_kind;
            }
        }
        let schema = Schema::of(kind);
        let mut calc = Calc::new(q.thresholds);
        let f = calc.figures(&total, schema);
        let p = percentiles(&total, &[0.5, 0.75, 0.9, 0.95, 0.99, 0.999], calc.histogram());
        let series = read::series(&rows, step)
            .into_iter()
            .map(|(t, c)| {
                let p = percentiles(&c, &[0.5, 0.9, 0.99], calc.histogram());
                Point {
                    time_ms: t * 1000,
                    count: c.count(),
                    errors: c.errors(),
                    p50_ms: p[0],
                    p90_ms: p[1],
                    p99_ms: p[2],
                    max_ms: c.max_ns as f64 / 1e6,
                }
            })
            .collect();
        Ok(HistogramAnswer {
            from_ms: from * 1000,
            to_ms: to * 1000,
            step_ms: step * 1000,
            count: f.count,
            errors: f.errors,
            slow: f.slow,
            avg_ms: f.avg_ms,
            apdex: f.apdex,
            percentiles: Percentiles {
                p50_ms: p[0],
                p75_ms: p[1],
                p90_ms: p[2],
                p95_ms: p[3],
                p99_ms: p[4],
                p999_ms: p[5],
                max_ms: total.max_ns as f64 / 1e6,
            },
            histogram: buckets(&total, schema),
            series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_keeps_series_short_and_no_finer_than_the_rows() {
        let c = Coverage { minutes_until: 0, hours_until: 0, seconds_from: 0 };
        assert_eq!(step_for(0, 600, None, c), 1);
        assert_eq!(step_for(0, 3600, None, c), 5);
        assert_eq!(step_for(0, 86_400, None, c), 60);
        assert_eq!(step_for(0, 7 * 86_400, None, c), 600);
        assert_eq!(step_for(0, 30 * 86_400, None, c), 3600);
        assert_eq!(step_for(0, 365 * 86_400, None, c), 21_600);
        // Centuries: days, as many as keep the series within bounds.
        let centuries = 300 * 365 * 86_400;
        let step = step_for(0, centuries, None, c);
        assert!(step % 86_400 == 0 && centuries / step <= MAX_POINTS, "{step}");
        assert_eq!(step_for(0, 600, Some(7), c), 10);
        let old = Coverage { minutes_until: 0, hours_until: 0, seconds_from: 1_000 };
        assert_eq!(step_for(0, 600, None, old), 60);
    }
}
