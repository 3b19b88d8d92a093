//! The `xlog` table: one row per transaction, partitioned by end time, each record once (its
//! most complete copy, as every XLog read: `rewind_storage::xlog::dedup`). A partition's census
//! is taken once, by the first of DataFusion's partitions to need it, and dropped when the last
//! of its pages is read; its memory is reserved from the query's pool.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;
use rewind_storage::xlog::dedup::{self, Census, Unit, CENSUS_COLUMNS};
use rewind_storage::xlog::segment::{cols, XLogSegmentMeta};
use rewind_storage::{StorageError, Store, XLog};

use crate::columns::{self as c, Column, Needs};
use crate::hints::Hints;
use crate::pages::{deal, EqColumn, Match, Reader, TableScanDef, BATCH_ROWS};
use crate::pushdown::Pushable;
use crate::scan::{storage_error, Batches, ScanExec, Source};

/// Bytes a census holds per record it counted (hash map entry and its share of free slots).
const CENSUS_BYTES: usize = 80;

macro_rules! dict {
    ($name:literal, $col:expr, $field:ident) => {
        Column {
            name: $name,
            ty: || DataType::Utf8,
            needs: Needs::Stored(&[$col]),
            page: |p| c::page_strings(p, $col),
            rows: |r| c::strings(r.iter().map(|x| &*x.$field)),
        }
    };
}

macro_rules! number {
    ($name:literal, $col:expr, $make:path, $ty:expr, $value:expr) => {
        Column {
            name: $name,
            ty: || $ty,
            needs: Needs::Stored(&[$col]),
            page: |p| Ok($make(p.varints($col)?.into_iter())),
            rows: |r| $make(r.iter().map($value)),
        }
    };
}

static COLUMNS: [Column<XLogSegmentMeta, XLog>; 23] = [
    Column {
        name: "trace_id",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::TRACE_ID]),
        page: |p| Ok(c::hex(p.trace_ids(cols::TRACE_ID)?.into_iter())),
        rows: |r| c::hex(r.iter().map(|x| x.trace_id)),
    },
    Column {
        name: "span_id",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::SPAN_ID]),
        page: |p| Ok(c::hex(p.span_ids(cols::SPAN_ID)?.into_iter())),
        rows: |r| c::hex(r.iter().map(|x| x.span_id)),
    },
    dict!("service", cols::SERVICE, service),
    dict!("instance", cols::INSTANCE, instance),
    dict!("endpoint", cols::ENDPOINT, endpoint),
    Column {
        name: "start",
        ty: c::utc,
        needs: Needs::Stored(&[cols::END, cols::ELAPSED]),
        page: |p| {
            let (e, d) = (p.deltas(cols::END)?, p.varints(cols::ELAPSED)?);
            Ok(c::timestamps(e.iter().zip(d).map(|(e, d)| e.saturating_sub(d))))
        },
        rows: |r| c::timestamps(r.iter().map(|x| x.start_ns)),
    },
    Column {
        name: "end",
        ty: c::utc,
        needs: Needs::Stored(&[cols::END]),
        page: |p| Ok(c::timestamps(p.deltas(cols::END)?.into_iter())),
        rows: |r| c::timestamps(r.iter().map(XLog::end_ns)),
    },
    number!("elapsed_ms", cols::ELAPSED, c::millis, DataType::Float64, |x| x.elapsed_ns),
    Column {
        name: "error",
        ty: || DataType::Boolean,
        needs: Needs::Stored(&[cols::ERROR]),
        page: |p| Ok(c::bools(p.u8s(cols::ERROR)?.into_iter().map(|e| e != 0))),
        rows: |r| c::bools(r.iter().map(|x| x.error)),
    },
    dict!("error_message", cols::ERROR_MESSAGE, error_message),
    number!("http_status", cols::HTTP_STATUS, c::ints, DataType::Int64, |x| u64::from(x.http_status)),
    dict!("client_ip", cols::CLIENT_IP, client_ip),
    dict!("user_id", cols::USER_ID, user_id),
    dict!("user_agent", cols::USER_AGENT, user_agent),
    dict!("referer", cols::REFERER, referer),
    number!("cpu_ms", cols::CPU, c::millis, DataType::Float64, |x| x.cpu_ns),
    number!("alloc_bytes", cols::ALLOC, c::ints, DataType::Int64, |x| x.alloc_bytes),
    number!("sql_count", cols::SQL_COUNT, c::ints, DataType::Int64, |x| u64::from(x.sql_count)),
    number!("sql_ms", cols::SQL_NS, c::millis, DataType::Float64, |x| x.sql_ns),
    number!("api_count", cols::API_COUNT, c::ints, DataType::Int64, |x| u64::from(x.api_count)),
    number!("api_ms", cols::API_NS, c::millis, DataType::Float64, |x| x.api_ns),
    Column {
        name: "attributes",
        ty: c::map_type,
        needs: Needs::Attributes,
        page: c::page_attributes,
        rows: |r| c::attribute_map(r.iter().map(|x| &*x.attributes)),
    },
    Column {
        name: "resource",
        ty: c::map_type,
        needs: Needs::Resource,
        page: c::page_resources,
        rows: |r| c::resource_map(r.iter().map(|x| &*x.resource)),
    },
];

static EQUALS: [EqColumn<XLog>; 6] = [
    EqColumn { name: "service", stored: cols::SERVICE, matching: Match::Dict, of_row: |x| x.service.to_string() },
    EqColumn { name: "endpoint", stored: cols::ENDPOINT, matching: Match::Dict, of_row: |x| x.endpoint.to_string() },
    EqColumn { name: "instance", stored: cols::INSTANCE, matching: Match::Dict, of_row: |x| x.instance.to_string() },
    EqColumn { name: "user_id", stored: cols::USER_ID, matching: Match::Dict, of_row: |x| x.user_id.to_string() },
    EqColumn { name: "client_ip", stored: cols::CLIENT_IP, matching: Match::Dict, of_row: |x| x.client_ip.to_string() },
    EqColumn { name: "trace_id", stored: cols::TRACE_ID, matching: Match::TraceId, of_row: |x| x.trace_id.to_string() },
];

static DEF: TableScanDef<XLogSegmentMeta, XLog> =
    TableScanDef { name: "xlog", columns: &COLUMNS, time_column: cols::END, row_time: XLog::end_ns, equals: &EQUALS };

pub const PUSHABLE: Pushable = Pushable {
    time: "end",
    time_unit_ns: 1,
    equals: &["service", "endpoint", "instance", "user_id", "client_ip", "trace_id"],
};

#[derive(Debug)]
pub struct XLogTable {
    pub store: Arc<Store>,
    /// Which attribute keys this session's query reads.
    pub hints: Arc<Hints>,
}

#[async_trait]
impl TableProvider for XLogTable {
    fn schema(&self) -> SchemaRef {
        c::schema_of(&COLUMNS)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| crate::pushdown::exactness(&PUSHABLE, f)).collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let reader = Reader::new(&DEF, projection, PUSHABLE.analyze(filters), &self.hints);
        let schema = reader.schema.clone();
        let snap = self.store.xlog_snapshot(reader.pushed.from, reader.pushed.to);
        let store = self.store.clone();
        let units =
            dedup::plan(snap.memory, snap.segments, reader.pushed.from, reader.pushed.to, |t| store.partition_of(t));
        let source = XLogSource::new(self.store.clone(), reader, units, state.config().target_partitions());
        Ok(Arc::new(ScanExec::new(Arc::new(source), schema, limit)))
    }
}

/// A unit's census, taken by whoever needs it first, dropped after its last item.
struct Slot {
    unit: Unit,
    census: Mutex<Option<Arc<(Census, MemoryReservation)>>>,
    remaining: AtomicUsize,
}

/// One item of work: a unit's memory records, or one of its pages.
#[derive(Clone, Copy)]
enum Item {
    Memory(usize),
    Page(usize, usize),
}

struct XLogSource {
    store: Arc<Store>,
    reader: Arc<Reader<XLogSegmentMeta, XLog>>,
    slots: Arc<Vec<Slot>>,
    parts: Vec<Vec<Item>>,
}

impl XLogSource {
    fn new(store: Arc<Store>, reader: Reader<XLogSegmentMeta, XLog>, units: Vec<Unit>, partitions: usize) -> Self {
        let mut items = Vec::new();
        let slots: Vec<Slot> = units
            .into_iter()
            .enumerate()
            .map(|(u, unit)| {
                let before = items.len();
                if !unit.memory.is_empty() {
                    items.push(Item::Memory(u));
                }
                items.extend((0..unit.pages.len()).map(|p| Item::Page(u, p)));
                let remaining = AtomicUsize::new(items.len() - before);
                Slot { unit, census: Mutex::new(None), remaining }
            })
            .collect();
        Self { store, reader: Arc::new(reader), slots: Arc::new(slots), parts: deal(items, partitions) }
    }
}

/// Reads a unit's items, taking its census first if no one has, and giving it up after the
/// unit's last item.
fn read_item(
    store: &Store,
    reader: &Reader<XLogSegmentMeta, XLog>,
    slots: &[Slot],
    item: Item,
    ctx: &TaskContext,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let u = match item {
        Item::Memory(u) | Item::Page(u, _) => u,
    };
    let slot = &slots[u];
    let census = {
        let mut held = slot.census.lock();
        match &*held {
            Some(c) => c.clone(),
            None => {
                let census = slot.unit.census(|p| match store.read_page(&*p.meta, p.page, &CENSUS_COLUMNS) {
                    Ok(page) => Ok(Some(page)),
                    Err(StorageError::PartitionDropped(_)) => Ok(None),
                    Err(e) => Err(e),
                });
                let census = census.map_err(storage_error)?;
                let reservation = MemoryConsumer::new("xlog census").register(ctx.memory_pool());
                reservation.try_grow(census.len() * CENSUS_BYTES)?;
                held.insert(Arc::new((census, reservation))).clone()
            }
        }
    };
    let out = match item {
        Item::Memory(_) => {
            let kept: Vec<XLog> = (0..slot.unit.memory.len())
                .filter(|&i| census.0.keeps_memory(&slot.unit, i) && reader.passes(&slot.unit.memory[i]))
                .map(|i| slot.unit.memory[i].clone())
                .collect();
            kept.chunks(BATCH_ROWS).map(|c| reader.rows_batch(c)).collect::<Result<Vec<_>>>()?
        }
        Item::Page(_, p) => {
            let planned = &slot.unit.pages[p];
            let keep_columns: &[u16] = if planned.contested.is_empty() { &[] } else { &CENSUS_COLUMNS };
            reader
                .page_batch(store, &*planned.meta, planned.page, keep_columns, |page| census.0.keeps(planned, page))?
                .into_iter()
                .collect()
        }
    };
    if slot.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        slot.census.lock().take();
    }
    Ok(out)
}

impl fmt::Debug for XLogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Source for XLogSource {
    fn partitions(&self) -> usize {
        self.parts.len().max(1)
    }

    fn batches(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<Batches> {
        let items = self.parts.get(partition).cloned().unwrap_or_default();
        let (store, reader, slots) = (self.store.clone(), self.reader.clone(), self.slots.clone());
        let batches = items.into_iter().flat_map(move |item| match read_item(&store, &reader, &slots, item, &ctx) {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        });
        Ok(Box::new(batches))
    }

    fn describe(&self) -> String {
        let pages: usize = self.slots.iter().map(|s| s.unit.pages.len()).sum();
        let contested: usize = self.slots.iter().map(|s| s.unit.contested_pages()).sum();
        let memory: usize = self.slots.iter().map(|s| s.unit.memory.len()).sum();
        format!(
            "table={}, projection=[{}], {}, memory_rows={memory}, partitions={} pages={pages} contested_pages={contested}",
            self.reader.def.name,
            self.reader.columns(),
            self.reader.pushed,
            self.slots.len()
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pushed_equality_has_its_matcher() {
        crate::pages::assert_matchable(&super::DEF, &super::PUSHABLE);
    }
}
