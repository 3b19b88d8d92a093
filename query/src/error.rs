//! Query errors, each with its HTTP status and a stable machine-readable code, answered as
//! `{"error":{"code":"...","message":"..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("invalid parameter `{param}`: {message}")]
    BadParameter { param: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    #[error("storage error: {0}")]
    Storage(#[from] rewind_storage::StorageError),
    #[error("query task failed: {0}")]
    Internal(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{}", .0.message)]
    Sql(crate::sql_service::SqlFailure),
    /// Too many store reads at once, or not enough of the answer memory free: retry later.
    #[error("{0}; retry later")]
    Busy(String),
    /// The read ran past --query-timeout and was stopped.
    #[error("the query took longer than {0:?} (--query-timeout) and was stopped; narrow it")]
    Timeout(std::time::Duration),
}

impl QueryError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Storage(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) | Self::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Sql(f) => StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadParameter { .. } => "bad_parameter",
            Self::NotFound(_) => "not_found",
            Self::Unauthenticated => "unauthenticated",
            Self::Storage(_) => "storage",
            Self::Internal(_) => "internal",
            Self::TooLarge(_) => "too_large",
            Self::Busy(_) => "busy",
            Self::Timeout(_) => "query_timeout",
            Self::Sql(f) => f.code,
        }
    }
}

impl QueryError {
    /// Answers this error with the given body: its status, a log line when the fault is ours,
    /// and `Retry-After` when a retry can help. Rewind's own API and the Jaeger API differ only
    /// in the body.
    pub fn respond_with(&self, body: impl serde::Serialize) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "query failed");
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Every error of Rewind's own API.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_parameter`, `not_found`, `unauthenticated`, `too_large`,
    /// `busy`, `query_timeout`, `storage`, `internal`, or one of the SQL engine's.
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        self.respond_with(ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string() } })
    }
}
