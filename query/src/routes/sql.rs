//! `POST /api/sql` with `{"sql": "..."}`: the answer as JSON, or as Arrow IPC when asked
//! (`"format": "arrow"` or `Accept: application/vnd.apache.arrow.stream`). The engine is the
//! `rewind-sql` crate, wired in by the binary through `SqlService` (`crate::sql_service`), so that
//! this crate does not depend on DataFusion.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::QueryError;
use crate::sql_service::{ARROW_STREAM, MAX_SQL_BYTES};
use crate::state::QueryState;

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
