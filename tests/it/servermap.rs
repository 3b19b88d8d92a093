//! The server map, histograms and call tree end to end: a two-service Flask app under the
//! OpenTelemetry Python SDK, with an uninstrumented HTTP peer and a Redis call; retried exports.

use std::time::{Duration, Instant};

use serde_json::Value as J;

use crate::data::request;
use crate::harness::Server;
use crate::xlog::{now_ms, Shop};

/// `/api/servermap` over the test's range, polled until `done` holds of it (exports are batched,
/// and a trace with a call to an uninstrumented peer waits `--link-wait` for its callee).
async fn map_until(server: &Server, from: u64, done: impl Fn(&J) -> bool) -> J {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, map) = server.get_json(&format!("/api/servermap?from={from}&to={}", now_ms() + 60_000)).await;
        assert_eq!(status, 200, "{map}");
        if done(&map) || Instant::now() > deadline {
            return map;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn node<'a>(map: &'a J, name: &str) -> &'a J {
    map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}: {map}"))
}

fn links<'a>(map: &'a J, source: &str) -> Vec<&'a J> {
    map["links"].as_array().unwrap().iter().filter(|l| l["source"] == source).collect()
}

fn link<'a>(map: &'a J, source: &str, target: &str) -> &'a J {
    links(map, source)
        .into_iter()
        .find(|l| l["target"] == target)
        .unwrap_or_else(|| panic!("no link {source} -> {target}: {map}"))
}

fn count(v: &J) -> u64 {
    v["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flask_app_under_the_python_sdk_draws_its_map() {
    const N: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--link-wait", "2s", "--seal-interval", "1s"]);
    let from = now_ms();
    let otlp = server.grpc_endpoint();
    let b = Shop::start(&["b".into(), "--otlp".into(), otlp.clone()]);
    let a = Shop::start(&["a".into(), "--otlp".into(), otlp, "--b".into(), b.url(""), "--extras".into()]);
    let http = reqwest::Client::new();
    for n in 1..=N {
        let status = http.get(a.url(&format!("/checkout/{n}"))).send().await.unwrap().status().as_u16();
        assert_eq!(status, if n % 5 == 0 { 500 } else { 200 }, "request {n}");
    }
    for shop in [&a, &b] {
        let flushed: J = http.get(shop.url("/flush")).send().await.unwrap().json().await.unwrap();
        assert_eq!(flushed["flushed"], true);
    }
    let failed = N / 5;
    let queries: u64 = (1..=N).map(|n| n % 3 + 1).sum();
    // Each service also served one GET /flush, a transaction like any other.
    let want = |m: &J| {
        let n = |name: &str| m["nodes"].as_array().unwrap().iter().find(|x| x["name"] == name).map_or(0, count);
        let out: u64 = links(m, "shop-a").iter().map(|l| count(l)).sum();
        n("shop-a") == N + 1 && n("shop-b") == N + 1 && n("sqlite") == queries && out == N + 2 * (N - failed)
    };
    let map = map_until(&server, from, want).await;
    // Nothing arrives late to be counted twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = map_until(&server, from, |_| true).await;
    assert_eq!(map["nodes"], again["nodes"]);
    assert!(want(&map), "{map:#}");

    let shop_a = node(&map, "shop-a");
    assert_eq!((shop_a["kind"].as_str(), shop_a["errors"].as_u64()), (Some("server"), Some(failed)));
    assert_eq!(shop_a["instances"], serde_json::json!(["shop-a-1"]));
    assert_eq!(count(link(&map, "USER", "shop-a")), N + 1);
    let ab = link(&map, "shop-a", "shop-b");
    assert_eq!((count(ab), ab["errors"].as_u64(), ab["target_kind"].as_str()), (N, Some(failed), Some("server")));
    let db = link(&map, "shop-b", "sqlite");
    assert_eq!((count(db), db["target_kind"].as_str()), (queries, Some("database")));
    // The Redis call and the uninstrumented HTTP service: virtual nodes, the cache named by its
    // address (`net.peer.name`), the HTTP service by the host and port of its URL.
    let out = links(&map, "shop-a");
    let cache: Vec<&&J> = out.iter().filter(|l| l["target_kind"] == "cache").collect();
    let external: Vec<&&J> = out.iter().filter(|l| l["target_kind"] == "external").collect();
    assert_eq!((cache.len(), external.len()), (1, 1), "{out:#?}");
    assert_eq!((count(cache[0]), count(external[0])), (N - failed, N - failed));
    assert_eq!(cache[0]["target"], "127.0.0.1");
    assert!(external[0]["target"].as_str().unwrap().starts_with("127.0.0.1:"), "{}", external[0]);
    for l in [cache[0], external[0]] {
        assert_eq!(node(&map, l["target"].as_str().unwrap())["kind"], l["target_kind"]);
    }
    // Pinpoint's buckets add up to the count; the cache's are the fast schema.
    let buckets: u64 = ab["histogram"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(buckets, N);
    assert!(cache[0]["histogram"].get("100ms").is_some(), "{}", cache[0]);
    // Cut around shop-b, one level each way: its caller and its database, not shop-a's peers.
    let (_, cut) =
        server.get_json(&format!("/api/servermap?from={from}&to={}&service=shop-b", now_ms() + 60_000)).await;
    let mut names: Vec<&str> = cut["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["USER", "shop-a", "shop-b", "sqlite"], "{cut}");

    // The histogram of shop-b's stock endpoint, of the link to it, and of the database.
    let to = now_ms() + 60_000;
    let (status, h) = server
        .get_json(&format!("/api/histogram?from={from}&to={to}&service=shop-b&endpoint=GET%20/stock/%3Cint:n%3E"))
        .await;
    assert_eq!(status, 200, "{h}");
    assert_eq!((h["count"].as_u64(), h["errors"].as_u64()), (Some(N), Some(failed)));
    // B sleeps 100 ms for a quarter of the requests: the p90 is past 30 ms.
    assert!(h["percentiles"]["p90_ms"].as_f64().unwrap() >= 30.0, "{h}");
    let series: u64 = h["series"].as_array().unwrap().iter().map(count).sum();
    assert_eq!(series, N);
    let (_, h) = server.get_json(&format!("/api/histogram?from={from}&to={to}&source=shop-a&target=shop-b")).await;
    assert_eq!(h["count"].as_u64(), Some(N), "{h}");
    let (_, h) = server.get_json(&format!("/api/histogram?from={from}&to={to}&service=sqlite")).await;
    assert_eq!(h["count"].as_u64(), Some(queries), "{h}");

    // The same figures in SQL, over what the Python SDK sent.
    let sql = |q: &'static str| {
        let http = http.clone();
        let url = server.query_url("/api/sql");
        async move {
            let r: J =
                http.post(url).json(&serde_json::json!({ "sql": q })).send().await.unwrap().json().await.unwrap();
            r["rows"].clone()
        }
    };
    let b = sql("SELECT count(*), sum(CASE WHEN error THEN 1 ELSE 0 END) FROM xlog \
                 WHERE service = 'shop-b' AND endpoint = 'GET /stock/<int:n>'")
    .await;
    assert_eq!(b, serde_json::json!([[N, failed]]));
    let calls = sql("SELECT sum(count), sum(errors) FROM links WHERE source = 'shop-a' AND target = 'shop-b'").await;
    assert_eq!(calls, serde_json::json!([[N, failed]]));
    let db = sql("SELECT count(*) FROM spans WHERE service = 'shop-b' AND kind = 'client' \
                  AND coalesce(attr(attributes, 'db.system.name'), attr(attributes, 'db.system')) = 'sqlite'")
    .await;
    assert_eq!(db, serde_json::json!([[queries]]));

    // The call tree of a failed checkout: A's call to B, B's queries, B's exception as a row.
    let (_, list) = server
        .get_json(&format!("/api/transactions?from={from}&to={to}&service=shop-b&attr.http.target=/stock/10"))
        .await;
    let trace_id = list["transactions"][0]["trace_id"].as_str().unwrap().to_owned();
    let (status, tree) = server.get_json(&format!("/api/traces/{trace_id}/calltree")).await;
    assert_eq!(status, 200, "{tree}");
    let rows: Vec<(u64, &str, &str)> = tree["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["depth"].as_u64().unwrap(), r["type"].as_str().unwrap(), r["service"].as_str().unwrap()))
        .collect();
    assert_eq!(rows[0], (0, "span", "shop-a"), "{tree:#}");
    assert_eq!(rows[1], (1, "span", "shop-a"), "{tree:#}");
    assert_eq!(rows[2], (2, "span", "shop-b"), "{tree:#}");
    let queries: Vec<&J> =
        tree["rows"].as_array().unwrap().iter().filter(|r| r["argument"] == "SELECT ? + 1").collect();
    assert_eq!(queries.len(), 2, "10 % 3 + 1 queries");
    assert!(queries.iter().all(|q| q["depth"] == 3 && q["kind"] == "client"));
    let exception =
        tree["rows"].as_array().unwrap().iter().find(|r| r["type"] == "exception" && r["service"] == "shop-b");
    let exception = exception.unwrap_or_else(|| panic!("no exception row: {tree:#}"));
    assert_eq!(exception["exception"]["type"], "ValueError");
    assert!(exception["exception"]["message"].as_str().unwrap().contains("out of stock"));
    assert!(exception["exception"]["stacktrace"].as_str().unwrap().contains("Traceback"));
    assert_eq!(tree["rows"][0]["exec_pct"].as_f64(), Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_export_counts_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--link-wait", "1s", "--seal-interval", "300ms"]);
    let mut client = server.grpc_client().await;
    // 5 traces of 4 spans: a root and 3 queries to MySQL.
    let req = request(77, 5, 4);
    let service = format!("svc{}", 77 % 3);
    let from = now_ms() - 120_000;
    for _ in 0..2 {
        client.export(req.clone()).await.unwrap();
    }
    let settled = |m: &J| m["links"].as_array().unwrap().iter().any(|l| l["target"] == "mysql" && count(l) >= 15);
    let map = map_until(&server, from, settled).await;
    assert_eq!(count(link(&map, "USER", &service)), 5, "{map}");
    assert_eq!(count(link(&map, &service, "mysql")), 15, "{map}");
    // Sent again once sealed, and once more after a kill -9 and a restart.
    server.wait_sealed().await;
    client.export(req.clone()).await.unwrap();
    server.kill9();
    let server = Server::start(&data, &["--link-wait", "1s"]);
    server.grpc_client().await.export(req).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let map = map_until(&server, from, |_| true).await;
    assert_eq!(count(link(&map, "USER", &service)), 5, "{map}");
    assert_eq!(count(link(&map, &service, "mysql")), 15, "{map}");
    assert_eq!(server.trace(&hex::encode(crate::data::trace_id(77, 0))).await["span_count"], 4);
    assert!(server.metric("rewind_storage_retried_batches_total").await >= 1.0);
}
