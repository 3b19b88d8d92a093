//! The storage metrics, all defined here. Names follow `rewind_<subsystem>_<name>_<unit>`.

use std::time::Duration;

pub fn describe() {
    metrics::describe_counter!(
        "rewind_storage_xlog_trace_cuts_total",
        "Traces released in parts because they reached the deriver's per-trace span bound"
    );
    metrics::describe_gauge!("rewind_storage_catalog_services", "Entries of the services catalog (services and peers)");
    metrics::describe_counter!(
        "rewind_storage_catalog_overflow_total",
        "New service or peer names not kept because the catalog is full (--max-services)"
    );
    metrics::describe_counter!(
        "rewind_storage_catalog_operations_overflow_total",
        "Batches with a new span name not kept as a service's operation: too long, or the service or catalog at its bound"
    );
    metrics::describe_gauge!(
        "rewind_storage_attribute_keys",
        "Distinct attribute keys within the retention (the registry --max-attribute-keys bounds)"
    );
    metrics::describe_counter!(
        "rewind_storage_attribute_keys_refused_total",
        "Attributes dropped at ingest because their key was new and the registry full (--max-attribute-keys)"
    );
    metrics::describe_counter!("rewind_storage_sealed_spans_total", "Spans sealed into column chunks");
    metrics::describe_counter!("rewind_storage_sealed_bytes_total", "Compressed chunk bytes written by seals");
    metrics::describe_histogram!("rewind_storage_seal_duration_seconds", "Time to seal one memtable");
    metrics::describe_counter!(
        "rewind_storage_partitions_dropped_total",
        "Partitions dropped by retention or disk budget"
    );
    metrics::describe_gauge!("rewind_storage_memtable_spans", "Acknowledged spans not yet sealed");
    metrics::describe_gauge!(
        "rewind_storage_memtable_bytes",
        "Memory held by unsealed spans (estimated from their allocations)"
    );
    metrics::describe_gauge!("rewind_storage_segments", "Sealed segments");
    metrics::describe_gauge!("rewind_storage_partitions", "Time partitions held");
    metrics::describe_gauge!("rewind_storage_disk_bytes", "Bytes of the store's files on disk");
    metrics::describe_gauge!("rewind_storage_table_bytes", "Bytes of table (SST) files by column family");
    metrics::describe_gauge!(
        "rewind_storage_rocksdb_memtable_bytes",
        "Bytes of RocksDB's memtables (active, immutable and pinned) by column family: memory beside the spans'"
    );
    metrics::describe_counter!("rewind_storage_xlog_sealed_records_total", "XLog records sealed into column chunks");
    metrics::describe_counter!(
        "rewind_storage_xlog_evicted_records_total",
        "XLog records finalized before their grace period because the deriver was full"
    );
    metrics::describe_gauge!("rewind_storage_xlog_pending_records", "Entry spans waiting for their children");
    metrics::describe_gauge!("rewind_storage_xlog_held_spans", "Spans the XLog deriver holds");
    metrics::describe_gauge!(
        "rewind_storage_xlog_held_bytes",
        "Memory the XLog deriver's waiting transactions keep alive, as --xlog-max-bytes counts it"
    );
    metrics::describe_counter!(
        "rewind_storage_retried_batches_total",
        "Batches recognised as retries of batches already stored, acknowledged and not stored again"
    );
}

pub(crate) fn retried_batches(n: usize) {
    metrics::counter!("rewind_storage_retried_batches_total").increment(n as u64);
}

pub(crate) fn sealed(spans: usize, bytes: u64, took: Duration) {
    metrics::counter!("rewind_storage_sealed_spans_total").increment(spans as u64);
    metrics::counter!("rewind_storage_sealed_bytes_total").increment(bytes);
    metrics::histogram!("rewind_storage_seal_duration_seconds").record(took.as_secs_f64());
}

pub(crate) fn partition_dropped() {
    metrics::counter!("rewind_storage_partitions_dropped_total").increment(1);
}

pub(crate) fn memtable(spans: usize, bytes: usize) {
    metrics::gauge!("rewind_storage_memtable_spans").set(spans as f64);
    metrics::gauge!("rewind_storage_memtable_bytes").set(bytes as f64);
}

pub(crate) fn store(segments: usize, partitions: usize) {
    metrics::gauge!("rewind_storage_segments").set(segments as f64);
    metrics::gauge!("rewind_storage_partitions").set(partitions as f64);
}

pub(crate) fn disk_bytes(b: u64) {
    metrics::gauge!("rewind_storage_disk_bytes").set(b as f64);
}

/// `cf` is one of the four column families of `keys`.
pub(crate) fn table_bytes(cf: &'static str, b: u64) {
    metrics::gauge!("rewind_storage_table_bytes", "cf" => cf).set(b as f64);
}

/// `cf` is one of the four column families of `keys`.
pub(crate) fn rocksdb_memtable_bytes(cf: &'static str, b: u64) {
    metrics::gauge!("rewind_storage_rocksdb_memtable_bytes", "cf" => cf).set(b as f64);
}

pub(crate) fn xlog_sealed(records: usize) {
    metrics::counter!("rewind_storage_xlog_sealed_records_total").increment(records as u64);
}

pub(crate) fn xlog_evicted(records: usize) {
    metrics::counter!("rewind_storage_xlog_evicted_records_total").increment(records as u64);
}

pub(crate) fn xlog_deriver(deriver: &crate::apm::derive::Deriver) {
    metrics::gauge!("rewind_storage_xlog_pending_records").set(deriver.pending() as f64);
    metrics::gauge!("rewind_storage_xlog_held_spans").set(deriver.spans_held() as f64);
    metrics::gauge!("rewind_storage_xlog_held_bytes").set(deriver.bytes_held() as f64);
}

pub fn catalog_services(n: usize) {
    metrics::gauge!("rewind_storage_catalog_services").set(n as f64);
}

pub fn catalog_overflow() {
    metrics::counter!("rewind_storage_catalog_overflow_total").increment(1);
}

pub fn operations_overflow() {
    metrics::counter!("rewind_storage_catalog_operations_overflow_total").increment(1);
}

pub fn attribute_keys(n: usize) {
    metrics::gauge!("rewind_storage_attribute_keys").set(n as f64);
}

pub fn attribute_key_refused() {
    metrics::counter!("rewind_storage_attribute_keys_refused_total").increment(1);
}

pub fn xlog_trace_cut() {
    metrics::counter!("rewind_storage_xlog_trace_cuts_total").increment(1);
}
