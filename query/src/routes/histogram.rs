//! `GET /api/histogram`: the response times of a service (or one endpoint or instance of it) or
//! of a link, over a range: percentiles, buckets and a series.

use axum::extract::{Query, State};
use axum::Json;
use rewind_storage::apm::histogram::{HistogramAnswer, HistogramQuery, Subject};

use super::blocking;
use crate::error::QueryError;
use crate::params::{self, bad, duration_ms, text};
use crate::state::QueryState;

pub(crate) const PARAMS: &[&str] =
    &["from", "to", "service", "endpoint", "instance", "source", "target", "step", "slow_ms", "apdex_ms"];

/// Response-time figures of a service (or one endpoint or instance of it) or of a link over a
/// range: percentiles, buckets, and a series of points.
#[utoipa::path(get, path = "/api/histogram", operation_id = "get_histogram", tag = "server map",
    params(crate::openapi::Range,
        ("service" = Option<String>, Query, description = "The service (or virtual node); else `source` and `target`", min_length = 1, max_length = 4096),
        ("endpoint" = Option<String>, Query, description = "With `service`: one endpoint (transaction name)", min_length = 1, max_length = 4096),
        ("instance" = Option<String>, Query, description = "With `service`: one instance", min_length = 1, max_length = 4096),
        ("source" = Option<String>, Query, description = "A link's caller, with `target`", min_length = 1, max_length = 4096),
        ("target" = Option<String>, Query, description = "A link's callee, with `source`", min_length = 1, max_length = 4096),
        ("step" = Option<f64>, Query, description = "The series' step, milliseconds (at least 1000; the finest that keeps 1,500 points by default)",
            minimum = 1000, maximum = 1e12),
        crate::openapi::Thresholds),
    responses((status = 200, description = "The figures and the series", body = HistogramAnswer), crate::openapi::Refusals))]
pub async fn get(
    State(st): State<QueryState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<HistogramAnswer>, QueryError> {
    let q = parse(&pairs)?;
    let store = st.store.clone();
    blocking(&st, move || store.histogram(&q)).await
}

fn parse(pairs: &[(String, String)]) -> Result<HistogramQuery, QueryError> {
    let p = params::unique(pairs, PARAMS)?;
    let (from_ns, to_ns) = params::range(&p)?;
    let (from_s, to_s) = params::seconds(from_ns, to_ns);
    let get = |param: &'static str| p.get(param).map(|v| text(param, v)).transpose();
    let subject = match (get("service")?, get("source")?, get("target")?) {
        (Some(service), None, None) => {
            Subject::Node { service, endpoint: get("endpoint")?, instance: get("instance")? }
        }
        (None, Some(source), Some(target)) => {
            for param in ["endpoint", "instance"] {
                if p.contains_key(param) {
                    return Err(bad(param, "narrows `service`; a link (`source`, `target`) has none"));
                }
            }
            Subject::Link { source, target }
        }
        (Some(_), _, _) => return Err(bad("service", "is one subject, `source` and `target` another: give one")),
        (None, None, None) => return Err(bad("service", "is required (or `source` and `target`, for a link)")),
        (None, Some(_), None) => return Err(bad("target", "is required with `source`")),
        (None, None, Some(_)) => return Err(bad("source", "is required with `target`")),
    };
    let step_s = match p.get("step") {
        None => None,
        Some(v) => {
            let ns = duration_ms("step", v)?;
            if ns < 1_000_000_000 {
                return Err(bad("step", "is at least 1000 milliseconds (statistics are per second)"));
            }
            Some(ns.div_ceil(1_000_000_000))
        }
    };
    Ok(HistogramQuery { from_s, to_s, subject, step_s, thresholds: params::thresholds(&p)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::q;

    #[test]
    fn parameters_become_a_histogram_query() {
        let h = parse(&q("from=1000&to=61000&service=cart&endpoint=GET%20/cart&step=10000")).unwrap();
        assert_eq!((h.from_s, h.to_s, h.step_s), (1, 61, Some(10)));
        assert_eq!(
            h.subject,
            Subject::Node { service: "cart".into(), endpoint: Some("GET%20/cart".into()), instance: None }
        );
        let h = parse(&q("from=0&to=1&source=cart&target=redis")).unwrap();
        assert_eq!(h.subject, Subject::Link { source: "cart".into(), target: "redis".into() });
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (query, param) in [
            ("from=1&to=5", "service"),
            ("from=1&to=5&source=a", "target"),
            ("from=1&to=5&target=a", "source"),
            ("from=1&to=5&service=a&source=b&target=c", "service"),
            ("from=1&to=5&source=b&target=c&endpoint=x", "endpoint"),
            ("from=1&to=5&service=a&step=500", "step"),
            ("from=1&to=5&service=a&step=x", "step"),
            ("from=1&to=5&service=a&apdex_ms=-1", "apdex_ms"),
            ("from=1&to=5&service=a&in_depth=1", "query"),
        ] {
            match parse(&q(query)) {
                Err(QueryError::BadParameter { param: p, message }) => assert_eq!(p, param, "{query}: {message}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
