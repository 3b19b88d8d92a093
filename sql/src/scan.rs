//! The execution plan every table's scan shares: a source cut into partitions, each an iterator
//! of record batches read from the store as DataFusion pulls them. Store reads block: queries run
//! on the engine's own runtime (`engine`), never on the server's.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use rewind_storage::StorageError;

/// Batches of one partition of a scan.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// What a table's scan reads, already pruned and cut into partitions.
pub trait Source: Send + Sync + fmt::Debug + 'static {
    fn partitions(&self) -> usize;
    fn batches(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<Batches>;
    /// What EXPLAIN shows: the table, the columns read, the pushed filters, what was pruned.
    fn describe(&self) -> String;
}

pub fn storage_error(e: StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[derive(Debug)]
pub struct ScanExec {
    source: Arc<dyn Source>,
    schema: SchemaRef,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl ScanExec {
    pub fn new(source: Arc<dyn Source>, schema: SchemaRef, limit: Option<usize>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(source.partitions().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self { source, schema, limit, properties: Arc::new(properties) }
    }
}

impl DisplayAs for ScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RewindScan: {}", self.source.describe())?;
        if let Some(l) = self.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ScanExec {
    fn name(&self) -> &str {
        "RewindScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let batches: Batches = if partition < self.source.partitions() {
            self.source.batches(partition, ctx)?
        } else {
            Box::new(std::iter::empty())
        };
        let mut left = self.limit.unwrap_or(usize::MAX);
        // Stops reading once the limit is met: the rest of the partition is never fetched.
        let limited = batches
            .take_while(move |b| {
                let go = left > 0;
                if let Ok(b) = b {
                    left = left.saturating_sub(b.num_rows());
                }
                go
            })
            .inspect(|b| {
                if let Ok(b) = b {
                    crate::metrics::scanned(b.num_rows());
                }
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::iter(limited))))
    }
}
