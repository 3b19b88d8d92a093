//! The `spans` table: every stored span, partitioned by start time. Equality on `trace_id` reads
//! the trace through the trace index instead of scanning.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use rewind_storage::codec::column as col;
use rewind_storage::spans::{cols, SpanSegmentMeta};
use rewind_storage::table::page::Page;
use rewind_storage::table::SegmentMeta;
use rewind_storage::{Span, Store, TraceId};

use crate::columns::{self as c, Column, Needs};
use crate::hints::Hints;
use crate::pages::{deal, EqColumn, Match, Reader, TableScanDef, BATCH_ROWS};
use crate::pushdown::Pushable;
use crate::scan::{storage_error, Batches, ScanExec, Source};

type Row = Arc<Span>;
type SpanPage<'a> = Page<'a, SpanSegmentMeta>;

pub const KINDS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
pub const STATUSES: [&str; 3] = ["unset", "ok", "error"];

fn kind_name(k: u8) -> &'static str {
    KINDS.get(k as usize).copied().unwrap_or("unspecified")
}

fn status_name(s: u8) -> &'static str {
    STATUSES.get(s as usize).copied().unwrap_or("unset")
}

fn parents(p: &SpanPage<'_>) -> Result<ArrayRef, rewind_storage::StorageError> {
    let ids = p.span_ids(cols::SPAN_ID)?;
    let parents = col::decode_parents(&p.fixed(cols::PARENT)?, &ids)?;
    Ok(Arc::new(StringArray::from_iter(parents.iter().map(|p| p.map(|id| id.to_string())))))
}

fn ends(p: &SpanPage<'_>) -> Result<ArrayRef, rewind_storage::StorageError> {
    let (s, d) = (p.deltas(cols::START)?, p.varints(cols::DURATION)?);
    Ok(c::timestamps(s.iter().zip(d).map(|(s, d)| s.saturating_add(d))))
}

static COLUMNS: [Column<SpanSegmentMeta, Row>; 15] = [
    Column {
        name: "trace_id",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::TRACE_ID]),
        page: |p| Ok(c::hex(p.trace_ids(cols::TRACE_ID)?.into_iter())),
        rows: |r| c::hex(r.iter().map(|s| s.trace_id)),
    },
    Column {
        name: "span_id",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::SPAN_ID]),
        page: |p| Ok(c::hex(p.span_ids(cols::SPAN_ID)?.into_iter())),
        rows: |r| c::hex(r.iter().map(|s| s.span_id)),
    },
    Column {
        name: "parent_span_id",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::SPAN_ID, cols::PARENT]),
        page: parents,
        rows: |r| Arc::new(StringArray::from_iter(r.iter().map(|s| s.parent_span_id.map(|p| p.to_string())))),
    },
    Column {
        name: "service",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::SERVICE]),
        page: |p| c::page_strings(p, cols::SERVICE),
        rows: |r| c::strings(r.iter().map(|s| &*s.service)),
    },
    Column {
        name: "name",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::NAME]),
        page: |p| c::page_strings(p, cols::NAME),
        rows: |r| c::strings(r.iter().map(|s| &*s.name)),
    },
    Column {
        name: "kind",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::KIND]),
        page: |p| Ok(c::strings(p.u8s(cols::KIND)?.into_iter().map(kind_name))),
        rows: |r| c::strings(r.iter().map(|s| kind_name(s.kind))),
    },
    Column {
        name: "start",
        ty: c::utc,
        needs: Needs::Stored(&[cols::START]),
        page: |p| Ok(c::timestamps(p.deltas(cols::START)?.into_iter())),
        rows: |r| c::timestamps(r.iter().map(|s| s.start_ns)),
    },
    Column {
        name: "end",
        ty: c::utc,
        needs: Needs::Stored(&[cols::START, cols::DURATION]),
        page: ends,
        rows: |r| c::timestamps(r.iter().map(|s| s.end_ns())),
    },
    Column {
        name: "duration_ms",
        ty: || DataType::Float64,
        needs: Needs::Stored(&[cols::DURATION]),
        page: |p| Ok(c::millis(p.varints(cols::DURATION)?.into_iter())),
        rows: |r| c::millis(r.iter().map(|s| s.duration_ns)),
    },
    Column {
        name: "status_code",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::STATUS_CODE]),
        page: |p| Ok(c::strings(p.u8s(cols::STATUS_CODE)?.into_iter().map(status_name))),
        rows: |r| c::strings(r.iter().map(|s| status_name(s.status_code))),
    },
    Column {
        name: "status_message",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::STATUS_MESSAGE]),
        page: |p| c::page_strings(p, cols::STATUS_MESSAGE),
        rows: |r| c::strings(r.iter().map(|s| s.status_message.as_str())),
    },
    Column {
        name: "scope_name",
        ty: || DataType::Utf8,
        needs: Needs::Stored(&[cols::SCOPE_NAME]),
        page: |p| c::page_strings(p, cols::SCOPE_NAME),
        rows: |r| c::strings(r.iter().map(|s| &*s.scope_name)),
    },
    Column {
        name: "attributes",
        ty: c::map_type,
        needs: Needs::Attributes,
        page: c::page_attributes,
        rows: |r| c::attribute_map(r.iter().map(|s| s.attributes.as_slice())),
    },
    Column {
        name: "resource",
        ty: c::map_type,
        needs: Needs::Resource,
        page: c::page_resources,
        rows: |r| c::resource_map(r.iter().map(|s| &*s.resource)),
    },
    Column {
        name: "events",
        ty: || DataType::Int64,
        needs: Needs::Stored(&[cols::EVENTS]),
        page: |p| {
            let body = p.fixed(cols::EVENTS)?;
            let blobs = col::decode_blobs(&body, p.rows)?;
            // The count of events leads each row's encoding (`codec::row::read_events`); a span
            // without events has an empty one.
            let counts = blobs
                .iter()
                .map(|b| {
                    if b.is_empty() {
                        Ok(0)
                    } else {
                        rewind_storage::codec::Reader::new(b).count(4).map(|n| n as u64)
                    }
                })
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(c::ints(counts.into_iter()))
        },
        rows: |r| c::ints(r.iter().map(|s| s.events.len() as u64)),
    },
];

static EQUALS: [EqColumn<Row>; 3] = [
    EqColumn { name: "service", stored: cols::SERVICE, matching: Match::Dict, of_row: |s| s.service.to_string() },
    EqColumn { name: "name", stored: cols::NAME, matching: Match::Dict, of_row: |s| s.name.to_string() },
    EqColumn { name: "trace_id", stored: cols::TRACE_ID, matching: Match::TraceId, of_row: |s| s.trace_id.to_string() },
];

static DEF: TableScanDef<SpanSegmentMeta, Row> = TableScanDef {
    name: "spans",
    columns: &COLUMNS,
    time_column: cols::START,
    row_time: |s| s.start_ns,
    equals: &EQUALS,
};

pub const PUSHABLE: Pushable = Pushable { time: "start", time_unit_ns: 1, equals: &["service", "name", "trace_id"] };

#[derive(Debug)]
pub struct SpansTable {
    pub store: Arc<Store>,
    /// Which attribute keys this session's query reads.
    pub hints: Arc<Hints>,
}

#[async_trait]
impl TableProvider for SpansTable {
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
        let partitions = state.config().target_partitions();
        let source = match reader.pushed.equal("trace_id").map(str::to_string) {
            Some(id) => SpanSource::trace(&self.store, reader, &id)?,
            None => SpanSource::scan(&self.store, reader, partitions),
        };
        Ok(Arc::new(ScanExec::new(Arc::new(source), schema, limit)))
    }
}

/// What one scan of `spans` reads: memory rows (with the first partition) and pages.
struct SpanSource {
    store: Arc<Store>,
    reader: Arc<Reader<SpanSegmentMeta, Row>>,
    memory: Vec<Row>,
    parts: Vec<Vec<(Arc<SpanSegmentMeta>, u32)>>,
    segments: usize,
    by_trace: bool,
}

impl SpanSource {
    fn scan(store: &Arc<Store>, reader: Reader<SpanSegmentMeta, Row>, partitions: usize) -> Self {
        let snap = store.span_snapshot(reader.pushed.from, reader.pushed.to);
        let memory = snap.memory.into_iter().filter(|s| reader.passes(s)).collect();
        let segments = snap.segments.len();
        let mut pages = Vec::new();
        for meta in snap.segments {
            let meta = Arc::new(meta);
            pages.extend((0..meta.pages()).filter(|p| reader.page_in_range(&meta, *p)).map(|p| (meta.clone(), p)));
        }
        Self {
            store: store.clone(),
            memory,
            parts: deal(pages, partitions),
            segments,
            reader: Arc::new(reader),
            by_trace: false,
        }
    }

    /// One trace, through the trace index: its spans whatever their time, then the filters.
    fn trace(store: &Arc<Store>, reader: Reader<SpanSegmentMeta, Row>, id: &str) -> Result<Self> {
        let spans = match TraceId::parse_hex(id) {
            Ok(tid) if tid.to_string() == id => store.trace(&tid).map_err(storage_error)?,
            _ => Vec::new(),
        };
        let memory = spans.into_iter().map(Arc::new).filter(|s| reader.passes(s)).collect();
        Ok(Self {
            store: store.clone(),
            memory,
            parts: Vec::new(),
            segments: 0,
            reader: Arc::new(reader),
            by_trace: true,
        })
    }
}

impl fmt::Debug for SpanSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Source for SpanSource {
    fn partitions(&self) -> usize {
        self.parts.len().max(1)
    }

    fn batches(&self, partition: usize, _ctx: Arc<TaskContext>) -> Result<Batches> {
        let memory: Vec<Vec<Row>> =
            if partition == 0 { self.memory.chunks(BATCH_ROWS).map(<[Row]>::to_vec).collect() } else { Vec::new() };
        let pages = self.parts.get(partition).cloned().unwrap_or_default();
        let (store, reader, rows_reader) = (self.store.clone(), self.reader.clone(), self.reader.clone());
        let rows = memory.into_iter().map(move |chunk| rows_reader.rows_batch(&chunk));
        let pages = pages.into_iter().filter_map(move |(meta, page)| {
            reader.page_batch(&store, &meta, page, &[], |_| Ok(Vec::new())).transpose()
        });
        Ok(Box::new(rows.chain(pages)))
    }

    fn describe(&self) -> String {
        let pages: usize = self.parts.iter().map(Vec::len).sum();
        let how =
            if self.by_trace { "trace index".to_string() } else { format!("segments={} pages={pages}", self.segments) };
        format!(
            "table={}, projection=[{}], {}, memory_rows={}, {how}",
            self.reader.def.name,
            self.reader.columns(),
            self.reader.pushed,
            self.memory.len()
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
