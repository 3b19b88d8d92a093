//! The routes of the query API (see BRIEF.md for the contract) and what guards them.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::QueryError;
use crate::routes::{health, histogram, replay, servermap, services, sql, traces, xlog};
use crate::state::QueryState;

pub fn router(state: QueryState) -> Router {
    let mut api = Router::new()
        .route("/api/services", get(services::list))
        .route("/api/traces/{trace_id}", get(traces::get))
        .route("/api/traces/{trace_id}/calltree", get(traces::calltree))
        .route("/api/servermap", get(servermap::get))
        .route("/api/histogram", get(histogram::get))
        .route("/api/replay", get(replay::replay))
        .route("/api/incidents", get(replay::incidents))
        .route("/api/compare", get(replay::compare))
        .route("/api/xlog", get(xlog::scatter))
        .route("/api/transactions", get(xlog::transactions))
        .route("/api/sql", post(sql::post));
    if let Some(prefix) = &state.jaeger_prefix {
        api = api.nest(prefix, crate::jaeger::routes());
    }
    let api = api
        .fallback(|| async { QueryError::NotFound("no such API endpoint".into()) })
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(api)
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(crate::openapi::serve))
        .route("/metrics", get(health::metrics))
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
