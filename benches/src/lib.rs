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

/// One `what  value  target  verdict` row of a result table.
pub fn row(what: &str, value: String, target: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    println!("{what:<44} {value:>18}   {target:<22} {verdict}");
}
