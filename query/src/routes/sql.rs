//! `POST /api/sql` with `{"sql": "..."}`: the answer as JSON, or as Arrow IPC when asked
//! (`"format": "arrow"` or `Accept: application/vnd.apache.arrow.stream`). The engine is the
//! `rewind-sql` crate, wired in by the binary through `SqlService`, so that this crate does not
//! depend on DataFusion.

use std::future::Future;
use std::pin::Pin;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::QueryError;
use crate::state::QueryState;

/// Longest query text accepted.
pub const MAX_SQL_BYTES: usize = 64 << 10;

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// An answer, already encoded.
pub struct SqlOutput {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// A refused or failed query: the status and code the engine gives it.
#[derive(Debug, Clone)]
pub struct SqlFailure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

pub type SqlFuture<'a> = Pin<Box<dyn Future<Output = Result<SqlOutput, SqlFailure>> + Send + 'a>>;

/// What answers SQL.
pub trait SqlService: Send + Sync + 'static {
    fn run(&self, sql: String, arrow: bool) -> SqlFuture<'_>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

pub async fn post(
    State(st): State<QueryState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, QueryError> {
    let Some(engine) = st.sql.clone() else {
        return Err(QueryError::NotFound("SQL is not enabled on this server".into()));
    };
    if body.len() > MAX_SQL_BYTES + 1024 {
        return Err(QueryError::TooLarge(format!("the request is larger than {} bytes", MAX_SQL_BYTES + 1024)));
    }
    let req: SqlRequest = serde_json::from_slice(&body).map_err(|e| QueryError::BadParameter {
        param: "body",
        message: format!("expected {{\"sql\": \"...\"}}: {e}"),
    })?;
    if req.sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::TooLarge(format!("the query is longer than {MAX_SQL_BYTES} bytes")));
    }
    let accepts_arrow =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(ARROW_STREAM));
    let arrow = match req.format.as_deref() {
        None => accepts_arrow,
        Some("json") => false,
        Some("arrow") => true,
        Some(other) => {
            return Err(QueryError::BadParameter {
                param: "format",
                message: format!("{other:?}: expected \"json\" or \"arrow\""),
            })
        }
    };
    match engine.run(req.sql, arrow).await {
        Ok(out) => Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(out.content_type))], out.body).into_response()),
        Err(f) => Err(QueryError::Sql(f)),
    }
}
