//! The server map's statistics as two tables, `nodes` (a service's transactions, by endpoint and
//! instance) and `links` (calls from one node to another, by instance): one row per key and
//! second, minute or hour, from the coarsest rows that answer the time range (as every map read),
//! so `seconds` says how wide each row is; one row per key and time. Counts and sums add up over
//! any grouping; the percentiles are the row's own.

use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use rewind_storage::apm::semconv::NodeKind;
use rewind_storage::codec::Reader as Bytes;
use rewind_storage::stats::hist::Hist;
use rewind_storage::stats::table::Resolution;
use rewind_storage::stats::{Cell, Key};
use rewind_storage::{StorageError, Store};
use rustc_hash::FxHashMap;

use crate::columns as c;
use crate::pages::{batch, BATCH_ROWS};
use crate::pushdown::{Pushable, Pushed};
use crate::scan::{storage_error, Batches, ScanExec, Source};

/// Bytes a row read back holds until its batch is built.
const ROW_BYTES: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Nodes,
    Links,
}

/// One row: when, how wide, the key's fields, and the figures.
struct Row {
    time: u64,
    seconds: u64,
    key: Vec<String>,
    cell: Cell,
}

const FIGURES: [&str; 7] = ["count", "errors", "elapsed_sum_ms", "elapsed_max_ms", "p50_ms", "p90_ms", "p99_ms"];

impl Which {
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            Which::Nodes => &["service", "endpoint", "instance"],
            Which::Links => &["source", "source_instance", "target", "target_instance", "target_kind"],
        }
    }

    fn pushable(self) -> Pushable {
        Pushable {
            time: "time",
            time_unit_ns: 1_000_000_000,
            equals: match self {
                Which::Nodes => &["service", "endpoint", "instance"],
                Which::Links => &["source", "target", "target_kind"],
            },
        }
    }

    fn schema(self) -> SchemaRef {
        let mut fields = vec![Field::new("time", c::utc(), true), Field::new("seconds", DataType::Int64, true)];
        fields.extend(self.key_columns().iter().map(|n| Field::new(*n, DataType::Utf8, true)));
        fields.extend(FIGURES.iter().map(|n| {
            let ty = if n.ends_with("_ms") { DataType::Float64 } else { DataType::Int64 };
            Field::new(*n, ty, true)
        }));
        Arc::new(Schema::new(fields))
    }

    /// The key's fields as this table's columns; `None` for a key of the other table.
    fn fields(self, key: &Key) -> Option<Vec<String>> {
        match (self, key) {
            (Which::Nodes, Key::Node { service, endpoint, instance }) => {
                Some(vec![service.to_string(), endpoint.to_string(), instance.to_string()])
            }
            (Which::Links, Key::Link { source, source_instance, target, target_instance, target_kind }) => Some(vec![
                source.to_string(),
                source_instance.to_string(),
                target.to_string(),
                target_instance.to_string(),
                kind_name(*target_kind).to_string(),
            ]),
            _ => None,
        }
    }
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Server => "server",
        NodeKind::Database => "database",
        NodeKind::Cache => "cache",
        NodeKind::Queue => "queue",
        NodeKind::External => "external",
        NodeKind::User => "user",
    }
}

#[derive(Debug)]
pub struct StatsTable {
    pub store: Arc<Store>,
    pub which: Which,
}

#[async_trait]
impl TableProvider for StatsTable {
    fn schema(&self) -> SchemaRef {
        self.which.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let p = self.which.pushable();
        Ok(filters.iter().map(|f| crate::pushdown::exactness(&p, f)).collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let full = self.which.schema();
        let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..full.fields().len()).collect());
        let schema = Arc::new(full.project(&projection)?);
        let pushed = self.which.pushable().analyze(filters);
        let source =
            StatsSource { store: self.store.clone(), which: self.which, projection, schema: schema.clone(), pushed };
        Ok(Arc::new(ScanExec::new(Arc::new(source), schema, limit)))
    }
}

struct StatsSource {
    store: Arc<Store>,
    which: Which,
    projection: Vec<usize>,
    schema: SchemaRef,
    pushed: Pushed,
}

impl fmt::Debug for StatsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StatsSource {
    /// Every row of the range that passes the filters, each piece at its resolution.
    fn rows(&self, ctx: &TaskContext) -> Result<Vec<Row>> {
        let (from, to) = (self.pushed.from, self.pushed.to.min(u64::MAX / 1_000_000_000));
        let which = self.which;
        let key_columns = which.key_columns();
        let wanted = |k: &str| -> bool {
            let Ok(key) = Key::decode(k) else { return false };
            let Some(fields) = which.fields(&key) else { return false };
            self.pushed
                .equals
                .iter()
                .all(|(c, v)| key_columns.iter().position(|k| k == c).is_some_and(|i| fields[i] == *v))
        };
        let reservation = MemoryConsumer::new("statistics rows").register(ctx.memory_pool());
        let mut rows: Vec<Row> = Vec::new();
        // The pool's refusal, kept to be answered as itself once the read has stopped.
        let mut refused: Option<DataFusionError> = None;
        let (pieces, range) = self.store.stats_pieces(from, to, Resolution::Hour);
        let pieces = pieces.into_iter().map(Some).chain([None]);
        for piece in pieces {
            let seconds = piece.map_or(1, |p| p.resolution.seconds());
            let mut visit = |t: u64, k: &str, cell: &[u8]| -> Result<(), StorageError> {
                if let Err(e) = reservation.try_grow(ROW_BYTES) {
                    refused = Some(e);
                    return Err(StorageError::Corrupt("stopped at the memory limit".into()));
                }
                let fields = which.fields(&Key::decode(k)?).unwrap_or_default();
                rows.push(Row { time: t, seconds, key: fields, cell: Cell::decode(&mut Bytes::new(cell))? });
                Ok(())
            };
            let read = match piece {
                Some(p) => self.store.stats_visit_piece(p, &wanted, &mut visit),
                None => self.store.stats_visit_unsealed(range.0, range.1, &wanted, &mut visit),
            };
            if let Some(e) = refused.take() {
                return Err(e);
            }
            read.map_err(storage_error)?;
        }
        // A minute or hour row answers a range rounded out to it: keep only rows that start in it.
        rows.retain(|r| r.time >= from && r.time < to);
        // Late data leaves more than one row of a key and time (one per seal): one row each.
        let mut at: FxHashMap<(u64, u64, Vec<String>), usize> = FxHashMap::default();
        let mut merged: Vec<Row> = Vec::with_capacity(rows.len());
        for r in rows {
            match at.entry((r.time, r.seconds, r.key.clone())) {
                Entry::Occupied(o) => merged[*o.get()].cell.merge(&r.cell),
                Entry::Vacant(v) => {
                    v.insert(merged.len());
                    merged.push(r);
                }
            }
        }
        merged.sort_by(|a, b| (a.time, &a.key).cmp(&(b.time, &b.key)));
        Ok(merged)
    }

    fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let keys = self.which.key_columns().len();
        let column = |i: usize| -> ArrayRef {
            match i {
                0 => c::timestamps(rows.iter().map(|r| r.time.saturating_mul(1_000_000_000))),
                1 => c::ints(rows.iter().map(|r| r.seconds)),
                i if i < 2 + keys => c::strings(rows.iter().map(|r| r.key.get(i - 2).map_or("", |s| s.as_str()))),
                i => {
                    let figure = FIGURES[i - 2 - keys];
                    let ms = |ns: u64| ns as f64 / 1e6;
                    let q = |r: &Row, q: f64| Hist::quantiles(&[&r.cell.ok, &r.cell.err], &[q])[0] as f64 / 1e3;
                    match figure {
                        "count" => c::ints(rows.iter().map(|r| r.cell.count())),
                        "errors" => c::ints(rows.iter().map(|r| r.cell.errors())),
                        "elapsed_sum_ms" => floats(rows.iter().map(|r| ms(r.cell.sum_ns))),
                        "elapsed_max_ms" => floats(rows.iter().map(|r| ms(r.cell.max_ns))),
                        "p50_ms" => floats(rows.iter().map(|r| q(r, 0.5))),
                        "p90_ms" => floats(rows.iter().map(|r| q(r, 0.9))),
                        _ => floats(rows.iter().map(|r| q(r, 0.99))),
                    }
                }
            }
        };
        batch(self.schema.clone(), self.projection.iter().map(|&i| column(i)).collect(), rows.len())
    }
}

fn floats(v: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(datafusion::arrow::array::Float64Array::from_iter_values(v))
}

impl Source for StatsSource {
    fn partitions(&self) -> usize {
        1
    }

    fn batches(&self, _partition: usize, ctx: Arc<TaskContext>) -> Result<Batches> {
        let rows = self.rows(&ctx)?;
        let batches: Vec<Result<RecordBatch>> = rows.chunks(BATCH_ROWS).map(|r| self.batch(r)).collect();
        Ok(Box::new(batches.into_iter()))
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.schema.fields().iter().map(|f| f.name().clone()).collect();
        let (from, to) = (self.pushed.from, self.pushed.to.min(u64::MAX / 1_000_000_000));
        let pieces = self.store.stats_pieces(from, to, Resolution::Hour).0;
        let name = if self.which == Which::Nodes { "nodes" } else { "links" };
        format!("table={name}, projection=[{}], {}, pieces={}", names.join(", "), self.pushed, pieces.len())
    }
}
