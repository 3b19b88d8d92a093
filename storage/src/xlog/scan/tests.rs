use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::model::{Resource, Value};
use crate::xlog::points::points;
use crate::xlog::records::records;
use crate::xlog::segment::build;
use crate::xlog::{Metric, XLogFilter};

const MS: u64 = 1_000_000;

fn record(i: u64) -> XLog {
    XLog {
        trace_id: TraceId((u128::from(i) * 0x9e37_79b9_7f4a_7c15).to_be_bytes()),
        span_id: SpanId((i + 1).to_be_bytes()),
        service: ["front", "cart", "checkout"][i as usize % 3].into(),
        instance: format!("pod-{}", i % 5).into(),
        endpoint: ["GET /", "POST /cart", "GET /item/{id}"][i as usize % 3].into(),
        start_ns: 1_000 * MS + i * 100 * MS,
        elapsed_ns: (i % 50) * MS,
        error: i % 7 == 0,
        error_message: if i % 7 == 0 { "timeout calling payment".into() } else { Default::default() },
        http_status: if i % 7 == 0 { 500 } else { 200 },
        client_ip: format!("10.0.0.{}", i % 4).into(),
        user_id: format!("user{}", i % 10).into(),
        user_agent: if i % 2 == 0 { "Mozilla/5.0 Firefox".into() } else { "curl/8.1".into() },
        referer: Default::default(),
        cpu_ns: i,
        alloc_bytes: 0,
        sql_count: (i % 3) as u32,
        sql_ns: i * 10,
        api_count: 1,
        api_ns: i * 20,
        attributes: vec![
            ("tenant".into(), Value::Str(format!("t{}", i % 2).into())),
            ("retry".into(), Value::Int((i % 3) as i64)),
        ]
        .into(),
        resource: Arc::new(Resource { attributes: vec![("k8s.namespace.name".into(), Value::Str("shop".into()))] }),
    }
}

/// Records spread over segments (some spanning several pages) and memory, with duplicates.
struct World {
    memory: Vec<XLog>,
    built: Vec<crate::xlog::segment::BuiltXSegment>,
    all: Vec<XLog>,
}

fn world() -> World {
    let all: Vec<XLog> = (0..10_000).map(record).collect();
    let mut built = Vec::new();
    // Segment 1: rows 0..6000 (two pages), segment 2: 5000..9000 (overlapping: retries).
    for (id, range) in [(1u64, 0..6000usize), (2, 5000..9000)] {
        let refs: Vec<&XLog> = all[range].iter().collect();
        built.extend(build(0, &mut || id, &refs));
    }
    World { memory: all[8500..].to_vec(), built, all }
}

type FetchFn<'a> = &'a (dyn Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched + Sync);

fn run<T>(w: &World, f: impl FnOnce(&Sources<'_, FetchFn<'_>>) -> T) -> T {
    let chunks: HashMap<(u64, u16, u32), &Vec<u8>> =
        w.built.iter().flat_map(|b| b.chunks.iter().map(move |(c, p, v)| ((b.meta.id, *c, *p), v))).collect();
    let fetch = move |m: &XLogSegmentMeta, want: &[(u16, u32)]| -> Fetched {
        Ok(want.iter().map(|(c, p)| chunks.get(&(m.id, *c, *p)).map(|v| v.to_vec())).collect())
    };
    let fetch: FetchFn<'_> = &fetch;
    let src = Sources { memory: &w.memory, segments: w.built.iter().map(|b| &b.meta).collect(), fetch };
    f(&src)
}

/// What a filter must return, computed the obvious way.
fn expected(w: &World, f: &XLogFilter) -> (Vec<XLog>, bool) {
    let mut m: Vec<XLog> = w.all.iter().filter(|x| f.matches(x)).cloned().collect();
    m.sort_by_key(|x| x.end_ns());
    let truncated = m.len() > f.limit;
    (m.split_off(m.len().saturating_sub(f.limit)), truncated)
}

fn filters() -> Vec<XLogFilter> {
    let base = XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 100_000, ..XLogFilter::default() };
    vec![
        base.clone(),
        XLogFilter { from_ns: 3_000 * MS, to_ns: 7_000 * MS, ..base.clone() },
        XLogFilter { service: Some("cart".into()), error: Some(true), ..base.clone() },
        XLogFilter { min_elapsed_ns: Some(40 * MS), max_elapsed_ns: Some(45 * MS), ..base.clone() },
        XLogFilter { endpoint: Some("GET /".into()), client_ip: Some("10.0.0.2".into()), ..base.clone() },
        XLogFilter { user_id: Some("user3".into()), user_agent: Some("Firefox".into()), ..base.clone() },
        XLogFilter { text: Some("payment".into()), ..base.clone() },
        XLogFilter { attributes: vec![("tenant".into(), "t1".into()), ("retry".into(), "2".into())], ..base.clone() },
        XLogFilter { attributes: vec![("k8s.namespace.name".into(), "shop".into())], limit: 10, ..base.clone() },
        XLogFilter { attributes: vec![("absent".into(), "x".into())], ..base.clone() },
        XLogFilter { trace_id: Some(record(4321).trace_id), ..base.clone() },
        XLogFilter { times: vec![(Metric::Sql, 20_000, 40_000), (Metric::Api, 0, 70_000)], ..base.clone() },
        XLogFilter { times: vec![(Metric::Cpu, 9_000, u64::MAX)], ..base.clone() },
        XLogFilter { service: Some("front".into()), limit: 1234, ..base.clone() },
        XLogFilter { limit: 0, ..base },
    ]
}

#[test]
fn points_and_records_match_a_plain_filter_with_duplicates_removed() {
    let w = world();
    for f in filters() {
        let (want, want_truncated) = expected(&w, &f);
        let points = run(&w, |src| points(src, &f)).unwrap();
        assert_eq!(points.end_ns, want.iter().map(XLog::end_ns).collect::<Vec<_>>(), "{f:?}");
        assert_eq!(points.trace_id, want.iter().map(|x| x.trace_id).collect::<Vec<_>>(), "{f:?}");
        assert_eq!(points.error, want.iter().map(|x| x.error).collect::<Vec<_>>());
        assert_eq!(points.sql_ns, want.iter().map(|x| x.sql_ns).collect::<Vec<_>>());
        let names: Vec<&str> = points.service.iter().map(|i| points.services[*i as usize].as_str()).collect();
        assert_eq!(names, want.iter().map(|x| &*x.service).collect::<Vec<_>>());
        assert_eq!(points.truncated, want_truncated, "{f:?}");

        let f = XLogFilter { limit: f.limit.min(500), ..f };
        let (want, want_truncated) = expected(&w, &f);
        let (got, truncated) = run(&w, |src| records(src, &f)).unwrap();
        let key =
            |x: &XLog| (x.end_ns(), x.trace_id, x.sql_count, x.user_agent.clone(), x.attribute("tenant").cloned());
        assert_eq!(got.iter().map(key).collect::<Vec<_>>(), want.iter().map(key).collect::<Vec<_>>(), "{f:?}");
        assert_eq!(truncated, want_truncated);
    }
}

#[test]
fn the_limit_keeps_the_most_recent() {
    let w = world();
    let f = XLogFilter { from_ns: 0, to_ns: u64::MAX, limit: 10, ..XLogFilter::default() };
    let p = run(&w, |src| points(src, &f)).unwrap();
    assert!(p.truncated);
    assert_eq!(p.end_ns.len(), 10);
    assert_eq!(*p.end_ns.last().unwrap(), record(9999).end_ns());
}
