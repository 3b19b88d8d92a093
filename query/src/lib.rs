//! Rewind's query service: the HTTP API over the store.

mod error;
pub mod jaeger;
pub mod metrics;
pub mod openapi;
mod params;
pub mod render;
mod router;
mod routes;
mod sql_service;
mod state;

pub use error::QueryError;
pub use router::router;
pub use sql_service::{SqlFailure, SqlFuture, SqlOutput, SqlService, ARROW_STREAM};
pub use state::{MetricsRenderer, QueryLimits, QueryState};
