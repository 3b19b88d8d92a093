//! `GET /api/traces/{trace_id}`: every span of a trace; `GET /api/traces/{trace_id}/calltree`:
//! the trace as a call stack, a page of rows at a time.

use axum::extract::{Path, Query, State};
use axum::Json;
use rewind_storage::apm::calltree::{CallTree, DEFAULT_ROWS, MAX_ROWS};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::QueryError;
use crate::params;
use crate::render::SpanView;
use crate::state::{QueryState, ReadKind};

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceAnswer {
    pub trace_id: String,
    pub span_count: usize,
    /// In the store's order: by start time.
    pub spans: Vec<SpanView>,
}

/// Every span of a trace.
#[utoipa::path(get, path = "/api/traces/{trace_id}", operation_id = "get_trace", tag = "traces",
    params(("trace_id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")),
    responses((status = 200, description = "The trace", body = TraceAnswer), (status = 404, description = "No span of this trace is stored",
        body = crate::error::ErrorBody), crate::openapi::Refusals))]
pub async fn get(State(st): State<QueryState>, Path(raw): Path<String>) -> Result<Json<TraceAnswer>, QueryError> {
    let id = params::trace_id(&raw)?;
    let store = st.store.clone();
    // Rendered on the blocking thread too: a trace of 100,000 spans is seconds of JSON.
    let answer = super::run(&st, ReadKind::Lookup, super::LOOKUP_RESERVE, move || {
        let spans = store.trace(&id)?;
        if spans.is_empty() {
            return Err(QueryError::NotFound(format!("trace {id} not found")));
        }
        Ok(TraceAnswer {
            trace_id: id.to_string(),
            span_count: spans.len(),
            spans: spans.iter().map(SpanView::of).collect(),
        })
    })
    .await?;
    Ok(Json(answer))
}

/// The trace as a call stack (Pinpoint's call tree), a page of rows at a time.
#[utoipa::path(get, path = "/api/traces/{trace_id}/calltree", operation_id = "get_calltree", tag = "traces",
    params(("trace_id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$"),
        ("offset" = Option<u64>, Query, description = "The first row to answer, from 0", minimum = 0, maximum = 4294967295.0),
        ("limit" = Option<u32>, Query, description = "Rows to answer (default 2,000)", minimum = 1, maximum = 20_000)),
    responses((status = 200, description = "A page of the call tree", body = CallTree), (status = 404, description = "No span of this trace is stored",
        body = crate::error::ErrorBody), crate::openapi::Refusals))]
pub async fn calltree(
    State(st): State<QueryState>,
    Path(raw): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<CallTree>, QueryError> {
    let id = params::trace_id(&raw)?;
    let p = params::unique(&pairs, &["offset", "limit"])?;
    let offset = p.get("offset").map(|v| params::whole("offset", v, 0, u32::MAX.into())).transpose()?.unwrap_or(0);
    let limit = p.get("limit").map(|v| params::whole("limit", v, 1, MAX_ROWS as u64)).transpose()?;
    let store = st.store.clone();
    let tree =
        super::run(&st, ReadKind::Lookup, super::LOOKUP_RESERVE, move || -> Result<Option<CallTree>, QueryError> {
            let spans = store.trace(&id)?;
            if spans.is_empty() {
                return Ok(None);
            }
            Ok(Some(CallTree::build(spans, offset as usize, limit.map_or(DEFAULT_ROWS, |l| l as usize))))
        })
        .await?;
    tree.map(Json).ok_or_else(|| QueryError::NotFound(format!("trace {id} not found")))
}
