//! What the storage crate's tests share: a span builder, small id helpers, and the proptest
//! generators of spans, values and XLog records.

use std::sync::Arc;

use proptest::prelude::*;

use crate::model::{kind, status, Event, Key, KeyValue, Link, Resource, Span, SpanId, TraceId, Value};
use crate::xlog::XLog;

pub const S: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;
/// 2026-09-21 10:00:00 UTC: on an hour, so that ranges from it line up with minute and hour rows.
pub const HOUR_T0: u64 = 1_790_000_000 / 3600 * 3600 * S;

/// A store in `dir` on the test's clock: no fsync, no disk reserve.
pub fn clocked_config(dir: &std::path::Path, clock: &Arc<crate::ManualClock>) -> crate::StoreConfig {
    let mut c = crate::StoreConfig::new(dir.join("store"));
    c.sync = false;
    c.min_free_disk_bytes = 0;
    c.clock = clock.clone();
    c
}

pub fn trace_id(t: u8) -> TraceId {
    TraceId([t; 16])
}

/// Span ids numbered like the tests think of them: 1, 2, 3...
pub fn span_id(n: u64) -> SpanId {
    SpanId(n.to_be_bytes())
}

/// A span of trace `[t; 16]` with id `n`: a root SERVER span of service "svc" at 1,000 s lasting
/// 1 ms, unless told otherwise.
pub fn span(t: u8, n: u64) -> SpanBuilder {
    SpanBuilder(Span {
        trace_id: trace_id(t),
        span_id: span_id(n),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 1,
        service: "svc".into(),
        name: format!("op{n}").into(),
        kind: kind::SERVER,
        start_ns: 1_000_000_000_000,
        duration_ns: 1_000_000,
        status_code: status::UNSET,
        status_message: String::new(),
        scope_name: "".into(),
        scope_version: "".into(),
        attributes: vec![],
        events: vec![],
        links: vec![],
        dropped_attributes: 0,
        dropped_events: 0,
        dropped_links: 0,
        resource: service_resource("svc", &[]),
    })
}

/// A resource naming the service, with more attributes.
pub fn service_resource(service: &str, more: &[(&str, &str)]) -> Arc<Resource> {
    let mut attributes = vec![(Key::from("service.name"), Value::Str(service.into()))];
    attributes.extend(more.iter().map(|(k, v)| (Key::from(*k), Value::Str((*v).into()))));
    Arc::new(Resource { attributes })
}

pub struct SpanBuilder(Span);

impl SpanBuilder {
    pub fn parent(mut self, parent: Option<u64>) -> Self {
        self.0.parent_span_id = parent.map(span_id);
        self
    }

    /// The service, and a resource naming it.
    pub fn service(mut self, service: &str) -> Self {
        self.0.service = service.into();
        self.0.resource = service_resource(service, &[]);
        self
    }

    pub fn resource(mut self, resource: Arc<Resource>) -> Self {
        self.0.resource = resource;
        self
    }

    pub fn kind(mut self, kind: u8) -> Self {
        self.0.kind = kind;
        self
    }

    pub fn name(mut self, name: impl Into<Key>) -> Self {
        self.0.name = name.into();
        self
    }

    pub fn start(mut self, start_ns: u64) -> Self {
        self.0.start_ns = start_ns;
        self
    }

    pub fn duration(mut self, duration_ns: u64) -> Self {
        self.0.duration_ns = duration_ns;
        self
    }

    pub fn attrs(mut self, attrs: &[(&str, Value)]) -> Self {
        self.0.attributes = attrs.iter().map(|(k, v)| (Key::from(*k), v.clone())).collect();
        self
    }

    pub fn scope(mut self, name: &str, version: &str) -> Self {
        (self.0.scope_name, self.0.scope_version) = (name.into(), version.into());
        self
    }

    pub fn status(mut self, code: u8) -> Self {
        self.0.status_code = code;
        self
    }

    /// An event at `time_ns` with text attributes.
    pub fn event(mut self, name: &str, time_ns: u64, attrs: &[(&str, &str)]) -> Self {
        let attributes = attrs.iter().map(|(k, v)| (Key::from(*k), Value::Str((*v).into()))).collect();
        self.0.events.push(Event { time_ns, name: name.into(), attributes, dropped_attributes: 0 });
        self
    }

    pub fn build(self) -> Span {
        self.0
    }

    pub fn arc(self) -> Arc<Span> {
        Arc::new(self.0)
    }
}

pub fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Empty),
        ".{0,12}".prop_map(|s| Value::Str(s.into())),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // NaN never equals itself; the codec keeps its bits, but PartialEq cannot show it.
        any::<f64>().prop_filter("not NaN", |d| !d.is_nan()).prop_map(Value::Double),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| Value::Bytes(b.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|a| Value::Array(a.into())),
            proptest::collection::vec(("[a-z.]{1,8}".prop_map(Key::from), inner), 0..4)
                .prop_map(|kvs| Value::KvList(kvs.into())),
        ]
    })
}

pub fn arb_kvs() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(("[a-z.]{1,10}".prop_map(Key::from), arb_value()), 0..6)
}

prop_compose! {
    pub fn arb_span(resources: Vec<Arc<Resource>>)(
        trace_id: [u8; 16], span_id: [u8; 8], parent: Option<[u8; 8]>,
        service in "[a-z]{1,6}", name in ".{0,10}", kind in 0u8..6,
        start_ns in 1u64..u64::MAX / 2, duration_ns in 0u64..10_000_000_000,
        status_code in 0u8..3, status_message in ".{0,6}",
        attributes in arb_kvs(),
        events in proptest::collection::vec((0u64..10_000_000, ".{0,6}", arb_kvs(), any::<u32>()), 0..3),
        links in proptest::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>(), arb_kvs()), 0..2),
        flags: u32, dropped: (u32, u32, u32), res_idx in 0usize..4,
    ) -> Span {
        Span {
            trace_id: TraceId(trace_id), span_id: SpanId(span_id), parent_span_id: parent.map(SpanId),
            trace_state: String::new(), flags,
            service: service.into(), name: name.into(), kind, start_ns, duration_ns, status_code, status_message,
            scope_name: "scope".into(), scope_version: "1.0".into(), attributes,
            events: events.into_iter().map(|(dt, name, attributes, dropped_attributes)| Event {
                time_ns: start_ns + dt, name, attributes, dropped_attributes,
            }).collect(),
            links: links.into_iter().map(|(trace_id, span_id, attributes)| Link {
                trace_id: TraceId(trace_id), span_id: SpanId(span_id), trace_state: "a=b".into(), attributes,
                dropped_attributes: 1, flags: 1,
            }).collect(),
            dropped_attributes: dropped.0, dropped_events: dropped.1, dropped_links: dropped.2,
            resource: resources[res_idx % resources.len()].clone(),
        }
    }
}

/// A batch of spans sharing a few resources, as one export request's.
pub fn arb_batch() -> impl Strategy<Value = Vec<Span>> {
    proptest::collection::vec(arb_kvs(), 1..4).prop_flat_map(|res| {
        let res: Vec<Arc<Resource>> = res.into_iter().map(|attributes| Arc::new(Resource { attributes })).collect();
        proptest::collection::vec(arb_span(res), 0..20)
    })
}

prop_compose! {
    pub fn arb_xlog()(
        ids in any::<([u8; 16], [u8; 8])>(),
        strs in proptest::collection::vec("[a-z/ ]{0,12}", 8),
        nums in proptest::collection::vec(any::<u64>(), 6),
        counts in any::<(u32, u32, bool, u32)>(),
        attributes in arb_kvs(),
        resource in arb_kvs(),
    ) -> XLog {
        XLog {
            trace_id: TraceId(ids.0),
            span_id: SpanId(ids.1),
            service: strs[0].as_str().into(),
            instance: strs[1].as_str().into(),
            endpoint: strs[2].as_str().into(),
            error_message: strs[3].as_str().into(),
            client_ip: strs[4].as_str().into(),
            user_id: strs[5].as_str().into(),
            user_agent: strs[6].as_str().into(),
            referer: strs[7].as_str().into(),
            // End times stay within u64: start + elapsed does not overflow.
            start_ns: nums[0] >> 2,
            elapsed_ns: nums[1] >> 2,
            cpu_ns: nums[2],
            alloc_bytes: nums[3],
            sql_ns: nums[4],
            api_ns: nums[5],
            sql_count: counts.0,
            api_count: counts.1,
            error: counts.2,
            http_status: counts.3,
            attributes: attributes.into(),
            resource: Arc::new(Resource { attributes: resource }),
        }
    }
}
