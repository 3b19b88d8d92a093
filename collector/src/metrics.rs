//! The collector's metrics, all defined here. `transport` is one of `grpc`, `http_protobuf`,
//! `http_json` (OTLP), `grpc_xlog` (the native agent protocol), `zipkin_json` or
//! `zipkin_protobuf` (Zipkin v2); `reason` one of
//! `CollectorError::reason`.

pub fn describe() {
    metrics::describe_counter!("rewind_collector_spans_accepted_total", "Spans stored and acknowledged");
    metrics::describe_counter!(
        "rewind_collector_spans_rejected_total",
        "Invalid spans rejected inside otherwise accepted requests (OTLP partial success)"
    );
    metrics::describe_counter!(
        "rewind_collector_xlog_records_accepted_total",
        "Native XLog records stored and acknowledged"
    );
    metrics::describe_counter!(
        "rewind_collector_xlog_records_rejected_total",
        "Invalid native XLog records rejected inside otherwise accepted requests"
    );
    metrics::describe_counter!("rewind_collector_requests_refused_total", "Export requests refused as a whole");
    metrics::describe_counter!("rewind_collector_received_bytes_total", "Export request bytes received");
    metrics::describe_gauge!("rewind_collector_queue_bytes", "Request bytes admitted and not yet acknowledged");
    metrics::describe_histogram!(
        "rewind_collector_export_duration_seconds",
        "Export request latency to acknowledgment"
    );
}

pub(crate) fn received(transport: &'static str, bytes: usize) {
    metrics::counter!("rewind_collector_received_bytes_total", "transport" => transport).increment(bytes as u64);
}

pub(crate) fn exported(transport: &'static str, xlog: bool, accepted: u64, rejected: u64, seconds: f64) {
    if xlog {
        metrics::counter!("rewind_collector_xlog_records_accepted_total", "transport" => transport).increment(accepted);
        metrics::counter!("rewind_collector_xlog_records_rejected_total", "transport" => transport).increment(rejected);
    } else {
        metrics::counter!("rewind_collector_spans_accepted_total", "transport" => transport).increment(accepted);
        metrics::counter!("rewind_collector_spans_rejected_total", "transport" => transport).increment(rejected);
    }
    metrics::histogram!("rewind_collector_export_duration_seconds", "transport" => transport).record(seconds);
}

pub(crate) fn refused(transport: &'static str, reason: &'static str) {
    metrics::counter!("rewind_collector_requests_refused_total", "transport" => transport, "reason" => reason)
        .increment(1);
}

pub(crate) fn queue_bytes(bytes: usize) {
    metrics::gauge!("rewind_collector_queue_bytes").set(bytes as f64);
}
