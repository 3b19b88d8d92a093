//! The wire decoder against prost + `convert` on the same bytes: generated requests, then
//! rewritten at the field level (unknown fields of every wire type including groups, fields sent
//! twice, dropped or reordered, at every depth) and corrupted at the byte level. Both must refuse
//! the same inputs, and give the same spans, rejections, truncation counts and admitted keys for
//! the rest.

use proptest::prelude::*;
use prost::Message;
use rewind_agent_proto::otlp::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue as PKv, KeyValueList,
};
use rewind_agent_proto::otlp::resource::v1::Resource as PResource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span as PSpan, Status};
use rewind_agent_proto::ExportTraceServiceRequest;
use rewind_storage::AttributeKeys;

use rewind_storage::codec::varint;

use crate::census::Msg;
use crate::convert::{convert, Limits};
use crate::meter::Meter;

const NOW: u64 = 1_800_000_000_000_000_000;
const MIN_START: u64 = NOW - 86_400_000_000_000;

/// Small limits, so that every cut is met.
fn limits() -> Limits {
    Limits {
        max_attributes: 4,
        max_value_bytes: 8,
        max_events: 2,
        max_links: 2,
        max_value_depth: 2,
        max_array_len: 3,
        max_future_skew_ns: 3_600_000_000_000,
    }
}

/// Both decoders on `bytes`: the same refusal, or the same result and the same keys admitted.
/// Where the census prices it too, the wire decoder's meter counts what the census counts.
fn same_outcome(bytes: &[u8]) -> Result<(), TestCaseError> {
    let limits = limits();
    let (keys_a, keys_b) = (AttributeKeys::new(6), AttributeKeys::new(6));
    let reference = ExportTraceServiceRequest::decode(bytes).map(|req| convert(req, &limits, &keys_a, NOW, MIN_START));
    let mut meter = Meter::unbounded(bytes.len());
    let wire = super::convert_metered(bytes, &limits, &keys_b, NOW, MIN_START, &mut meter);
    if let (Ok(_), Ok(census)) = (&wire, crate::census::otlp_protobuf(bytes)) {
        prop_assert_eq!(meter.items(), &census);
        prop_assert_eq!(meter.due(), census.decoded_bytes(bytes.len()));
    }
    match (reference, wire) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            prop_assert_eq!(keys_a.len(), keys_b.len());
        }
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "prost {:?}, wire {:?}", a.map(|c| c.items.len()), b.map(|c| c.items.len())),
    }
    Ok(())
}

fn arb_value() -> impl Strategy<Value = Option<any_value::Value>> {
    let leaf = prop_oneof![
        Just(None),
        "[a-zé]{0,12}".prop_map(|s| Some(any_value::Value::StringValue(s))),
        any::<bool>().prop_map(|b| Some(any_value::Value::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(any_value::Value::IntValue(i))),
        any::<f64>().prop_map(|d| Some(any_value::Value::DoubleValue(d))),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| Some(any_value::Value::BytesValue(b))),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(|vs| Some(any_value::Value::ArrayValue(
                ArrayValue { values: vs.into_iter().map(|value| AnyValue { value }).collect() }
            ))),
            proptest::collection::vec(("[a-c]{1,2}", inner), 0..5).prop_map(|kvs| Some(any_value::Value::KvlistValue(
                KeyValueList {
                    values: kvs.into_iter().map(|(key, value)| PKv { key, value: Some(AnyValue { value }) }).collect()
                }
            ))),
        ]
    })
}

fn arb_kvs() -> impl Strategy<Value = Vec<PKv>> {
    let key = prop_oneof![Just("service.name".to_string()), "[a-h]{1,2}", "k{250,260}"];
    proptest::collection::vec(
        (key, proptest::option::of(arb_value()))
            .prop_map(|(key, v)| PKv { key, value: v.map(|value| AnyValue { value }) }),
        0..7,
    )
}

fn arb_id(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => proptest::collection::vec(any::<u8>(), n),
        1 => Just(vec![0; n]),
        1 => Just(vec![]),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn arb_time() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 12 => MIN_START - 1_000..NOW + 7_200_000_000_000, 1 => any::<u64>()]
}

fn arb_span() -> impl Strategy<Value = PSpan> {
    (
        (arb_id(16), arb_id(8), prop_oneof![Just(vec![]), arb_id(8)], "[a-z=,]{0,10}", any::<u32>(), "[ -~]{0,12}"),
        (-1i32..8, arb_time(), prop_oneof![8 => 0u64..10_000_000_000, 1 => any::<u64>()], arb_kvs(), any::<u32>()),
        proptest::collection::vec((arb_time(), "[a-z]{0,10}", arb_kvs(), any::<u32>()), 0..4),
        proptest::collection::vec((arb_id(16), arb_id(8), "[a-z]{0,3}", arb_kvs(), any::<u32>(), any::<u32>()), 0..4),
        proptest::option::of((-1i32..4, "[ -~]{0,12}")),
        (any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |(
                (trace_id, span_id, parent, trace_state, flags, name),
                (kind, start, len, attrs, da),
                events,
                links,
                status,
                (de, dl),
            )| PSpan {
                trace_id,
                span_id,
                trace_state,
                parent_span_id: parent,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: start.wrapping_add(len),
                attributes: attrs,
                dropped_attributes_count: da,
                events: events
                    .into_iter()
                    .map(|(t, name, attributes, d)| span::Event {
                        time_unix_nano: t,
                        name,
                        attributes,
                        dropped_attributes_count: d,
                    })
                    .collect(),
                dropped_events_count: de,
                links: links
                    .into_iter()
                    .map(|(trace_id, span_id, trace_state, attributes, d, flags)| span::Link {
                        trace_id,
                        span_id,
                        trace_state,
                        attributes,
                        dropped_attributes_count: d,
                        flags,
                    })
                    .collect(),
                dropped_links_count: dl,
                status: status.map(|(code, message)| Status { code, message }),
            },
        )
}

fn arb_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope = proptest::option::of(("[a-z]{0,10}", "[0-9.]{0,10}", arb_kvs())).prop_map(|s| {
        s.map(|(name, version, attributes)| InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count: 0,
        })
    });
    let scope_spans = (scope, proptest::collection::vec(arb_span(), 0..5)).prop_map(|(scope, spans)| ScopeSpans {
        scope,
        spans,
        schema_url: String::new(),
    });
    let resource = proptest::option::of(arb_kvs())
        .prop_map(|a| a.map(|attributes| PResource { attributes, dropped_attributes_count: 0, entity_refs: vec![] }));
    let rs = (resource, proptest::collection::vec(scope_spans, 0..3), "[a-z:/]{0,8}")
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans { resource, scope_spans, schema_url });
    proptest::collection::vec(rs, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

#[derive(Clone, Debug)]
enum Node {
    Varint(u64),
    F64([u8; 8]),
    F32([u8; 4]),
    Bytes(Vec<u8>),
    Msg(Vec<(u32, Node)>),
    Group(Vec<(u32, Node)>),
}

/// One varint at `at`, moving past it.
fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let (v, n) = varint::decode(b.get(*at..)?)?;
    *at += n;
    Some(v)
}

/// A well-formed message's fields, its nested messages parsed by the schema.
fn parse(b: &[u8], ty: Msg) -> Option<Vec<(u32, Node)>> {
    let (mut at, mut out) = (0, Vec::new());
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let (tag, wire) = ((key >> 3) as u32, key & 7);
        let node = match wire {
            0 => Node::Varint(read_varint(b, &mut at)?),
            1 => {
                let v = b.get(at..at + 8)?.try_into().ok()?;
                at += 8;
                Node::F64(v)
            }
            5 => {
                let v = b.get(at..at + 4)?.try_into().ok()?;
                at += 4;
                Node::F32(v)
            }
            2 => {
                let n = read_varint(b, &mut at)? as usize;
                let body = b.get(at..at.checked_add(n)?)?;
                at += n;
                match ty.child(tag) {
                    Some(c) => Node::Msg(parse(body, c)?),
                    None => Node::Bytes(body.to_vec()),
                }
            }
            _ => return None,
        };
        out.push((tag, node));
    }
    Some(out)
}

fn emit(fields: &[(u32, Node)], out: &mut Vec<u8>) {
    for (tag, node) in fields {
        let key = |w: u64, out: &mut Vec<u8>| varint::put(out, (u64::from(*tag) << 3) | w);
        match node {
            Node::Varint(v) => {
                key(0, out);
                varint::put(out, *v);
            }
            Node::F64(b) => {
                key(1, out);
                out.extend_from_slice(b);
            }
            Node::F32(b) => {
                key(5, out);
                out.extend_from_slice(b);
            }
            Node::Bytes(b) => {
                key(2, out);
                varint::put(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Node::Msg(f) => {
                let mut body = Vec::new();
                emit(f, &mut body);
                key(2, out);
                varint::put(out, body.len() as u64);
                out.extend_from_slice(&body);
            }
            Node::Group(f) => {
                key(3, out);
                emit(f, out);
                key(4, out);
            }
        }
    }
}

/// A tiny deterministic generator for the rewrites, seeded by proptest.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn unknown(d: &mut Dice) -> (u32, Node) {
    let tag = 17 + d.below(2000) as u32;
    let node = match d.below(5) {
        0 => Node::Varint(d.next()),
        1 => Node::F64(d.next().to_le_bytes()),
        2 => Node::F32((d.next() as u32).to_le_bytes()),
        3 => Node::Bytes(vec![0xff, 0x00, 0x80]),
        _ => Node::Group(vec![(1, Node::Varint(7)), (2, Node::Bytes(vec![1, 2]))]),
    };
    (tag, node)
}

/// Unknown fields added, fields repeated, dropped and moved, in every message.
fn rewrite(fields: &mut Vec<(u32, Node)>, d: &mut Dice) {
    for (_, node) in fields.iter_mut() {
        if let Node::Msg(f) = node {
            rewrite(f, d);
        }
    }
    if d.chance(20) {
        let at = d.below(fields.len() + 1);
        fields.insert(at, unknown(d));
    }
    if !fields.is_empty() && d.chance(15) {
        let copy = fields[d.below(fields.len())].clone();
        let at = d.below(fields.len() + 1);
        fields.insert(at, copy);
    }
    if !fields.is_empty() && d.chance(5) {
        fields.remove(d.below(fields.len()));
    }
    if fields.len() > 1 && d.chance(15) {
        let (a, b) = (d.below(fields.len()), d.below(fields.len()));
        fields.swap(a, b);
    }
}

fn corrupt(bytes: &mut Vec<u8>, d: &mut Dice) {
    if bytes.is_empty() {
        return;
    }
    match d.below(4) {
        0 => {
            let at = d.below(bytes.len());
            bytes[at] ^= 1 << d.below(8);
        }
        1 => bytes.truncate(d.below(bytes.len())),
        2 => {
            let at = d.below(bytes.len());
            bytes.insert(at, d.next() as u8);
        }
        _ => {
            let at = d.below(bytes.len());
            bytes[at] = 0xff;
        }
    }
}

/// Text (mostly ASCII, some of it not) or any bytes, up to a little past the one-byte length.
fn text_or_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-z.]{0,130}".prop_map(String::into_bytes),
        1 => "[a-zé]{0,70}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..140),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_requests_decode_as_prost_decodes_them(req in arb_request()) {
        same_outcome(&req.encode_to_vec())?;
    }

    #[test]
    fn rewritten_requests_decode_as_prost_decodes_them(req in arb_request(), seed in 1u64..) {
        let mut fields = parse(&req.encode_to_vec(), Msg::TraceRequest).expect("prost's own encoding parses");
        rewrite(&mut fields, &mut Dice(seed));
        let mut bytes = Vec::new();
        emit(&fields, &mut bytes);
        same_outcome(&bytes)?;
    }

    /// The ASCII shortcut accepts and refuses exactly what the full check does, whatever the
    /// length and wherever a non-ASCII byte falls (word boundaries included).
    #[test]
    fn the_ascii_shortcut_agrees_with_the_full_utf8_check(
        mut bytes in proptest::collection::vec(0x20u8..0x7f, 0..40),
        high in proptest::option::of((any::<prop::sample::Index>(), 0x80u8..=0xff)),
        accent in any::<prop::sample::Index>(),
    ) {
        if let Some((at, b)) = high {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = b;
            }
        }
        let mut valid = bytes.clone();
        valid.splice(accent.index(valid.len() + 1)..accent.index(valid.len() + 1), "é".bytes());
        for b in [&bytes, &valid] {
            prop_assert_eq!(super::utf8(b).ok(), std::str::from_utf8(b).ok());
        }
    }

    /// The census's attribute shortcut counts (and refuses) exactly what its plain walk does.
    #[test]
    fn the_census_shortcut_counts_as_the_walk_does(req in arb_request(), seed in 1u64..) {
        let mut bytes = req.encode_to_vec();
        prop_assert_eq!(crate::census::otlp_protobuf(&bytes), crate::census::otlp_protobuf_walked(&bytes));
        let mut d = Dice(seed);
        for _ in 0..=d.below(3) {
            corrupt(&mut bytes, &mut d);
        }
        prop_assert_eq!(crate::census::otlp_protobuf(&bytes), crate::census::otlp_protobuf_walked(&bytes));
    }

    /// The plain attribute path gives what the field-by-field reader gives, or leaves the
    /// attribute to it: on attributes of every value shape, with lengths around the one-byte
    /// limit, text that may not be UTF-8, scalars of any varint length, and a byte changed,
    /// cut or added anywhere; at every depth around the recursion limit.
    #[test]
    fn the_plain_attribute_path_reads_as_the_general_reader_does(
        key in text_or_bytes(),
        shape in 0u8..6,
        body in text_or_bytes(),
        int in any::<u64>(),
        edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>(), 0u8..3)),
        lie in proptest::option::of((any::<bool>(), -2i64..=2)),
        depth in 97u32..102,
    ) {
        let mut value = Vec::new();
        match shape {
            0 => { value.push(0x0a); varint::put(&mut value, body.len() as u64); value.extend_from_slice(&body); }
            1 => { value.push(0x10); varint::put(&mut value, int % 3); }
            2 => { value.push(0x18); varint::put(&mut value, int); }
            3 => { value.push(0x21); value.extend_from_slice(&body[..body.len().min(9)]); }
            4 => value.extend_from_slice(&body),
            _ => {}
        }
        // A declared length off by a little, the key's or the value's.
        let declared = |len: usize, which: bool| match lie {
            Some((w, by)) if w == which => len.saturating_add_signed(by as isize) as u64,
            _ => len as u64,
        };
        let mut kv = vec![0x0a];
        varint::put(&mut kv, declared(key.len(), true));
        kv.extend_from_slice(&key);
        kv.push(0x12);
        varint::put(&mut kv, declared(value.len(), false));
        kv.extend_from_slice(&value);
        if let Some((at, b, how)) = edit {
            let at = at.index(kv.len() + 1);
            match how {
                0 if at < kv.len() => kv[at] = b,
                1 => kv.truncate(at),
                _ => kv.insert(at, b),
            }
        }
        let show = |r: super::R<super::Kv<'_>>| format!("{r:?}");
        let (mut plain, mut read) = (Meter::unbounded(0), Meter::unbounded(0));
        // `key_value` counts the attribute itself; the reader, only what is in it.
        read.attribute().unwrap();
        let (a, b) = (super::key_value(&kv, depth, &mut plain), super::key_value_read(&kv, depth, &mut read));
        // Counted alike, too, where both read it.
        if a.is_ok() {
            prop_assert_eq!(plain.items(), read.items());
        }
        prop_assert_eq!(show(a), show(b));
    }

    #[test]
    fn corrupted_requests_are_refused_or_decoded_as_prost_does(req in arb_request(), seed in 1u64..) {
        let mut bytes = req.encode_to_vec();
        let mut d = Dice(seed);
        for _ in 0..=d.below(3) {
            corrupt(&mut bytes, &mut d);
        }
        same_outcome(&bytes)?;
    }
}

/// Length and varint bytes of 0x80 and over continue a varint: the plain path must not take one
/// for a whole length or value, even where the bytes after it would fit that reading.
#[test]
fn the_plain_attribute_path_leaves_long_varints_to_the_general_reader() {
    let key_length = [&[0x0a, 0x80][..], &[b'a'; 128], &[0x12, 0x02, 0x10, 0x01]].concat();
    let value_length = [&[0x0a, 0x01, b'k', 0x12, 0x80, 0x0a, 0x7e][..], &[b'v'; 126]].concat();
    let bool_varint = vec![0x0a, 0x01, b'k', 0x12, 0x02, 0x10, 0x81];
    for kv in [key_length, value_length, bool_varint] {
        assert!(super::plain_key_value(&kv).is_none());
        assert!(super::key_value(&kv, 1, &mut Meter::unbounded(0)).is_err(), "a truncated varint: {kv:?}");
    }
}

/// Values nested past prost's recursion limit, and unknown groups nested past it, are refused
/// by both; one level less is decoded by both.
#[test]
fn the_recursion_limit_is_prosts() {
    // A KeyValue's value at depth 5 (request 0 … key-value 4); each array adds two levels.
    let nested = |levels: usize| {
        let mut v = AnyValue { value: Some(any_value::Value::IntValue(1)) };
        for _ in 0..levels {
            v = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })) };
        }
        let mut s = PSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            start_time_unix_nano: NOW,
            end_time_unix_nano: NOW,
            ..Default::default()
        };
        s.attributes = vec![PKv { key: "deep".into(), value: Some(v) }];
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![s], ..Default::default() }],
                ..Default::default()
            }],
        };
        req.encode_to_vec()
    };
    let mut outcomes = Vec::new();
    for levels in 44..52 {
        let bytes = nested(levels);
        same_outcome(&bytes).unwrap();
        outcomes.push(ExportTraceServiceRequest::decode(bytes.as_slice()).is_ok());
    }
    assert!(outcomes.contains(&true) && outcomes.contains(&false), "the limit falls inside: {outcomes:?}");
    // Unknown groups nested inside each other at the top level.
    for depth in [98, 99, 100, 101] {
        let mut bytes = Vec::new();
        for _ in 0..depth {
            varint::put(&mut bytes, (20 << 3) | 3);
        }
        for _ in 0..depth {
            varint::put(&mut bytes, (20 << 3) | 4);
        }
        same_outcome(&bytes).unwrap();
    }
}

proptest! {
    /// The inlined ASCII test answers as the library's, at every length and wherever a byte with
    /// the high bit set stands (the overlapping reads cover every byte).
    #[test]
    fn ascii_is_the_librarys_is_ascii(
        mut bytes in proptest::collection::vec(0u8..0x80, 0..40),
        high in proptest::option::of((any::<prop::sample::Index>(), 0x80u8..=0xff)),
    ) {
        if let (Some((at, b)), false) = (high, bytes.is_empty()) {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        prop_assert_eq!(super::ascii(&bytes), bytes.is_ascii());
    }
}
