//! Rewind's query service: the HTTP API over the store.

mod api;
mod error;
pub mod metrics;
pub mod render;
pub mod xlog;

pub use api::{parse_trace_id, router, MetricsRenderer, QueryState};
pub use error::QueryError;
