//! `GET /api/servermap`: who calls whom over a range, with each node's and link's figures.

use axum::extract::{Query, State};
use axum::Json;
use rewind_storage::apm::servermap::{MapQuery, ServerMap};

use super::blocking;
use crate::error::QueryError;
use crate::params::{self, bad, boolean, text, whole};
use crate::state::QueryState;

pub(crate) const PARAMS: &[&str] =
    &["from", "to", "service", "in_depth", "out_depth", "instance", "instances", "slow_ms", "apdex_ms"];

/// How far a cut around one service reaches, callers up and callees down.
const MAX_DEPTH: u64 = 4;

/// Who calls whom over a range, with each node's and link's call counts, errors, percentiles,
/// Apdex and response-time buckets.
#[utoipa::path(get, path = "/api/servermap", operation_id = "get_servermap", tag = "server map",
    params(crate::openapi::Range,
        ("service" = Option<String>, Query, description = "Only the map around this service", min_length = 1, max_length = 4096),
        ("in_depth" = Option<u8>, Query, description = "With `service`: levels of callers", minimum = 1, maximum = 4),
        ("out_depth" = Option<u8>, Query, description = "With `service`: levels of callees", minimum = 1, maximum = 4),
        ("instance" = Option<String>, Query, description = "With `service`: only this instance's calls", min_length = 1, max_length = 4096),
        ("instances" = Option<bool>, Query, description = "Each node and link broken down by instance"),
        crate::openapi::Thresholds),
    responses((status = 200, description = "The map", body = ServerMap), crate::openapi::Refusals))]
pub async fn get(
    State(st): State<QueryState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<ServerMap>, QueryError> {
    let q = parse(&pairs)?;
    let store = st.store.clone();
    blocking(&st, move || store.server_map(&q)).await
}

fn parse(pairs: &[(String, String)]) -> Result<MapQuery, QueryError> {
    let p = params::unique(pairs, PARAMS)?;
    let (from_ns, to_ns) = params::range(&p)?;
    let (from_s, to_s) = params::seconds(from_ns, to_ns);
    let service = p.get("service").map(|v| text("service", v)).transpose()?;
    let depth = |param: &'static str| -> Result<u8, QueryError> {
        match p.get(param) {
            None => Ok(1),
            Some(_) if service.is_none() => Err(bad(param, "cuts the map around `service`, which is not given")),
            Some(v) => Ok(whole(param, v, 1, MAX_DEPTH)? as u8),
        }
    };
    let instance = p.get("instance").map(|v| text("instance", v)).transpose()?;
    if instance.is_some() && service.is_none() {
        return Err(bad("instance", "is an instance of `service`, which is not given"));
    }
    Ok(MapQuery {
        from_s,
        to_s,
        in_depth: depth("in_depth")?,
        out_depth: depth("out_depth")?,
        service,
        instance,
        by_instance: p.get("instances").map(|v| boolean("instances", v)).transpose()?.unwrap_or(false),
        thresholds: params::thresholds(&p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::q;
    use rewind_storage::apm::figures::Thresholds;

    #[test]
    fn parameters_become_a_map_query() {
        let m =
            parse(&q("from=1000&to=2000.5&service=cart&in_depth=2&out_depth=4&instances=true&slow_ms=800")).unwrap();
        assert_eq!((m.from_s, m.to_s, m.in_depth, m.out_depth), (1, 3, 2, 4));
        assert_eq!((m.service.as_deref(), m.by_instance), (Some("cart"), true));
        assert_eq!(m.thresholds, Thresholds { slow_ms: Some(800.0), apdex_ms: 500.0 });
        let m = parse(&q("from=0&to=1")).unwrap();
        assert_eq!((m.in_depth, m.out_depth, m.service, m.by_instance), (1, 1, None, false));
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (query, param) in [
            ("to=5", "from"),
            ("from=5&to=5", "to"),
            ("from=1&to=5&service=a&in_depth=0", "in_depth"),
            ("from=1&to=5&service=a&out_depth=5", "out_depth"),
            ("from=1&to=5&in_depth=2", "in_depth"),
            ("from=1&to=5&instance=pod-1", "instance"),
            ("from=1&to=5&instances=yes", "instances"),
            ("from=1&to=5&slow_ms=-3", "slow_ms"),
            ("from=1&to=5&apdex_ms=0", "apdex_ms"),
            ("from=1&to=5&endpoint=x", "query"),
            ("from=1&to=5&to=6", "query"),
        ] {
            match parse(&q(query)) {
                Err(QueryError::BadParameter { param: p, message }) => assert_eq!(p, param, "{query}: {message}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
