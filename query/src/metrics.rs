//! The query service's metrics, all defined here. `route` is the matched route template, so its
//! values are bounded by the router.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub fn describe() {
    metrics::describe_histogram!("rewind_query_request_duration_seconds", "Query API request latency");
    metrics::describe_counter!("rewind_query_requests_total", "Query API requests by route and status class");
    metrics::describe_counter!(
        "rewind_query_refused_total",
        "Store reads refused or stopped by a query limit: busy (--query-concurrency), memory (--query-memory), timeout (--query-timeout)"
    );
}

/// A query limit that bit; `reason` is one of three.
pub fn refused(reason: &'static str) {
    metrics::counter!("rewind_query_refused_total", "reason" => reason).increment(1);
}

pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    };
    metrics::histogram!("rewind_query_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("rewind_query_requests_total", "route" => route, "status" => class).increment(1);
    resp
}
