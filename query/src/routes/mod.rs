//! One module per resource of the API.

pub mod health;
pub mod histogram;
pub mod replay;
pub mod servermap;
pub mod services;
pub mod sql;
pub mod traces;
pub mod xlog;

use axum::Json;

use crate::error::QueryError;

/// A store read off the async runtime (reads decode pages and merge rows: seconds of CPU at
/// worst), answered as JSON.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, rewind_storage::StorageError> + Send + 'static,
) -> Result<Json<T>, QueryError> {
    let answer = tokio::task::spawn_blocking(f).await.map_err(|e| QueryError::Internal(e.to_string()))??;
    Ok(Json(answer))
}
