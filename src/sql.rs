//! SQL in the binary: the engine behind `POST /api/sql` (`Service`), and `rewind sql "..."`,
//! which asks a running server and prints the answer as a table.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use rewind_query::{SqlFailure, SqlFuture, SqlOutput, SqlService, ARROW_STREAM};
use rewind_sql::{Engine, Output};

pub struct Service(pub Engine);

impl SqlService for Service {
    fn run(&self, sql: String, arrow: bool) -> SqlFuture<'_> {
        Box::pin(async move {
            let failure =
                |e: rewind_sql::SqlError| SqlFailure { status: e.status(), code: e.code(), message: e.to_string() };
            match self.0.run(&sql, arrow).await.map_err(failure)? {
                Output::Arrow(body) => Ok(SqlOutput { content_type: ARROW_STREAM, body }),
                Output::Json(answer) => Ok(SqlOutput {
                    content_type: "application/json",
                    body: serde_json::to_vec(&answer).map_err(|e| SqlFailure {
                        status: 500,
                        code: "internal",
                        message: e.to_string(),
                    })?,
                }),
            }
        })
    }
}

#[derive(Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT service, count(*) FROM xlog GROUP BY service".
    pub query: String,
    /// The query API of a running server.
    #[arg(long, env = "REWIND_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The server's query token, if it has one.
    #[arg(long, env = "REWIND_QUERY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3600)).build()?;
    let url = format!("{}/api/sql", args.server.trim_end_matches('/'));
    let mut req = client.post(&url).json(&serde_json::json!({ "sql": args.query }));
    if let Some(t) = args.token.as_deref().filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("asking {url}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{status}: {message}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let columns: Vec<String> =
        body["columns"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap_or("").to_string()).collect();
    let rows: Vec<Vec<String>> = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().into_iter().flatten().map(cell).collect())
        .collect();
    print!("{}", table(&columns, &rows));
    println!("({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" });
    Ok(())
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, numbers right-aligned; control characters from the
/// store are shown escaped, never sent to the terminal.
fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| {
        s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect::<String>()
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()).collect();
    let columns: Vec<String> = columns.iter().map(|c| clean(c)).collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([columns[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns.len()).map(width).collect();
    // A column of numbers (NULL aside) is right-aligned, its header too.
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            let cells = || rows.iter().filter_map(|r| r.get(i)).filter(|c| *c != "NULL");
            cells().next().is_some() && cells().all(|c| c.parse::<f64>().is_ok())
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((c, w), right)| if *right { format!("{c:>w$}") } else { format!("{c:<w$}") })
            .collect();
        format!("{}\n", parts.join(" | ").trim_end())
    };
    let mut out = line(&columns);
    out.push_str(&format!("{}\n", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-")));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_table_pads_columns_and_escapes_control_characters() {
        let t = super::table(&["service".into(), "n".into()], &[vec!["cart\x1b[31m".into(), "12".into()]]);
        assert_eq!(t, "service        |  n\n---------------+---\ncart\\u{1b}[31m | 12\n");
    }
}
