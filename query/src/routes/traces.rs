//! `GET /api/traces/{trace_id}`: every span of a trace.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::json;

use crate::error::QueryError;
use crate::state::QueryState;
use crate::{params, render};

pub async fn get(State(st): State<QueryState>, Path(raw): Path<String>) -> Result<Json<serde_json::Value>, QueryError> {
    let id = params::trace_id(&raw)?;
    let store = st.store.clone();
    let spans = tokio::task::spawn_blocking(move || store.trace(&id))
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))??;
    if spans.is_empty() {
        return Err(QueryError::NotFound(format!("trace {id} not found")));
    }
    Ok(Json(json!({
        "trace_id": id.to_string(),
        "span_count": spans.len(),
        "spans": spans.iter().map(render::span).collect::<Vec<_>>(),
    })))
}
