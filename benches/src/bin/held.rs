//! What the XLog deriver holds in memory for each span it waits on, counted by the allocator
//! rather than estimated: at full rate it holds two to four seconds of spans (grace period plus
//! the seal's cadence), which is the largest single share of the server's peak RSS (#16, item 6).
//!
//! bench-held [--requests 40]
//!
//! The requests are `bench-pipeline`'s: the shop workload, seed 7, 50 traces each. The spans are
//! decoded as the collector decodes them, observed by a deriver that releases nothing (the
//! default grace period on a stopped clock), then dropped, as a seal drops them: what remains is
//! the deriver's own.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

use rewind_benches::Args;
use rewind_collector::decode::{decode, Rules};
use rewind_collector::{Format, Limits, Payload};
use rewind_storage::apm::derive::{DeriveConfig, Deriver, Extract};
use rewind_storage::{Store, StoreConfig};

/// The server's allocator, with a count of the bytes and blocks live.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the server's allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        unsafe { rewind_alloc::Allocator.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        unsafe { rewind_alloc::Allocator.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { rewind_alloc::Allocator.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy)]
struct Live {
    bytes: isize,
    blocks: isize,
}

impl Live {
    fn now() -> Self {
        Self { bytes: LIVE_BYTES.load(Ordering::Relaxed), blocks: LIVE_BLOCKS.load(Ordering::Relaxed) }
    }

    /// Bytes and blocks per span since `base`.
    fn per(self, base: Live, spans: usize) -> (f64, f64) {
        let n = spans.max(1) as f64;
        ((self.bytes - base.bytes) as f64 / n, (self.blocks - base.blocks) as f64 / n)
    }
}

const NOW: u64 = rewind_benches::PIPELINE_NOW_NS;

fn main() {
    let args = Args::parse();
    let requests: usize = args.get("requests", 40);
    let bodies = rewind_benches::pipeline_requests(requests);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(StoreConfig::new(dir.path().join("store"))).expect("store opens");
    let limits = Limits::default();
    let rules = Rules { limits: &limits, keys: store.attribute_keys(), now_ns: NOW, min_start_ns: 0 };

    let base = Live::now();
    let batches: Vec<_> = bodies
        .iter()
        .map(|b| {
            decode(b, Payload::Traces(Format::Protobuf), &rules, &mut |bill| Ok(bill.ahead))
                .expect("the shop's requests decode")
                .batch
                .spans
        })
        .collect();
    let spans: usize = batches.iter().map(Vec::len).sum();
    let decoded = Live::now();
    let mut deriver = Deriver::new(DeriveConfig::default());
    for (seq, batch) in batches.iter().enumerate() {
        let released = deriver.observe(seq as u64, Extract::from_spans(batch), NOW);
        assert!(released.records.is_empty(), "nothing is released before the grace period");
    }
    let observed = Live::now();
    drop(batches);
    let sealed = Live::now();
    assert_eq!(deriver.spans_held(), spans, "every span is held");

    let (span_bytes, span_blocks) = decoded.per(base, spans);
    let (held_bytes, held_blocks) = observed.per(decoded, spans);
    let (kept_bytes, kept_blocks) = sealed.per(base, spans);
    println!("{spans} spans held, {} transactions pending", deriver.pending());
    println!("{:<52} {:>8.0} B  {:>5.2} blocks", "decoded spans, per span", span_bytes, span_blocks);
    println!("{:<52} {:>8.0} B  {:>5.2} blocks", "deriver beside them, per span", held_bytes, held_blocks);
    println!(
        "{:<52} {:>8.0} B  {:>5.2} blocks",
        "deriver once the spans are sealed, per span", kept_bytes, kept_blocks
    );
}
