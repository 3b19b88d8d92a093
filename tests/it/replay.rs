//! Replay, incident finder and comparison end to end: `rewind loadgen` backfills the shop with
//! an injected MySQL incident into the real server; the finder must report that window and that
//! dependency and nothing else, the replay must show the spike in those seconds on the links to
//! MySQL, and the comparison must name MySQL first.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as J;

use crate::harness::Server;
use crate::xlog::now_ms;

const MIN: u64 = 60_000;
/// The incident: from 20 minutes before the backfill's end, for 3 minutes.
const INCIDENT_AGO: u64 = 20 * MIN;
const INCIDENT_LEN: u64 = 3 * MIN;
/// Edges are found to within this, ms.
const EDGE: u64 = 5_000;

fn f(v: &J) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `/api/servermap`'s count of USER → frontend over everything, polled until it stops growing:
/// every backfilled trace derived and counted.
pub(crate) async fn settle(server: &Server, from: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (_, map) = server.get_json(&format!("/api/servermap?from={from}&to={}", now_ms() + MIN)).await;
        let n = map["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["source"] == "USER")
            .map(|l| l["count"].as_u64().unwrap())
            .sum::<u64>();
        if (n > 0 && n == last) || Instant::now() > deadline {
            return;
        }
        last = n;
    }
}

/// `rewind loadgen` backfills 45 minutes of the shop at `rate` spans a second, with MySQL eight
/// times slower and failing a quarter of its calls from 20 to 17 minutes before the end. Returns
/// the clock when it started, from which the incident is placed.
pub(crate) fn backfill_with_incident(server: &Server, rate: u32) -> u64 {
    let start = now_ms();
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("loadgen")
        .args(["--endpoint", &format!("http://{}", server.grpc)])
        .args(["--backfill", "45m", "--rate", &rate.to_string(), "--duration", "0s"])
        .args(["--incident", "dependency=mysql,start=-20m,duration=3m,slowdown=8,errors=0.25"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    start
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_incident_is_found_replayed_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let start = backfill_with_incident(&server, 100);
    // The incident's start is taken from the clock as loadgen parses its flags.
    let (inj_from, inj_to) = (start - INCIDENT_AGO, start - INCIDENT_AGO + INCIDENT_LEN);
    let (from, to) = (start - 46 * MIN, now_ms() + MIN);
    settle(&server, from).await;

    // The finder: that window, that dependency, and nothing else in the 45 minutes around it.
    let (status, found) = server.get_json(&format!("/api/incidents?from={from}&to={to}")).await;
    assert_eq!(status, 200, "{found}");
    let incidents = found["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{found:#}");
    let i = &incidents[0];
    let (got_from, got_to) = (i["start_ms"].as_u64().unwrap(), i["end_ms"].as_u64().unwrap());
    assert!(got_from.abs_diff(inj_from) <= EDGE, "start {got_from} vs {inj_from}: {i:#}");
    assert!(got_to.abs_diff(inj_to) <= EDGE, "end {got_to} vs {inj_to}: {i:#}");
    assert_eq!(i["worst_service"], "mysql", "{i:#}");
    assert_eq!(i["worst_link"]["target"], "mysql", "{i:#}");
    assert_eq!(i["severity"], "critical", "{i:#}");
    let reason = i["reason"].as_str().unwrap();
    assert!(reason.starts_with("mysql: p99 ") && reason.contains(" baseline, errors "), "{reason}");

    // The replay: the links to MySQL slow and failing in those seconds, not around them.
    let (a, b) = (got_from - 30_000, got_to + 30_000);
    let (status, replay) = server.get_json(&format!("/api/replay?from={a}&to={b}")).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["step_ms"], 1000);
    let frames = replay["frames"].as_array().unwrap();
    assert_eq!(frames.len() as u64, (b - a) / 1000);
    let (mut inside, mut outside) = ((0u64, 0u64, 0.0, 0u64), (0u64, 0u64, 0.0, 0u64));
    for fr in frames {
        let t = fr["time_ms"].as_u64().unwrap();
        let side = if t >= inj_from + 2_000 && t + 2_000 < inj_to {
            &mut inside
        } else if t + 3_000 < inj_from || t >= inj_to + 3_000 {
            &mut outside
        } else {
            continue;
        };
        for l in fr["links"].as_array().unwrap().iter().filter(|l| l["target"] == "mysql") {
            side.0 += l["count"].as_u64().unwrap();
            side.1 += l["errors"].as_u64().unwrap();
            side.2 += f(&l["avg_ms"]) * l["count"].as_u64().unwrap() as f64;
        }
        side.3 += 1;
        assert!(fr["overall"].is_null(), "frames flatten the overall figures");
        assert!(f(&fr["tps"]) >= 0.0 && fr["active"]["<3s"].is_number(), "{fr}");
    }
    let avg = |s: (u64, u64, f64, u64)| s.2 / s.0 as f64;
    assert!(inside.0 > 0 && outside.0 > 0, "{inside:?} {outside:?}");
    assert_eq!(outside.1, 0, "no MySQL errors outside the incident");
    let share = inside.1 as f64 / inside.0 as f64;
    assert!((0.15..0.35).contains(&share), "errors inside: {share}");
    assert!(avg(inside) > 5.0 * avg(outside), "avg {} inside vs {} outside", avg(inside), avg(outside));

    // The comparison against the 20 minutes before: MySQL, and a link to it, first.
    let q = format!("/api/compare?a_from={}&a_to={got_from}&b_from={got_from}&b_to={got_to}", got_from - 20 * MIN);
    let (status, cmp) = server.get_json(&q).await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(cmp["nodes"][0]["name"], "mysql", "{:#}", cmp["nodes"]);
    assert_eq!(cmp["links"][0]["target"], "mysql", "{:#}", cmp["links"]);
    assert!(f(&cmp["nodes"][0]["change"]["p99_ratio"]) > 4.0);

    // Bad parameters are named.
    for (path, param) in [
        (format!("/api/replay?from={a}&to={a}"), "to"),
        (format!("/api/replay?from={a}&to={}&step=1000", a + 2 * 3600 * 1000), "step"),
        (format!("/api/replay?from={a}&to={b}&service=nope"), "service"),
        (format!("/api/incidents?from={a}&to={}", a + 8 * 86_400_000), "to"),
        (format!("/api/incidents?from={a}&to={b}&service=nope"), "service"),
        (format!("/api/compare?a_from={a}&a_to={b}&b_from={b}"), "b_to"),
    ] {
        let (status, body) = server.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_parameter", "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&format!("`{param}`")), "{path}: {body}");
    }
}
