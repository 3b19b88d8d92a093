//! `GET /api/xlog` (the scatter: one point per transaction, as columns, in JSON or Arrow IPC) and
//! `GET /api/transactions` (the list behind a drag-select: full records).

mod params;
mod scatter;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rewind_storage::XLog;
use serde_json::json;

use crate::error::QueryError;
use crate::render;
use crate::state::{QueryState, ReadKind};
use params::{parse, Endpoint, Format, ARROW_STREAM};

type Pairs = Query<Vec<(String, String)>>;

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

pub async fn transactions(
    State(st): State<QueryState>,
    Query(pairs): Pairs,
) -> Result<Json<serde_json::Value>, QueryError> {
    let (filter, _) = parse(Endpoint::List, &pairs)?;
    let store = st.store.clone();
    let answer = super::run(&st, ReadKind::Scan, filter.limit.saturating_mul(BYTES_PER_RECORD), move || {
        let (records, truncated) = store.xlog_records(&filter)?;
        Ok(json!({
            "count": records.len(),
            "truncated": truncated,
            "transactions": records.iter().map(transaction).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Json(answer))
}

/// One XLog record as the list shows it: the entry span's attributes and its resource's apart,
/// as in `/api/traces`.
pub fn transaction(x: &XLog) -> serde_json::Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    json!({
        "trace_id": x.trace_id.to_string(),
        "span_id": x.span_id.to_string(),
        "service": x.service,
        "instance": x.instance,
        "endpoint": x.endpoint,
        "start_unix_nano": x.start_ns.to_string(),
        "start_ms": ms(x.start_ns),
        "end_ms": ms(x.end_ns()),
        "elapsed_ms": ms(x.elapsed_ns),
        "error": x.error,
        "error_message": x.error_message,
        "http_status": x.http_status,
        "client_ip": x.client_ip,
        "user_id": x.user_id,
        "user_agent": x.user_agent,
        "referer": x.referer,
        "cpu_ms": ms(x.cpu_ns),
        "alloc_bytes": x.alloc_bytes,
        "sql_count": x.sql_count,
        "sql_ms": ms(x.sql_ns),
        "api_count": x.api_count,
        "api_ms": ms(x.api_ns),
        "attributes": render::attributes(&x.attributes),
        "resource": {"attributes": render::attributes(&x.resource.attributes)},
    })
}
