//! `POST /api/sql` and `rewind sql` against a real server: the token applies, answers come as
//! JSON or Arrow IPC, and refusals carry their status and code.

use std::process::Command;

use rewind_workload::{Shop, ShopConfig};

use crate::harness::{export_grpc, Server};

const TOKEN: &str = "q-secret";

async fn ask(server: &Server, body: serde_json::Value, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(server.query_url("/api/sql")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_over_http_and_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--query-token", TOKEN, "--sql-max-rows", "100"]);
    let mut shop = Shop::new(ShopConfig { seed: 5, incident: None });
    let now = rewind_storage::now_ns();
    export_grpc(&server, shop.request(50, now - 120_000_000_000, 100_000_000)).await;

    let q =
        serde_json::json!({"sql": "SELECT service, count(*) AS spans FROM spans GROUP BY service ORDER BY service"});
    assert_eq!(ask(&server, q.clone(), None).await.status(), 401);
    assert_eq!(ask(&server, q.clone(), Some("wrong")).await.status(), 401);

    let resp = ask(&server, q.clone(), Some(TOKEN)).await;
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["columns"], serde_json::json!(["service", "spans"]));
    assert_eq!(answer["types"][1]["type"], "Int64");
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{answer}");
    assert_eq!(rows[0][0], "cart");
    let total: u64 = rows.iter().map(|r| r[1].as_u64().unwrap()).sum();
    assert!(total > 500, "{answer}");

    // Arrow IPC: asked by header or by format; the stream starts with a continuation marker.
    let arrow = reqwest::Client::new()
        .post(server.query_url("/api/sql"))
        .bearer_auth(TOKEN)
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(arrow.status(), 200);
    assert_eq!(arrow.headers()["content-type"], "application/vnd.apache.arrow.stream");
    let bytes = arrow.bytes().await.unwrap();
    assert_eq!(&bytes[..4], &[0xff; 4]);
    let mut with_format = q.clone();
    with_format["format"] = "arrow".into();
    assert_eq!(ask(&server, with_format, Some(TOKEN)).await.bytes().await.unwrap(), bytes);

    for (sql, status, code) in [
        ("DROP TABLE spans", 400, "sql_read_only"),
        ("SELEC 1", 400, "sql_invalid"),
        ("SELECT span_id FROM spans", 413, "sql_too_many_rows"),
    ] {
        let resp = ask(&server, serde_json::json!({ "sql": sql }), Some(TOKEN)).await;
        assert_eq!(resp.status(), status, "{sql}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{sql}: {body}");
    }
    let long = "SELECT 1 -- ".to_string() + &"x".repeat(70_000);
    assert_eq!(ask(&server, serde_json::json!({ "sql": long }), Some(TOKEN)).await.status(), 413);
    let resp = ask(&server, serde_json::json!({ "query": "SELECT 1" }), Some(TOKEN)).await;
    assert_eq!(resp.status(), 400);

    let cli = |token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rewind"));
        c.args(["sql", "SELECT service, count(*) AS n FROM xlog WHERE service = 'cart' GROUP BY service"])
            .args(["--server", &server.query_url("")])
            .env_remove("REWIND_QUERY_TOKEN");
        if let Some(t) = token {
            c.env("REWIND_QUERY_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = cli(Some(TOKEN));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("service | ") && lines[0].ends_with('n'), "{stdout}");
    assert!(lines[2].starts_with("cart    | "), "{stdout}");
    assert_eq!(lines.last(), Some(&"(1 row)"), "{stdout}");
    let out = cli(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
}
