//! The engine: a fresh DataFusion session per query over the store's tables, read-only, and
//! bounded in time (`timeout`: the query is stopped, not abandoned), memory (its own pool, no
//! spilling to disk), rows returned and queries at once. Queries run on the engine's own
//! runtime, where blocking store reads do not hold up the server's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use rewind_storage::Store;
use tokio::sync::Semaphore;

use crate::error::SqlError;
use crate::hints::{Hints, KeysRule};
use crate::render::{self, Answer};
use crate::spans::SpansTable;
use crate::stats::{StatsTable, Which};
use crate::xlog::XLogTable;

#[derive(Debug, Clone)]
pub struct Limits {
    /// A query running longer is stopped and answered `Timeout`.
    pub timeout: Duration,
    /// Memory of one query's operators (sorts, joins, aggregations, the XLog census).
    pub memory_bytes: usize,
    /// Rows a query may return.
    pub max_rows: usize,
    /// Queries at once; more are answered `Busy` (retryable).
    pub concurrency: usize,
    /// Threads of the engine's runtime, and DataFusion's partitions per scan.
    pub threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            max_rows: 100_000,
            concurrency: 4,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What a query answers: JSON rows, or Arrow IPC bytes.
#[derive(Debug)]
pub enum Output {
    Json(Answer),
    Arrow(Vec<u8>),
}

pub struct Engine {
    store: Arc<Store>,
    limits: Limits,
    runtime: Option<tokio::runtime::Runtime>,
    permits: Arc<Semaphore>,
}

impl Engine {
    pub fn new(store: Arc<Store>, limits: Limits) -> Result<Self, SqlError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.threads.max(1))
            .thread_name("rewind-sql")
            .enable_all()
            .build()
            .map_err(|e| SqlError::Internal(format!("starting the SQL runtime: {e}")))?;
        let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
        Ok(Self { store, limits, runtime: Some(runtime), permits })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs one query, answered as JSON or (`arrow`) Arrow IPC.
    pub async fn run(&self, sql: &str, arrow: bool) -> Result<Output, SqlError> {
        let started = Instant::now();
        let answer = self.bounded(sql, arrow).await;
        crate::metrics::answered(answer.as_ref().map_or_else(SqlError::code, |_| "ok"), started.elapsed());
        answer
    }

    /// The query on the engine's runtime, within the limits; rendered there too.
    async fn bounded(&self, sql: &str, arrow: bool) -> Result<Output, SqlError> {
        let _permit = self.permits.clone().try_acquire_owned().map_err(|_| SqlError::Busy(self.limits.concurrency))?;
        let ctx = self.context()?;
        let (sql, limits) = (sql.to_string(), self.limits.clone());
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the engine");
        let task = runtime.spawn(async move {
            let (schema, batches) = execute(&ctx, &sql, &limits).await?;
            Ok(if arrow {
                Output::Arrow(render::arrow_ipc(&schema, &batches)?)
            } else {
                Output::Json(render::json(&schema, &batches)?)
            })
        });
        let abort = task.abort_handle();
        match tokio::time::timeout(self.limits.timeout, task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(SqlError::Internal(format!("the query task failed: {e}"))),
            Err(_) => {
                // Dropping the query's streams stops its scans at their next page.
                abort.abort();
                Err(SqlError::Timeout(self.limits.timeout.as_millis() as u64))
            }
        }
    }

    /// A session with the store's tables, `attr`, its own memory pool and no spill files.
    fn context(&self) -> Result<SessionContext, SqlError> {
        let internal = |e: datafusion::error::DataFusionError| SqlError::Internal(e.to_string());
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(internal)?;
        let config =
            SessionConfig::new().with_target_partitions(self.limits.threads.max(1)).with_information_schema(true);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let hints = Arc::new(Hints::default());
        ctx.add_optimizer_rule(Arc::new(KeysRule(hints.clone())));
        let store = &self.store;
        ctx.register_table("spans", Arc::new(SpansTable { store: store.clone(), hints: hints.clone() }))
            .map_err(internal)?;
        ctx.register_table("xlog", Arc::new(XLogTable { store: store.clone(), hints })).map_err(internal)?;
        ctx.register_table("nodes", Arc::new(StatsTable { store: store.clone(), which: Which::Nodes }))
            .map_err(internal)?;
        ctx.register_table("links", Arc::new(StatsTable { store: store.clone(), which: Which::Links }))
            .map_err(internal)?;
        ctx.register_udf(crate::attr::udf());
        Ok(ctx)
    }
}

/// Plans (refusing anything but reads) and runs a query, keeping at most `max_rows` rows.
async fn execute(ctx: &SessionContext, sql: &str, limits: &Limits) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
    let df_err = |e| SqlError::from_datafusion(e, limits.memory_bytes);
    let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, read_only).await.map_err(df_err)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(df_err)?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(b) = stream.next().await {
        let b = b.map_err(df_err)?;
        rows += b.num_rows();
        if rows > limits.max_rows {
            return Err(SqlError::TooManyRows(limits.max_rows));
        }
        batches.push(b);
    }
    Ok((schema, batches))
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Dropped from async code at shutdown: a runtime may not block there.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
