//! `POST /api/sql` with `{"sql": "..."}`: the answer as JSON, or as Arrow IPC when asked
//! (`"format": "arrow"` or `Accept: application/vnd.apache.arrow.stream`). The engine is the
//! `rewind-sql` crate, wired in by the binary through `SqlService` (`crate::sql_service`), so that
//! this crate does not depend on DataFusion.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::QueryError;
use crate::sql_service::{ARROW_STREAM, MAX_SQL_BYTES};
use crate::state::QueryState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sql": "SELECT service, count(*) AS spans FROM spans GROUP BY service ORDER BY spans DESC"}))]
pub struct SqlRequest {
    /// One read-only statement over the tables `spans` and `xlog`, at most 64 KiB.
    #[schema(min_length = 1, max_length = 65536)]
    sql: String,
    /// `json` (the default) or `arrow`; `Accept: application/vnd.apache.arrow.stream` also asks
    /// for Arrow.
    #[serde(default)]
    #[schema(pattern = "^(json|arrow)$")]
    format: Option<String>,
}

/// The JSON answer (the `rewind-sql` engine writes it; its shape is held here for the API's
/// description).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlAnswer {
    pub columns: Vec<String>,
    pub types: Vec<SqlColumn>,
    /// One array per row, a value per column: timestamps as RFC 3339 text, maps as objects.
    pub rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlColumn {
    pub name: String,
    /// The SQL type as DataFusion names it.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A read-only SQL query over the stored spans and transactions (DataFusion), bounded in time,
/// memory and rows. Answers 404 when the server runs without SQL.
#[utoipa::path(post, path = "/api/sql", operation_id = "run_sql", tag = "sql",
    request_body(content = SqlRequest, content_type = "application/json"),
    responses((status = 200, description = "The rows",
        content((SqlAnswer = "application/json"), (Vec<u8> = "application/vnd.apache.arrow.stream"))),
        (status = 404, description = "SQL is not enabled on this server", body = crate::error::ErrorBody),
        (status = 408, description = "The query ran past its time limit", body = crate::error::ErrorBody),
        crate::openapi::Refusals))]
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
