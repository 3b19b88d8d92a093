//! The standard "shop" workload of `../shared/BRIEF.md` as OTLP requests: one deterministic
//! generator (seeded) for the demo, the tests and the benchmarks, so their figures compare; and
//! the sender they all use to deliver it.

pub mod replay;
mod rng;
pub mod send;
mod shop;

pub use rng::Rng;
pub use send::{Protocol, SendError, Sender};
pub use shop::{Dependency, Incident, Shop, ShopConfig};

/// Spans in an export request.
pub fn span_count(req: &rewind_agent_proto::ExportTraceServiceRequest) -> u64 {
    req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
}
