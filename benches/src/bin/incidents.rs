//! The incident finder's precision and recall on the shop: runs of live-emulated traffic, each
//! with one injected incident (a dependency slowed, failing, or both) or none, searched whole.
//!
//! cargo run --release -p rewind-benches --bin bench-incidents -- [--rate 300] [--minutes 75]
//!
//! An injected incident is found when an incident overlaps its window and names its dependency
//! as the worst service or the worst link's target; every other incident is a false window,
//! counted per quiet hour (the runs' hours outside the injected windows).

use std::time::{Duration, Instant};

use rewind_benches::live::traffic;
use rewind_benches::{row, write_results, Args};
use rewind_storage::apm::incidents::{FinderParams, IncidentQuery};
use rewind_storage::{now_ns, StoreConfig};
use rewind_workload::{Dependency, Incident};
use serde_json::json;

const S: u64 = 1_000_000_000;

/// The node a dependency is on the map.
fn node(d: Dependency) -> &'static str {
    match d {
        Dependency::Mysql => "mysql",
        Dependency::Redis => "redis",
        Dependency::Payment => "payment",
        Dependency::Kafka => "orders",
        Dependency::Catalog => "catalog",
        Dependency::Cart => "cart",
        Dependency::Checkout => "checkout",
        Dependency::Shipping => "shipping",
    }
}

fn main() {
    let args = Args::parse();
    let rate: u64 = args.get("rate", 300);
    let minutes: u64 = args.get("minutes", 75);
    use Dependency::*;
    // (dependency, slowdown, error share, length in seconds); None: a quiet run.
    let scenarios: Vec<Option<(Dependency, f64, f64, u64)>> = vec![
        Some((Mysql, 8.0, 0.25, 180)),
        Some((Mysql, 4.0, 0.0, 300)),
        Some((Redis, 10.0, 0.0, 120)),
        Some((Redis, 1.0, 0.3, 90)),
        Some((Payment, 5.0, 0.1, 240)),
        Some((Kafka, 6.0, 0.0, 180)),
        Some((Catalog, 3.0, 0.05, 150)),
        Some((Cart, 1.0, 0.2, 60)),
        Some((Checkout, 4.0, 0.1, 200)),
        Some((Shipping, 5.0, 0.1, 120)),
        None,
        None,
    ];
    let (mut injected, mut found, mut false_windows, mut quiet_s) = (0u64, 0u64, 0u64, 0u64);
    let mut edges: Vec<(i64, i64)> = Vec::new();
    let mut runs = Vec::new();
    let started = Instant::now();
    for (i, sc) in scenarios.iter().enumerate() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let start_s = (now_ns() / S - 3 * 3600) / 60 * 60;
        let seconds = minutes * 60;
        // The incident 10 minutes before the end, on no particular second.
        let incident = sc.map(|(dependency, slowdown, error_share, len)| {
            let from = (start_s + seconds - 600 - len) * S + 437_000_000;
            Incident { start_ns: from, end_ns: from + len * S, dependency, slowdown, error_share }
        });
        let mut c = StoreConfig::new(tmp.path().join("store"));
        c.sync = false;
        c.min_free_disk_bytes = 0;
        c.retention = Duration::from_secs(2 * 86_400);
        let mut t = traffic(c, 100 + i as u64, rate, start_s, seconds, incident);
        let store = t.store.take().expect("open");
        let q =
            IncidentQuery { from_s: start_s, to_s: start_s + seconds, service: None, params: FinderParams::default() };
        let got = store.incidents(&q).expect("incidents");
        let mut hit = false;
        let mut falses = 0;
        for inc in &got.incidents {
            let (a, b) = (inc.start_ms * 1_000_000, inc.end_ms * 1_000_000);
            match incident {
                Some(inj) if a < inj.end_ns && b > inj.start_ns => {
                    let name = node(inj.dependency);
                    let named = inc.worst_service.as_deref() == Some(name)
                        || inc.worst_link.as_ref().is_some_and(|l| l.target == name);
                    if named && !hit {
                        hit = true;
                        edges.push((
                            (a as i64 - inj.start_ns as i64) / 1_000_000_000,
                            (b as i64 - inj.end_ns as i64) / 1_000_000_000,
                        ));
                    } else if !named {
                        falses += 1;
                    }
                }
                _ => falses += 1,
            }
        }
        let inj_s = incident.map_or(0, |i| (i.end_ns - i.start_ns) / S);
        injected += u64::from(incident.is_some());
        found += u64::from(hit);
        false_windows += falses;
        quiet_s += seconds - inj_s;
        let label = match sc {
            Some((d, s, e, len)) => format!("{} x{s} errors {e} for {len} s", node(*d)),
            None => "quiet".into(),
        };
        let summary: Vec<String> = got
            .incidents
            .iter()
            .map(|i| {
                format!(
                    "{}..{} {:?} {}",
                    i.start_ms / 1000 - start_s,
                    i.end_ms / 1000 - start_s,
                    i.worst_service,
                    i.reason
                )
            })
            .collect();
        println!("{label:<40} found {hit:<5} false {falses}  {}", summary.join(" | "));
        runs.push(json!({"scenario": label, "found": hit, "false_windows": falses, "incidents": summary}));
    }
    let quiet_h = quiet_s as f64 / 3600.0;
    println!(
        "\n{} runs of {minutes} min at {rate} spans/s in {:.0} s\n",
        scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    let recall = found as f64 / injected as f64;
    row("incidents found / injected (recall)", format!("{found} / {injected}"), "", None);
    row(
        "false windows per quiet hour",
        format!("{:.2} ({false_windows} in {quiet_h:.1} h)", false_windows as f64 / quiet_h),
        "",
        None,
    );
    let worst_edge = edges.iter().map(|(a, b)| a.abs().max(b.abs())).max().unwrap_or(0);
    let close = edges.iter().filter(|(a, b)| a.abs() <= 5 && b.abs() <= 5).count();
    row("found with both edges within 5 s", format!("{close} of {}", edges.len()), "", None);
    row("edges, worst of start and end", format!("{worst_edge} s"), "", None);
    write_results(
        "incidents",
        &json!({"rate_spans_per_s": rate, "minutes": minutes, "injected": injected, "found": found, "recall": recall,
                "false_windows": false_windows, "quiet_hours": quiet_h, "edges_s": edges, "runs": runs}),
    );
}
