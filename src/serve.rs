//! `rewind serve`: wiring and lifecycle. Start-up opens the store, then binds every listener,
//! then reports ready; shutdown (SIGTERM or Ctrl-C) stops the listeners, lets in-flight exports
//! finish, drains the writer so every acknowledged span is durable, and seals the memtable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use rewind_collector::{Ingest, IngestConfig, Limits, OtlpTraceService, XLogService};
use rewind_query::{QueryLimits, QueryState};
use rewind_storage::{Maintenance, Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::listen::{self, ListenLimits};

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// What `serve` hands to whoever runs beside it (the demo's feeder) once it is ready.
pub struct Ready {
    pub grpc_addr: std::net::SocketAddr,
    pub query_addr: std::net::SocketAddr,
    pub store: Arc<Store>,
    /// Turns true when shutdown starts.
    pub stopping: watch::Receiver<bool>,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    run_with(config, |_| {}).await
}

pub async fn run_with(config: Config, on_ready: impl FnOnce(Ready)) -> anyhow::Result<()> {
    let prometheus = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    rewind_storage::metrics::describe();
    rewind_collector::metrics::describe();
    rewind_query::metrics::describe();
    rewind_sql::describe_metrics();

    let mut store_config = StoreConfig::new(&config.data_dir);
    store_config.retention = config.retention;
    store_config.replay_window = config.replay_window;
    store_config.active_bounds_s = config.active_thresholds;
    store_config.derive.link_wait = config.link_wait;
    store_config.max_disk_bytes = config.max_disk_bytes;
    store_config.sync = config.sync;
    store_config.seal_interval = config.seal_interval;
    store_config.seal_rows = config.seal_rows;
    store_config.max_unsealed_bytes = config.max_unsealed_bytes;
    store_config.derive_xlog = config.xlog_from_spans;
    store_config.derive.grace = config.xlog_grace;
    store_config.min_free_disk_bytes = config.min_free_disk;
    store_config.max_services = config.max_services;
    store_config.max_attribute_keys = config.max_attribute_keys;
    store_config.derive.max_spans = config.xlog_max_spans;
    store_config.derive.max_trace_spans = config.xlog_max_trace_spans;
    store_config.derive.max_bytes = config.xlog_max_bytes;
    store_config.failpoints = failpoints()?;
    let store = tokio::task::spawn_blocking(move || Store::open(store_config))
        .await?
        .with_context(|| format!("opening the store at {}", config.data_dir.display()))?;
    let mut maintenance = Maintenance::start(store.clone());
    let ingest = Ingest::new(
        store.clone(),
        IngestConfig {
            limits: Limits::default(),
            queue_bytes: config.queue_bytes,
            max_message_bytes: config.max_message_bytes,
            token: config.ingest_token.clone(),
            export_timeout: config.export_timeout,
        },
    );
    let limits = ListenLimits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        max_streams: 128,
    };

    let bind = |addr, what: &'static str| async move {
        TcpListener::bind(addr).await.with_context(|| format!("binding the {what} listener on {addr}"))
    };
    let grpc_listener = bind(config.grpc_listen, "OTLP/gRPC").await?;
    let http_listener = bind(config.http_listen, "OTLP/HTTP").await?;
    let query_listener = bind(config.query_listen, "query").await?;
    let (grpc_addr, http_addr, query_addr) =
        (grpc_listener.local_addr()?, http_listener.local_addr()?, query_listener.local_addr()?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let grpc = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams)
        // A peer that stops answering pings is gone: its connection slot comes back.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(OtlpTraceService::new(ingest.clone()))
        .add_service(XLogService::new(ingest.clone()))
        .serve_with_incoming_shutdown(listen::incoming(grpc_listener, limits), stopped(stop_rx.clone()));
    let http = listen::serve_http(
        http_listener,
        rewind_collector::http::router(ingest.clone()),
        limits,
        stopped(stop_rx.clone()),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let state = QueryState {
        store: store.clone(),
        ready: ready.clone(),
        metrics: Arc::new(move || prometheus.render()),
        token: config.query_token.clone(),
        jaeger_prefix: config.jaeger_prefix.clone(),
        limits: Arc::new(QueryLimits::new(config.query_timeout, config.query_concurrency, config.query_memory)),
        sql: Some(Arc::new(crate::sql::Service(rewind_sql::Engine::new(
            store.clone(),
            rewind_sql::Limits {
                timeout: config.sql_timeout,
                memory_bytes: config.sql_memory,
                max_rows: config.sql_max_rows,
                concurrency: config.sql_concurrency,
                ..Default::default()
            },
        )?))),
    };
    let query = listen::serve_http(
        query_listener,
        rewind_query::router(state).merge(rewind_ui::router()),
        limits,
        stopped(stop_rx.clone()),
    );
    let servers = tokio::spawn(async move {
        let (g, (), ()) = tokio::join!(grpc, http, query);
        g.context("OTLP/gRPC server")?;
        anyhow::Ok(())
    });

    ready.store(true, Ordering::Release);
    tracing::info!(%grpc_addr, %http_addr, %query_addr, data_dir = %config.data_dir.display(), "rewind is ready");
    // One machine-readable line for scripts and tests that start rewind on port 0.
    println!("rewind listening grpc={grpc_addr} http={http_addr} query={query_addr}");
    on_ready(Ready { grpc_addr, query_addr, store: store.clone(), stopping: stop_rx.clone() });

    tokio::select! {
        _ = shutdown_signal() => {}
        why = store_failed(&store) => {
            // Nothing would ever seal or write again. Everything acknowledged is in the
            // write-ahead log: exiting lets a supervisor restart Rewind, which recovers it.
            tracing::error!(error = %why, "exiting: the store cannot continue");
            std::process::exit(70);
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, servers).await {
        Ok(joined) => joined??,
        Err(_) => tracing::warn!("in-flight requests did not finish in {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    tokio::task::spawn_blocking(move || {
        ingest.shutdown();
        maintenance.shutdown();
        store.seal_all()?;
        store.close()
    })
    .await?
    .context("sealing on shutdown (the spans stay in the write-ahead log)")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves with the reason once a background thread of the store has died.
async fn store_failed(store: &Store) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if let Some(why) = store.health().fatal() {
            return why;
        }
    }
}

/// Failure injection for the tests (`rewind_storage::failpoint`): read from `REWIND_FAILPOINTS`
/// only by a build with the `failpoints` feature, which release builds do not have.
fn failpoints() -> anyhow::Result<rewind_storage::Failpoints> {
    match std::env::var("REWIND_FAILPOINTS") {
        Ok(spec) if cfg!(feature = "failpoints") => {
            tracing::warn!(%spec, "failure injection is on");
            rewind_storage::Failpoints::parse(&spec).map_err(|e| anyhow::anyhow!("REWIND_FAILPOINTS: {e}"))
        }
        Ok(_) => {
            tracing::warn!("REWIND_FAILPOINTS is ignored: this build has no failure injection");
            Ok(Default::default())
        }
        Err(_) => Ok(Default::default()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
