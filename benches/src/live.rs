//! Shop traffic through a store's real write path as if it were live: the store's clock follows
//! the traffic's time, seals every 10 s of it (the default `--seal-interval`) and rolls up every
//! minute, as the maintenance thread would. For benchmarks of what the statistics cost and say.

use std::collections::BTreeMap;
use std::sync::Arc;

use rewind_collector::convert::{convert, Limits};
use rewind_storage::AttributeKeys;
use rewind_storage::{now_ns, Clock, EncodedBatch, ManualClock, Store, StoreConfig};
use rewind_workload::{Incident, Shop, ShopConfig};

const S: u64 = 1_000_000_000;
const TRACES_PER_REQUEST: u64 = 50;

pub struct Traffic {
    pub spans: u64,
    pub seconds: u64,
    pub span_bytes: u64,
    pub stats_bytes: u64,
    pub stats_rows: u64,
    pub largest_trace: (String, usize),
    /// Still open, for reading its seconds.
    pub store: Option<Arc<Store>>,
}

/// `seconds` of shop traffic at `rate` spans/s from `start_s`, with an incident if given, into a
/// store opened with `config` (its clock replaced by one that follows the traffic).
pub fn traffic(
    mut config: StoreConfig,
    seed: u64,
    rate: u64,
    start_s: u64,
    seconds: u64,
    incident: Option<Incident>,
) -> Traffic {
    let clock = Arc::new(ManualClock::new(start_s * S));
    config.clock = clock.clone();
    let store = Store::open(config).expect("open");
    let mut shop = Shop::new(ShopConfig { seed, incident });
    // About 11 spans per shop trace.
    let traces_per_second = (rate / 11).max(1);
    let interval = S / traces_per_second;
    let end = (start_s + seconds) * S;
    let mut t = start_s * S;
    let (mut spans, mut next_seal, mut next_roll_up) = (0u64, t + 10 * S, t + 60 * S);
    let mut per_trace: BTreeMap<String, usize> = BTreeMap::new();
    let mut largest = (String::new(), 0usize);
    while t < end {
        let n = TRACES_PER_REQUEST.min((end - t).div_ceil(interval)) as usize;
        let req = shop.request(n, t, interval);
        t += n as u64 * interval;
        let converted = convert(req, &Limits::default(), &AttributeKeys::default(), now_ns(), 0);
        assert_eq!(converted.rejected, 0, "{}", converted.message());
        spans += converted.items.len() as u64;
        per_trace.clear();
        for s in &converted.items {
            *per_trace.entry(s.trace_id.to_string()).or_default() += 1;
        }
        if let Some((id, n)) = per_trace.iter().max_by_key(|(_, n)| **n) {
            if *n > largest.1 {
                largest = (id.clone(), *n);
            }
        }
        store.append(vec![EncodedBatch::new(converted.items)]).expect("append");
        // The spans of a request ended a moment before it was sent.
        clock.advance(t.saturating_sub(clock.wall_ns()));
        if t >= next_seal || store.stats().memtable_spans >= 100_000 {
            store.seal().expect("seal");
            next_seal = t + 10 * S;
        }
        if t >= next_roll_up {
            while store.roll_up().expect("roll up") {}
            next_roll_up = t + 60 * S;
        }
    }
    // Every trace released, every minute of the traffic rolled up.
    clock.advance(130 * S);
    store.seal_all().expect("seal");
    while store.roll_up().expect("roll up") {}
    store.compact();
    let columns = store.column_bytes().expect("column bytes");
    let (stats_bytes, span_bytes) = columns.iter().fold((0, 0), |(st, sp), (name, b)| {
        if name.starts_with("stats_") {
            (st + b, sp)
        } else if name.starts_with("xlog:") {
            (st, sp)
        } else {
            (st, sp + b)
        }
    });
    let rows = store.stats().stats_rows;
    Traffic { spans, seconds, span_bytes, stats_bytes, stats_rows: rows, largest_trace: largest, store: Some(store) }
}
