//! The Jaeger query API as Grafana's Jaeger data source drives it (the request shapes of its
//! `datasource.ts`: the health check, the search form's service and operation lists, a search
//! with tags in JSON and Go durations over its time range in microseconds, opening a trace with
//! its range, the dependency graph in milliseconds), over a two-service Flask app under the
//! OpenTelemetry Python SDK; and a trace's translation into Jaeger's JSON model against a golden
//! file.

use std::time::{Duration, Instant};

use serde_json::{json, Value as J};

use crate::harness::{export_grpc, Server};
use crate::xlog::{now_ms, Shop};

async fn get(server: &Server, path: &str) -> (u16, J) {
    server.get_json(&format!("/jaeger{path}")).await
}

/// Jaeger's envelope around a successful answer: its data.
fn data(status: u16, body: &J) -> &J {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], J::Null, "{body}");
    let data = &body["data"];
    assert_eq!(body["total"].as_u64(), data.as_array().map(|a| a.len() as u64), "{body}");
    data
}

fn names(list: &J) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

fn tag<'a>(span: &'a J, key: &str) -> Option<&'a J> {
    span["tags"].as_array().unwrap().iter().find(|t| t["key"] == key).map(|t| &t["value"])
}

/// What Jaeger's JSON model requires of a trace: every span's process listed, references
/// within the trace or to links, microsecond times, typed tags.
fn assert_jaeger_trace(t: &J) {
    let id = t["traceID"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    for s in t["spans"].as_array().unwrap() {
        assert_eq!(s["traceID"], id);
        assert_eq!(s["spanID"].as_str().unwrap().len(), 16);
        let p = s["processID"].as_str().unwrap();
        assert!(t["processes"][p]["serviceName"].is_string(), "process {p} of {s}");
        assert!(s["startTime"].as_u64().unwrap() > 1_600_000_000_000_000, "microseconds: {s}");
        assert!(s["duration"].is_u64());
        for r in s["references"].as_array().unwrap() {
            assert!(["CHILD_OF", "FOLLOWS_FROM"].contains(&r["refType"].as_str().unwrap()), "{r}");
        }
        for tg in s["tags"].as_array().unwrap() {
            assert!(["string", "bool", "int64", "float64", "binary"].contains(&tg["type"].as_str().unwrap()), "{tg}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grafanas_jaeger_data_source_finds_searches_and_opens_traces() {
    const N: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--link-wait", "2s", "--seal-interval", "1s"]);
    let from = now_ms();
    let otlp = server.grpc_endpoint();
    let b = Shop::start(&["b".into(), "--otlp".into(), otlp.clone()]);
    let a = Shop::start(&["a".into(), "--otlp".into(), otlp, "--b".into(), b.url("")]);
    let http = reqwest::Client::new();
    for n in 1..=N {
        http.get(a.url(&format!("/checkout/{n}"))).send().await.unwrap();
    }
    for shop in [&a, &b] {
        http.get(shop.url("/flush")).send().await.unwrap();
    }
    let failed = N / 5;

    // The health check: the service list, not empty. Peers (the database) are not services.
    let deadline = Instant::now() + Duration::from_secs(30);
    let services = loop {
        let (status, body) = get(&server, "/api/services").await;
        let list: Vec<String> = names(data(status, &body)).into_iter().map(String::from).collect();
        if list.len() >= 2 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(services, ["shop-a", "shop-b"]);

    // The search form: a service's operations, and with their kinds.
    let (status, body) = get(&server, "/api/services/shop-a/operations").await;
    let ops = names(data(status, &body));
    assert!(ops.contains(&"GET /checkout/<int:n>"), "{ops:?}");
    assert!(ops.contains(&"GET"), "the requests client span: {ops:?}");
    // The server span of GET /flush is exported by the batch processor after its answer: the
    // list is complete once it is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let server_ops = loop {
        let (status, body) = get(&server, "/api/operations?service=shop-a&spanKind=server").await;
        let ops = data(status, &body).clone();
        if ops.to_string().contains("GET /flush") || Instant::now() > deadline {
            break ops;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        server_ops,
        json!([{"name": "GET /checkout/<int:n>", "spanKind": "server"}, {"name": "GET /flush", "spanKind": "server"}])
    );
    let (status, body) = get(&server, "/api/operations?service=shop-b").await;
    let kinds: Vec<&str> =
        data(status, &body).as_array().unwrap().iter().map(|o| o["spanKind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"server"), "{body}");
    let (status, body) = get(&server, "/api/services/nobody/operations").await;
    assert_eq!(data(status, &body), &json!([]));

    // A search as Grafana sends it: tags typed as logfmt, sent as JSON; its range in
    // microseconds; lookback=custom. Traces are searched once their transactions are final.
    let (start, end) = (from * 1000 - 60_000_000, (now_ms() + 60_000) * 1000);
    let search = format!(
        "/api/traces?service=shop-a&operation={}&tags={}&minDuration=1us&maxDuration=1h&limit=20&start={start}&end={end}&lookback=custom",
        urlencode("GET /checkout/<int:n>"),
        urlencode(r#"{"error":"true"}"#),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let traces = loop {
        let (status, body) = get(&server, &search).await;
        let traces = data(status, &body).as_array().unwrap().clone();
        if traces.len() as u64 >= failed || Instant::now() > deadline {
            break traces;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(traces.len() as u64, failed, "every fifth checkout fails");
    for t in &traces {
        assert_jaeger_trace(t);
        let spans = t["spans"].as_array().unwrap();
        let root = spans.iter().find(|s| s["references"].as_array().unwrap().is_empty()).expect("a root span");
        assert_eq!(root["operationName"], "GET /checkout/<int:n>");
        assert_eq!(tag(root, "error"), Some(&json!(true)), "{root}");
        assert_eq!(tag(root, "span.kind"), Some(&json!("server")));
        let services: Vec<&str> =
            t["processes"].as_object().unwrap().values().map(|p| p["serviceName"].as_str().unwrap()).collect();
        assert!(services.contains(&"shop-a") && services.contains(&"shop-b"), "{services:?}");
        // Every other span hangs from one in the trace.
        for s in spans.iter().filter(|s| s["spanID"] != root["spanID"]) {
            let parent = &s["references"][0];
            assert_eq!(parent["refType"], "CHILD_OF");
            assert!(spans.iter().any(|p| p["spanID"] == parent["spanID"]), "orphan {s}");
        }
    }
    // Without the tags: the most recent first, as many as asked.
    let (status, body) = get(&server, &format!("/api/traces?service=shop-a&limit=5&start={start}&end={end}")).await;
    let recent = data(status, &body).as_array().unwrap();
    assert_eq!(recent.len(), 5);
    let root_start = |t: &J| t["spans"].as_array().unwrap().iter().map(|s| s["startTime"].as_u64().unwrap()).min();
    assert!(recent.windows(2).all(|w| root_start(&w[0]) >= root_start(&w[1])), "most recent first");
    // Only the slow ones: shop-b sleeps 100 ms for n % 4 == 3, at most 20 ms otherwise.
    let (status, body) =
        get(&server, &format!("/api/traces?service=shop-b&minDuration=90ms&start={start}&end={end}")).await;
    let slow = data(status, &body).as_array().unwrap();
    assert_eq!(slow.len() as u64, N / 4, "{body}");

    // Opening a trace, with the range Grafana adds when told to.
    let id = traces[0]["traceID"].as_str().unwrap();
    let (status, body) = get(&server, &format!("/api/traces/{id}?start={start}&end={end}")).await;
    let opened = data(status, &body);
    assert_eq!(opened[0]["spans"].as_array().unwrap().len(), traces[0]["spans"].as_array().unwrap().len());
    let (status, body) = get(&server, &format!("/api/traces?traceID={id}")).await;
    assert_eq!(data(status, &body)[0]["traceID"], id);

    // The dependency graph: endTs and lookback in milliseconds; the map's figures on each edge.
    // Counted once each trace is final (its grace, and the link wait of its calls).
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let end_ms = now_ms() + 60_000;
        let (status, body) =
            get(&server, &format!("/api/dependencies?endTs={end_ms}&lookback={}", end_ms - from + 60_000)).await;
        let done = data(status, &body)
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["parent"] == "shop-a" && d["child"] == "shop-b" && d["callCount"] == N);
        if done || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let deps = body["data"].as_array().unwrap();
    let edge = |p: &str, c: &str| deps.iter().find(|d| d["parent"] == p && d["child"] == c);
    let ab = edge("shop-a", "shop-b").unwrap_or_else(|| panic!("{body}"));
    assert_eq!((ab["callCount"].as_u64(), ab["errorCount"].as_u64()), (Some(N), Some(failed)), "{ab}");
    assert_eq!(ab["childKind"], "server");
    assert!(ab["p99DurationMs"].as_f64().unwrap() >= 30.0, "{ab}");
    assert_eq!(edge("shop-b", "sqlite").expect("the database")["childKind"], "database");
    assert!(deps.iter().all(|d| d["parent"] != "USER"), "{body}");

    // Bad parameters: a 400 in the envelope, naming the parameter.
    for (path, param) in [
        ("/api/traces?service=shop-a&minDuration=fast", "minDuration"),
        ("/api/traces?operation=x", "service"),
        ("/api/traces?service=shop-a&tags=%7Bnope", "tags"),
        ("/api/traces/xyz", "traceID"),
        ("/api/operations?service=shop-a&spanKind=sideways", "spanKind"),
        ("/api/dependencies?endTs=soon", "endTs"),
        ("/api/dependencies?lookback=0", "lookback"),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!((&body["data"], &body["errors"][0]["code"]), (&J::Null, &json!(400)), "{path}: {body}");
        assert!(body["errors"][0]["msg"].as_str().unwrap().contains(param), "{path}: {body}");
    }
    let (status, body) = get(&server, "/api/traces/5b8efff798038103d269b633813fc60c").await;
    assert_eq!((status, &body["errors"][0]["code"]), (404, &json!(404)), "{body}");
    let (status, body) = get(&server, "/api/traces?service=nobody").await;
    assert_eq!(data(status, &body), &json!([]));
    let (status, body) = get(&server, "/api/nothing").await;
    assert_eq!((status, &body["errors"][0]["code"]), (404, &json!(404)), "{body}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A trace with every kind of attribute value, an error, an event and a link, in Jaeger's model;
/// times relative to the trace's start (the test data is stamped a minute before now).
/// `REWIND_UPDATE_GOLDEN=1` rewrites the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_trace_in_jaegers_json_model_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--jaeger-prefix", "/tools/jaeger"]);
    let req = crate::data::request(11, 2, 3);
    let id = hex::encode(&req.resource_spans[0].scope_spans[0].spans[0].trace_id);
    export_grpc(&server, req).await;
    let (status, mut body) = server.get_json(&format!("/tools/jaeger/api/traces/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_jaeger_trace(&body["data"][0]);
    let base = body["data"][0]["spans"].as_array().unwrap().iter().map(|s| s["startTime"].as_u64().unwrap()).min();
    for s in body["data"][0]["spans"].as_array_mut().unwrap() {
        s["startTime"] = json!(s["startTime"].as_u64().unwrap() - base.unwrap());
        for l in s["logs"].as_array_mut().unwrap() {
            l["timestamp"] = json!(l["timestamp"].as_u64().unwrap() - base.unwrap());
        }
    }
    let path = crate::agents::repo().join("tests/golden/jaeger-trace.json");
    let got = serde_json::to_string_pretty(&body).unwrap() + "\n";
    if std::env::var_os("REWIND_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("the golden file (REWIND_UPDATE_GOLDEN=1 writes it)");
    assert_eq!(got, want, "the Jaeger model of the trace changed; if on purpose, REWIND_UPDATE_GOLDEN=1");
    // The default prefix is not served when another is configured.
    let (status, _) = server.get_json("/jaeger/api/services").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jaeger_api_takes_the_query_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--query-token", "s3cret"]);
    let url = server.query_url("/jaeger/api/services");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 401);
    let ok = http.get(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let body: J = ok.json().await.unwrap();
    assert_eq!(body, json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": null}));
}
