//! APM rules, apart from the storage engine: which spans are transactions and which are calls
//! out of them, by the OpenTelemetry semantic conventions (`semconv`), and the per-trace buffer
//! that turns a stream of spans arriving in any order into transactions with their children
//! counted (`derive`). The engine stores and reads tables; this says what the rows mean.

pub mod calltree;
pub mod compare;
pub mod derive;
pub mod figures;
mod held;
pub mod histogram;
pub mod incidents;
mod links;
pub mod replay;
pub mod semconv;
pub mod servermap;
mod trace;

pub use links::UNKNOWN_NODE;
