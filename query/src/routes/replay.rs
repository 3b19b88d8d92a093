//! `GET /api/replay`, `GET /api/incidents` and `GET /api/compare`: a past range frame by frame,
//! the windows in it that left their baseline, and two windows side by side.

use axum::extract::{Query, State};
use axum::Json;
use rewind_storage::apm::compare::{CompareQuery, Comparison};
use rewind_storage::apm::incidents::{FinderParams, IncidentQuery, Incidents};
use rewind_storage::apm::replay::{Replay, ReplayQuery, MAX_FRAMES};
use rewind_storage::Store;

use super::blocking;
use crate::error::QueryError;
use crate::params::{self, bad, duration_ms, text, whole};
use crate::state::QueryState;

/// An incident search reads minute rows of its whole range: a week at most per request.
const MAX_INCIDENT_RANGE_S: u64 = 7 * 86_400;

/// `service`, if given, must be one the store has seen (a service or a virtual node).
fn service(store: &Store, p: &std::collections::BTreeMap<&'static str, &str>) -> Result<Option<String>, QueryError> {
    let Some(v) = p.get("service") else { return Ok(None) };
    let name = text("service", v)?;
    if !store.has_service(&name) {
        return Err(bad("service", format!("{name:?} is not a service or node this store has seen")));
    }
    Ok(Some(name))
}

/// The range second by second (or by `step`): each frame's throughput, errors, response times
/// and transactions in flight, overall and by service, and the calls on each link.
#[utoipa::path(get, path = "/api/replay", operation_id = "get_replay", tag = "replay",
    params(crate::openapi::Range,
        ("service" = Option<String>, Query, description = "Only this service and its links", min_length = 1, max_length = 4096),
        ("step" = Option<f64>, Query, description = "Frame length, milliseconds (whole seconds; at most 3,600 frames)",
            minimum = 1000, maximum = 1e12)),
    responses((status = 200, description = "Every frame of the range", body = Replay), crate::openapi::Refusals))]
pub async fn replay(
    State(st): State<QueryState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Replay>, QueryError> {
    let q = parse_replay(&pairs)?;
    let p = params::unique(&pairs, REPLAY)?;
    let q = ReplayQuery { service: service(&st.store, &p)?, ..q };
    let store = st.store.clone();
    blocking(&st, move || store.replay(&q)).await
}

pub(crate) const REPLAY: &[&str] = &["from", "to", "service", "step"];

fn parse_replay(pairs: &[(String, String)]) -> Result<ReplayQuery, QueryError> {
    let p = params::unique(pairs, REPLAY)?;
    let (from_ns, to_ns) = params::range(&p)?;
    let (from_s, to_s) = params::seconds(from_ns, to_ns);
    let step_s = match p.get("step") {
        None => None,
        Some(v) => {
            let ns = duration_ms("step", v)?;
            if ns < 1_000_000_000 {
                return Err(bad("step", "is at least 1000 milliseconds (frames are whole seconds)"));
            }
            let step = ns.div_ceil(1_000_000_000);
            let frames = (to_s - from_s).div_ceil(step);
            if frames > MAX_FRAMES {
                return Err(bad(
                    "step",
                    format!("gives {frames} frames over this range, more than {MAX_FRAMES}: a longer step, or no step"),
                ));
            }
            Some(step)
        }
    };
    Ok(ReplayQuery { from_s, to_s, service: None, step_s })
}

pub(crate) const INCIDENTS: &[&str] = &["from", "to", "service", "baseline", "z", "min_count"];

/// Incidents over at most a week: stretches where services or links left their baseline (rate,
/// errors or latency), worst first within each, with the reason.
#[utoipa::path(get, path = "/api/incidents", operation_id = "find_incidents", tag = "replay",
    params(crate::openapi::Range,
        ("service" = Option<String>, Query, description = "Only this service and its links", min_length = 1, max_length = 4096),
        ("baseline" = Option<f64>, Query, description = "The baseline's length, milliseconds: whole minutes from 10 minutes to a day",
            minimum = 600000, maximum = 86400000),
        ("z" = Option<f64>, Query, description = "How far from the baseline counts, in deviations", minimum = 2, maximum = 100),
        ("min_count" = Option<u64>, Query, description = "Calls a second below which a subject is too quiet to judge",
            minimum = 1, maximum = 1000000)),
    responses((status = 200, description = "The incidents, worst first", body = Incidents), crate::openapi::Refusals))]
pub async fn incidents(
    State(st): State<QueryState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Incidents>, QueryError> {
    let q = parse_incidents(&pairs)?;
    let p = params::unique(&pairs, INCIDENTS)?;
    let q = IncidentQuery { service: service(&st.store, &p)?, ..q };
    let store = st.store.clone();
    blocking(&st, move || store.incidents(&q)).await
}

fn parse_incidents(pairs: &[(String, String)]) -> Result<IncidentQuery, QueryError> {
    let p = params::unique(pairs, INCIDENTS)?;
    let (from_ns, to_ns) = params::range(&p)?;
    let (from_s, to_s) = params::seconds(from_ns, to_ns);
    if to_s - from_s > MAX_INCIDENT_RANGE_S {
        return Err(bad("to", "is more than 7 days after `from`: search a week at a time"));
    }
    let mut params = FinderParams::default();
    if let Some(v) = p.get("baseline") {
        let ns = duration_ms("baseline", v)?;
        let s = ns / 1_000_000_000;
        if !(600..=86_400).contains(&s) || s % 60 != 0 {
            return Err(bad("baseline", "is whole minutes between 10 minutes and a day (600000 to 86400000)"));
        }
        params.baseline_s = s;
    }
    if let Some(v) = p.get("z") {
        let z: f64 = v.parse().map_err(|_| bad("z", format!("{v:?} is not a number")))?;
        if !(2.0..=100.0).contains(&z) {
            return Err(bad("z", "must be between 2 and 100"));
        }
        params.z = z;
    }
    if let Some(v) = p.get("min_count") {
        params.min_count = whole("min_count", v, 1, 1_000_000)?;
    }
    Ok(IncidentQuery { from_s, to_s, service: None, params })
}

pub(crate) const COMPARE: &[&str] = &["a_from", "a_to", "b_from", "b_to", "service", "slow_ms", "apdex_ms"];

/// Two windows side by side: each node's and link's rate, errors and latency in both, most
/// changed first, with the callee that explains a caller's change.
#[utoipa::path(get, path = "/api/compare", operation_id = "compare_windows", tag = "replay",
    params(
        ("a_from" = String, Query, description = "Window A's start, Unix milliseconds", pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$"),
        ("a_to" = String, Query, description = "Window A's end, after `a_from`", pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$"),
        ("b_from" = String, Query, description = "Window B's start", pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$"),
        ("b_to" = String, Query, description = "Window B's end, after `b_from`", pattern = r"^[0-9]{1,16}(\.[0-9]{1,6})?$"),
        ("service" = Option<String>, Query, description = "Around this service only", min_length = 1, max_length = 4096),
        crate::openapi::Thresholds),
    responses((status = 200, description = "Both windows, most changed first", body = Comparison), crate::openapi::Refusals))]
pub async fn compare(
    State(st): State<QueryState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Comparison>, QueryError> {
    let q = parse_compare(&pairs)?;
    let p = params::unique(&pairs, COMPARE)?;
    let q = CompareQuery { service: service(&st.store, &p)?, ..q };
    let store = st.store.clone();
    blocking(&st, move || store.compare(&q)).await
}

fn parse_compare(pairs: &[(String, String)]) -> Result<CompareQuery, QueryError> {
    let p = params::unique(pairs, COMPARE)?;
    let window = |from: &'static str, to: &'static str| -> Result<(u64, u64), QueryError> {
        let get = |k: &'static str| {
            p.get(k).ok_or_else(|| bad(k, "is required (Unix milliseconds)")).and_then(|v| params::unix_ms(k, v))
        };
        let (f, t) = (get(from)?, get(to)?);
        if t <= f {
            return Err(bad(to, format!("must be after `{from}`")));
        }
        Ok(params::seconds(f, t))
    };
    Ok(CompareQuery {
        a: window("a_from", "a_to")?,
        b: window("b_from", "b_to")?,
        service: None,
        thresholds: params::thresholds(&p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::q;

    fn param_of<T: std::fmt::Debug>(r: Result<T, QueryError>) -> &'static str {
        match r {
            Err(QueryError::BadParameter { param, .. }) => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replay_parameters() {
        let r = parse_replay(&q("from=1000&to=3601000&step=1000")).unwrap();
        assert_eq!((r.from_s, r.to_s, r.step_s), (1, 3601, Some(1)));
        for (query, param) in [
            ("from=5000&to=5000", "to"),
            ("from=9000&to=5000", "to"),
            ("to=5000", "from"),
            ("from=0&to=3602000&step=1000", "step"),
            ("from=0&to=60000&step=500", "step"),
            ("from=0&to=60000&steps=5", "query"),
        ] {
            assert_eq!(param_of(parse_replay(&q(query))), param, "{query}");
        }
    }

    #[test]
    fn incident_parameters() {
        let i = parse_incidents(&q("from=0&to=86400000&baseline=3600000&z=4&min_count=20")).unwrap();
        assert_eq!((i.to_s, i.params.baseline_s, i.params.z, i.params.min_count), (86_400, 3600, 4.0, 20));
        for (query, param) in [
            ("from=0&to=691200000", "to"),
            ("from=0&to=1000&baseline=1000", "baseline"),
            ("from=0&to=1000&baseline=630500", "baseline"),
            ("from=0&to=1000&z=1", "z"),
            ("from=0&to=1000&z=x", "z"),
            ("from=0&to=1000&min_count=0", "min_count"),
        ] {
            assert_eq!(param_of(parse_incidents(&q(query))), param, "{query}");
        }
    }

    #[test]
    fn compare_parameters() {
        let c = parse_compare(&q("a_from=0&a_to=60000&b_from=60000&b_to=120000")).unwrap();
        assert_eq!((c.a, c.b), ((0, 60), (60, 120)));
        for (query, param) in [
            ("a_to=60000&b_from=60000&b_to=120000", "a_from"),
            ("a_from=0&a_to=0&b_from=60000&b_to=120000", "a_to"),
            ("a_from=0&a_to=60000&b_from=60000", "b_to"),
            ("a_from=0&a_to=60000&b_from=90000&b_to=80000", "b_to"),
        ] {
            assert_eq!(param_of(parse_compare(&q(query))), param, "{query}");
        }
    }
}
