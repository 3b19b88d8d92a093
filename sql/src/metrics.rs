//! The SQL metrics, all defined here (`rewind_sql_<name>_<unit>`; labels bounded by the
//! outcome codes of `SqlError`).

use std::time::Duration;

pub fn describe() {
    metrics::describe_counter!("rewind_sql_queries_total", "SQL queries answered, by outcome");
    metrics::describe_histogram!("rewind_sql_query_duration_seconds", "Time to answer one SQL query");
    metrics::describe_counter!("rewind_sql_rows_scanned_total", "Rows the SQL tables' scans produced");
}

pub(crate) fn answered(outcome: &'static str, took: Duration) {
    metrics::counter!("rewind_sql_queries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("rewind_sql_query_duration_seconds").record(took.as_secs_f64());
}

pub(crate) fn scanned(rows: usize) {
    metrics::counter!("rewind_sql_rows_scanned_total").increment(rows as u64);
}
