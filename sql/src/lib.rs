//! SQL over Rewind's store, with DataFusion: the one crate that depends on it.
//!
//! Tables (see README "SQL"): `spans`, `xlog` (one row per transaction, each record once),
//! `nodes` and `links` (the server map's statistics). Each is a `TableProvider` that reads the
//! store through its table layer: only the column chunks a query needs (projection), only the
//! partitions, segments and pages of the time range its filters name, and dictionary columns
//! matched once per page for equality filters. `attr(map, key)` reads one attribute.
//!
//! `engine`: the session per query, read-only and bounded (time, memory, rows, concurrency);
//! `scan`: the execution plan the providers share; `columns`: how stored columns become Arrow
//! arrays; `pushdown`: which filters the store can use; `render`: answers as JSON rows or Arrow
//! IPC.

mod attr;
mod columns;
mod engine;
mod error;
mod hints;
mod metrics;
mod pages;
mod pushdown;
mod render;
mod scan;
mod spans;
mod stats;
mod xlog;

pub use engine::{Engine, Limits, Output};
pub use error::SqlError;
pub use metrics::describe as describe_metrics;
pub use render::{Answer, Column};
