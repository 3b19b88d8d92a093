//! Two windows side by side: every node and link of either window's map with both windows'
//! figures and the change, sorted by how much it changed. Windows may differ in length: counts
//! are compared per second.

use std::collections::BTreeMap;

use serde::Serialize;

use super::figures::{Figures, Thresholds};
use super::semconv::NodeKind;
use super::servermap::{MapQuery, ServerMap};
use crate::error::StorageError;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct CompareQuery {
    /// Unix seconds, `[from, to)` each.
    pub a: (u64, u64),
    pub b: (u64, u64),
    /// Around this service only (its callers and callees, one level each way).
    pub service: Option<String>,
    pub thresholds: Thresholds,
}

/// One window's figures of a node or link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Side {
    pub count: u64,
    pub per_second: f64,
    pub error_rate: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Change {
    /// `b` over `a`, per second; `null` where `a` had none.
    pub rate_ratio: Option<f64>,
    /// Percentage points.
    pub error_rate_points: f64,
    pub p99_ratio: Option<f64>,
    /// How much it changed: |log2| of the p99 and rate ratios (the rate's counting half), plus
    /// a point for every 5 points of error rate.
    pub score: f64,
    /// The callee (a node, or the link onward) that changed at least half as much: the change
    /// is likely its, passed up the call chain. Such entries sort at half their score, so that
    /// the dependency that changed comes before the callers it dragged along.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Compared {
    /// A node's name, or empty for a link.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    pub kind: NodeKind,
    /// `changed`, `new` (only in `b`) or `vanished` (only in `a`).
    pub status: &'static str,
    pub a: Option<Side>,
    pub b: Option<Side>,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Comparison {
    pub a_from_ms: u64,
    pub a_to_ms: u64,
    pub b_from_ms: u64,
    pub b_to_ms: u64,
    /// Most changed first.
    pub nodes: Vec<Compared>,
    pub links: Vec<Compared>,
}

fn side(f: &Figures, seconds: u64) -> Side {
    Side {
        count: f.count,
        per_second: f.count as f64 / seconds.max(1) as f64,
        error_rate: if f.count == 0 { 0.0 } else { f.errors as f64 / f.count as f64 },
        avg_ms: f.avg_ms,
        p50_ms: f.p50_ms,
        p90_ms: f.p90_ms,
        p99_ms: f.p99_ms,
    }
}

/// Latencies below this (ms) compare as equal: noise of fast calls is not a change.
const LATENCY_FLOOR_MS: f64 = 1.0;

fn change(a: Option<&Side>, b: Option<&Side>, seconds: (u64, u64)) -> Change {
    // One call in the longer window, where there were none: the smallest rate that can be
    // seen, added to both sides alike so that equal rates compare equal.
    let eps = 1.0 / seconds.0.max(seconds.1).max(1) as f64;
    let (ra, rb) = (a.map_or(0.0, |s| s.per_second), b.map_or(0.0, |s| s.per_second));
    let rate = ((rb + eps) / (ra + eps)).log2().abs().min(10.0);
    let (ea, eb) = (a.map_or(0.0, |s| s.error_rate), b.map_or(0.0, |s| s.error_rate));
    let p99 = match (a, b) {
        (Some(a), Some(b)) => Some(b.p99_ms.max(LATENCY_FLOOR_MS) / a.p99_ms.max(LATENCY_FLOOR_MS)),
        _ => None,
    };
    let score = p99.map_or(0.0, |r| r.log2().abs()) + rate / 2.0 + (eb - ea).abs() * 100.0 / 5.0;
    Change {
        rate_ratio: a.filter(|a| a.per_second > 0.0).map(|a| rb / a.per_second),
        error_rate_points: (eb - ea) * 100.0,
        p99_ratio: p99,
        score: (score * 1000.0).round() / 1000.0,
        explained_by: None,
    }
}

/// Marks each entry whose callee changed at least half as much, and sorts by score, those
/// halved. `callees(i)` gives the indexes of entry `i`'s callees.
fn rank(v: &mut [Compared], callees: impl Fn(&[Compared], usize) -> Vec<usize>, label: impl Fn(&Compared) -> String) {
    let marks: Vec<Option<String>> = (0..v.len())
        .map(|i| {
            callees(v, i)
                .into_iter()
                .filter(|c| *c != i && v[*c].change.score >= v[i].change.score / 2.0 && v[*c].change.score > 0.0)
                .max_by(|a, b| v[*a].change.score.total_cmp(&v[*b].change.score))
                .map(|c| label(&v[c]))
        })
        .collect();
    for (c, m) in v.iter_mut().zip(marks) {
        c.change.explained_by = m;
    }
    let key = |c: &Compared| if c.change.explained_by.is_some() { c.change.score / 2.0 } else { c.change.score };
    v.sort_by(|x, y| key(y).total_cmp(&key(x)));
}

/// A node's or link's kind and its figures in each window.
type Sides = (NodeKind, Option<Side>, Option<Side>);

fn set(sides: &mut Sides, in_b: bool, side: Side) {
    if in_b {
        sides.2 = Some(side);
    } else {
        sides.1 = Some(side);
    }
}

fn status(a: bool, b: bool) -> &'static str {
    match (a, b) {
        (true, true) => "changed",
        (false, true) => "new",
        _ => "vanished",
    }
}

impl Store {
    pub fn compare(&self, q: &CompareQuery) -> Result<Comparison, StorageError> {
        let map = |(from_s, to_s): (u64, u64)| {
            self.server_map(&MapQuery {
                from_s,
                to_s,
                service: q.service.clone(),
                in_depth: 1,
                out_depth: 1,
                instance: None,
                by_instance: false,
                thresholds: q.thresholds,
            })
        };
        let (ma, mb): (ServerMap, ServerMap) = (map(q.a)?, map(q.b)?);
        let secs = |m: &ServerMap| (m.to_ms - m.from_ms) / 1000;
        let seconds = (secs(&ma), secs(&mb));
        let mut nodes: BTreeMap<String, Sides> = BTreeMap::new();
        let mut links: BTreeMap<(String, String), Sides> = BTreeMap::new();
        for (m, in_b, secs) in [(&ma, false, seconds.0), (&mb, true, seconds.1)] {
            for n in &m.nodes {
                set(nodes.entry(n.name.clone()).or_insert((n.kind, None, None)), in_b, side(&n.figures, secs));
            }
            for l in &m.links {
                let e = links.entry((l.source.clone(), l.target.clone())).or_insert((l.target_kind, None, None));
                set(e, in_b, side(&l.figures, secs));
            }
        }
        let compared = |name: String, source: String, target: String, (kind, a, b): Sides| Compared {
            name,
            source,
            target,
            kind,
            status: status(a.is_some(), b.is_some()),
            change: change(a.as_ref(), b.as_ref(), seconds),
            a,
            b,
        };
        let mut nodes: Vec<Compared> =
            nodes.into_iter().map(|(n, v)| compared(n, String::new(), String::new(), v)).collect();
        let mut links: Vec<Compared> = links.into_iter().map(|((s, t), v)| compared(String::new(), s, t, v)).collect();
        // A node's callees are the targets of its links; a link's, the links out of its target.
        let link_pairs: Vec<(String, String)> = links.iter().map(|l| (l.source.clone(), l.target.clone())).collect();
        rank(
            &mut nodes,
            |v, i| {
                let callees: Vec<&String> =
                    link_pairs.iter().filter(|(s, _)| *s == v[i].name).map(|(_, t)| t).collect();
                (0..v.len()).filter(|j| callees.contains(&&v[*j].name)).collect()
            },
            |c| c.name.clone(),
        );
        rank(
            &mut links,
            |v, i| (0..v.len()).filter(|j| v[*j].source == v[i].target).collect(),
            |c| format!("{} → {}", c.source, c.target),
        );
        Ok(Comparison {
            a_from_ms: ma.from_ms,
            a_to_ms: ma.to_ms,
            b_from_ms: mb.from_ms,
            b_to_ms: mb.to_ms,
            nodes,
            links,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(per_second: f64, error_rate: f64, p99_ms: f64) -> Side {
        Side { count: 1, per_second, error_rate, avg_ms: p99_ms, p50_ms: p99_ms, p90_ms: p99_ms, p99_ms }
    }

    fn node(name: &str, a: Option<Side>, b: Option<Side>) -> Compared {
        let change = change(a.as_ref(), b.as_ref(), (600, 60));
        Compared {
            name: name.into(),
            source: String::new(),
            target: String::new(),
            kind: NodeKind::Server,
            status: status(a.is_some(), b.is_some()),
            a,
            b,
            change,
        }
    }

    #[test]
    fn changes_are_scored_and_callers_sort_after_the_callee_that_explains_them() {
        let steady = change(Some(&side(10.0, 0.0, 5.0)), Some(&side(10.0, 0.0, 5.0)), (600, 60));
        assert_eq!((steady.score, steady.rate_ratio, steady.p99_ratio), (0.0, Some(1.0), Some(1.0)));
        // 8 times slower (3 points) and 20 points of errors (4 points).
        let db = change(Some(&side(10.0, 0.0, 5.0)), Some(&side(10.0, 0.2, 40.0)), (600, 60));
        assert!((db.score - 7.0).abs() < 0.01, "{db:?}");
        let gone = node("old", Some(side(10.0, 0.0, 5.0)), None);
        assert_eq!((gone.status, gone.change.p99_ratio), ("vanished", None));
        assert!(gone.change.score > 2.0, "{:?}", gone.change);
        // The caller changed more (errors doubled by retries), but its callee explains it.
        let mut v = vec![
            node("front", Some(side(10.0, 0.0, 50.0)), Some(side(10.0, 0.4, 100.0))),
            node("mysql", Some(side(10.0, 0.0, 5.0)), Some(side(10.0, 0.2, 40.0))),
            node("cart", Some(side(10.0, 0.0, 5.0)), Some(side(10.0, 0.0, 5.5))),
        ];
        rank(&mut v, |v, i| if v[i].name == "front" { vec![1, 2] } else { vec![] }, |c| c.name.clone());
        let order: Vec<&str> = v.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, ["mysql", "front", "cart"]);
        assert_eq!(v[1].change.explained_by.as_deref(), Some("mysql"));
        assert_eq!(v[0].change.explained_by, None);
    }
}
