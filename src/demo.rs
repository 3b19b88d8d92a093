//! `rewind demo`: `serve`, fed with the shop workload through its own OTLP/gRPC listener: the last
//! hour backfilled with an incident ten minutes ago (MySQL eight times slower, a fifth of its calls
//! failing, for four minutes), then live traffic, so every view has something real at once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rewind_workload::{Dependency, Incident, Protocol, Shop, ShopConfig};

use crate::config::{Config, ServeArgs};
use crate::loadgen::{self, LoadgenArgs};
use crate::serve::{self, Ready};
use rewind_storage::now_ns;

const MINUTE: u64 = 60_000_000_000;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Spans per second of shop traffic, live and in the backfilled hour.
    #[arg(long, default_value_t = 300)]
    pub rate: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    // The demo keeps its data apart from a real store unless told otherwise.
    if args.serve.data_dir.is_none() {
        args.serve.data_dir = Some(PathBuf::from("./rewind-demo-data"));
    }
    let config = Config::load(args.serve)?;
    let token = config.ingest_token.clone();
    let (rate, seed) = (args.rate, args.seed);
    serve::run_with(config, move |ready| {
        tokio::spawn(async move {
            if let Err(e) = feed(ready, rate, seed, token).await {
                tracing::error!(error = %e, "the demo's feeder stopped");
            }
        });
    })
    .await
}

async fn feed(ready: Ready, rate: u64, seed: u64, token: Option<String>) -> anyhow::Result<()> {
    println!("Rewind demo: open http://localhost:{}/ (query API on the same port)", ready.query_addr.port());
    let now = now_ns();
    let incident = Incident {
        start_ns: now - 10 * MINUTE,
        end_ns: now - 6 * MINUTE,
        dependency: Dependency::Mysql,
        slowdown: 8.0,
        error_share: 0.2,
    };
    let mut shop = Shop::new(ShopConfig { seed, incident: Some(incident) });
    let args = LoadgenArgs {
        endpoint: format!("http://127.0.0.1:{}", ready.grpc_addr.port()),
        protocol: Protocol::Grpc,
        rate,
        duration: "0s".into(),
        seed,
        connections: 4,
        traces_per_request: 50,
        incident: None,
        backfill: None,
        write: None,
        requests: 0,
        replay: None,
        token,
    };
    let stats = ready.store.stats();
    if stats.sealed_spans == 0 && stats.memtable_spans == 0 {
        println!("backfilling the last hour at {rate} spans/s, with MySQL 8x slower and failing 20% of calls from 10 to 6 minutes ago...");
        let started = std::time::Instant::now();
        let spans = loadgen::backfill(&args, &mut shop, now - 60 * MINUTE, now).await?;
        println!("backfilled {spans} spans in {:.0} s; live traffic follows", started.elapsed().as_secs_f64());
    } else {
        println!("the store already holds data: no backfill; live traffic follows");
    }
    loadgen::live(&args, &mut shop, Duration::MAX, ready.stopping).await?;
    Ok(())
}
