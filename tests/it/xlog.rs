//! XLog end to end: a two-service Flask app instrumented with the OpenTelemetry Python SDK (the
//! records are derived from its spans), and the native agent protocol through a tonic client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rewind_agent_proto::agent::x_log_service_client::XLogServiceClient;
use rewind_agent_proto::agent::{attribute, Attribute, ExportXLogRequest, XLog};
use serde_json::Value as J;

use crate::agents::{python, repo};
use crate::harness::Server;

/// One role of tests/python/flask_shop.py, killed when dropped.
pub struct Shop {
    child: Child,
    port: u16,
}

impl Shop {
    pub fn start(args: &[String]) -> Shop {
        let mut child = Command::new(python())
            .arg(repo().join("tests/python/flask_shop.py"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Flask shop (scripts/test.sh installs its packages)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("the Flask shop did not start: {line:?}");
        };
        Shop { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `/api/transactions` for a service, polled until it holds `n` records (exports are batched).
async fn transactions(server: &Server, service: &str, from: u64, n: usize) -> Vec<J> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = format!("/api/transactions?from={from}&to={}&service={service}&limit=10000", now_ms() + 60_000);
        let (status, body) = server.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        let list = body["transactions"].as_array().unwrap().clone();
        if list.len() >= n || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn path_of(t: &J) -> String {
    let a = &t["attributes"];
    a["http.target"].as_str().or(a["url.path"].as_str()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn flask_services_instrumented_with_the_python_sdk_give_one_transaction_per_request() {
    const N: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let from = now_ms();
    let otlp = server.grpc_endpoint();
    let b = Shop::start(&["b".into(), "--otlp".into(), otlp.clone()]);
    let a = Shop::start(&["a".into(), "--otlp".into(), otlp, "--b".into(), b.url("")]);

    let http = reqwest::Client::new();
    let mut client_ms = Vec::new();
    for n in 1..=N {
        let started = Instant::now();
        let status = http.get(a.url(&format!("/checkout/{n}"))).send().await.unwrap().status().as_u16();
        client_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(status, if n % 5 == 0 { 500 } else { 200 }, "request {n}");
    }
    for shop in [&a, &b] {
        let flushed: J = http.get(shop.url("/flush")).send().await.unwrap().json().await.unwrap();
        assert_eq!(flushed["flushed"], true);
    }

    let checkouts: Vec<J> = transactions(&server, "shop-a", from, N as usize)
        .await
        .into_iter()
        .filter(|t| path_of(t).starts_with("/checkout/"))
        .collect();
    let stocks: Vec<J> = transactions(&server, "shop-b", from, N as usize)
        .await
        .into_iter()
        .filter(|t| path_of(t).starts_with("/stock/"))
        .collect();
    assert_eq!((checkouts.len(), stocks.len()), (N as usize, N as usize), "exactly one transaction per request");

    for n in 1..=N {
        let one = |list: &[J], path: String| -> J {
            let found: Vec<&J> = list.iter().filter(|t| path_of(t) == path).collect();
            assert_eq!(found.len(), 1, "{path}");
            found[0].clone()
        };
        let ta = one(&checkouts, format!("/checkout/{n}"));
        let tb = one(&stocks, format!("/stock/{n}"));
        let (ea, eb) = (ta["elapsed_ms"].as_f64().unwrap(), tb["elapsed_ms"].as_f64().unwrap());
        // B sleeps 0, 10, 20 or 100 ms by n % 4; A waits for B; the client waits for A (clocks
        // are one host's).
        let slept = if n % 4 == 3 { 100.0 } else { (n % 4) as f64 * 10.0 };
        assert!(eb >= slept, "request {n}: B took {eb} ms");
        assert!(ea >= eb, "request {n}: A {ea} ms < B {eb} ms");
        assert!(
            ea <= client_ms[n as usize - 1] + 1.0,
            "request {n}: A {ea} ms, client {} ms",
            client_ms[n as usize - 1]
        );
        let failed = n % 5 == 0;
        assert_eq!((ta["error"].as_bool(), tb["error"].as_bool()), (Some(failed), Some(failed)), "request {n}");
        if failed {
            assert!(tb["error_message"].as_str().unwrap().contains("out of stock"), "{tb}");
            assert_eq!((ta["http_status"].as_u64(), tb["http_status"].as_u64()), (Some(500), Some(500)));
        }
        assert_eq!(tb["sql_count"].as_u64(), Some(n % 3 + 1), "request {n}: B's queries");
        assert!(tb["sql_ms"].as_f64().unwrap() > 0.0);
        assert_eq!((ta["sql_count"].as_u64(), ta["api_count"].as_u64()), (Some(0), Some(1)), "request {n}: A");
        assert_eq!(tb["api_count"].as_u64(), Some(0));
        assert_eq!(ta["trace_id"], tb["trace_id"], "one trace per request");
        assert_eq!(ta["instance"], "shop-a-1");
    }

    // The scatter agrees with the list; filters narrow both.
    let to = now_ms() + 60_000;
    let (status, xlog) = server.get_json(&format!("/api/xlog?from={from}&to={to}&service=shop-b&error=true")).await;
    assert_eq!(status, 200, "{xlog}");
    assert_eq!(xlog["count"].as_u64(), Some(N / 5));
    assert!(xlog["service"].as_array().unwrap().iter().all(|s| s == "shop-b"));
    let (_, slow) = server.get_json(&format!("/api/transactions?from={from}&to={to}&service=shop-b&min_ms=30")).await;
    assert!(slow["transactions"].as_array().unwrap().iter().all(|t| t["elapsed_ms"].as_f64().unwrap() >= 30.0));
    assert!(slow["count"].as_u64().unwrap() >= N / 4);
    let (_, one) =
        server.get_json(&format!("/api/transactions?from={from}&to={to}&attr.http.target=/checkout/7")).await;
    assert_eq!(one["count"], 1, "{one}");
}

fn record(i: u8, start_ns: u64) -> XLog {
    XLog {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        service: "legacy-billing".into(),
        instance: "billing-7".into(),
        endpoint: "/invoice".into(),
        start_time_unix_nano: start_ns,
        elapsed_nano: u64::from(i) * 1_000_000,
        error: i % 2 == 0,
        error_message: if i % 2 == 0 { "declined".into() } else { String::new() },
        http_status: 200,
        client_ip: "10.1.2.3".into(),
        user_id: format!("user{i}"),
        user_agent: "agent/1".into(),
        referer: "https://shop/cart".into(),
        cpu_time_nano: 400_000,
        allocated_bytes: 1 << 20,
        sql_count: 3,
        sql_time_nano: 2_000_000,
        api_count: 1,
        api_time_nano: 5_000_000,
        attributes: vec![Attribute { key: "tenant".into(), value: Some(attribute::Value::StringValue("acme".into())) }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn native_xlog_records_through_a_tonic_client() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let from = now_ms();
    let start = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap();
    let mut client = XLogServiceClient::connect(format!("http://{}", server.grpc)).await.unwrap();
    let mut bad = record(9, start);
    bad.trace_id = vec![1, 2, 3];
    let records: Vec<XLog> = (1..=6).map(|i| record(i, start)).chain([bad]).collect();
    let resp = client.export(ExportXLogRequest { records: records.clone() }).await.unwrap().into_inner();
    let partial = resp.partial_success.expect("one record was bad");
    assert_eq!(partial.rejected_records, 1);
    assert!(partial.error_message.contains("trace_id must be 16 bytes"), "{}", partial.error_message);
    // A retry of the same request changes nothing.
    client.export(ExportXLogRequest { records }).await.unwrap();

    let check = |body: J| {
        let list = body["transactions"].as_array().unwrap();
        assert_eq!(list.len(), 6, "{body}");
        let t = list.iter().find(|t| t["user_id"] == "user4").unwrap();
        assert_eq!(t["service"], "legacy-billing");
        assert_eq!(t["elapsed_ms"].as_f64(), Some(4.0));
        assert_eq!((t["error"].as_bool(), t["error_message"].as_str()), (Some(true), Some("declined")));
        assert_eq!((t["cpu_ms"].as_f64(), t["alloc_bytes"].as_u64()), (Some(0.4), Some(1 << 20)));
        assert_eq!((t["sql_count"].as_u64(), t["sql_ms"].as_f64()), (Some(3), Some(2.0)));
        assert_eq!((t["api_count"].as_u64(), t["api_ms"].as_f64()), (Some(1), Some(5.0)));
        assert_eq!((t["referer"].as_str(), t["client_ip"].as_str()), (Some("https://shop/cart"), Some("10.1.2.3")));
        assert_eq!(t["attributes"]["tenant"], "acme");
    };
    let path = format!("/api/transactions?from={from}&to={}&service=legacy-billing", now_ms() + 60_000);
    let (status, body) = server.get_json(&path).await;
    assert_eq!(status, 200);
    check(body);

    // Acknowledged records survive kill -9.
    server.kill9();
    let server = Server::start(&data, &[]);
    let (_, body) = server.get_json(&path).await;
    check(body);
    let (_, errors) = server.get_json(&format!("{path}&error=true&attr.tenant=acme&user_agent=agent")).await;
    assert_eq!(errors["count"], 3);

    // Bad parameters are refused with the parameter's name.
    for (query, param) in [("from=1", "to"), ("from=5&to=1", "to"), ("from=1&to=5&limit=abc", "limit")] {
        let (status, body) = server.get_json(&format!("/api/xlog?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&format!("`{param}`")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_native_protocol_refuses_bad_requests_like_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--ingest-token", "s3cret", "--max-message-bytes", "64KiB"]);
    let path = rewind_agent_proto::XLOG_EXPORT_PATH;
    let start = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap();
    let authorized = |body: Vec<u8>| {
        let mut req = tonic::Request::new(body);
        req.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        req
    };
    let good = prost::Message::encode_to_vec(&ExportXLogRequest { records: vec![record(1, start)] });

    assert_eq!(server.grpc_raw_status(path, tonic::Request::new(good.clone())).await, tonic::Code::Unauthenticated);
    assert_eq!(server.grpc_raw_status(path, authorized(good)).await, tonic::Code::Ok);
    assert_eq!(
        server.grpc_raw_status(path, authorized(vec![0xff, 0xff, 0xff, 0x0f, 0x01])).await,
        tonic::Code::InvalidArgument
    );
    let many: Vec<XLog> = (1..=200).map(|i| XLog { referer: "r".repeat(1000), ..record(i, start) }).collect();
    let big = prost::Message::encode_to_vec(&ExportXLogRequest { records: many });
    assert_eq!(server.grpc_raw_status(path, authorized(big)).await, tonic::Code::ResourceExhausted);
    let empty = prost::Message::encode_to_vec(&ExportXLogRequest { records: vec![] });
    assert_eq!(server.grpc_raw_status(path, authorized(empty)).await, tonic::Code::Ok);
    assert_eq!(server.metric("rewind_collector_xlog_records_accepted_total").await, 1.0);
}
