//! SQL benchmark: four questions over the same spans in Rewind (DataFusion over the store, in
//! process), ClickHouse (chdb) and DuckDB, each engine's p50 and p99 in one run.
//!
//! target/release/bench-storage --spans 10000000 --dir /tmp/rb/store --export /tmp/rb/spans.ndjson
//! target/release/bench-sql --dir /tmp/rb/store --export /tmp/rb/spans.ndjson [--runs 10] [--peers true]
//!
//! q1: count, error rate and p99 per service and operation (a scan of four columns);
//! q2: spans and errors per minute over everything (two columns);
//! q3: the slowest SQL statements (an attribute of every client span);
//! q4: the traces that touched one pod in the last hour (a resource attribute, a time range).

use std::time::Instant;

use rewind_benches::{row, write_results, Args};
use rewind_sql::{Engine, Limits, Output};
use rewind_storage::{Store, StoreConfig};
use serde_json::json;

const POD: &str = "cart-7f9c2d-m8q1z";

fn queries(since_ns: u64) -> Vec<(&'static str, String)> {
    vec![
        (
            "q1",
            "SELECT service, name, count(*), avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END), \
             approx_percentile_cont(duration_ms, 0.99) FROM spans GROUP BY service, name ORDER BY service, name"
                .into(),
        ),
        (
            "q2",
            "SELECT date_trunc('minute', start) AS m, count(*), sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) \
             FROM spans GROUP BY m ORDER BY m"
                .into(),
        ),
        (
            "q3",
            "SELECT attr(attributes, 'db.query.text') AS q, count(*), avg(duration_ms) AS a FROM spans \
             WHERE kind = 'client' AND attr(attributes, 'db.query.text') IS NOT NULL GROUP BY q ORDER BY a DESC LIMIT 10"
                .into(),
        ),
        (
            "q4",
            format!(
                "SELECT count(DISTINCT trace_id) FROM spans WHERE attr(resource, 'k8s.pod.name') = '{POD}' \
                 AND start >= to_timestamp_nanos({since_ns})"
            ),
        ),
    ]
}

fn percentile(ms: &[f64], q: f64) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args = Args::parse();
    let dir = args.string("dir").expect("--dir: a store bench-storage kept");
    let export = args.string("export");
    let runs: usize = args.get("runs", 10);
    let peers: bool = args.get("peers", export.is_some());
    // One query alone (q1..q4), for profiling.
    let only = args.string("only");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    let mut config = StoreConfig::new(&dir);
    config.sync = false;
    let store = Store::open(config).expect("open the store bench-storage kept");
    let engine = Engine::new(store.clone(), Limits { max_rows: 1_000_000, ..Default::default() }).unwrap();
    let ask = |sql: &str| match rt.block_on(engine.run(sql, false)).unwrap_or_else(|e| panic!("{sql}: {e}")) {
        Output::Json(a) => a.rows,
        Output::Arrow(_) => unreachable!(),
    };
    let spans = ask("SELECT count(*) FROM spans")[0][0].as_u64().unwrap();
    let latest = ask("SELECT CAST(max(start) AS BIGINT) FROM spans")[0][0].as_i64().unwrap() as u64;
    let since = latest - 3_600_000_000_000;

    println!("\nRewind SQL: {spans} shop spans, {runs} runs of each query after one warm-up\n");
    let mut figures = json!({"spans": spans, "runs": runs});
    let mut rewind: Vec<(String, f64, f64, usize)> = Vec::new();
    let mut first_rows: Vec<String> = Vec::new();
    let threads = engine.limits().threads;
    for (name, sql) in queries(since).into_iter().filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n)) {
        if args.get("explain", false) {
            for r in ask(&format!("EXPLAIN {sql}")) {
                println!("{}", r[1].as_str().unwrap_or_default());
            }
        }
        let answer = ask(&sql);
        let rows = answer.len();
        first_rows.push(answer.first().map(|r| serde_json::to_string(r).unwrap()).unwrap_or_default());
        let mut ms = Vec::new();
        let before = store.chunks_read();
        for _ in 0..runs {
            let t = Instant::now();
            ask(&sql);
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let chunks = (store.chunks_read() - before) / runs as u64;
        let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
        row(&format!("{name} p50 / p99 ms ({rows} rows, {chunks} chunks)"), format!("{p50:.0} / {p99:.0}"), "", None);
        figures[name] =
            json!({"sql": sql, "ms": ms, "p50_ms": p50, "p99_ms": p99, "rows": rows, "chunks_read": chunks});
        rewind.push((name.to_string(), p50, p99, rows));
    }
    figures["threads"] = json!(threads);

    if let (true, Some(export)) = (peers, export) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/sql_peers.py");
        let python = std::env::var("REWIND_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = std::process::Command::new(&python)
            .args([script, &export, POD, &since.to_string(), &runs.to_string()])
            .output()
            .expect("run the peers script");
        assert!(out.status.success(), "peers failed: {}", String::from_utf8_lossy(&out.stderr));
        let peers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("peers print JSON");
        println!("\nside by side, same spans, p50 / p99 ms (versions {}):", peers["versions"]);
        println!(
            "{:<6} {:>18} {:>18} {:>18}   {:<26}",
            "query", "Rewind", "ClickHouse", "DuckDB", "Rewind / faster peer (p50)"
        );
        for (name, p50, p99, rows) in &rewind {
            let peer = |engine: &str| {
                let ms: Vec<f64> =
                    peers[engine][name]["ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let got = peers[engine][name]["rows"].as_array().map_or(0, Vec::len);
                (percentile(&ms, 0.5), percentile(&ms, 0.99), got)
            };
            let (ch, dk) = (peer("clickhouse"), peer("duckdb"));
            let ratio = p50 / ch.0.min(dk.0);
            println!(
                "{name:<6} {:>18} {:>18} {:>18}   {ratio:<6.2} {}",
                format!("{p50:.0} / {p99:.0}"),
                format!("{:.0} / {:.0}", ch.0, ch.1),
                format!("{:.0} / {:.0}", dk.0, dk.1),
                if ratio <= 2.0 { "within 2x" } else { "SLOWER than 2x" }
            );
            if ch.2 != *rows || dk.2 != *rows {
                println!("       rows differ: Rewind {rows}, ClickHouse {}, DuckDB {}", ch.2, dk.2);
            }
            // The first row of each, to be compared by eye (each engine prints numbers its way).
            let first = |engine: &str| peers[engine][name]["rows"][0].as_str().unwrap_or_default().to_string();
            let i = rewind.iter().position(|r| r.0 == *name).unwrap();
            println!("       first rows: {} | {} | {}", first_rows[i], first("clickhouse"), first("duckdb"));
            figures[name]["clickhouse"] = json!({"p50_ms": ch.0, "p99_ms": ch.1, "rows": ch.2});
            figures[name]["duckdb"] = json!({"p50_ms": dk.0, "p99_ms": dk.1, "rows": dk.2});
            figures[name]["ratio_to_faster_peer"] = json!(ratio);
        }
        figures["peer_versions"] = peers["versions"].clone();
    }
    write_results("sql", &figures);
}
