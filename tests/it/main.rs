//! End-to-end tests: the real `rewind` binary on ephemeral ports, real clients. One test binary
//! for the whole package so CI links RocksDB once.

mod agents;
mod bounded;
mod cli;
mod crash;
mod crashloop;
mod data;
mod fuzz;
mod harness;
mod hostile;
mod jaeger;
mod openapi;
mod replay;
mod roundtrip;
mod safety;
mod servermap;
mod sql;
mod ui;
mod xlog;
mod zipkin;
