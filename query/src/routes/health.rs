//! `/livez`, `/readyz` and `/metrics`: open even when `/api/*` needs a token (probes and scrapers).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::QueryState;

pub async fn livez() -> &'static str {
    "ok"
}

/// Ready once every listener is bound, and while the store can write: a full disk or a failing
/// one takes the instance out of service until writes work again.
pub async fn readyz(State(st): State<QueryState>) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    match st.store.health().ready() {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")).into_response(),
    }
}

pub async fn metrics(State(st): State<QueryState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], (st.metrics)()).into_response()
}
