//! Rewind's columnar span store on RocksDB. See docs/ARCHITECTURE.md for the layout.

pub mod catalog;
pub mod clock;
pub mod codec;
mod disk;
mod error;
pub mod failpoint;
#[doc(hidden)]
pub mod fuzz;
mod health;
mod helper;
pub mod ids;
pub mod keys;
mod maintenance;
mod memtable;
pub mod metrics;
pub mod model;
mod retention;
mod seal;
pub mod segment;
mod store;
mod writer;
pub mod xlog;

pub use catalog::{NodeKind, ServiceInfo};
pub use clock::{now_ns, Clock, ManualClock, SystemClock};
pub use error::StorageError;
pub use failpoint::Failpoints;
pub use health::Health;
pub use ids::{IdError, SpanId, TraceId};
pub use maintenance::Maintenance;
pub use model::{Event, KeyValue, Link, Resource, Span, Value};
pub use store::{EncodedBatch, Store, StoreConfig, StoreStats, FORMAT_VERSION};
pub use writer::{Done, Writer};
pub use xlog::derive::DeriveConfig;
pub use xlog::query::{Metric, Points, XLogFilter};
pub use xlog::XLog;

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod testing;
