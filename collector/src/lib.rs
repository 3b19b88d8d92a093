//! Rewind's collector: OTLP over gRPC and HTTP into the store.

pub mod census;
pub mod convert;
pub mod decode;
mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod grpc;
pub mod http;
mod ingest;
pub mod json;
pub mod meter;
pub mod metrics;
pub mod wire;
pub mod xlog;
pub mod zipkin;

pub use convert::Limits;
pub use error::CollectorError;
pub use grpc::{OtlpTraceService, XLogService};
pub use ingest::{Format, Ingest, IngestConfig, Outcome, Payload};
