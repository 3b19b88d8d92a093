//! Rewind's columnar span store on RocksDB. See docs/ARCHITECTURE.md for the layout.

pub mod catalog;
pub mod codec;
mod error;
mod helper;
pub mod keys;
mod maintenance;
mod memtable;
pub mod metrics;
pub mod model;
pub mod segment;
mod store;
mod writer;
pub mod xlog;

pub use catalog::{NodeKind, ServiceInfo};
pub use error::StorageError;
pub use maintenance::{now_ns, Maintenance};
pub use model::{Event, KeyValue, Link, Resource, Span, SpanId, TraceId, Value};
pub use store::{EncodedBatch, Store, StoreConfig, StoreStats, FORMAT_VERSION};
pub use writer::{Done, Writer};
pub use xlog::derive::DeriveConfig;
pub use xlog::query::{Metric, Points, XLogFilter};
pub use xlog::XLog;

#[cfg(test)]
mod store_tests;
