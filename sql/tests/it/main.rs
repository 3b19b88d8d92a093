//! The SQL tables over a real store on disk holding the shop workload: golden answers, pushdown
//! proven by the chunks read, deduplication, limits. One test binary for the crate.

mod dedup;
mod golden;
mod limits;
mod pushdown;
mod support;
