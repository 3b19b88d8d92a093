//! What answers `POST /api/sql`: a trait the binary implements with the `rewind-sql` engine, so
//! that this crate does not depend on DataFusion. A leaf: the route, the state and the error all
//! use it.

use std::future::Future;
use std::pin::Pin;

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
