//! The query HTTP API (see BRIEF.md for the contract).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rewind_storage::{Store, TraceId};
use serde_json::json;

use crate::error::QueryError;
use crate::render;

pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct QueryState {
    pub store: Arc<Store>,
    /// Set once the store is open and every listener is bound.
    pub ready: Arc<AtomicBool>,
    pub metrics: MetricsRenderer,
    /// When set, `/api/*` requires `authorization: Bearer <token>`.
    pub token: Option<String>,
}

pub fn router(state: QueryState) -> Router {
    let api = Router::new()
        .route("/api/services", get(services))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/xlog", get(crate::xlog::xlog))
        .route("/api/transactions", get(crate::xlog::transactions))
        .fallback(|| async { QueryError::NotFound("no such API endpoint".into()) })
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(api)
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn auth(State(st): State<QueryState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.token {
        let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !rewind_agent_proto::bearer_matches(given, token) {
            return QueryError::Unauthenticated.into_response();
        }
    }
    next.run(req).await
}

/// Ready once every listener is bound, and while the store can write: a full disk or a failing
/// one takes the instance out of service until writes work again.
async fn readyz(State(st): State<QueryState>) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    match st.store.health().ready() {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")).into_response(),
    }
}

async fn metrics(State(st): State<QueryState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], (st.metrics)()).into_response()
}

/// 32 hex characters, not all zero (W3C trace context).
pub fn parse_trace_id(s: &str) -> Result<TraceId, QueryError> {
    let bad = |message: &str| QueryError::BadParameter { param: "trace_id", message: message.into() };
    if s.len() != 32 {
        return Err(bad("a trace id is 32 hexadecimal characters"));
    }
    let mut id = [0u8; 16];
    hex::decode_to_slice(s, &mut id).map_err(|_| bad("a trace id is 32 hexadecimal characters"))?;
    if id == [0; 16] {
        return Err(bad("the all-zero trace id is invalid"));
    }
    Ok(id)
}

async fn trace(State(st): State<QueryState>, Path(raw): Path<String>) -> Result<Json<serde_json::Value>, QueryError> {
    let id = parse_trace_id(&raw)?;
    let store = st.store.clone();
    let spans = tokio::task::spawn_blocking(move || store.trace(&id))
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))??;
    if spans.is_empty() {
        return Err(QueryError::NotFound(format!("trace {} not found", hex::encode(id))));
    }
    Ok(Json(json!({
        "trace_id": hex::encode(id),
        "span_count": spans.len(),
        "spans": spans.iter().map(render::span).collect::<Vec<_>>(),
    })))
}

async fn services(State(st): State<QueryState>) -> Json<serde_json::Value> {
    let list = st.store.services();
    Json(json!({ "services": list.iter().map(render::service).collect::<Vec<_>>() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_validated() {
        assert!(parse_trace_id("5b8efff798038103d269b633813fc60c").is_ok());
        assert!(parse_trace_id("5B8EFFF798038103D269B633813FC60C").is_ok());
        for bad in [
            "",
            "abc",
            "5b8efff798038103d269b633813fc60",
            "zz8efff798038103d269b633813fc60c",
            "00000000000000000000000000000000",
        ] {
            assert!(matches!(parse_trace_id(bad), Err(QueryError::BadParameter { param: "trace_id", .. })), "{bad}");
        }
    }
}
