//! `GET /api/traces/{trace_id}`: every span of a trace; `GET /api/traces/{trace_id}/calltree`:
//! the trace as a call stack, a page of rows at a time.

use axum::extract::{Path, Query, State};
use axum::Json;
use rewind_storage::apm::calltree::{CallTree, DEFAULT_ROWS, MAX_ROWS};
use serde_json::json;

use crate::error::QueryError;
use crate::state::{QueryState, ReadKind};
use crate::{params, render};

pub async fn get(State(st): State<QueryState>, Path(raw): Path<String>) -> Result<Json<serde_json::Value>, QueryError> {
    let id = params::trace_id(&raw)?;
    let store = st.store.clone();
    // Rendered on the blocking thread too: a trace of 100,000 spans is seconds of JSON.
    let answer = super::run(&st, ReadKind::Lookup, super::LOOKUP_RESERVE, move || {
        let spans = store.trace(&id)?;
        if spans.is_empty() {
            return Err(QueryError::NotFound(format!("trace {id} not found")));
        }
        Ok(json!({
            "trace_id": id.to_string(),
            "span_count": spans.len(),
            "spans": spans.iter().map(render::span).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Json(answer))
}

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
