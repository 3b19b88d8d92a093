//! `rewind`: the collector, the store and the query service in one process.

mod config;
mod demo;
mod listen;
mod loadgen;
mod serve;
mod sql;

use clap::{Parser, Subcommand};

// Ingest allocates many small strings across many threads; mimalloc measured faster than glibc's
// malloc here and keeps RSS from fragmenting across per-thread arenas (benches/README.md).
#[global_allocator]
static ALLOCATOR: rewind_alloc::Allocator = rewind_alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "rewind",
    version,
    about = "APM tracing backend: OTLP in, server maps, call stacks and incident replay out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (OTLP gRPC and HTTP), the store and the query API with the UI.
    Serve(config::ServeArgs),
    /// `serve`, fed with the shop workload: an hour of history with an incident, then live traffic.
    Demo(demo::DemoArgs),
    /// Send the shop workload to a collector: live, backfilled, pre-encoded or replayed.
    Loadgen(loadgen::LoadgenArgs),
    /// Ask a running server a SQL question (tables spans, xlog, nodes, links) and print the answer.
    Sql(sql::SqlArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("REWIND_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("rewind").build()?;
    match cli.command {
        Command::Serve(args) => {
            let config = config::Config::load(args)?;
            rt.block_on(serve::run(config))
        }
        Command::Demo(args) => rt.block_on(demo::run(args)),
        Command::Loadgen(args) => rt.block_on(loadgen::run(args)),
        Command::Sql(args) => rt.block_on(sql::run(args)),
    }
}
