//! What every handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rewind_storage::Store;

pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct QueryState {
    pub store: Arc<Store>,
    /// Set once the store is open and every listener is bound.
    pub ready: Arc<AtomicBool>,
    pub metrics: MetricsRenderer,
    /// When set, `/api/*` requires `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Answers `POST /api/sql`; without it the endpoint answers 404.
    pub sql: Option<Arc<dyn crate::sql_service::SqlService>>,
}
