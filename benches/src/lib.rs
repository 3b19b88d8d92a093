//! Shared pieces of the benchmark binaries: argument parsing, result files, tables.

pub mod live;
pub mod server;

use std::collections::BTreeMap;

/// `--name value` pairs of a benchmark's command line.
pub struct Args(BTreeMap<String, String>);

impl Args {
    pub fn parse() -> Self {
        let mut map = BTreeMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else { panic!("unexpected argument {a:?}") };
            let value = it.next().unwrap_or_else(|| panic!("--{name} needs a value"));
            map.insert(name.to_string(), value);
        }
        Self(map)
    }

    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.0.get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("--{name}: cannot parse {v:?}")))
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Writes a benchmark's figures as JSON next to the others (`benches/results/<name>.json`, or
/// `$REWIND_BENCH_RESULTS/<name>.json`) and says where.
pub fn write_results(name: &str, figures: &serde_json::Value) {
    let dir = std::env::var("REWIND_BENCH_RESULTS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/results").into());
    std::fs::create_dir_all(&dir).expect("results directory");
    let path = format!("{dir}/{name}.json");
    std::fs::write(&path, serde_json::to_string_pretty(figures).unwrap()).expect("write results");
    println!("figures written to {path}");
}

/// 2026-01-01T00:40:00Z: the fixed clock of the in-process benches (`bench-pipeline`,
/// `bench-held`); their traffic starts 30 minutes before, inside one partition.
pub const PIPELINE_NOW_NS: u64 = 1_767_228_000_000_000_000;

/// The in-process benches' requests, OTLP/protobuf: the shop workload, seed 7, 50 traces each, at
/// fixed times. The same bytes on every run, so that instruction counts repeat.
pub fn pipeline_requests(count: usize) -> Vec<bytes::Bytes> {
    let mut shop = rewind_workload::Shop::new(rewind_workload::ShopConfig { seed: 7, incident: None });
    let (interval, mut t) = (1_000_000, PIPELINE_NOW_NS - 1_800_000_000_000);
    (0..count)
        .map(|_| {
            let req = shop.request(50, t, interval);
            t += 50 * interval;
            bytes::Bytes::from(prost::Message::encode_to_vec(&req))
        })
        .collect()
}

/// One `what  value  target  verdict` row of a result table.
pub fn row(what: &str, value: String, target: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    println!("{what:<44} {value:>18}   {target:<22} {verdict}");
}
