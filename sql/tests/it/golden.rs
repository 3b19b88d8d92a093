//! Golden answers over the shop store, in files of the sqllogictest shape: `query` and the SQL,
//! `----`, the expected rows (cells separated by `|`, floats to three decimals), a blank line;
//! `statement error` and the SQL, `----`, a piece of the expected message. Run with
//! `REWIND_UPDATE_GOLDEN=1` to rewrite the expected parts after a deliberate change, and read
//! the diff.

use std::path::Path;

use crate::support::{engine, lines, runtime, shop_store};

struct Case {
    kind: String,
    sql: String,
    expected: Vec<String>,
}

fn parse(text: &str) -> (Vec<String>, Vec<Case>) {
    let mut header = Vec::new();
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("query") || l.starts_with("statement error") {
            let mut sql = Vec::new();
            for l in lines.by_ref() {
                if l == "----" {
                    break;
                }
                sql.push(l);
            }
            let mut expected = Vec::new();
            while let Some(l) = lines.next_if(|l| !l.is_empty()) {
                expected.push(l.to_string());
            }
            cases.push(Case { kind: l.to_string(), sql: sql.join("\n"), expected });
        } else if cases.is_empty() {
            header.push(l.to_string());
        }
    }
    (header, cases)
}

#[test]
fn shop_queries_answer_as_recorded() {
    let path = Path::new("tests/golden/shop.slt");
    let text = std::fs::read_to_string(path).unwrap();
    let (header, cases) = parse(&text);
    assert!(cases.len() >= 10, "the golden file lost its cases");
    let shop = shop_store();
    let (engine, rt) = (engine(&shop.store), runtime());
    let update = std::env::var_os("REWIND_UPDATE_GOLDEN").is_some();
    let mut out = header.join("\n") + "\n";
    let mut failures = Vec::new();
    for case in &cases {
        let got = match (case.kind.as_str(), lines(&engine, &rt, &case.sql)) {
            ("query", Ok(rows)) => rows,
            ("query", Err(e)) => vec![format!("ERROR: {e}")],
            (_, Ok(rows)) => vec![format!("UNEXPECTED SUCCESS: {} rows", rows.len())],
            (_, Err(e)) => {
                let message = e.to_string();
                match case.expected.first() {
                    Some(want) if !update && message.contains(want.as_str()) => vec![want.clone()],
                    // One line: the first of the message is what the file keeps.
                    _ => vec![message.lines().next().unwrap_or_default().to_string()],
                }
            }
        };
        if got != case.expected {
            failures.push(format!(
                "{}\n-- expected:\n{}\n-- got:\n{}",
                case.sql,
                case.expected.join("\n"),
                got.join("\n")
            ));
        }
        out.push_str(&format!("{}\n{}\n----\n{}\n\n", case.kind, case.sql, got.join("\n")));
    }
    if update {
        std::fs::write(path, out.trim_end().to_string() + "\n").unwrap();
        return;
    }
    assert!(failures.is_empty(), "{} golden answers differ:\n\n{}", failures.len(), failures.join("\n\n"));
}
