//! What a request will cost once decoded, known before decoding it. A protobuf message of 16 MB
//! can hold 8 million empty spans of 2 bytes each, which decode into gigabytes of structs: wire
//! size says nothing about memory. The census walks the wire format once, without allocating,
//! counts every message that decoding would build (spans, attributes, values, events, …), and
//! prices them at their in-memory size; admission then charges that price to the ingest budget.
//! The OTLP/JSON census does the same through serde's streaming visitor, pricing also the JSON
//! value tree that decoding builds first.

use std::mem::size_of;

use rewind_agent_proto::agent::XLog;
use rewind_agent_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use rewind_agent_proto::otlp::resource::v1::Resource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

/// The smallest heap allocation glibc makes, with its header.
const STRING: usize = 32;
/// A span or record once converted to the store's model, beside its strings.
const CONVERTED_ROW: usize = 400;
/// A `serde_json::Value` (32 bytes), twice over for its vector's growth.
const JSON_VALUE: usize = 64;
/// A JSON object is a `BTreeMap`, whose first node holds room for 11 entries of a `String` key
/// and a `Value` (640 bytes with the allocator's header) however few it has: most of what an
/// attribute-heavy OTLP/JSON request costs.
const JSON_OBJECT: usize = 640;

/// Deeper nesting is refused by prost (its recursion limit) and by the JSON decoder alike.
pub const MAX_DEPTH: usize = 100;

/// Counts of what decoding a request builds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Census {
    pub resources: usize,
    pub scopes: usize,
    pub spans: usize,
    pub events: usize,
    pub links: usize,
    /// Key-value pairs: attributes at every level, and entries of key-value lists.
    pub attributes: usize,
    /// Attribute values, nested ones included.
    pub values: usize,
    pub xlogs: usize,
    /// Strings and byte strings: each one its own allocation, however short.
    pub strings: usize,
    /// Values of the JSON document (each one a `serde_json::Value` while decoding).
    pub json_values: usize,
    /// Non-empty objects of the JSON document: each one a map of its own.
    pub json_objects: usize,
    /// Zipkin spans, each read into Zipkin's model before the OTLP one is built.
    pub translated: usize,
}

/// What one counted item adds to `Census::decoded_bytes`: its decoded structs twice over (a
/// vector's capacity doubles as it grows), and for a span or record the converted row. The wire
/// decoder's `Meter` prices what it builds with the same numbers as it goes.
pub(crate) mod price {
    use super::*;

    pub const RESOURCE: usize = 2 * (size_of::<ResourceSpans>() + size_of::<Resource>());
    pub const SCOPE: usize = 2 * (size_of::<ScopeSpans>() + size_of::<InstrumentationScope>());
    pub const SPAN: usize = 2 * (size_of::<Span>() + size_of::<Status>()) + CONVERTED_ROW;
    pub const EVENT: usize = 2 * size_of::<span::Event>();
    pub const LINK: usize = 2 * size_of::<span::Link>();
    pub const ATTRIBUTE: usize = 2 * size_of::<KeyValue>();
    pub const VALUE: usize = 2 * size_of::<AnyValue>();
    pub const XLOG: usize = 2 * size_of::<XLog>() + CONVERTED_ROW;
    pub const STRING: usize = super::STRING;
}

impl Census {
    /// Bytes that decoding and conversion hold at their peak, about: the request's bytes (and
    /// hyper's copy of them), the decoded structs twice over (a vector's capacity doubles as it
    /// grows), an allocation per string (at least 32 bytes with the allocator's header, however
    /// short the string), the converted span (about 400 bytes beside its strings) and, for JSON,
    /// the document's value tree. Calibrated against the server's peak RSS for realistic and
    /// hostile requests (see tests/it/hostile.rs and the README's limits).
    pub fn decoded_bytes(&self, wire: usize) -> usize {
        use price::*;
        let items = self.resources * RESOURCE
            + self.scopes * SCOPE
            + self.spans * SPAN
            + self.events * EVENT
            + self.links * LINK
            + self.attributes * ATTRIBUTE
            + self.values * VALUE
            + self.xlogs * XLOG
            + self.strings * STRING;
        let json = self.json_values * JSON_VALUE + self.json_objects * JSON_OBJECT;
        let translated = self.translated * crate::zipkin::INTERMEDIATE_SPAN_BYTES;
        wire * 2 + items + json + translated
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.spans, "spans"),
            (self.xlogs, "records"),
            (self.attributes, "attributes"),
            (self.values, "values"),
            (self.events, "events"),
            (self.links, "links"),
            (self.resources, "resources"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Which message a length-delimited field holds, by its parent and field number (OTLP trace
/// and Rewind's XLog protos). Anything else is a scalar, a string or bytes, skipped. The wire
/// decoder's tests rewrite requests by it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    TraceRequest,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    XLogRequest,
    XLog,
    XLogAttribute,
    ZipkinList,
    ZipkinSpan,
    ZipkinEndpoint,
    ZipkinAnnotation,
    ZipkinTag,
}

impl Msg {
    pub(crate) fn child(self, field: u32) -> Option<Msg> {
        use Msg::*;
        Some(match (self, field) {
            (TraceRequest, 1) => ResourceSpans,
            (ResourceSpans, 1) => Resource,
            (ResourceSpans, 2) => ScopeSpans,
            (Resource, 1) => KeyValue,
            (ScopeSpans, 1) => Scope,
            (ScopeSpans, 2) => Span,
            (Scope, 3) => KeyValue,
            (Span, 9) => KeyValue,
            (Span, 11) => Event,
            (Span, 13) => Link,
            (Span, 15) => Status,
            (Event, 3) => KeyValue,
            (Link, 4) => KeyValue,
            (KeyValue, 2) => AnyValue,
            (AnyValue, 5) => ArrayValue,
            (AnyValue, 6) => KeyValueList,
            (ArrayValue, 1) => AnyValue,
            (KeyValueList, 1) => KeyValue,
            (XLogRequest, 1) => XLog,
            (XLog, 21) => XLogAttribute,
            (ZipkinList, 1) => ZipkinSpan,
            (ZipkinSpan, 8 | 9) => ZipkinEndpoint,
            (ZipkinSpan, 10) => ZipkinAnnotation,
            (ZipkinSpan, 11) => ZipkinTag,
            _ => return None,
        })
    }

    fn count(self, c: &mut Census) {
        match self {
            Msg::ResourceSpans => c.resources += 1,
            Msg::ScopeSpans => c.scopes += 1,
            Msg::Span => c.spans += 1,
            Msg::Event => c.events += 1,
            Msg::Link => c.links += 1,
            Msg::KeyValue | Msg::XLogAttribute => c.attributes += 1,
            Msg::AnyValue => c.values += 1,
            Msg::XLog => c.xlogs += 1,
            Msg::ZipkinSpan => {
                c.spans += 1;
                c.translated += 1;
            }
            // Service, address and port: attributes of the resource or the span, and a map
            // entry of the resources being gathered.
            Msg::ZipkinEndpoint => {
                c.attributes += 3;
                c.values += 3;
                c.strings += 3;
            }
            Msg::ZipkinAnnotation => c.events += 1,
            // An entry of the tags' map, then an attribute.
            Msg::ZipkinTag => {
                c.attributes += 2;
                c.values += 1;
            }
            _ => {}
        }
    }
}

/// The census of an OTLP `ExportTraceServiceRequest` in protobuf.
pub fn otlp_protobuf(buf: &[u8]) -> Result<Census, String> {
    let mut c = Census::default();
    walk::<true>(buf, Msg::TraceRequest, 0, &mut c)?;
    Ok(c)
}

/// `otlp_protobuf` without the attribute shortcut: what the shortcut is tested against.
#[cfg(test)]
pub(crate) fn otlp_protobuf_walked(buf: &[u8]) -> Result<Census, String> {
    let mut c = Census::default();
    walk::<false>(buf, Msg::TraceRequest, 0, &mut c)?;
    Ok(c)
}

/// The census of a Zipkin `ListOfSpans` in protobuf.
pub fn zipkin_protobuf(buf: &[u8]) -> Result<Census, String> {
    let mut c = Census::default();
    walk::<true>(buf, Msg::ZipkinList, 0, &mut c)?;
    Ok(c)
}

/// The census of a native `ExportXLogRequest`.
pub fn xlog_protobuf(buf: &[u8]) -> Result<Census, String> {
    let mut c = Census::default();
    walk::<true>(buf, Msg::XLogRequest, 0, &mut c)?;
    Ok(c)
}

#[inline]
fn varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    // Most varints of a request (field keys, short lengths) are one byte.
    if let Some(&b) = buf.get(*at) {
        if b < 0x80 {
            *at += 1;
            return Ok(u64::from(b));
        }
    }
    varint_long(buf, at)
}

#[cold]
fn varint_long(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// The length of `buf`'s first field if it is the length-delimited field whose one-byte key is
/// `key`, with a one-byte length (under 128) and its bytes inside `buf`.
#[inline]
fn short_field(buf: &[u8], key: u8) -> Option<usize> {
    match buf {
        [k, len, ..] if *k == key && *len < 0x80 && 2 + usize::from(*len) <= buf.len() => Some(2 + usize::from(*len)),
        _ => None,
    }
}

/// The strings in an `AnyValue` of one short string (field 1) or one scalar (bool, int or double,
/// fields 2–4), the shapes most values have; `None` for any other, which the walk must read.
#[inline]
fn plain_value(b: &[u8]) -> Option<usize> {
    match *b.first()? {
        0x0a => (short_field(b, 0x0a)? == b.len()).then_some(1),
        // One varint, ending the value, of at most ten bytes (`varint_long`'s limit).
        0x10 | 0x18 => {
            let last = b[1..].iter().position(|x| x & 0x80 == 0)?;
            (last + 2 == b.len() && last < 10).then_some(0)
        }
        0x21 => (b.len() == 9).then_some(0),
        _ => None,
    }
}

/// Counts the commonest attribute shapes without walking them, exactly as `walk` would count
/// them: an `AnyValue` of a plain value (`plain_value`), and a `KeyValue` of a short key (field 1)
/// and such a value (field 2). Most of a request's messages are these, and a walk costs a call
/// and a loop each. False (nothing counted) for anything else, or where the walk would reach the
/// recursion limit, which it must then refuse.
#[inline]
fn shortcut(buf: &[u8], msg: Msg, depth: usize, c: &mut Census) -> bool {
    match msg {
        Msg::AnyValue if depth < MAX_DEPTH => match plain_value(buf) {
            Some(strings) => {
                c.strings += strings;
                true
            }
            None => false,
        },
        Msg::KeyValue if depth + 1 < MAX_DEPTH => {
            let Some(key) = short_field(buf, 0x0a) else { return false };
            let value = &buf[key..];
            if short_field(value, 0x12) != Some(value.len()) {
                return false;
            }
            let Some(strings) = plain_value(&value[2..]) else { return false };
            Msg::AnyValue.count(c);
            c.strings += 1 + strings;
            true
        }
        _ => false,
    }
}

/// `FAST`: with `shortcut`; tests compare it with the plain walk.
fn walk<const FAST: bool>(buf: &[u8], msg: Msg, depth: usize, c: &mut Census) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("nested deeper than the recursion limit".into());
    }
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (field, wire) = ((key >> 3) as u32, key & 7);
        if field == 0 {
            return Err("field number 0".into());
        }
        match wire {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let end = field_end(buf, &mut at)?;
                if let Some(child) = msg.child(field) {
                    child.count(c);
                    if !(FAST && shortcut(&buf[at..end], child, depth + 1, c)) {
                        walk::<FAST>(&buf[at..end], child, depth + 1, c)?;
                    }
                } else {
                    c.strings += 1;
                }
                at = end;
            }
            // Groups are not in these protos: prost and the wire decoder skip them, building
            // nothing, so nothing in one is counted.
            3 => skip_group(buf, &mut at, key >> 3, depth + 1)?,
            4 => return Err("unexpected end group tag".into()),
            _ => return Err(format!("unsupported wire type {wire}")),
        }
    }
    if at > buf.len() {
        return Err("truncated field".into());
    }
    Ok(())
}

/// Where the length-delimited field whose length starts at `at` ends; `at` is left at its bytes.
fn field_end(buf: &[u8], at: &mut usize) -> Result<usize, String> {
    let len = usize::try_from(varint(buf, at)?).map_err(|_| "length out of range")?;
    Ok(at.checked_add(len).filter(|e| *e <= buf.len()).ok_or("truncated message")?)
}

/// Skips a group whose start key (field `field`) has just been read, through its end key, as
/// prost skips one: its fields are checked for shape, not counted.
fn skip_group(buf: &[u8], at: &mut usize, field: u64, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("nested deeper than the recursion limit".into());
    }
    loop {
        if *at >= buf.len() {
            return Err("truncated group".into());
        }
        let key = varint(buf, at)?;
        let (inner, wire) = (key >> 3, key & 7);
        if inner == 0 {
            return Err("field number 0".into());
        }
        match wire {
            0 => drop(varint(buf, at)?),
            1 => *at += 8,
            5 => *at += 4,
            2 => *at = field_end(buf, at)?,
            3 => skip_group(buf, at, inner, depth + 1)?,
            4 if inner == field => return Ok(()),
            4 => return Err("unexpected end group tag".into()),
            _ => return Err(format!("unsupported wire type {wire}")),
        }
        if *at > buf.len() {
            return Err("truncated field".into());
        }
    }
}

pub use json::{otlp_json, zipkin_json};

mod json {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::{Census, Msg, MAX_DEPTH};

    /// The census of an OTLP/JSON request, streamed: nothing of the document is kept.
    pub fn otlp_json(buf: &[u8]) -> Result<Census, String> {
        let mut c = Census::default();
        let mut de = serde_json::Deserializer::from_slice(buf);
        // serde_json's own recursion limit (128) stops a deeper document before this does.
        Node { msg: Some(Msg::TraceRequest), depth: 0, c: &mut c }
            .deserialize(&mut de)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        de.end().map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(c)
    }

    /// The census of a Zipkin v2 JSON request: the top-level array's elements are its spans. The
    /// translation copies the document into an OTLP request before converting it: each value
    /// of the document is priced once more as an attribute of it.
    pub fn zipkin_json(buf: &[u8]) -> Result<Census, String> {
        let mut c = Census::default();
        let mut de = serde_json::Deserializer::from_slice(buf);
        Spans(&mut c).deserialize(&mut de).map_err(|e| format!("invalid Zipkin JSON: {e}"))?;
        de.end().map_err(|e| format!("invalid Zipkin JSON: {e}"))?;
        c.attributes += c.json_values;
        c.translated = c.spans;
        Ok(c)
    }

    struct Spans<'c>(&'c mut Census);

    impl<'de> DeserializeSeed<'de> for Spans<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Spans<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of spans")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            self.0.json_values += 1;
            while seq.next_element_seed(Node { msg: None, depth: 1, c: &mut *self.0 })?.is_some() {
                self.0.spans += 1;
            }
            Ok(())
        }
    }

    /// A JSON value standing for `msg` (or for nothing the census counts).
    struct Node<'c> {
        msg: Option<Msg>,
        depth: usize,
        c: &'c mut Census,
    }

    /// OTLP/JSON names fields in lowerCamelCase or snake_case; the field numbers of the protos.
    fn field_number(msg: Msg, key: &str) -> Option<u32> {
        use Msg::*;
        Some(match (msg, key) {
            (TraceRequest, "resourceSpans" | "resource_spans") => 1,
            (ResourceSpans, "resource") => 1,
            (ResourceSpans, "scopeSpans" | "scope_spans") => 2,
            (Resource, "attributes") | (KeyValueList, "values") | (ArrayValue, "values") => 1,
            (ScopeSpans, "scope") => 1,
            (ScopeSpans, "spans") => 2,
            (Scope, "attributes") => 3,
            (Span, "attributes") => 9,
            (Span, "events") => 11,
            (Span, "links") => 13,
            (Span, "status") => 15,
            (Event, "attributes") => 3,
            (Link, "attributes") => 4,
            (KeyValue, "value") => 2,
            (AnyValue, "arrayValue" | "array_value") => 5,
            (AnyValue, "kvlistValue" | "kvlist_value") => 6,
            _ => return None,
        })
    }

    macro_rules! scalars {
        ($($visit:ident: $t:ty),*) => {$(
            fn $visit<E>(self, _: $t) -> Result<(), E> {
                self.c.json_values += 1;
                Ok(())
            }
        )*};
    }

    impl Node<'_> {
        /// An array or object: a value, one level deeper.
        fn container<E: serde::de::Error>(&mut self) -> Result<(), E> {
            self.c.json_values += 1;
            if self.depth > MAX_DEPTH {
                return Err(E::custom("nested deeper than the recursion limit"));
            }
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Node<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Node<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }

        // Numbers and booleans: a value each, nothing else.
        scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);

        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            self.c.json_values += 1;
            // Once in the value tree, once in the decoded request.
            self.c.strings += 2;
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            self.c.json_values += 1;
            Ok(())
        }

        /// An array of the field's message: each element is one.
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            self.container()?;
            while seq.next_element_seed(Node { msg: self.msg, depth: self.depth + 1, c: &mut *self.c })?.is_some() {}
            Ok(())
        }

        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            self.container()?;
            if let Some(m) = self.msg {
                m.count(self.c);
            }
            let mut empty = true;
            // Keys with escapes arrive owned; the OTLP names have none, so such a key counts
            // as an unknown field, as the decoder treats it.
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                // The key's own string in the tree's map.
                self.c.strings += 1;
                if empty {
                    empty = false;
                    self.c.json_objects += 1;
                }
                let child = self.msg.and_then(|m| field_number(m, &key).and_then(|f| m.child(f)));
                map.next_value_seed(Node { msg: child, depth: self.depth + 1, c: &mut *self.c })?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rewind_agent_proto::otlp::common::v1::{any_value, ArrayValue};
    use rewind_agent_proto::ExportTraceServiceRequest;

    use super::*;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
    }

    fn sample() -> ExportTraceServiceRequest {
        let span = Span {
            name: "GET /".into(),
            attributes: vec![
                kv("a", any_value::Value::IntValue(1)),
                kv(
                    "b",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(any_value::Value::BoolValue(true)) }; 3],
                    }),
                ),
            ],
            events: vec![span::Event {
                name: "e".into(),
                attributes: vec![kv("c", any_value::Value::DoubleValue(1.0))],
                ..Default::default()
            }],
            links: vec![span::Link::default()],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", any_value::Value::StringValue("s".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans: vec![span.clone(), span], ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn counts_what_decoding_builds() {
        let c = otlp_protobuf(&sample().encode_to_vec()).unwrap();
        assert_eq!((c.resources, c.scopes, c.spans, c.events, c.links), (1, 1, 2, 2, 2));
        // Per span: a, b, c; plus service.name.
        assert_eq!(c.attributes, 7);
        // Per span: a's, b's and its three elements, c's; plus service.name's.
        assert_eq!(c.values, 13);
    }

    #[test]
    fn json_counts_the_same_messages() {
        let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},
          "scopeSpans":[{"spans":[{"name":"x","attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"boolValue":true}]}}}],
          "events":[{"name":"e"}],"links":[{}]},{}]}]}]}"#;
        let c = otlp_json(json.as_bytes()).unwrap();
        assert_eq!((c.resources, c.scopes, c.spans, c.events, c.links, c.attributes, c.values), (1, 1, 2, 1, 1, 2, 4));
        assert!(c.json_values > 20);
        assert!(otlp_json(b"{\"resourceSpans\": [").is_err());
    }

    fn vlen(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        prost::encoding::encode_varint(n, &mut v);
        v
    }

    #[test]
    fn empty_spans_are_priced_at_their_decoded_size() {
        let mut body = Vec::new();
        for _ in 0..100_000 {
            body.extend_from_slice(&[0x12, 0x00]);
        }
        // ResourceSpans { scope_spans: [ScopeSpans { spans: [Span {}; 100000] }] }
        let rs = [&[0x12u8][..], &vlen(body.len() as u64), &body].concat();
        let req = [&[0x0au8][..], &vlen(rs.len() as u64), &rs].concat();
        let c = otlp_protobuf(&req).unwrap();
        assert_eq!(c.spans, 100_000);
        assert!(c.decoded_bytes(req.len()) > 100_000 * size_of::<Span>(), "{}", c.decoded_bytes(req.len()));
        // prost agrees on what it holds.
        assert_eq!(
            ExportTraceServiceRequest::decode(&req[..]).unwrap().resource_spans[0].scope_spans[0].spans.len(),
            100_000
        );
    }

    /// Around the recursion limit, the shortcut refuses what the walk refuses: strings nested in
    /// arrays and in key-value lists, at every depth from well inside the limit to past it.
    #[test]
    fn the_shortcut_keeps_the_recursion_limit() {
        use rewind_agent_proto::otlp::common::v1::KeyValueList;
        let string = || AnyValue { value: Some(any_value::Value::StringValue("v".into())) };
        let request = |value: AnyValue| {
            let span =
                Span { attributes: vec![KeyValue { key: "k".into(), value: Some(value) }], ..Default::default() };
            let scope = ScopeSpans { spans: vec![span], ..Default::default() };
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans { scope_spans: vec![scope], ..Default::default() }],
            }
        };
        let (mut refused, mut counted) = (0, 0);
        for levels in 0..60 {
            let (mut in_arrays, mut in_lists) = (string(), string());
            for _ in 0..levels {
                in_arrays =
                    AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![in_arrays] })) };
                let kv = KeyValue { key: "k".into(), value: Some(in_lists) };
                in_lists = AnyValue { value: Some(any_value::Value::KvlistValue(KeyValueList { values: vec![kv] })) };
            }
            for value in [in_arrays, in_lists] {
                let body = request(value).encode_to_vec();
                let fast = otlp_protobuf(&body);
                assert_eq!(fast, otlp_protobuf_walked(&body), "{levels} levels");
                if fast.is_ok() {
                    counted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(refused > 10 && counted > 10, "both sides of the limit: {refused} refused, {counted} counted");
    }

    /// Values the shortcut reads byte by byte, well-formed or not: the walk's answer each time.
    #[test]
    fn the_shortcut_reads_scalars_as_the_walk_does() {
        let wrap = |field: u8, body: &[u8]| [&[field][..], &vlen(body.len() as u64), body].concat();
        // A request of one span whose one attribute is key "k" and the given AnyValue bytes.
        let request = |any: &[u8]| {
            let kv = [&[0x0a, 0x01, b'k'][..], &wrap(0x12, any)].concat();
            wrap(0x0a, &wrap(0x12, &wrap(0x12, &wrap(0x4a, &kv))))
        };
        let long = |n: usize| [vec![0x80; n - 1], vec![0x01]].concat();
        let values: Vec<Vec<u8>> = vec![
            vec![0x18, 0x05],
            [&[0x18][..], &long(10)].concat(),
            [&[0x18][..], &long(11)].concat(),
            vec![0x18, 0x80],
            vec![0x18, 0x05, 0x05],
            vec![0x10, 0x01],
            [&[0x21][..], &[0; 8]].concat(),
            [&[0x21][..], &[0; 7]].concat(),
            [&[0x21][..], &[0; 9]].concat(),
            vec![0x0a, 0x02, b'a'],
            vec![0x0a, 0x01, b'a', 0x0a, 0x00],
            vec![0x2a, 0x00],
            vec![],
        ];
        for any in &values {
            let body = request(any);
            assert_eq!(otlp_protobuf(&body), otlp_protobuf_walked(&body), "{any:02x?}");
        }
        assert!(otlp_protobuf(&request(&[0x18, 0x80])).is_err() && otlp_protobuf(&request(&[0x18, 0x05])).is_ok());
    }

    #[test]
    fn malformed_input_is_refused_like_prost_refuses_it() {
        let good = sample().encode_to_vec();
        for cut in 1..good.len() {
            let ours = otlp_protobuf(&good[..cut]).is_err();
            let prost = ExportTraceServiceRequest::decode(&good[..cut]).is_err();
            // The census reads less than prost (strings unchecked), so it never refuses what prost takes.
            assert!(!ours || prost, "cut at {cut}: census refused, prost accepted");
        }
        assert!(xlog_protobuf(&[0x0a, 0x05, 0x01]).is_err());
    }

    #[test]
    fn zipkin_protobuf_is_priced_at_both_models() {
        use crate::zipkin::proto::{Annotation, Endpoint, ListOfSpans, Span as ZSpan};
        let span = ZSpan {
            trace_id: vec![1; 16],
            id: vec![2; 8],
            local_endpoint: Some(Endpoint { service_name: "a".into(), ..Default::default() }),
            remote_endpoint: Some(Endpoint { port: 80, ..Default::default() }),
            annotations: vec![Annotation { timestamp: 1, value: "x".into() }],
            tags: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        let c = zipkin_protobuf(&ListOfSpans { spans: vec![span.clone(), span] }.encode_to_vec()).unwrap();
        assert_eq!((c.spans, c.translated, c.events, c.attributes), (2, 2, 2, 2 * (3 + 3 + 2)));
        // Per span: the two ids; each endpoint's three attribute strings, and the local one's
        // service name; the annotation's value; the tag's key and value.
        assert_eq!(c.strings, 2 * (2 + 3 + 1 + 3 + 1 + 2));
        // Two bytes an empty span on the wire, hundreds once decoded and translated.
        let empty = [0x0a, 0x00].repeat(100_000);
        let c = zipkin_protobuf(&empty).unwrap();
        assert_eq!(c.spans, 100_000);
        let per_span = c.decoded_bytes(empty.len()) / 100_000;
        assert!(per_span > size_of::<Span>() + crate::zipkin::INTERMEDIATE_SPAN_BYTES, "{per_span}");
        assert!(zipkin_protobuf(&[0x0a, 0x05, 0x01]).is_err());
    }
}
