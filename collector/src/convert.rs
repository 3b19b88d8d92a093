//! The rules of conversion to store spans and records, which every decoder applies: the limits,
//! the span checks, key admission and interning (`Cx`), unique keys (`unique_kvs`), and the
//! partial-success result (`Converted`). Invalid spans are rejected one by one (OTLP partial
//! success); oversized content is truncated to the limits and counted as dropped, as the OTel SDKs
//! do with their span limits. `convert` takes a request prost decoded (OTLP/JSON's path, and the
//! reference the wire decoder is tested against) through the same conversion as `wire`.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use rewind_agent_proto::ExportTraceServiceRequest;
use rewind_storage::catalog::MAX_NAME_BYTES;
use rewind_storage::{AttributeKeys, IdError, Key, KeyValue, Span, SpanId, TraceId};

/// String values up to this length are interned per request: the shop's repeat (methods, hosts,
/// routes, statements without literals) are all shorter; ids and texts past it seldom repeat.
const MAX_INTERNED_VALUE_BYTES: usize = 128;
/// Distinct names a request interns values into (about 2 MiB of table and copies at the most);
/// a 50-trace shop request has a few thousand.
const MAX_INTERNED_NAMES: usize = 65_536;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_attributes: usize,
    pub max_value_bytes: usize,
    pub max_events: usize,
    pub max_links: usize,
    /// Arrays and key-value lists nested deeper become empty values.
    pub max_value_depth: usize,
    pub max_array_len: usize,
    /// Spans starting further than this in the future are rejected.
    pub max_future_skew_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_value_bytes: 16 * 1024,
            max_events: 128,
            max_links: 128,
            max_value_depth: 8,
            max_array_len: 1024,
            max_future_skew_ns: 3_600_000_000_000,
        }
    }
}

/// Longer than any span or transaction worth keeping, short enough that end times never overflow
/// and never land in a partition centuries away: spans and native records alike.
pub const MAX_DURATION_NS: u64 = 7 * 24 * 3_600_000_000_000;

/// Distinct rejection reasons named in the partial-success message.
const MAX_REASONS: usize = 8;

/// Validated items (spans, or native XLog records) and what was rejected or cut on the way.
#[derive(Debug)]
pub struct Converted<T = Span> {
    pub items: Vec<T>,
    pub rejected: u64,
    /// Distinct rejection reasons, in order of first appearance (at most `MAX_REASONS`).
    pub reasons: Vec<String>,
    more_reasons: bool,
    /// Values or collections cut to the limits.
    pub truncated: u64,
    /// What an item is called in the message ("span", "record").
    noun: &'static str,
}

impl<T> Converted<T> {
    pub(crate) fn new(noun: &'static str) -> Self {
        Self { items: Vec::new(), rejected: 0, reasons: Vec::new(), more_reasons: false, truncated: 0, noun }
    }

    pub fn message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let more = if self.more_reasons { "; and other reasons" } else { "" };
        format!("rejected {} {}(s): {}{more}", self.rejected, self.noun, self.reasons.join("; "))
    }

    pub(crate) fn reject(&mut self, reason: String) {
        self.rejected += 1;
        if !self.reasons.contains(&reason) {
            if self.reasons.len() < MAX_REASONS {
                self.reasons.push(reason);
            } else {
                self.more_reasons = true;
            }
        }
    }
}

pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// `min_start_ns`: spans starting earlier fall outside retention and are rejected. Span and
/// resource attribute keys must be admitted by `keys` (the store's registry); others are dropped.
pub fn convert(
    req: ExportTraceServiceRequest,
    limits: &Limits,
    keys: &AttributeKeys,
    now_ns: u64,
    min_start_ns: u64,
) -> Converted {
    crate::wire::convert_decoded(&req, limits, keys, now_ns, min_start_ns)
}

pub(crate) struct Cx<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) truncated: u64,
    keys: &'a AttributeKeys,
    /// Each distinct key of this request once: its shared copy, and (once asked) whether the
    /// registry admits it as a column. Spans share the copy: no allocation per key per span.
    names: FxHashMap<Key, Option<bool>>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(limits: &'a Limits, keys: &'a AttributeKeys) -> Self {
        Self { limits, truncated: 0, keys, names: FxHashMap::default() }
    }

    /// An attribute key that becomes a column (span and resource attributes): interned, if the
    /// registry admits it. Every key this hands out, as `key` does, is the request's one copy of
    /// its text, which `unique_kvs` relies on.
    pub(crate) fn column_key(&mut self, key: &str) -> Option<Key> {
        // Past the value limit a key is past the registry's key limit too.
        if key.len() > self.limits.max_value_bytes {
            return self.keys.admit(key).then(|| self.key(key));
        }
        match self.names.get_key_value(key) {
            Some((shared, Some(true))) => return Some(shared.clone()),
            Some((_, Some(false))) => return None,
            _ => {}
        }
        let admitted = self.keys.admit(key);
        let shared = self.intern(key);
        self.names.insert(shared.clone(), Some(admitted));
        admitted.then_some(shared)
    }

    /// Any other key (of events, links, key-value lists): cut to the value limit, interned.
    pub(crate) fn key(&mut self, key: &str) -> Key {
        let key = self.cut(key, self.limits.max_value_bytes);
        self.intern(key)
    }

    /// This request's one copy of `key`.
    fn intern(&mut self, key: &str) -> Key {
        match self.names.get_key_value(key) {
            Some((shared, _)) => shared.clone(),
            None => self.add_name(key),
        }
    }

    /// A name this request has not seen, added to its table.
    fn add_name(&mut self, key: &str) -> Key {
        let shared = Key::from(key);
        self.names.insert(shared.clone(), None);
        shared
    }

    /// A service name cut to what the catalog and the XLog keep, on a character boundary.
    pub(crate) fn name(&mut self, s: &str) -> Key {
        self.cut(s, MAX_NAME_BYTES).into()
    }

    /// `s` cut to at most `max` bytes on a character boundary; counted when cut.
    fn cut<'s>(&mut self, s: &'s str, max: usize) -> &'s str {
        if s.len() <= max {
            return s;
        }
        self.truncated += 1;
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        &s[..at]
    }
}

/// Attribute keys made unique (the last value wins, as in the SDKs), then cut to `max`; returns
/// how many were dropped. Spans' and native records' attributes alike.
///
/// The keys must come from one `Cx` (`column_key`, `key`), which hands out one copy per text: two
/// keys are then equal exactly when they are one allocation, and the scan compares addresses, not
/// text. A text comparison per pair of a span's keys was a twentieth of decoding.
pub(crate) fn unique_kvs(max: usize, kvs: impl Iterator<Item = KeyValue>) -> (Vec<KeyValue>, u32) {
    // The upper bound: callers filter (refused keys), which leaves the lower one at zero.
    let (least, most) = kvs.size_hint();
    let mut out: Vec<KeyValue> = Vec::with_capacity(most.unwrap_or(least).min(max));
    // Spans carry a dozen attributes: a linear scan beats hashing until lists get long.
    let mut index: Option<FxHashMap<Key, usize>> = None;
    let mut dropped = 0u32;
    for (key, value) in kvs {
        if index.is_none() && out.len() >= 32 {
            index = Some(out.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
        }
        let existing = match &index {
            Some(map) => map.get(&key).copied(),
            None => out.iter().position(|(k, _)| {
                let same = Arc::ptr_eq(k, &key);
                debug_assert!(same || *k != key, "key {key:?} is not its request's one copy");
                same
            }),
        };
        match existing {
            Some(i) => out[i].1 = value,
            None if out.len() < max => {
                if let Some(map) = &mut index {
                    map.insert(key.clone(), out.len());
                }
                out.push((key, value));
            }
            None => dropped = dropped.saturating_add(1),
        }
    }
    (out, dropped)
}

/// A wire id, or the reason it is refused, naming the field: "parent_span_id must be 8 bytes".
pub(crate) fn wire_id<T>(
    parse: impl FnOnce(&[u8]) -> Result<T, IdError>,
    bytes: &[u8],
    what: &str,
) -> Result<T, String> {
    parse(bytes).map_err(|e| format!("{what} {e}"))
}

impl Cx<'_> {
    /// A span's ids and times, or why it is rejected: every decoder's rules, in one order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_span(
        &self,
        trace_id: &[u8],
        span_id: &[u8],
        parent: &[u8],
        start: u64,
        end: u64,
        now_ns: u64,
        min_start_ns: u64,
    ) -> Result<(TraceId, SpanId, Option<SpanId>), String> {
        let trace_id = wire_id(TraceId::from_wire, trace_id, "trace_id")?;
        let span_id = wire_id(SpanId::from_wire, span_id, "span_id")?;
        let parent_span_id = match parent.len() {
            0 => None,
            // Some SDKs send eight zero bytes for "no parent".
            8 if parent == [0; 8] => None,
            _ => Some(wire_id(SpanId::from_wire, parent, "parent_span_id")?),
        };
        if parent_span_id == Some(span_id) {
            return Err("span is its own parent".into());
        }
        if start == 0 {
            return Err("start_time_unix_nano is missing".into());
        }
        if end < start {
            return Err("end_time_unix_nano is before start_time_unix_nano".into());
        }
        self.check_start(start, now_ns, min_start_ns)?;
        if end - start > MAX_DURATION_NS {
            return Err("span is longer than 7 days".into());
        }
        Ok((trace_id, span_id, parent_span_id))
    }

    pub(crate) fn check_start(&self, start: u64, now_ns: u64, min_start_ns: u64) -> Result<(), String> {
        if start > now_ns.saturating_add(self.limits.max_future_skew_ns) {
            return Err("start_time_unix_nano is too far in the future".into());
        }
        if start < min_start_ns {
            return Err("start_time_unix_nano is older than the retention period".into());
        }
        Ok(())
    }

    /// A borrowed string, cut at the byte limit on a character boundary, owned.
    pub(crate) fn str(&mut self, s: &str) -> String {
        self.cut(s, self.limits.max_value_bytes).to_owned()
    }

    /// A string value, cut at the byte limit: short ones interned (this request's spans repeat
    /// their methods, hosts and statements); long ones are rarely repeated and would cost a hash
    /// of their whole length for nothing.
    pub(crate) fn text(&mut self, s: &str) -> Arc<str> {
        let s = self.cut(s, self.limits.max_value_bytes);
        if s.len() > MAX_INTERNED_VALUE_BYTES {
            return Arc::from(s);
        }
        if let Some((shared, _)) = self.names.get_key_value(s) {
            return shared.clone();
        }
        // A request of distinct values would grow the table beside the spans it decodes, memory
        // the census does not price: past the cap, new values are plain copies.
        if self.names.len() >= MAX_INTERNED_NAMES {
            return Arc::from(s);
        }
        self.add_name(s)
    }

    /// Borrowed bytes, cut at the byte limit, owned.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Arc<[u8]> {
        if b.len() > self.limits.max_value_bytes {
            self.truncated += 1;
        }
        b[..b.len().min(self.limits.max_value_bytes)].into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_agent_proto::otlp::common::v1::{
        any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue as OtlpKeyValue,
    };
    use rewind_agent_proto::otlp::resource::v1::Resource as OtlpResource;
    use rewind_agent_proto::otlp::trace::v1 as otlp;
    use rewind_storage::Value;

    const NOW: u64 = 1_750_000_000_000_000_000;

    fn kv(k: &str, v: any_value::Value) -> OtlpKeyValue {
        OtlpKeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
    }

    fn good_span() -> otlp::Span {
        otlp::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: NOW - 1_000,
            end_time_unix_nano: NOW,
            ..Default::default()
        }
    }

    fn request(spans: Vec<otlp::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![otlp::ResourceSpans {
                resource: Some(OtlpResource {
                    attributes: vec![kv("service.name", any_value::Value::StringValue("shop".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    scope: Some(InstrumentationScope { name: "lib".into(), version: "2".into(), ..Default::default() }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn run(spans: Vec<otlp::Span>) -> Converted {
        convert(request(spans), &Limits::default(), &AttributeKeys::default(), NOW, NOW - 86_400_000_000_000)
    }

    #[test]
    fn keys_past_the_registry_cap_or_too_long_are_dropped_and_counted() {
        let keys = AttributeKeys::new(2);
        let mut s = good_span();
        s.attributes = ["a", "b", "c", &"k".repeat(300)]
            .iter()
            .map(|k| kv(k, any_value::Value::StringValue("v".into())))
            .collect();
        s.dropped_attributes_count = 1;
        let mut e = otlp::span::Event { name: "e".into(), time_unix_nano: NOW, ..Default::default() };
        e.attributes = vec![kv("event.only", any_value::Value::IntValue(1))];
        s.events = vec![e];
        let c = convert(request(vec![s]), &Limits::default(), &keys, NOW, 0);
        let span = &c.items[0];
        let kept: Vec<&str> = span.attributes.iter().map(|(k, _)| &**k).collect();
        // The resource's service.name took one of the two places.
        assert_eq!(kept, ["a"]);
        assert_eq!(span.dropped_attributes, 1 + 3);
        assert_eq!(span.events[0].attributes.len(), 1, "events' keys are not columns");
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn a_valid_span_converts_field_for_field() {
        let mut s = good_span();
        s.parent_span_id = vec![3; 8];
        s.status = Some(otlp::Status { code: 2, message: "boom".into() });
        s.attributes = vec![kv("http.route", any_value::Value::StringValue("/".into()))];
        let c = run(vec![s]);
        assert_eq!(c.rejected, 0);
        let s = &c.items[0];
        assert_eq!((&*s.service, &*s.scope_name, &*s.scope_version), ("shop", "lib", "2"));
        assert_eq!((s.trace_id, s.span_id, s.parent_span_id), (TraceId([1; 16]), SpanId([2; 8]), Some(SpanId([3; 8]))));
        assert_eq!((s.start_ns, s.duration_ns, s.kind, s.status_code), (NOW - 1000, 1000, 2, 2));
        assert_eq!(s.attribute("http.route"), Some(&Value::Str("/".into())));
    }

    #[test]
    fn invalid_spans_are_rejected_one_by_one_with_reasons() {
        type Breaker = fn(&mut otlp::Span);
        let cases: Vec<(Breaker, &str)> = vec![
            (|s| s.trace_id = vec![0; 16], "trace_id is all zeros"),
            (|s| s.trace_id = vec![1; 15], "trace_id must be 16 bytes"),
            (|s| s.span_id = vec![], "span_id must be 8 bytes"),
            (|s| s.span_id = vec![0; 8], "span_id is all zeros"),
            (|s| s.parent_span_id = vec![1; 3], "parent_span_id must be 8 bytes"),
            (|s| s.parent_span_id = vec![2; 8], "its own parent"),
            (|s| s.start_time_unix_nano = 0, "missing"),
            (|s| s.end_time_unix_nano = s.start_time_unix_nano - 1, "before start"),
            (|s| s.end_time_unix_nano = u64::MAX, "longer than 7 days"),
            (|s| s.end_time_unix_nano = s.start_time_unix_nano + MAX_DURATION_NS + 1, "longer than 7 days"),
            (
                |s| {
                    s.start_time_unix_nano = NOW + 10 * 365 * 86_400_000_000_000;
                    s.end_time_unix_nano = s.start_time_unix_nano + 1;
                },
                "future",
            ),
            (|s| s.start_time_unix_nano = 1_000, "retention"),
        ];
        for (break_it, reason) in cases {
            let mut bad = good_span();
            break_it(&mut bad);
            let c = run(vec![good_span(), bad]);
            assert_eq!((c.items.len(), c.rejected), (1, 1), "{reason}");
            assert!(c.message().contains(reason), "{} does not say {reason}", c.message());
        }
    }

    #[test]
    fn zero_parent_means_root_and_unknown_enums_clamp() {
        let mut s = good_span();
        s.parent_span_id = vec![0; 8];
        s.kind = 99;
        s.status = Some(otlp::Status { code: -4, message: String::new() });
        let c = run(vec![s]);
        assert_eq!((c.items[0].parent_span_id, c.items[0].kind, c.items[0].status_code), (None, 0, 0));
    }

    #[test]
    fn floods_are_truncated_to_the_limits_and_counted() {
        let mut s = good_span();
        s.attributes = (0..10_000).map(|i| kv(&format!("k{i}"), any_value::Value::IntValue(i))).collect();
        s.attributes.push(kv("big", any_value::Value::StringValue("é".repeat(600_000))));
        let mut deep = AnyValue { value: Some(any_value::Value::IntValue(1)) };
        for _ in 0..100 {
            deep = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![deep] })) };
        }
        s.attributes.insert(0, OtlpKeyValue { key: "deep".into(), value: Some(deep) });
        s.events = (0..500).map(|i| otlp::span::Event { name: format!("e{i}"), ..Default::default() }).collect();
        let c = run(vec![s]);
        let s = &c.items[0];
        assert_eq!(s.attributes.len(), 128);
        assert_eq!(s.dropped_attributes, 10_001 - 127);
        assert_eq!(s.events.len(), 128);
        assert_eq!(s.dropped_events, 372);
        let mut depth = 0;
        let mut v = s.attribute("deep").unwrap();
        while let Value::Array(items) = v {
            depth += 1;
            v = &items[0];
        }
        assert_eq!(depth, 8);
        assert!(c.truncated > 0);
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let mut s = good_span();
        s.attributes = vec![kv("a", any_value::Value::IntValue(1)), kv("a", any_value::Value::IntValue(2))];
        let c = run(vec![s]);
        assert_eq!(c.items[0].attributes, vec![("a".into(), Value::Int(2))]);
    }

    #[test]
    fn keys_cut_to_the_same_text_are_one_key() {
        let mut s = good_span();
        let long = |last: &str| format!("{}{last}", "k".repeat(20_000));
        let attributes = vec![
            kv(&long("1"), any_value::Value::IntValue(1)),
            kv("short", any_value::Value::IntValue(2)),
            kv(&long("2"), any_value::Value::IntValue(3)),
        ];
        s.events = vec![otlp::span::Event { name: "e".into(), attributes, ..Default::default() }];
        let c = run(vec![s]);
        let kept = &c.items[0].events[0].attributes;
        assert_eq!(kept.len(), 2, "{:?}", kept.iter().map(|(k, v)| (k.len(), v)).collect::<Vec<_>>());
        assert_eq!((kept[0].0.len(), &kept[0].1), (16 * 1024, &Value::Int(3)));
    }

    #[test]
    fn a_requests_repeated_names_and_short_values_are_one_copy_long_values_are_not_interned() {
        let long = "x".repeat(MAX_INTERNED_VALUE_BYTES + 1);
        let span = |id: u8| {
            let mut s = good_span();
            s.span_id = vec![id; 8];
            s.attributes = vec![
                kv("http.request.method", any_value::Value::StringValue("GET".into())),
                kv("db.query.text", any_value::Value::StringValue(long.clone())),
            ];
            s
        };
        let c = run(vec![span(2), span(3)]);
        let (a, b) = (&c.items[0], &c.items[1]);
        assert!(Arc::ptr_eq(&a.name, &b.name), "span names shared");
        let text = |s: &Span, k: &str| match s.attribute(k) {
            Some(Value::Str(v)) => v.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert!(Arc::ptr_eq(&text(a, "http.request.method"), &text(b, "http.request.method")));
        let (la, lb) = (text(a, "db.query.text"), text(b, "db.query.text"));
        assert_eq!((&*la, &*lb), (long.as_str(), long.as_str()));
        assert!(!Arc::ptr_eq(&la, &lb), "past the interning length each value is its own copy");
    }

    #[test]
    fn a_flood_of_distinct_values_stops_growing_the_interning_table_and_keeps_every_value() {
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let mut cx = Cx::new(&limits, &keys);
        let n = MAX_INTERNED_NAMES + 100;
        let values: Vec<Arc<str>> = (0..n).map(|i| cx.text(&format!("v{i}"))).collect();
        assert_eq!(cx.names.len(), MAX_INTERNED_NAMES);
        assert!(values.iter().enumerate().all(|(i, v)| **v == *format!("v{i}")));
        assert!(Arc::ptr_eq(&cx.text("v7"), &values[7]), "what was interned stays shared");
    }

    #[test]
    fn long_strings_are_cut_on_a_character_boundary() {
        let mut s = good_span();
        s.name = "é".repeat(20_000);
        let c = run(vec![s]);
        assert!(c.items[0].name.len() <= 16 * 1024);
        assert!(c.items[0].name.chars().all(|ch| ch == 'é'));
    }
}
