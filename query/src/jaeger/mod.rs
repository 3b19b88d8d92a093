//! The Jaeger query API (`jaeger-query`'s HTTP JSON endpoints, which Grafana's Jaeger data
//! source and the Jaeger UI call) under a prefix of the query port, `/jaeger` by default:
//!
//! - `GET /api/services`, `GET /api/services/{service}/operations`, `GET /api/operations`: from
//!   the services catalog (span names are kept per service as spans arrive).
//! - `GET /api/traces?service&operation&tags&minDuration&maxDuration&start&end&limit`: a search
//!   of the transactions (XLog) with their filters, answered with the whole traces.
//! - `GET /api/traces/{id}`: one trace.
//! - `GET /api/dependencies?endTs&lookback`: the server map's links with their call counts,
//!   errors and latency.
//!
//! Answers are Jaeger's envelope `{data, total, limit, offset, errors}`; a bad parameter is a 400
//! with the message in `errors`.

mod model;
mod params;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rewind_storage::apm::figures::Thresholds;
use rewind_storage::apm::servermap::MapQuery;
use rewind_storage::catalog::{kind_bit, USER_NODE};
use rewind_storage::{NodeKind, TraceId, XLogFilter};

use crate::error::QueryError;
use crate::params::{bad, text};
use crate::routes::run;
use crate::state::{QueryState, ReadKind};
use model::{Dependency, Envelope, Operation, StructuredError, Trace};

/// Traces a search answers unless `limit` says otherwise (jaeger-query's default), and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_500;
/// Spans a search answers at most, all its traces together: the traces past it are left out.
const SEARCH_SPANS: usize = 50_000;
/// Answer memory a search reserves: its spans, about 2 KB each once rendered.
const SEARCH_RESERVE: usize = 128 << 20;
/// A search without `start` looks back this far from `end`.
const DEFAULT_LOOKBACK_NS: u64 = 3_600 * 1_000_000_000;
/// The dependencies' default `lookback` (jaeger-query's): a day.
const DEFAULT_DEPENDENCY_LOOKBACK_NS: u64 = 86_400 * 1_000_000_000;

/// The routes, to nest under the configured prefix.
pub fn routes() -> Router<QueryState> {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(service_operations))
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .fallback(|| async { JaegerError(QueryError::NotFound("no such Jaeger API endpoint".into())) })
}

/// A query error in Jaeger's envelope: `{"data":null,…,"errors":[{"code":400,"msg":"…"}]}`.
pub struct JaegerError(QueryError);

impl From<QueryError> for JaegerError {
    fn from(e: QueryError) -> Self {
        Self(e)
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        self.0.respond_with(Envelope {
            data: serde_json::Value::Null,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![StructuredError { code: status.as_u16(), msg: self.0.to_string(), trace_id: None }]),
        })
    }
}

type Answer<T> = Result<Json<Envelope<T>>, JaegerError>;
type Pairs = Query<Vec<(String, String)>>;

/// Instrumented services, by name (the peers they call are not services of their own here).
async fn services(State(st): State<QueryState>) -> Answer<Vec<String>> {
    let names: Vec<String> =
        st.store.services().iter().filter(|s| s.kind == NodeKind::Server).map(|s| s.name.clone()).collect();
    let n = names.len();
    Ok(Json(Envelope::of(names, n)))
}

/// The names of a service's spans; none for a service not seen.
async fn service_operations(State(st): State<QueryState>, Path(service): Path<String>) -> Answer<Vec<String>> {
    let names: Vec<String> =
        st.store.service(&service).map(|s| s.operations.keys().cloned().collect()).unwrap_or_default();
    let n = names.len();
    Ok(Json(Envelope::of(names, n)))
}

/// A service's operations with their span kind, one entry per (name, kind) seen; `spanKind`
/// keeps one kind.
async fn operations(State(st): State<QueryState>, Query(pairs): Pairs) -> Answer<Vec<Operation>> {
    let p = crate::params::unique(&pairs, &["service", "spanKind"])?;
    let service = text("service", p.get("service").ok_or_else(|| bad("service", "is required"))?)?;
    let only = match p.get("spanKind").copied() {
        None | Some("") => None,
        Some(k) => Some(
            (0..=5u8)
                .find(|i| model::kind_name(*i) == k)
                .ok_or_else(|| bad("spanKind", "is one of server, client, producer, consumer, internal"))?,
        ),
    };
    let mut out = Vec::new();
    if let Some(s) = st.store.service(&service) {
        for (name, kinds) in &s.operations {
            for k in 0..=5u8 {
                if kinds & kind_bit(k) != 0 && only.is_none_or(|o| o == k) {
                    out.push(Operation { name: name.clone(), span_kind: model::kind_name(k) });
                }
            }
        }
    }
    let n = out.len();
    Ok(Json(Envelope::of(out, n)))
}

/// A trace id as Jaeger prints it: up to 32 hexadecimal characters (a 64-bit id of an older
/// tracer is 16), left-padded with zeros.
fn jaeger_trace_id(param: &'static str, raw: &str) -> Result<TraceId, QueryError> {
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(param, "a trace id is 1 to 32 hexadecimal characters"));
    }
    TraceId::parse_hex(&format!("{raw:0>32}")).map_err(|_| bad(param, "the all-zero trace id is invalid"))
}

async fn trace(State(st): State<QueryState>, Path(raw): Path<String>, Query(pairs): Pairs) -> Answer<Vec<Trace>> {
    let id = jaeger_trace_id("traceID", &raw)?;
    // Grafana sends the range it shows (`start`, `end`); a trace is found by its id alone.
    let p = crate::params::unique(&pairs, &["start", "end"])?;
    for (name, v) in &p {
        params::unix_micros(name, v)?;
    }
    let store = st.store.clone();
    let spans = run(&st, ReadKind::Lookup, crate::routes::LOOKUP_RESERVE, move || Ok(store.trace(&id)?)).await?;
    if spans.is_empty() {
        return Err(JaegerError(QueryError::NotFound("trace not found".into())));
    }
    Ok(Json(Envelope::of(vec![model::trace(&spans)], 1)))
}

/// What a search asks: the transactions' filter and how many traces.
#[derive(Debug)]
struct Search {
    filter: XLogFilter,
    limit: usize,
    /// `traceID=…` given: these traces, and no search.
    ids: Vec<TraceId>,
}

fn parse_search(pairs: &[(String, String)], now_ns: u64) -> Result<Search, QueryError> {
    let mut seen: Vec<&str> = Vec::new();
    let (mut tags_json, mut tag_pairs, mut ids) = (None, Vec::new(), Vec::new());
    let mut f = XLogFilter::default();
    let (mut start, mut end, mut limit) = (None, None, DEFAULT_LIMIT);
    for (k, v) in pairs {
        match k.as_str() {
            "tag" => {
                tag_pairs.push(v.as_str());
                continue;
            }
            "traceID" => {
                ids.push(jaeger_trace_id("traceID", v)?);
                continue;
            }
            _ => {}
        }
        if seen.contains(&k.as_str()) {
            return Err(bad("query", format!("`{k}` is given twice")));
        }
        seen.push(k);
        // Empty values are what a form leaves of a field not filled in: absent.
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "service" => f.service = Some(text("service", v)?),
            "operation" => f.endpoint = Some(text("operation", v)?),
            "tags" => tags_json = Some(v.as_str()),
            "minDuration" => f.min_elapsed_ns = Some(params::go_duration("minDuration", v)?),
            "maxDuration" => f.max_elapsed_ns = Some(params::go_duration("maxDuration", v)?),
            "start" => start = Some(params::unix_micros("start", v)?),
            "end" => end = Some(params::unix_micros("end", v)?),
            "limit" => limit = crate::params::whole("limit", v, 1, MAX_LIMIT as u64)? as usize,
            // The Jaeger UI's and Grafana's name for the range they computed `start` from.
            "lookback" => {}
            other => {
                return Err(bad(
                    "query",
                    format!("unknown parameter `{other}` (service, operation, tags, tag, minDuration, maxDuration, start, end, limit, lookback, traceID)"),
                ))
            }
        }
    }
    if ids.len() > MAX_LIMIT {
        return Err(bad("traceID", format!("at most {MAX_LIMIT} trace ids")));
    }
    for (k, v) in params::tags(tags_json, &tag_pairs)? {
        // Jaeger marks failed spans with the tag error=true; Rewind keeps it as the status.
        if k == "error" {
            f.error = Some(crate::params::boolean("tags", &v)?);
        } else {
            f.attributes.push((k, v));
        }
    }
    let to = end.unwrap_or(now_ns);
    let from = start.unwrap_or(to.saturating_sub(DEFAULT_LOOKBACK_NS));
    if to <= from {
        return Err(bad("end", "must be after `start`"));
    }
    if let (Some(lo), Some(hi)) = (f.min_elapsed_ns, f.max_elapsed_ns) {
        if hi < lo {
            return Err(bad("maxDuration", "must not be below `minDuration`"));
        }
    }
    if f.service.is_none() && ids.is_empty() {
        return Err(bad("service", "is required"));
    }
    (f.from_ns, f.to_ns) = (from, to);
    // A trace can hold several of the service's transactions: ask for more than the traces.
    f.limit = (limit * 4).min(10_000);
    Ok(Search { filter: f, limit, ids })
}

/// Traces whose transactions (entry spans) match, most recent first. Jaeger matches tags and
/// durations on any span of a trace; here they are the transaction's: its entry span's
/// attributes, its resource's, and its elapsed time.
async fn search(State(st): State<QueryState>, Query(pairs): Pairs) -> Answer<Vec<Trace>> {
    let s = parse_search(&pairs, st.store.now_ns())?;
    let store = st.store.clone();
    let traces = run(&st, ReadKind::Scan, SEARCH_RESERVE, move || {
        let ids = if s.ids.is_empty() {
            let (mut records, _) = store.xlog_records(&s.filter)?;
            records.sort_by_key(|r| std::cmp::Reverse(r.end_ns()));
            let mut ids: Vec<TraceId> = Vec::with_capacity(s.limit);
            for r in records {
                if ids.len() == s.limit {
                    break;
                }
                if !ids.contains(&r.trace_id) {
                    ids.push(r.trace_id);
                }
            }
            ids
        } else {
            s.ids
        };
        let (mut traces, mut spans_total) = (Vec::with_capacity(ids.len()), 0);
        for id in ids {
            let spans = store.trace(&id)?;
            if spans.is_empty() {
                continue;
            }
            spans_total += spans.len();
            if spans_total > SEARCH_SPANS && !traces.is_empty() {
                break;
            }
            traces.push(model::trace(&spans));
        }
        Ok(traces)
    })
    .await?;
    let n = traces.len();
    Ok(Json(Envelope::of(traces, n)))
}

/// Who calls whom over `[endTs - lookback, endTs]` (milliseconds), from the server map's
/// statistics: calls from outside (the map's USER node) are left out, as Jaeger has none.
async fn dependencies(State(st): State<QueryState>, Query(pairs): Pairs) -> Answer<Vec<Dependency>> {
    let p = crate::params::unique(&pairs, &["endTs", "lookback"])?;
    let end =
        p.get("endTs").map(|v| crate::params::unix_ms("endTs", v)).transpose()?.unwrap_or_else(|| st.store.now_ns());
    let lookback = p
        .get("lookback")
        .map(|v| crate::params::unix_ms("lookback", v))
        .transpose()?
        .unwrap_or(DEFAULT_DEPENDENCY_LOOKBACK_NS);
    if lookback == 0 {
        return Err(bad("lookback", "must be above 0").into());
    }
    let (from_s, to_s) = crate::params::seconds(end.saturating_sub(lookback), end);
    let q = MapQuery {
        from_s,
        to_s: to_s.max(from_s + 1),
        in_depth: 1,
        out_depth: 1,
        service: None,
        instance: None,
        by_instance: false,
        thresholds: Thresholds::default(),
    };
    let store = st.store.clone();
    let map = run(&st, ReadKind::Scan, crate::routes::DEFAULT_RESERVE, move || Ok(store.server_map(&q)?)).await?;
    let links: Vec<Dependency> = map
        .links
        .into_iter()
        .filter(|l| l.source != USER_NODE)
        .map(|l| Dependency {
            parent: l.source,
            child: l.target,
            call_count: l.figures.count,
            error_count: l.figures.errors,
            child_kind: l.target_kind,
            avg_duration_ms: l.figures.avg_ms,
            p50_duration_ms: l.figures.p50_ms,
            p90_duration_ms: l.figures.p90_ms,
            p99_duration_ms: l.figures.p99_ms,
            max_duration_ms: l.figures.max_ms,
        })
        .collect();
    let n = links.len();
    Ok(Json(Envelope::of(links, n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::q;

    const NOW: u64 = 1_800_000_000_000_000_000;

    #[test]
    fn grafanas_search_becomes_a_transaction_filter() {
        // The query string Grafana's Jaeger data source sends (search form, tags in logfmt turned
        // into JSON, its time range in microseconds, lookback=custom).
        let s = parse_search(
            &q("service=checkout&operation=POST /checkout&tags={\"error\":\"true\",\"http.route\":\"/checkout\"}&minDuration=100ms&maxDuration=1.5s&limit=20&start=1799999000000000&end=1800000000000000&lookback=custom"),
            NOW,
        )
        .unwrap();
        let f = &s.filter;
        assert_eq!((f.service.as_deref(), f.endpoint.as_deref()), (Some("checkout"), Some("POST /checkout")));
        assert_eq!((f.min_elapsed_ns, f.max_elapsed_ns, f.error), (Some(100_000_000), Some(1_500_000_000), Some(true)));
        assert_eq!(f.attributes, vec![("http.route".to_string(), "/checkout".to_string())]);
        assert_eq!((f.from_ns, f.to_ns, s.limit, f.limit), (1_799_999_000_000_000_000, NOW, 20, 80));
        // Empty fields of the form are absent; the range defaults to the last hour.
        let s = parse_search(&q("service=cart&operation=&tags=&minDuration="), NOW).unwrap();
        assert_eq!((s.filter.from_ns, s.filter.to_ns, s.limit), (NOW - DEFAULT_LOOKBACK_NS, NOW, 100));
        assert!(s.filter.endpoint.is_none() && s.filter.min_elapsed_ns.is_none());
        // Trace ids alone need no service.
        let s = parse_search(&q("traceID=abc&traceID=5b8efff798038103d269b633813fc60c"), NOW).unwrap();
        assert_eq!(s.ids.len(), 2);
        assert_eq!(s.ids[0].to_string(), "00000000000000000000000000000abc");
    }

    #[test]
    fn each_bad_search_parameter_is_named() {
        for (query, param) in [
            ("operation=x", "service"),
            ("service=a&minDuration=100", "minDuration"),
            ("service=a&maxDuration=fast", "maxDuration"),
            ("service=a&minDuration=2s&maxDuration=1s", "maxDuration"),
            ("service=a&start=5&end=4", "end"),
            ("service=a&start=x", "start"),
            ("service=a&limit=0", "limit"),
            ("service=a&limit=1501", "limit"),
            ("service=a&tags=[1]", "tags"),
            ("service=a&tags={\"error\":\"maybe\"}", "tags"),
            ("service=a&tag=nocolon", "tag"),
            ("service=a&traceID=xyz", "traceID"),
            ("service=a&traceID=000", "traceID"),
            ("service=a&service=b", "query"),
            ("service=a&colour=red", "query"),
        ] {
            match parse_search(&q(query), NOW) {
                Err(QueryError::BadParameter { param: p, message }) => assert_eq!(p, param, "{query}: {message}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
