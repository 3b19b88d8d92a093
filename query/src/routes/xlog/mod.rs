//! `GET /api/xlog` (the scatter: one point per transaction, as columns, in JSON or Arrow IPC) and
//! `GET /api/transactions` (the list behind a drag-select: full records).

mod params;
mod scatter;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::QueryError;
use crate::render::TransactionView;
use crate::state::{QueryState, ReadKind};
#[cfg(test)]
pub(crate) use params::FILTERS;
use params::{parse, Endpoint, Format, ARROW_STREAM};

type Pairs = Query<Vec<(String, String)>>;

/// The scatter's points as JSON columns, one entry per transaction in each (`scatter::json`
/// writes it by hand, for speed; a test reads it back through this type).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScatterAnswer {
    /// When each transaction ended, Unix milliseconds (to the microsecond).
    pub end_ms: Vec<f64>,
    pub elapsed_ms: Vec<f64>,
    pub error: Vec<bool>,
    pub trace_id: Vec<String>,
    pub service: Vec<String>,
    pub sql_ms: Vec<f64>,
    pub api_ms: Vec<f64>,
    pub cpu_ms: Vec<f64>,
    pub count: usize,
    /// Whether `limit` cut some points off.
    pub truncated: bool,
}

/// The filters both endpoints take (`params::FILTERS` but `from`, `to` and `limit`), for the
/// description: the parser reads the query string itself.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct Filters {
    /// Only this service's transactions.
    #[param(min_length = 1, max_length = 4096)]
    service: Option<String>,
    /// Only this endpoint (transaction name).
    #[param(min_length = 1, max_length = 4096)]
    endpoint: Option<String>,
    /// Elapsed at least, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    min_ms: Option<f64>,
    /// Elapsed at most, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    max_ms: Option<f64>,
    /// Only failed (true) or only successful (false) transactions.
    error: Option<bool>,
    /// The client's address.
    #[param(min_length = 1, max_length = 4096)]
    client_ip: Option<String>,
    /// The end user's id (`enduser.id`).
    #[param(min_length = 1, max_length = 4096)]
    user_id: Option<String>,
    /// The user agent, exactly.
    #[param(min_length = 1, max_length = 4096)]
    user_agent: Option<String>,
    /// Text the endpoint or the error message contains.
    #[param(min_length = 1, max_length = 4096)]
    text: Option<String>,
    /// One trace's transactions.
    #[param(pattern = "^[0-9a-fA-F]{32}$")]
    trace_id: Option<String>,
    /// Time in SQL at least, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    min_sql_ms: Option<f64>,
    /// Time in SQL at most, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    max_sql_ms: Option<f64>,
    /// Time in outgoing calls at least, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    min_api_ms: Option<f64>,
    /// Time in outgoing calls at most, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    max_api_ms: Option<f64>,
    /// CPU time at least, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    min_cpu_ms: Option<f64>,
    /// CPU time at most, milliseconds.
    #[param(minimum = 0, maximum = 1e12)]
    max_cpu_ms: Option<f64>,
}

/// The XLog scatter: one point per transaction (end time, elapsed, error, trace), as JSON
/// columns or, with `format=arrow` or `Accept: application/vnd.apache.arrow.stream`, one Arrow
/// IPC record batch. Also filters by attribute, `attr.KEY=VALUE`, up to 16.
#[utoipa::path(get, path = "/api/xlog", operation_id = "get_scatter", tag = "transactions",
    params(crate::openapi::Range, Filters,
        ("limit" = Option<usize>, Query, description = "Points at most (default 1,000,000)", minimum = 1, maximum = 5000000),
        ("format" = Option<String>, Query, description = "`json` (the default) or `arrow`", pattern = "^(json|arrow)$")),
    responses((status = 200, description = "The points; the header `x-rewind-truncated` says whether `limit` cut them",
        content((ScatterAnswer = "application/json"), (Vec<u8> = "application/vnd.apache.arrow.stream")),
        headers(("x-rewind-truncated" = String, description = "`true` or `false`"))),
        crate::openapi::Refusals))]
pub async fn scatter(
    State(st): State<QueryState>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> Result<Response, QueryError> {
    let (filter, mut format) = parse(Endpoint::Scatter, &pairs)?;
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains(ARROW_STREAM)) {
        format = Format::Arrow;
    }
    let store = st.store.clone();
    // Scanning and encoding a million points is CPU work: off the async runtime, and the answer's
    // memory reserved for the points asked for.
    super::run(&st, ReadKind::Scan, filter.limit.saturating_mul(BYTES_PER_POINT), move || {
        let points = store.xlog_points(&filter)?;
        let truncated = HeaderValue::from_static(if points.truncated { "true" } else { "false" });
        Ok(match format {
            Format::Json => (
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                [("x-rewind-truncated", truncated)],
                scatter::json(&points),
            )
                .into_response(),
            Format::Arrow => (
                [(header::CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM))],
                [("x-rewind-truncated", truncated)],
                scatter::arrow(&points).map_err(|e| QueryError::Internal(format!("arrow encoding: {e}")))?,
            )
                .into_response(),
        })
    })
    .await
}

/// A scatter point held and encoded: its columns (a trace id, a service name, five numbers) and
/// its JSON, about 120 bytes each by their sizes; an estimate with room, not a measured peak.
const BYTES_PER_POINT: usize = 200;
/// A transaction of the list, with its attributes, resource and JSON.
const BYTES_PER_RECORD: usize = 16 << 10;

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionsAnswer {
    pub count: usize,
    /// Whether `limit` cut the list off.
    pub truncated: bool,
    pub transactions: Vec<TransactionView>,
}

/// The transactions behind a drag-select of the scatter, whole: the same filters, at most
/// `limit` records. Also filters by attribute, `attr.KEY=VALUE`, up to 16.
#[utoipa::path(get, path = "/api/transactions", operation_id = "list_transactions", tag = "transactions",
    params(crate::openapi::Range, Filters,
        ("limit" = Option<usize>, Query, description = "Records at most (default 500)", minimum = 1, maximum = 10000)),
    responses((status = 200, description = "The transactions, oldest first", body = TransactionsAnswer), crate::openapi::Refusals))]
pub async fn transactions(
    State(st): State<QueryState>,
    Query(pairs): Pairs,
) -> Result<Json<TransactionsAnswer>, QueryError> {
    let (filter, _) = parse(Endpoint::List, &pairs)?;
    let store = st.store.clone();
    let answer = super::run(&st, ReadKind::Scan, filter.limit.saturating_mul(BYTES_PER_RECORD), move || {
        let (records, truncated) = store.xlog_records(&filter)?;
        Ok(TransactionsAnswer {
            count: records.len(),
            truncated,
            transactions: records.iter().map(TransactionView::of).collect(),
        })
    })
    .await?;
    Ok(Json(answer))
}
