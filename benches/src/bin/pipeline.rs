//! The server's ingest path without the network, on a fixed set of requests, so that
//! `valgrind --tool=callgrind` can count its instructions: a figure that does not move with the
//! machine's noise (`bench-ingest --instructions true` runs it twice and reports the difference per
//! span). Each request goes through what an export does once admitted: decoding, paid for as it
//! goes, validation and conversion, the write-ahead-log encoding, the durable append (fsync off:
//! the kernel's work is not counted anyway) and, at the end, the seal of everything (span
//! segments, XLog records, statistics).
//!
//! bench-pipeline --requests 30 [--stage decode|all] [--generate 40]
//!
//! The requests are the shop workload's, seed 7, 50 traces each, at fixed times on a fixed clock:
//! the same bytes and the same work on every run.

use std::sync::Arc;

use rewind_benches::Args;
use rewind_collector::decode::{decode, Rules};
use rewind_collector::meter::Bill;
use rewind_collector::{Format, Limits, Payload};
use rewind_storage::{Clock, ManualClock, Store, StoreConfig};

// The server's allocator (src/main.rs): malloc's cost is a large share of the count.
#[global_allocator]
static ALLOCATOR: rewind_alloc::Allocator = rewind_alloc::Allocator;

const NOW: u64 = rewind_benches::PIPELINE_NOW_NS;

fn main() {
    let args = Args::parse();
    let requests: usize = args.get("requests", 30);
    // The same requests are generated whatever the number processed, so that the difference
    // between two runs is the processing alone.
    let generated: usize = args.get("generate", 40).max(requests);
    let stage = args.string("stage").unwrap_or_else(|| "all".into());
    let bodies = rewind_benches::pipeline_requests(generated);

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let mut config = StoreConfig::new(dir.path().join("store"));
    config.sync = false;
    config.clock = clock as Arc<dyn Clock>;
    let store = Store::open(config).unwrap();
    let limits = Limits::default();
    let rules = Rules { limits: &limits, keys: store.attribute_keys(), now_ns: NOW, min_start_ns: 0 };
    let payload = Payload::Traces(Format::Protobuf);
    let mut spans = 0;
    for body in &bodies[..requests] {
        // Paid as the server pays, minus the budget's semaphore.
        let decoded = decode(body, payload, &rules, &mut |bill: &Bill<'_>| Ok(bill.ahead)).unwrap();
        spans += decoded.batch.len();
        if stage == "all" {
            store.append(vec![decoded.batch]).unwrap();
        }
    }
    if stage == "all" {
        store.seal_all().unwrap();
    }
    println!("{spans}");
}
