//! What a cell of statistics says to a person: counts, the average and the largest, exact
//! percentiles (within HDR's precision), Pinpoint's buckets, the slow count and the Apdex score.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::semconv::NodeKind;
use crate::stats::hist::quantile_histogram;
use crate::stats::Cell;

/// Thresholds a reader chooses (the histograms answer any of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Slower than this (successful) is slow; `None`: the bucket schema's own bound (5 s, or
    /// 500 ms for caches), which Pinpoint calls Slow.
    pub slow_ms: Option<f64>,
    /// Apdex's T: satisfied within T, tolerating within 4T.
    pub apdex_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { slow_ms: None, apdex_ms: 500.0 }
    }
}

/// Pinpoint's two bucket schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// 1 s / 3 s / 5 s / Slow / Error.
    Normal,
    /// 100 / 300 / 500 ms / Slow / Error: caches.
    Fast,
}

impl Schema {
    pub fn of(kind: NodeKind) -> Self {
        if kind == NodeKind::Cache {
            Schema::Fast
        } else {
            Schema::Normal
        }
    }

    /// Indexes into `BUCKET_BOUNDS_MS` of its three bounds.
    fn bounds(self) -> [usize; 3] {
        match self {
            Schema::Fast => [0, 1, 2],
            Schema::Normal => [3, 4, 5],
        }
    }
}

/// Pinpoint's bucket counts, under its names: `1s`, `3s`, `5s` (or `100ms`, `300ms`, `500ms`),
/// `Slow` and `Error`; a JSON object in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(pub Vec<(&'static str, u64)>);

impl Serialize for Buckets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl utoipa::PartialSchema for Buckets {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        counts_by_name(
            utoipa::openapi::Type::Integer,
            "Calls by Pinpoint's response-time bucket: `1s`, `3s`, `5s` (or `100ms`, `300ms`, \
             `500ms` for fast services), `Slow` and `Error`, in that order.",
            &["Slow", "Error"],
        )
    }
}

impl utoipa::ToSchema for Buckets {}

/// The schema of a JSON object whose keys are labels the answer computes (bucket names, age
/// ranges): counts of `ty` by name, `required` among them whatever the labels.
pub(crate) fn counts_by_name(
    ty: utoipa::openapi::Type,
    description: &str,
    required: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder};
    let mut o = ObjectBuilder::new()
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::RefOr(ObjectBuilder::new().schema_type(ty).into())));
    for name in required {
        o = o.required(*name);
    }
    o.into()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Figures {
    pub count: u64,
    pub errors: u64,
    pub slow: u64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub apdex: Option<f64>,
    pub histogram: Buckets,
}

/// Percentiles of a cell's calls in milliseconds, for the quantiles asked (0..=1).
pub fn percentiles(cell: &Cell, quantiles: &[f64], h: &mut Histogram<u64>) -> Vec<f64> {
    cell.all().fill(h);
    quantiles.iter().map(|q| if h.is_empty() { 0.0 } else { h.value_at_quantile(*q) as f64 / 1000.0 }).collect()
}

pub fn buckets(cell: &Cell, schema: Schema) -> Buckets {
    let [a, b, c] = schema.bounds();
    let w = cell.within;
    let names: [&'static str; 3] = match schema {
        Schema::Fast => ["100ms", "300ms", "500ms"],
        Schema::Normal => ["1s", "3s", "5s"],
    };
    let ok = cell.ok.count();
    Buckets(vec![
        (names[0], w[a]),
        (names[1], w[b] - w[a]),
        (names[2], w[c] - w[b]),
        ("Slow", ok - w[c]),
        ("Error", cell.errors()),
    ])
}

/// A reusable calculator (its HDR histogram is 30 KB: one per request, not per cell).
pub struct Calc {
    h: Histogram<u64>,
    pub thresholds: Thresholds,
}

impl Calc {
    pub fn new(thresholds: Thresholds) -> Self {
        Self { h: quantile_histogram(), thresholds }
    }

    pub fn figures(&mut self, cell: &Cell, schema: Schema) -> Figures {
        let count = cell.count();
        let ok = cell.ok.count();
        let [p50, p90, p99] = percentiles(cell, &[0.5, 0.9, 0.99], &mut self.h)[..] else { unreachable!() };
        let slow = match self.thresholds.slow_ms {
            None => ok - cell.within[schema.bounds()[2]],
            Some(ms) => ok - cell.ok.count_at_most((ms * 1000.0) as u64),
        };
        let t_us = (self.thresholds.apdex_ms * 1000.0) as u64;
        let apdex = (count > 0).then(|| {
            let satisfied = cell.ok.count_at_most(t_us);
            let tolerating = cell.ok.count_at_most(t_us.saturating_mul(4)) - satisfied;
            (satisfied as f64 + tolerating as f64 / 2.0) / count as f64
        });
        Figures {
            count,
            errors: cell.errors(),
            slow,
            avg_ms: if count == 0 { 0.0 } else { cell.sum_ns as f64 / count as f64 / 1e6 },
            max_ms: cell.max_ns as f64 / 1e6,
            p50_ms: p50,
            p90_ms: p90,
            p99_ms: p99,
            apdex,
            histogram: buckets(cell, schema),
        }
    }

    pub fn histogram(&mut self) -> &mut Histogram<u64> {
        &mut self.h
    }
}
