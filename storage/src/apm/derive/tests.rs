use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::apm::semconv::NodeKind;
use crate::model::{kind, Span, Value};
use crate::testing;

const S: u64 = 1_000_000_000;

fn span(trace: u8, id: u64, parent: Option<u64>, service: &str, k: u8, attrs: &[(&str, Value)]) -> Arc<Span> {
    testing::span(trace, id)
        .parent(parent)
        .service(service)
        .kind(k)
        .start(100 * S + id)
        .duration(1000 * id)
        .attrs(attrs)
        .arc()
}

fn db() -> [(&'static str, Value); 1] {
    [("db.system", Value::Str("sqlite".into()))]
}

fn deriver() -> Deriver {
    Deriver::new(DeriveConfig {
        grace: Duration::from_secs(2),
        link_wait: Duration::from_secs(10),
        orphan_ttl: Duration::from_secs(60),
        max_spans: 10_000,
        max_trace_spans: 10_000,
        max_bytes: 64 << 20,
    })
}

/// The shape of a two-service request: A (server) -> internal -> client call to B and a query;
/// B (server) -> two queries.
fn two_services() -> Vec<Arc<Span>> {
    vec![
        span(1, 1, None, "a", kind::SERVER, &[]),
        span(1, 2, Some(1), "a", kind::INTERNAL, &[]),
        span(1, 3, Some(2), "a", kind::CLIENT, &[("http.request.method", Value::Str("GET".into()))]),
        span(1, 4, Some(2), "a", kind::CLIENT, &db()),
        span(1, 5, Some(3), "b", kind::SERVER, &[]),
        span(1, 6, Some(5), "b", kind::CLIENT, &db()),
        span(1, 7, Some(5), "b", kind::CLIENT, &db()),
    ]
}

fn by_service(mut records: Vec<Arc<XLog>>) -> Vec<(String, u32, u64, u32, u64)> {
    records.sort_by(|a, b| a.service.cmp(&b.service));
    records.iter().map(|x| (x.service.to_string(), x.sql_count, x.sql_ns, x.api_count, x.api_ns)).collect()
}

#[test]
fn counts_descendants_in_the_entry_service_only() {
    let mut d = deriver();
    assert!(d.observe(1, Extract::from_spans(&two_services()), 0).records.is_empty());
    assert!(!d.has_due(S));
    assert!(d.has_due(2 * S));
    let out = d.finalize(2 * S, false);
    assert_eq!(by_service(out.records), vec![("a".into(), 1, 4000, 1, 3000), ("b".into(), 2, 13_000, 0, 0)]);
    // Nothing waits, so the trace is let go once quiet.
    assert_eq!(d.pending(), 0);
    assert_eq!(d.spans_held(), 0);
}

#[test]
fn children_arriving_before_and_after_their_entry_count() {
    let spans = two_services();
    let mut d = deriver();
    // B's queries, then A's client spans, long before their entries.
    d.observe(1, Extract::from_spans(&spans[5..7]), 0);
    d.observe(2, Extract::from_spans(&spans[1..4]), S);
    assert!(d.finalize(30 * S, false).records.is_empty(), "children wait for their entry");
    assert_eq!(d.spans_held(), 5);
    d.observe(3, Extract::from_spans(&spans[4..5]), 31 * S);
    d.observe(4, Extract::from_spans(&spans[0..1]), 31 * S);
    // The log is kept from the first record of the held trace.
    assert_eq!(d.held_traces().map(|(_, seq, _)| seq).min(), Some(1));
    // A child exported after its entry, within the grace period.
    let late = span(1, 8, Some(5), "b", kind::CLIENT, &db());
    d.observe(5, Extract::from_spans(&[late]), 32 * S);
    assert!(d.finalize(33 * S, false).records.is_empty(), "released once quiet for the grace period");
    let out = d.finalize(34 * S, false);
    assert_eq!(by_service(out.records), vec![("a".into(), 1, 4000, 1, 3000), ("b".into(), 3, 21_000, 0, 0)]);
    assert_eq!(d.held_traces().len(), 0);
}

#[test]
fn retries_never_count_twice() {
    let mut d = deriver();
    let spans = two_services();
    d.observe(1, Extract::from_spans(&spans), 0);
    d.observe(2, Extract::from_spans(&spans), S);
    d.observe(3, Extract::from_spans(&spans[5..7]), S);
    let out = d.finalize(10 * S, false);
    assert_eq!(by_service(out.records), vec![("a".into(), 1, 4000, 1, 3000), ("b".into(), 2, 13_000, 0, 0)]);
    assert_eq!(out.links.len(), 5, "and the calls once each: {:?}", out.links);
}

#[test]
fn provisional_records_show_counts_so_far() {
    let mut d = deriver();
    let spans = two_services();
    d.observe(1, Extract::from_spans(&spans[4..6]), 0);
    let now = d.provisional(|_| true).into_iter().map(|p| Arc::new(p.complete())).collect();
    assert_eq!(by_service(now), vec![("b".into(), 1, 6000, 0, 0)]);
    assert_eq!(d.pending(), 1);
}

#[test]
fn roots_and_consumers_are_entries() {
    let mut d = deriver();
    let spans = vec![
        span(2, 1, None, "job", kind::INTERNAL, &[]),
        span(2, 2, Some(1), "job", kind::PRODUCER, &[]),
        span(2, 3, Some(2), "worker", kind::CONSUMER, &[]),
        span(2, 4, Some(3), "worker", kind::INTERNAL, &[]),
        span(2, 5, Some(4), "worker", kind::CLIENT, &db()),
    ];
    d.observe(1, Extract::from_spans(&spans), 0);
    let out = d.finalize(u64::MAX / 2, false);
    assert_eq!(by_service(out.records), vec![("job".into(), 0, 0, 1, 2000), ("worker".into(), 1, 5000, 0, 0)]);
}

#[test]
fn orphans_are_let_go_after_their_ttl() {
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&[span(3, 2, Some(1), "a", kind::CLIENT, &[])]), 0);
    d.finalize(59 * S, false);
    assert_eq!(d.spans_held(), 1);
    d.finalize(60 * S, false);
    assert_eq!(d.spans_held(), 0);
}

#[test]
fn memory_stays_bounded_and_early_records_are_complete() {
    let mut d = Deriver::new(DeriveConfig { max_spans: 100, ..DeriveConfig::default() });
    let mut early = Vec::new();
    for t in 0..200u8 {
        let spans = vec![span(t, 1, None, "a", kind::SERVER, &[]), span(t, 2, Some(1), "a", kind::CLIENT, &db())];
        early.extend(d.observe(u64::from(t), Extract::from_spans(&spans), u64::from(t)).records);
        assert!(d.spans_held() <= 100);
    }
    assert!(!early.is_empty());
    assert!(early.iter().all(|x| x.sql_count == 1));
    let rest = d.finalize(0, true);
    assert_eq!(early.len() + rest.records.len(), 200);
}

#[test]
fn cyclic_parents_end() {
    let mut d = deriver();
    let spans = vec![
        span(4, 1, Some(2), "a", kind::INTERNAL, &[]),
        span(4, 2, Some(1), "a", kind::INTERNAL, &[]),
        span(4, 3, Some(1), "a", kind::CLIENT, &db()),
        span(4, 4, None, "a", kind::SERVER, &[]),
    ];
    d.observe(1, Extract::from_spans(&spans), 0);
    let out = d.finalize(10 * S, false);
    assert_eq!(by_service(out.records), vec![("a".into(), 0, 0, 0, 0)]);
}

#[test]
fn the_draft_reads_old_and_new_convention_names() {
    let mut s = (*span(
        5,
        1,
        None,
        "a",
        kind::SERVER,
        &[
            ("http.status_code", Value::Int(503)),
            ("http.client_ip", Value::Str("10.0.0.9".into())),
            ("enduser.id", Value::Str("alice".into())),
            ("user_agent.original", Value::Str("curl/8".into())),
            ("http.request.header.referer", Value::Array([Value::Str("https://shop/".into())].into())),
        ],
    ))
    .clone();
    s.status_code = crate::model::status::ERROR;
    s.events.push(crate::model::Event {
        time_ns: s.start_ns,
        name: "exception".into(),
        attributes: vec![("exception.message".into(), Value::Str("boom".into()))],
        dropped_attributes: 0,
    });
    let s = Arc::new(s);
    let x = semconv::transaction(&s, s.resource.shared_instance().cloned().unwrap_or_default());
    assert_eq!(
        (x.http_status, &*x.client_ip, &*x.user_id, &*x.user_agent, &*x.referer),
        (503, "10.0.0.9", "alice", "curl/8", "https://shop/")
    );
    assert!(x.error);
    assert_eq!(&*x.error_message, "boom");
    assert_eq!(x.end_ns(), s.end_ns());
}

#[test]
fn a_record_copies_its_entry_spans_attribute_list_but_shares_the_values() {
    // A record waiting for children must not keep its entry span alive, nor copy a nest of
    // arrays value by value: the list is its own, what it lists is the span's.
    let nested = Value::Array(vec![Value::KvList([("k".into(), Value::Bytes([7; 64].into()))].into()); 1_000].into());
    let s =
        span(1, 1, None, "a", kind::SERVER, &[("tags", nested), ("user_agent.original", Value::Str("curl/8".into()))]);
    let x = semconv::transaction(&s, s.resource.shared_instance().cloned().unwrap_or_default());
    assert_eq!(&*x.attributes, &s.attributes[..]);
    assert!(!std::ptr::eq(x.attributes.as_ptr(), s.attributes.as_ptr()), "a list of its own");
    let (Value::Array(theirs), Value::Array(ours)) = (&s.attributes[0].1, &x.attributes[0].1) else { panic!() };
    assert!(Arc::ptr_eq(theirs, ours), "the array is shared, not copied");
    assert_eq!(Arc::strong_count(&s), 1, "the record holds no reference to the span");
    drop(s);
    assert_eq!(x.attributes.len(), 2);
    assert_eq!(&*x.user_agent, "curl/8");
}

#[test]
fn deep_chains_cost_a_step_per_span() {
    // An entry, a chain of internal spans, and a client call at every level.
    let chain = |depth: u64| -> Vec<Arc<Span>> {
        let mut v = vec![span(6, 1, None, "a", kind::SERVER, &[])];
        for i in 0..depth {
            v.push(span(6, 10 + 2 * i, Some(if i == 0 { 1 } else { 10 + 2 * (i - 1) }), "a", kind::INTERNAL, &[]));
            v.push(span(6, 11 + 2 * i, Some(10 + 2 * i), "a", kind::CLIENT, &db()));
        }
        v
    };
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&chain(100)), 0);
    assert_eq!(d.finalize(10 * S, false).records[0].sql_count, 100);
    // 40,000 levels, deepest first (the worst order for a walk that stops at a bound): every
    // client is its entry's, and counting, asked again and again while the trace is held, takes
    // a step per span.
    let mut d = Deriver::new(DeriveConfig { max_spans: 1_000_000, ..DeriveConfig::default() });
    let mut deep = chain(40_000);
    deep.reverse();
    crate::apm::trace::WALK_STEPS.with(|n| n.set(0));
    d.observe(1, Extract::from_spans(&deep), 0);
    for _ in 0..50 {
        assert_eq!(d.provisional(|_| true).remove(0).complete().sql_count, 40_000);
    }
    let out = d.finalize(10 * S, false);
    assert_eq!(out.records[0].sql_count, 40_000);
    // Counted, not timed: a walk per client up its chain would be 800 million steps.
    let steps = crate::apm::trace::WALK_STEPS.with(|n| n.get());
    assert!(steps <= 2 * deep.len() as u64, "{steps} steps for {} spans", deep.len());
}

#[test]
fn one_endless_trace_is_cut_and_does_not_push_out_the_others() {
    let mut d = Deriver::new(DeriveConfig { max_spans: 10_000, max_trace_spans: 2_000, ..DeriveConfig::default() });
    // Ordinary traces, quiet since.
    for t in 0..100u8 {
        let spans = vec![span(t, 1, None, "a", kind::SERVER, &[]), span(t, 2, Some(1), "a", kind::CLIENT, &db())];
        d.observe(u64::from(t), Extract::from_spans(&spans), 0);
    }
    // A hostile trace that never ends: a chain of clients, arriving all the time.
    let mut cut = Vec::new();
    for batch in 0..50u64 {
        let spans: Vec<Arc<Span>> = (0..200)
            .map(|i| {
                let id = 1_000 + batch * 200 + i;
                span(250, id, Some(id - 1), "evil", kind::CLIENT, &db())
            })
            .collect();
        cut.extend(d.observe(1_000 + batch, Extract::from_spans(&spans), S + batch).records);
        assert!(d.spans_held() <= 10_000);
    }
    // The ordinary traces are all still held, whole: none was evicted for it.
    let rest = d.finalize(S * 100, true);
    let ordinary: Vec<_> = rest.records.iter().filter(|x| &*x.service == "a").collect();
    assert_eq!(ordinary.len(), 100);
    assert!(ordinary.iter().all(|x| x.sql_count == 1));
    assert!(cut.is_empty(), "the hostile trace has no entries: released without records");
}

mod order {
    use super::*;
    use proptest::prelude::*;

    /// A random trace: span i's parent is an earlier span (or none), with a random service, kind
    /// and database attribute.
    fn arb_trace() -> impl Strategy<Value = Vec<Arc<Span>>> {
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, 1u8..=5, any::<bool>(), any::<bool>()), 1..40)
            .prop_map(|rows| {
                rows.iter()
                    .enumerate()
                    .map(|(i, (p, svc, k, root, is_db))| {
                        let parent = (i > 0 && !root).then(|| p.index(i) as u64 + 1);
                        let attrs: &[(&str, Value)] =
                            if *is_db { &[("db.system", Value::Str("pg".into()))] } else { &[] };
                        span(7, i as u64 + 1, parent, ["a", "b", "c"][*svc as usize], *k, attrs)
                    })
                    .collect()
            })
    }

    type Calls = Vec<(String, String, NodeKind, u64)>;
    /// (entry span, sql count, sql ns, api count, api ns)
    type Counted = Vec<(SpanId, u32, u64, u32, u64)>;

    fn records(d: &mut Deriver) -> (Counted, Calls) {
        let out = d.finalize(u64::MAX / 2, false);
        let mut v: Vec<_> =
            out.records.into_iter().map(|x| (x.span_id, x.sql_count, x.sql_ns, x.api_count, x.api_ns)).collect();
        v.sort_unstable();
        (v, calls(&out.links))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever order and requests the spans of a trace arrive in, and however often a request
        /// is retried, within the grace period the records and the calls are the same as all at
        /// once.
        #[test]
        fn arrival_order_and_retries_do_not_change_records(
            trace in arb_trace(),
            order in any::<prop::sample::Index>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
            retry in any::<prop::sample::Index>(),
        ) {
            let mut whole = deriver();
            whole.observe(1, Extract::from_spans(&trace), 0);
            let want = records(&mut whole);
            prop_assert_eq!(want.0.len(), trace.iter().filter(|s| semconv::is_entry(s)).count());

            let mut shuffled = trace.clone();
            shuffled.rotate_left(order.index(trace.len()));
            shuffled.reverse();
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(trace.len() + 1)).collect();
            bounds.extend([0, trace.len()]);
            bounds.sort_unstable();
            let batches: Vec<&[Arc<Span>]> = bounds.windows(2).map(|w| &shuffled[w[0]..w[1]]).collect();
            let mut parts = deriver();
            for (i, b) in batches.iter().enumerate() {
                parts.observe(i as u64, Extract::from_spans(b), i as u64);
            }
            let again = batches[retry.index(batches.len())];
            parts.observe(99, Extract::from_spans(again), 5);
            prop_assert_eq!(records(&mut parts), want);
        }
    }
}

/// (source, target, kind, elapsed) of each call, sorted.
fn calls(links: &[LinkCall]) -> Vec<(String, String, NodeKind, u64)> {
    let mut v: Vec<_> =
        links.iter().map(|c| (c.source.to_string(), c.target.to_string(), c.target_kind, c.elapsed_ns)).collect();
    v.sort();
    v
}

#[test]
fn calls_are_links_to_their_callee_or_to_the_peer_they_name() {
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&two_services()), 0);
    let out = d.finalize(2 * S, false);
    assert_eq!(
        calls(&out.links),
        vec![
            ("USER".into(), "a".into(), NodeKind::Server, 1000),
            // Timed by the caller: the client span 3, not b's server span.
            ("a".into(), "b".into(), NodeKind::Server, 3000),
            ("a".into(), "sqlite".into(), NodeKind::Database, 4000),
            ("b".into(), "sqlite".into(), NodeKind::Database, 6000),
            ("b".into(), "sqlite".into(), NodeKind::Database, 7000),
        ]
    );
    assert!(out.links.iter().all(|c| c.start_ns == 100 * S + c.elapsed_ns / 1000), "at the call's own time");
}

#[test]
fn a_call_waits_for_its_callee_then_counts_as_a_call_to_its_peer() {
    let http = [("server.address", Value::Str("payments.example".into()))];
    let trace = [span(6, 1, None, "shop", kind::SERVER, &[]), span(6, 2, Some(1), "shop", kind::CLIENT, &http)];
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&trace), 0);
    assert!(d.finalize(5 * S, false).links.is_empty(), "the callee may still report");
    assert!(!d.has_due(9 * S));
    let out = d.finalize(10 * S, false);
    assert_eq!(
        calls(&out.links),
        vec![
            ("USER".into(), "shop".into(), NodeKind::Server, 1000),
            ("shop".into(), "payments.example".into(), NodeKind::External, 2000),
        ]
    );
    // Had the callee reported in time, the call would have been to it.
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&trace), 0);
    d.observe(2, Extract::from_spans(&[span(6, 3, Some(2), "payments", kind::SERVER, &[])]), 4 * S);
    let out = d.finalize(6 * S, false);
    assert!(calls(&out.links).contains(&("shop".into(), "payments".into(), NodeKind::Server, 2000)));
}

#[test]
fn transactions_do_not_wait_with_calls_for_their_callees() {
    let http = [("server.address", Value::Str("payments.example".into()))];
    let trace = [span(6, 1, None, "shop", kind::SERVER, &[]), span(6, 2, Some(1), "shop", kind::CLIENT, &http)];
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&trace), 0);
    assert!(d.finalize(S, false).records.is_empty(), "within the grace");
    let out = d.finalize(2 * S, false);
    assert_eq!(by_service(out.records), vec![("shop".into(), 0, 0, 1, 2000)]);
    assert!(out.links.is_empty(), "the callee may still report");
    // The trace stays held for its call, without its record.
    assert_eq!((d.spans_held(), d.pending(), d.held.total()), (2, 0, 0));
    assert_eq!(d.held_traces().map(|(_, first, released)| (first, released)).collect::<Vec<_>>(), vec![(1, Some(1))]);
    assert!(d.provisional(|_| true).is_empty());
    // A later entry of the trace is a transaction of its own, let go of after its grace too.
    d.observe(2, Extract::from_spans(&[span(6, 3, None, "batch", kind::SERVER, &[])]), 4 * S);
    assert!(d.finalize(5 * S, false).records.is_empty());
    assert_eq!(by_service(d.finalize(6 * S, false).records), vec![("batch".into(), 0, 0, 0, 0)]);
    assert_eq!(d.held_traces().map(|(_, _, released)| released).collect::<Vec<_>>(), vec![Some(2)]);
    // A retry of a released entry is not a transaction again.
    d.observe(3, Extract::from_spans(&trace), 7 * S);
    assert_eq!(d.pending(), 0);
    // The call counts when its wait is over, with no record again.
    let out = d.finalize(17 * S, false);
    assert!(out.records.is_empty());
    assert!(calls(&out.links).contains(&("shop".into(), "payments.example".into(), NodeKind::External, 2000)));
    assert_eq!((d.spans_held(), d.held_traces().len()), (0, 0));
}

#[test]
fn a_recovery_does_not_make_the_transactions_already_let_go_of_again() {
    let http = [("server.address", Value::Str("payments.example".into()))];
    let first = [span(6, 1, None, "shop", kind::SERVER, &[]), span(6, 2, Some(1), "shop", kind::CLIENT, &http)];
    let later = [span(6, 3, None, "batch", kind::SERVER, &[])];
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&first), 0);
    assert_eq!(d.finalize(2 * S, false).records.len(), 1);
    d.observe(2, Extract::from_spans(&later), 3 * S);
    let released: FxHashMap<TraceId, u64> =
        d.held_traces().filter_map(|(id, _, released)| Some((*id, released?))).collect();
    // Derived again from the log after a crash: the first record was sealed, the second not.
    let mut d = deriver();
    d.recovering(released);
    d.observe(1, Extract::from_spans(&first), 100 * S);
    d.observe(2, Extract::from_spans(&later), 100 * S);
    d.recovered();
    assert_eq!(d.pending(), 1);
    assert_eq!(by_service(d.finalize(102 * S, false).records), vec![("batch".into(), 0, 0, 0, 0)]);
    assert_eq!(calls(&d.finalize(110 * S, false).links).len(), 3, "the calls count once, after the recovery");
}

#[test]
fn a_peer_that_answered_without_a_span_is_not_waited_for_again_until_it_does_or_a_minute_passes() {
    let http = [("server.address", Value::Str("payments.example".into()))];
    let checkout =
        |t: u8| [span(t, 1, None, "shop", kind::SERVER, &[]), span(t, 2, Some(1), "shop", kind::CLIENT, &http)];
    let external = ("shop".to_string(), "payments.example".to_string(), NodeKind::External, 2000);
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&checkout(1)), 0);
    assert!(d.finalize(5 * S, false).links.is_empty());
    assert!(calls(&d.finalize(10 * S, false).links).contains(&external), "the first call waits it out");
    // Learned: the next checkout is released after the grace alone, its record with it.
    d.observe(2, Extract::from_spans(&checkout(2)), 20 * S);
    let out = d.finalize(22 * S, false);
    assert!(calls(&out.links).contains(&external) && out.records.len() == 1);
    // A callee that reports within the grace is still its callee, and the peer is forgotten.
    d.observe(3, Extract::from_spans(&checkout(3)), 30 * S);
    d.observe(4, Extract::from_spans(&[span(3, 3, Some(2), "payments", kind::SERVER, &[])]), 31 * S);
    let out = d.finalize(33 * S, false);
    assert!(calls(&out.links).contains(&("shop".into(), "payments".into(), NodeKind::Server, 2000)));
    d.observe(5, Extract::from_spans(&checkout(4)), 40 * S);
    assert!(d.finalize(42 * S, false).links.is_empty(), "waits again once the peer answered");
    assert!(!d.finalize(50 * S, false).links.is_empty());
    // Learned again at 50 s; a minute later a call waits once more.
    d.observe(6, Extract::from_spans(&checkout(5)), 111 * S);
    assert!(d.finalize(113 * S, false).links.is_empty(), "after a minute the peer is asked again");
    assert!(!d.finalize(121 * S, false).links.is_empty());
}

#[test]
fn peers_remembered_are_bounded() {
    let mut d = Deriver::new(DeriveConfig { max_spans: 100_000, ..deriver().config });
    for i in 0..(super::links::MAX_UNINSTRUMENTED as u64 + 500) {
        let http = [("server.address", Value::Str(format!("peer-{i}.example").into()))];
        let in_trace = |mut s: Span| {
            s.trace_id = crate::model::TraceId(u128::from(i).to_be_bytes());
            Arc::new(s)
        };
        let spans = [
            in_trace(testing::span(0, 1).service("shop").kind(kind::SERVER).build()),
            in_trace(testing::span(0, 2).parent(Some(1)).service("shop").kind(kind::CLIENT).attrs(&http).build()),
        ];
        d.observe(i, Extract::from_spans(&spans), 0);
    }
    d.finalize(10 * S, false);
    assert_eq!(d.peers.len(), super::links::MAX_UNINSTRUMENTED);
}

#[test]
fn peers_with_names_longer_than_the_catalog_keeps_are_not_remembered() {
    let mut d = deriver();
    for (i, name) in ["peer.example".to_string(), "p".repeat(crate::catalog::MAX_NAME_BYTES + 1)].iter().enumerate() {
        let http = [("server.address", Value::Str(name.as_str().into()))];
        let t = i as u8 + 1;
        let spans = [
            testing::span(t, 1).service("shop").kind(kind::SERVER).arc(),
            testing::span(t, 2).parent(Some(1)).service("shop").kind(kind::CLIENT).attrs(&http).arc(),
        ];
        d.observe(u64::from(t), Extract::from_spans(&spans), 0);
    }
    // Both calls waited the whole link wait without a callee: only the short name is learned.
    assert_eq!(d.finalize(0, false).links.len(), 0);
    assert_eq!(d.finalize(11 * S, false).records.len(), 2);
    assert_eq!(d.peers.len(), 1);
}

#[test]
fn queues_sit_between_producer_and_consumer() {
    let kafka =
        [("messaging.system", Value::Str("kafka".into())), ("messaging.destination.name", Value::Str("orders".into()))];
    let trace = [
        span(7, 1, None, "checkout", kind::SERVER, &[]),
        span(7, 2, Some(1), "checkout", kind::PRODUCER, &kafka),
        span(7, 3, Some(2), "shipping", kind::CONSUMER, &kafka),
    ];
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&trace), 0);
    let out = d.finalize(2 * S, false);
    assert_eq!(
        calls(&out.links),
        vec![
            ("USER".into(), "checkout".into(), NodeKind::Server, 1000),
            ("checkout".into(), "orders".into(), NodeKind::Queue, 2000),
            ("orders".into(), "shipping".into(), NodeKind::Server, 3000),
        ]
    );
}

#[test]
fn records_name_the_instance_of_their_own_resource() {
    // Extraction finds each resource's instance once, for calls and records alike: two
    // resources in one batch must not share one.
    let on = |host: &str| testing::service_resource("a", &[("host.name", "h"), ("service.instance.id", host)]);
    let (r1, r2) = (on("pod-1"), on("pod-2"));
    let spans: Vec<Arc<Span>> = [(1, &r1), (2, &r2), (3, &r1)]
        .into_iter()
        .map(|(t, r)| testing::span(t, 1).service("a").resource(r.clone()).arc())
        .collect();
    let mut d = deriver();
    d.observe(1, Extract::from_spans(&spans), 0);
    let mut got: Vec<_> = d.finalize(0, true).records.iter().map(|x| (x.trace_id, x.instance.to_string())).collect();
    got.sort();
    let want = [(1, "pod-1"), (2, "pod-2"), (3, "pod-1")].map(|(t, i)| (testing::trace_id(t), i.to_string()));
    assert_eq!(got, want);
}

/// An entry whose trace waits for its entry's TTL: its child names a parent never sent.
fn waiting_entry(trace: u8, attrs: &[(&str, Value)], resource: &Arc<crate::model::Resource>) -> [Arc<Span>; 2] {
    let entry = testing::span(trace, 1).resource(resource.clone()).attrs(attrs).arc();
    let orphan = testing::span(trace, 2).parent(Some(99)).kind(kind::CLIENT).resource(resource.clone()).arc();
    [entry, orphan]
}

#[test]
fn records_are_bounded_by_the_bytes_they_keep_alive() {
    // Spans are few; their records are large and would be held for the orphan TTL. The byte
    // bound releases the largest early, and what stays held is under it.
    let mut d = Deriver::new(DeriveConfig { max_bytes: 4 << 20, ..DeriveConfig::default() });
    let big = [("blob", Value::Str("x".repeat(64 << 10).into()))];
    let resource = testing::service_resource("svc", &[]);
    let mut released = 0;
    for t in 0..200u8 {
        released += d.observe(u64::from(t), Extract::from_spans(&waiting_entry(t, &big, &resource)), 0).records.len();
        assert!(d.bytes_held() <= 4 << 20, "{} held after trace {t}", d.bytes_held());
    }
    assert!(released >= 200 - 64, "records released early: {released}");
    assert!(d.pending() + released == 200, "none lost: {} held, {released} released", d.pending());
    assert!(d.finalize(10 * S, false).records.is_empty(), "the rest still wait for their entries' parents");
    // Released, a trace's bytes are counted out: the bound stays exact over many rounds.
    let rest = d.finalize(0, true).records.len();
    assert_eq!(released + rest, 200);
    assert_eq!(d.bytes_held(), 0);
}

#[test]
fn calls_are_bounded_by_the_names_they_keep_alive() {
    // Database calls whose parent never comes, each naming its own 64 KiB server address: no
    // record waits, but each call keeps its peer's name alive for the orphan TTL. Counted, they
    // are released early like large records, and what stays held is under the bound.
    let mut d = Deriver::new(DeriveConfig { max_bytes: 4 << 20, ..DeriveConfig::default() });
    let resource = testing::service_resource("svc", &[]);
    for t in 0..200u8 {
        let address = format!("{t}").repeat(64 << 10);
        let call = testing::span(t, 2)
            .parent(Some(99))
            .kind(kind::CLIENT)
            .resource(resource.clone())
            .attrs(&[("db.system", Value::Str("mysql".into())), ("server.address", Value::Str(address.into()))])
            .arc();
        d.observe(u64::from(t), Extract::from_spans(&[call]), 0);
        assert!(d.bytes_held() <= 4 << 20, "{} held after trace {t}", d.bytes_held());
    }
    assert!(d.spans_held() <= 64, "calls held: {}", d.spans_held());
    assert!(d.spans_held() * (64 << 10) <= d.bytes_held(), "each held call's name is counted");
    d.finalize(0, true);
    assert_eq!(d.bytes_held(), 0, "counted out with their traces");
}

#[test]
fn records_sharing_a_resource_count_it_once() {
    // The spans of a request share their resource: a large one, shared by 250 records,
    // is counted once, and nothing is evicted for it.
    let resource = testing::service_resource("svc", &[("big", &"r".repeat(1 << 20))]);
    let mut d = Deriver::new(DeriveConfig { max_bytes: 4 << 20, ..DeriveConfig::default() });
    let spans: Vec<Arc<Span>> =
        (0..250u8).flat_map(|t| waiting_entry(t, &[("k", Value::Str("v".into()))], &resource)).collect();
    let early = d.observe(1, Extract::from_spans(&spans), 0).records.len();
    assert_eq!((early, d.pending()), (0, 250));
    let one = d.bytes_held();
    assert!((1 << 20..2 << 20).contains(&one), "{one}");
    d.finalize(0, true);
    assert_eq!(d.bytes_held(), 0, "counted out with its last record");
}

mod queue {
    //! `finalize` visits the traces its queue says are due; a scan of every trace held, as it
    //! was done before the queue, is the reference it must agree with.
    use super::*;
    use proptest::prelude::*;

    /// The reference: every trace held looked at, released once nothing waits in it.
    fn finalize_by_scan(d: &mut Deriver, now_ns: u64) -> Released {
        let mut out = Released::default();
        let due: Vec<TraceId> = d.traces.iter().filter(|(_, b)| b.due_ns <= now_ns).map(|(id, _)| *id).collect();
        for id in due {
            let buf = d.traces.get_mut(&id).expect("held");
            match release_at(&d.config, &d.peers, buf, now_ns) {
                Some(later) => {
                    buf.due_ns = later;
                    d.release_final_records(&id, now_ns, &mut out);
                }
                None => {
                    let buf = d.traces.remove(&id).expect("held");
                    d.forget(&id, &buf);
                    let waited = buf.last_ns.saturating_add(d.config.link_wait.as_nanos() as u64) <= now_ns;
                    release(buf, Learn { peers: &mut d.peers, now_ns, waited }, &mut out);
                }
            }
        }
        out
    }

    type Seen = (Vec<(TraceId, SpanId, u32, u64, u32, u64)>, usize, usize);

    fn seen(out: Released, d: &Deriver) -> Seen {
        let mut v: Vec<_> =
            out.records.iter().map(|x| (x.trace_id, x.span_id, x.sql_count, x.sql_ns, x.api_count, x.api_ns)).collect();
        v.sort_unstable();
        (v, d.spans_held(), d.pending())
    }

    /// Spans of six traces (a parent is an earlier span of the same trace, or one never sent),
    /// arriving in batches at moments from 0 to 200 s, with a finalize at each moment.
    fn arb_steps() -> impl Strategy<Value = Vec<(u64, Vec<Arc<Span>>)>> {
        let span = (0u8..6, 1u64..16, 0u64..18, 0u8..3, 1u8..=5, any::<bool>());
        proptest::collection::vec((0u64..200, proptest::collection::vec(span, 0..8)), 1..40).prop_map(|steps| {
            let mut at = 0;
            steps
                .into_iter()
                .map(|(dt, spans)| {
                    at += dt % 7 * S / 2 + dt / 150 * 60 * S;
                    let spans = spans
                        .into_iter()
                        .map(|(t, id, parent, svc, k, is_db)| {
                            let parent = (parent != 0 && parent != id).then_some(parent);
                            let attrs: &[(&str, Value)] =
                                if is_db { &[("db.system", Value::Str("pg".into()))] } else { &[] };
                            super::span(t + 1, id, parent, ["a", "b", "c"][svc as usize], k, attrs)
                        })
                        .collect();
                    (at, spans)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Through retries, orphans waiting for their TTL, calls waiting for their callee, traces
        /// cut at their bound and traces evicted, the queue releases what the scan releases, at
        /// the same moments, and both end with nothing held.
        #[test]
        fn the_queue_releases_what_a_scan_of_every_trace_releases(steps in arb_steps()) {
            let config = DeriveConfig {
                grace: Duration::from_secs(2),
                link_wait: Duration::from_secs(10),
                orphan_ttl: Duration::from_secs(60),
                max_spans: 40,
                max_trace_spans: 14,
                max_bytes: 64 << 20,
            };
            let (mut queued, mut scanned) = (Deriver::new(config.clone()), Deriver::new(config));
            for (seq, (at, spans)) in steps.iter().enumerate() {
                let early = queued.observe(seq as u64, Extract::from_spans(spans), *at);
                let early_ref = scanned.observe(seq as u64, Extract::from_spans(spans), *at);
                prop_assert_eq!(seen(early, &queued), seen(early_ref, &scanned));
                prop_assert_eq!(queued.due.len(), queued.traces.len(), "one entry per trace held");
                // Exactly when the scan would find a trace due: no seal started for nothing.
                let due = scanned.traces.values().any(|b| b.due_ns <= *at);
                prop_assert_eq!(queued.has_due(*at), due);
                let out = queued.finalize(*at, false);
                prop_assert!(due || out.records.is_empty() && out.links.is_empty(), "released with none due");
                let want = finalize_by_scan(&mut scanned, *at);
                prop_assert_eq!(calls(&out.links), calls(&want.links));
                prop_assert_eq!(seen(out, &queued), seen(want, &scanned));
                prop_assert_eq!(queued.due.len(), queued.traces.len(), "one entry per trace held");
            }
            // Long after the last span everything has been let go of, the queue emptied with it.
            let end = steps.last().map_or(0, |(at, _)| *at) + 200 * S;
            let out = queued.finalize(end, false);
            prop_assert_eq!(seen(out, &queued), seen(finalize_by_scan(&mut scanned, end), &scanned));
            prop_assert_eq!((queued.spans_held(), queued.pending()), (0, 0));
            prop_assert!(queued.traces.is_empty() && queued.due.is_empty());
        }
    }
}
