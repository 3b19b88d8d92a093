//! `GET /api/services`: services seen, with their kind and instances.

use axum::extract::State;
use axum::Json;
use serde_json::json;

use crate::render;
use crate::state::QueryState;

pub async fn list(State(st): State<QueryState>) -> Json<serde_json::Value> {
    let list = st.store.services();
    Json(json!({ "services": list.iter().map(|s| render::service(s)).collect::<Vec<_>>() }))
}
