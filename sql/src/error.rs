//! What can go wrong with a query, each with its HTTP status and a stable code.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Syntax, unknown table or column, type errors: the query's own fault.
    #[error("{0}")]
    Invalid(String),
    /// DDL, DML, COPY, settings: the SQL endpoint only reads.
    #[error("read-only: {0}")]
    ReadOnly(String),
    #[error("the query ran longer than the limit of {0} ms (--sql-timeout); narrow its time range")]
    Timeout(u64),
    #[error("the query needed more memory than the limit of {limit} bytes (--sql-memory): {detail}")]
    Memory { limit: usize, detail: String },
    #[error("the result has more than {0} rows (--sql-max-rows); add a LIMIT or aggregate")]
    TooManyRows(usize),
    #[error("{0} SQL queries are already running; retry shortly")]
    Busy(usize),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) | Self::ReadOnly(_) => 400,
            Self::Timeout(_) => 408,
            Self::Memory { .. } | Self::TooManyRows(_) => 413,
            Self::Busy(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "sql_invalid",
            Self::ReadOnly(_) => "sql_read_only",
            Self::Timeout(_) => "sql_timeout",
            Self::Memory { .. } => "sql_memory",
            Self::TooManyRows(_) => "sql_too_many_rows",
            Self::Busy(_) => "sql_busy",
            Self::Internal(_) => "internal",
        }
    }

    /// A DataFusion error, classified: an exhausted memory pool as `Memory`, a refused plan as
    /// `ReadOnly`, planning and execution errors as the query's fault, the rest as ours.
    pub(crate) fn from_datafusion(e: DataFusionError, memory_limit: usize) -> Self {
        match e.find_root() {
            // A storage error met by a scan (it names the table, partition, segment and column).
            DataFusionError::External(inner) => Self::Internal(inner.to_string()),
            DataFusionError::ResourcesExhausted(detail) => Self::Memory { limit: memory_limit, detail: detail.clone() },
            // What `SQLOptions` refuses (DataFusion's `verify_plan`).
            DataFusionError::Plan(m)
                if ["DDL not supported", "DML not supported", "Statement not supported"]
                    .iter()
                    .any(|p| m.starts_with(p)) =>
            {
                Self::ReadOnly(m.clone())
            }
            DataFusionError::Plan(_)
            | DataFusionError::SQL(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Execution(_) => Self::Invalid(e.find_root().to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}
