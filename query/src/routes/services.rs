//! `GET /api/services`: services seen, with their kind and instances.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::render::ServiceView;
use crate::state::QueryState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesAnswer {
    /// Instrumented services and the virtual nodes (databases, caches, queues, external hosts)
    /// their calls name, by name.
    pub services: Vec<ServiceView>,
}

/// Every service and virtual node the store has seen.
#[utoipa::path(get, path = "/api/services", operation_id = "list_services", tag = "services",
    responses((status = 200, description = "The services", body = ServicesAnswer), crate::openapi::Refusals))]
pub async fn list(State(st): State<QueryState>) -> Json<ServicesAnswer> {
    Json(ServicesAnswer { services: st.store.services().iter().map(|s| ServiceView::of(s)).collect() })
}
