//! The standard "shop" workload of `../shared/BRIEF.md` as OTLP requests: one deterministic
//! generator (seeded) for the demo, the tests and the benchmarks, so their figures compare.

mod rng;
mod shop;

pub use rng::Rng;
pub use shop::{Dependency, Incident, Shop, ShopConfig};
