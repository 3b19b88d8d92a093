//! Rewind's columnar span store on RocksDB. See docs/ARCHITECTURE.md for the layout.

pub mod apm;
pub mod attr_keys;
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
pub mod interrupt;
pub mod keys;
mod maintenance;
mod memtable;
pub mod metrics;
pub mod model;

pub mod spans;
pub mod stats;
mod store;
pub mod table;
mod writer;
pub mod xlog;

pub use apm::derive::DeriveConfig;
pub use attr_keys::AttributeKeys;
pub use catalog::{NodeKind, ServiceInfo};
pub use clock::{now_ns, Clock, ManualClock, SystemClock};
pub use error::StorageError;
pub use failpoint::Failpoints;
pub use health::Health;
pub use ids::{IdError, SpanId, TraceId};
pub use maintenance::Maintenance;
pub use model::{Event, Key, KeyValue, Link, Resource, Span, Value};
pub use store::{EncodedBatch, Snapshot, Store, StoreConfig, StoreStats, FORMAT_VERSION};
pub use writer::{Done, Writer};
pub use xlog::XLog;
pub use xlog::{Metric, Points, XLogFilter};

#[cfg(test)]
mod testing;
