//! OTLP/protobuf straight into store spans: one walk over an `ExportTraceServiceRequest`'s bytes,
//! strings borrowed from the request until a span keeps them, no intermediate prost structs. The
//! conversion below is the only one: a request prost decoded (OTLP/JSON) is borrowed into the same
//! structs (`convert_decoded`), and the rules are `convert`'s `Cx` (limits, key admission, span
//! checks). What it accepts is what prost accepts: whatever prost would refuse (a bad varint, key
//! or wire type, a length past the end, a string that is not UTF-8, nesting past prost's recursion
//! limit of 100, a stray end-group) is refused here too, and a field sent twice merges as prost
//! merges it (the last scalar wins, repeated fields and messages accumulate). `wire::tests` checks
//! all of it against prost on generated requests, and `fuzz` on arbitrary bytes.

use std::sync::Arc;

use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, KeyValue as OtlpKeyValue};
use rewind_agent_proto::otlp::trace::v1::{self as otlp, ResourceSpans};
use rewind_agent_proto::ExportTraceServiceRequest;

use rewind_storage::{AttributeKeys, Event, Key, KeyValue, Link, Resource, Span, SpanId, TraceId, Value};

use crate::convert::{unique_kvs, wire_id, Converted, Cx, Limits, UNKNOWN_SERVICE};
use crate::meter::{Meter, Refused};

/// prost's `DecodeContext` recursion limit: a message nested deeper is refused.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Why the bytes are not a request prost would decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

type R<T> = Result<T, WireError>;

/// Why decoding stopped when the ingest budget refused the request (the payer's error is kept in
/// the meter).
pub const REFUSED: WireError = WireError("the ingest budget refused the request part way");

impl From<Refused> for WireError {
    fn from(_: Refused) -> Self {
        REFUSED
    }
}

/// One message's bytes, read front to back.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    #[inline]
    fn varint(&mut self) -> R<u64> {
        // Field keys and most lengths are one byte.
        if let Some(&b) = self.buf.get(self.at) {
            if b < 0x80 {
                self.at += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> R<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.at).ok_or(WireError("buffer underflow"))?;
            self.at += 1;
            // The tenth byte may carry one bit: more would overflow 64 bits.
            if i == 9 && b > 1 {
                return Err(WireError("invalid varint"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(WireError("invalid varint"))
    }

    /// (field number, wire type), as prost's `decode_key` checks them.
    fn key(&mut self) -> R<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("invalid key value"));
        }
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(WireError("invalid wire type value"));
        }
        let tag = (key >> 3) as u32;
        if tag == 0 {
            return Err(WireError("invalid tag value: 0"));
        }
        Ok((tag, wire))
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(WireError("buffer underflow"))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    fn fixed32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn len_delimited(&mut self) -> R<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| WireError("buffer underflow"))?;
        self.take(n)
    }

    /// Skips a field this decoder does not keep, in a message nested `depth` deep (prost checks
    /// its recursion limit here too, and inside groups).
    fn skip(&mut self, wire: u8, tag: u32, depth: u32) -> R<()> {
        if depth >= RECURSION_LIMIT {
            return Err(WireError("recursion limit reached"));
        }
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            LEN => self.len_delimited().map(drop),
            START_GROUP => loop {
                let (inner, w) = self.key()?;
                if w == END_GROUP {
                    if inner != tag {
                        return Err(WireError("unexpected end group tag"));
                    }
                    return Ok(());
                }
                self.skip(w, inner, depth + 1)?;
            },
            _ => Err(WireError("unexpected end group tag")),
        }
    }
}

/// A field the census counts as one string when it is length-delimited (an unknown field, or one
/// it does not walk into), then skipped.
fn other(r: &mut Reader<'_>, wire: u8, tag: u32, depth: u32, m: &mut Meter<'_>) -> R<()> {
    if wire == LEN {
        m.strings(1)?;
    }
    r.skip(wire, tag, depth)
}

fn want(wire: u8, expected: u8) -> R<()> {
    if wire == expected {
        Ok(())
    } else {
        Err(WireError("invalid wire type"))
    }
}

fn string<'a>(r: &mut Reader<'a>, wire: u8) -> R<&'a str> {
    want(wire, LEN)?;
    utf8(r.len_delimited()?)
}

/// Text as UTF-8, checked. Nearly all of what agents send is ASCII, which a word-at-a-time test
/// proves valid in a fraction of the full check's steps on keys and values this short (a dozen
/// bytes; the full check went byte by byte, about 100 instructions each).
#[inline]
fn utf8(bytes: &[u8]) -> R<&str> {
    if ascii(bytes) {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| WireError("invalid string value: data is not UTF-8 encoded"))
}

/// `<[u8]>::is_ascii` in fewer steps on short strings: whole words, then the last word read again
/// where the length is not a multiple of eight (overlapping bytes already tested). The library's
/// version aligns its reads first, most of its work on a dozen bytes. (The compiler keeps this a
/// call, of about 21 instructions on the shop's strings against the library's 32.)
#[inline]
fn ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = b.len();
    if n >= 8 {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        let mut any = word(n - 8);
        let mut at = 0;
        while at + 8 < n {
            any |= word(at);
            at += 8;
        }
        any & HIGH == 0
    } else if n >= 4 {
        let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"));
        (half(0) | half(n - 4)) & 0x8080_8080 == 0
    } else {
        b.iter().all(|&x| x < 0x80)
    }
}

fn bytes<'a>(r: &mut Reader<'a>, wire: u8) -> R<&'a [u8]> {
    want(wire, LEN)?;
    r.len_delimited()
}

/// `string`, counted as one string.
fn text<'a>(r: &mut Reader<'a>, wire: u8, m: &mut Meter<'_>) -> R<&'a str> {
    m.strings(1)?;
    string(r, wire)
}

/// `bytes`, counted as one string.
fn blob<'a>(r: &mut Reader<'a>, wire: u8, m: &mut Meter<'_>) -> R<&'a [u8]> {
    m.strings(1)?;
    bytes(r, wire)
}

fn message<'a>(r: &mut Reader<'a>, wire: u8, depth: u32) -> R<&'a [u8]> {
    want(wire, LEN)?;
    // A message at this depth is refused as prost refuses it, before its fields are read.
    if depth > RECURSION_LIMIT {
        return Err(WireError("recursion limit reached"));
    }
    r.len_delimited()
}

fn varint(r: &mut Reader<'_>, wire: u8) -> R<u64> {
    want(wire, VARINT)?;
    r.varint()
}

fn fixed64(r: &mut Reader<'_>, wire: u8) -> R<u64> {
    want(wire, FIXED64)?;
    r.fixed64()
}

fn fixed32(r: &mut Reader<'_>, wire: u8) -> R<u32> {
    want(wire, FIXED32)?;
    r.fixed32()
}

/// An `AnyValue` as decoded, strings still borrowed.
#[derive(Debug, Clone)]
enum Any<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(Vec<Option<Any<'a>>>),
    KvList(Vec<Kv<'a>>),
}

type Kv<'a> = (&'a str, Option<Any<'a>>);

/// Merges an `AnyValue` message into `slot`: a field of the oneof replaces it, except an array
/// or key-value list arriving on one of its kind, which appends (prost's merge).
fn any_value<'a>(buf: &'a [u8], depth: u32, slot: &mut Option<Any<'a>>, m: &mut Meter<'_>) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => *slot = Some(Any::Str(text(&mut r, wire, m)?)),
            2 => *slot = Some(Any::Bool(varint(&mut r, wire)? != 0)),
            3 => *slot = Some(Any::Int(varint(&mut r, wire)? as i64)),
            4 => *slot = Some(Any::Double(f64::from_bits(fixed64(&mut r, wire)?))),
            5 => {
                let body = message(&mut r, wire, depth + 1)?;
                if !matches!(slot, Some(Any::Array(_))) {
                    *slot = Some(Any::Array(Vec::new()));
                }
                let Some(Any::Array(items)) = slot else { unreachable!("set above") };
                let mut a = Reader::new(body);
                while !a.done() {
                    let (tag, wire) = a.key()?;
                    if tag == 1 {
                        let item = message(&mut a, wire, depth + 2)?;
                        m.value()?;
                        let mut v = None;
                        any_value(item, depth + 2, &mut v, m)?;
                        items.push(v);
                    } else {
                        other(&mut a, wire, tag, depth + 1, m)?;
                    }
                }
            }
            6 => {
                let body = message(&mut r, wire, depth + 1)?;
                if !matches!(slot, Some(Any::KvList(_))) {
                    *slot = Some(Any::KvList(Vec::new()));
                }
                let Some(Any::KvList(items)) = slot else { unreachable!("set above") };
                let mut l = Reader::new(body);
                while !l.done() {
                    let (tag, wire) = l.key()?;
                    if tag == 1 {
                        items.push(key_value(message(&mut l, wire, depth + 2)?, depth + 2, m)?);
                    } else {
                        other(&mut l, wire, tag, depth + 1, m)?;
                    }
                }
            }
            7 => *slot = Some(Any::Bytes(blob(&mut r, wire, m)?)),
            _ => other(&mut r, wire, tag, depth, m)?,
        }
    }
    Ok(())
}

/// A `KeyValue` message, counted.
fn key_value<'a>(buf: &'a [u8], depth: u32, m: &mut Meter<'_>) -> R<Kv<'a>> {
    // The value is a message one deeper: where that passes the limit, the general reader refuses.
    if depth < RECURSION_LIMIT {
        if let Some(kv) = plain_key_value(buf) {
            m.plain_attribute(matches!(kv.1, Some(Any::Str(_))))?;
            return Ok(kv);
        }
    }
    m.attribute()?;
    key_value_read(buf, depth, m)
}

/// `key_value` for the shape nearly every attribute has: a key, then a value of one short string
/// or one scalar, each field once and each length one byte. `None` for anything else, valid or
/// not: the general reader takes it, so what it accepts and how it refuses stay its own. A shop
/// span's dozen attributes went through that reader's loops at about 200 instructions each.
#[inline]
fn plain_key_value(buf: &[u8]) -> Option<Kv<'_>> {
    let [0x0a, key_len, rest @ ..] = buf else { return None };
    let key_len = usize::from(*key_len);
    if key_len >= 0x80 || rest.len() < key_len {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let [0x12, value_len, value @ ..] = rest else { return None };
    if *value_len >= 0x80 || usize::from(*value_len) != value.len() {
        return None;
    }
    let any = match value {
        // A length matching the rest is under 0x80 with it: one byte.
        [0x0a, len, text @ ..] if usize::from(*len) == text.len() => Any::Str(utf8(text).ok()?),
        [0x10, b] if *b < 0x80 => Any::Bool(*b != 0),
        [0x18, int @ ..] => {
            let mut r = Reader::new(int);
            let v = r.varint().ok()?;
            if !r.done() {
                return None;
            }
            Any::Int(v as i64)
        }
        [0x21, double @ ..] => Any::Double(f64::from_bits(u64::from_le_bytes(double.try_into().ok()?))),
        _ => return None,
    };
    Some((utf8(key).ok()?, Some(any)))
}

/// `key_value` field by field, whatever the shape.
fn key_value_read<'a>(buf: &'a [u8], depth: u32, m: &mut Meter<'_>) -> R<Kv<'a>> {
    let mut r = Reader::new(buf);
    let (mut key, mut value) = ("", None);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => key = text(&mut r, wire, m)?,
            2 => {
                let body = message(&mut r, wire, depth + 1)?;
                m.value()?;
                any_value(body, depth + 1, &mut value, m)?;
            }
            _ => other(&mut r, wire, tag, depth, m)?,
        }
    }
    Ok((key, value))
}

/// A span's fields as decoded.
#[derive(Default)]
struct WireSpan<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    parent: &'a [u8],
    flags: u32,
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    attributes: Vec<Kv<'a>>,
    dropped_attributes: u32,
    events: Vec<WireEvent<'a>>,
    dropped_events: u32,
    links: Vec<WireLink<'a>>,
    dropped_links: u32,
    status_message: &'a str,
    status_code: i32,
}

#[derive(Default)]
struct WireEvent<'a> {
    time: u64,
    name: &'a str,
    attributes: Vec<Kv<'a>>,
    dropped: u32,
}

#[derive(Default)]
struct WireLink<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    attributes: Vec<Kv<'a>>,
    dropped: u32,
    flags: u32,
}

/// Spans are at depth 3 (request 0, resource spans 1, scope spans 2).
const SPAN_DEPTH: u32 = 3;

fn span<'a>(buf: &'a [u8], m: &mut Meter<'_>) -> R<WireSpan<'a>> {
    let d = SPAN_DEPTH;
    // Room for a typical span's attributes at once, rather than growing 4, 8, 16.
    let mut s = WireSpan { attributes: Vec::with_capacity(16), ..Default::default() };
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => s.trace_id = blob(&mut r, wire, m)?,
            2 => s.span_id = blob(&mut r, wire, m)?,
            3 => s.trace_state = text(&mut r, wire, m)?,
            4 => s.parent = blob(&mut r, wire, m)?,
            5 => s.name = text(&mut r, wire, m)?,
            6 => s.kind = varint(&mut r, wire)? as i32,
            7 => s.start = fixed64(&mut r, wire)?,
            8 => s.end = fixed64(&mut r, wire)?,
            9 => s.attributes.push(key_value(message(&mut r, wire, d + 1)?, d + 1, m)?),
            10 => s.dropped_attributes = varint(&mut r, wire)? as u32,
            11 => {
                let body = message(&mut r, wire, d + 1)?;
                m.event()?;
                s.events.push(event(body, m)?);
            }
            12 => s.dropped_events = varint(&mut r, wire)? as u32,
            13 => {
                let body = message(&mut r, wire, d + 1)?;
                m.link()?;
                s.links.push(link(body, m)?);
            }
            14 => s.dropped_links = varint(&mut r, wire)? as u32,
            15 => {
                let mut st = Reader::new(message(&mut r, wire, d + 1)?);
                while !st.done() {
                    let (tag, wire) = st.key()?;
                    match tag {
                        2 => s.status_message = text(&mut st, wire, m)?,
                        3 => s.status_code = varint(&mut st, wire)? as i32,
                        _ => other(&mut st, wire, tag, d + 1, m)?,
                    }
                }
            }
            16 => s.flags = fixed32(&mut r, wire)?,
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(s)
}

fn event<'a>(buf: &'a [u8], m: &mut Meter<'_>) -> R<WireEvent<'a>> {
    let d = SPAN_DEPTH + 1;
    let mut e = WireEvent::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => e.time = fixed64(&mut r, wire)?,
            2 => e.name = text(&mut r, wire, m)?,
            3 => e.attributes.push(key_value(message(&mut r, wire, d + 1)?, d + 1, m)?),
            4 => e.dropped = varint(&mut r, wire)? as u32,
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(e)
}

fn link<'a>(buf: &'a [u8], m: &mut Meter<'_>) -> R<WireLink<'a>> {
    let d = SPAN_DEPTH + 1;
    let mut l = WireLink::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => l.trace_id = blob(&mut r, wire, m)?,
            2 => l.span_id = blob(&mut r, wire, m)?,
            3 => l.trace_state = text(&mut r, wire, m)?,
            4 => l.attributes.push(key_value(message(&mut r, wire, d + 1)?, d + 1, m)?),
            5 => l.dropped = varint(&mut r, wire)? as u32,
            6 => l.flags = fixed32(&mut r, wire)?,
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(l)
}

/// A resource's attributes (depth 2), every occurrence of the field merged; its entity
/// references are checked, not kept.
fn resource<'a>(buf: &'a [u8], attributes: &mut Vec<Kv<'a>>, m: &mut Meter<'_>) -> R<()> {
    let d = 2;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => attributes.push(key_value(message(&mut r, wire, d + 1)?, d + 1, m)?),
            2 => drop(varint(&mut r, wire)?),
            3 => {
                // One string to the census, which does not walk entity references.
                let body = message(&mut r, wire, d + 1)?;
                m.strings(1)?;
                let mut e = Reader::new(body);
                while !e.done() {
                    let (tag, wire) = e.key()?;
                    match tag {
                        1..=4 => drop(string(&mut e, wire)?),
                        _ => e.skip(wire, tag, d + 1)?,
                    }
                }
            }
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(())
}

/// An instrumentation scope (depth 3): name and version merged into `scope`; attributes
/// checked, not kept.
fn scope<'a>(buf: &'a [u8], scope: &mut (&'a str, &'a str), m: &mut Meter<'_>) -> R<()> {
    let d = 3;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => scope.0 = text(&mut r, wire, m)?,
            2 => scope.1 = text(&mut r, wire, m)?,
            3 => drop(key_value(message(&mut r, wire, d + 1)?, d + 1, m)?),
            4 => drop(varint(&mut r, wire)?),
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(())
}

/// The request's bytes to validated spans, by `convert::convert`'s rules; `Err` where prost
/// would fail to decode them. Unmetered: `convert_metered` pays as it goes.
pub fn convert(
    buf: &[u8],
    limits: &Limits,
    keys: &AttributeKeys,
    now_ns: u64,
    min_start_ns: u64,
) -> Result<Converted, WireError> {
    convert_metered(buf, limits, keys, now_ns, min_start_ns, &mut Meter::unbounded(buf.len()))
}

/// `convert`, counting what it reads as the census counts it and paying for it through `meter`
/// as it grows; `REFUSED` where the payer refused (its error is in the meter).
pub fn convert_metered(
    buf: &[u8],
    limits: &Limits,
    keys: &AttributeKeys,
    now_ns: u64,
    min_start_ns: u64,
    meter: &mut Meter<'_>,
) -> Result<Converted, WireError> {
    decode_convert(buf, &mut Cx::new(limits, keys), now_ns, min_start_ns, meter)
}

/// A request prost decoded (OTLP/JSON's path) to validated spans: its fields borrowed into this
/// decoder's structs, then converted by the same code.
pub fn convert_decoded(
    req: &ExportTraceServiceRequest,
    limits: &Limits,
    keys: &AttributeKeys,
    now_ns: u64,
    min_start_ns: u64,
) -> Converted {
    let groups = req.resource_spans.iter().map(prost_group).collect();
    let mut meter = Meter::unbounded(0);
    convert_groups(groups, &mut Cx::new(limits, keys), now_ns, min_start_ns, &mut meter).expect("decoded spans convert")
}

fn decode_convert(buf: &[u8], cx: &mut Cx<'_>, now_ns: u64, min_start_ns: u64, m: &mut Meter<'_>) -> R<Converted> {
    m.open()?;
    let mut r = Reader::new(buf);
    // The request's structure is read first, each span kept as its bytes; a span is decoded
    // when converted. A request prost would refuse stores nothing either way (the error
    // discards what was converted), and the spans are never moved while their list grows.
    let mut groups = Vec::new();
    while !r.done() {
        let (tag, wire) = r.key()?;
        if tag == 1 {
            let body = message(&mut r, wire, 1)?;
            m.resource()?;
            groups.push(resource_spans(body, m)?);
        } else {
            other(&mut r, wire, tag, 0, m)?;
        }
    }
    convert_groups(groups, cx, now_ns, min_start_ns, m)
}

fn convert_groups(
    groups: Vec<Group<'_>>,
    cx: &mut Cx<'_>,
    now_ns: u64,
    min_start_ns: u64,
    m: &mut Meter<'_>,
) -> R<Converted> {
    let mut out = Converted::new("span");
    out.items.reserve_exact(groups.iter().flat_map(|g: &Group<'_>| &g.scopes).map(|s| s.spans.len()).sum());
    for g in groups {
        let (attributes, _dropped) = kvs(cx, g.resource, true);
        let resource = Arc::new(Resource { attributes });
        let service = cx.name(resource.get_str("service.name").unwrap_or(UNKNOWN_SERVICE));
        for s in g.scopes {
            let (scope_name, scope_version): (Key, Key) = match s.scope {
                Some((n, v)) => (cx.str(n).into(), cx.str(v).into()),
                None => ("".into(), "".into()),
            };
            for pending in s.spans {
                let w = match pending {
                    Pending::Bytes(bytes) => span(bytes, m)?,
                    Pending::Decoded(w) => *w,
                };
                match convert_span(cx, w, &resource, &service, &scope_name, &scope_version, now_ns, min_start_ns) {
                    Ok(span) => out.items.push(span),
                    Err(reason) => out.reject(reason),
                }
            }
        }
    }
    out.truncated = cx.truncated;
    Ok(out)
}

struct Group<'a> {
    resource: Vec<Kv<'a>>,
    scopes: Vec<ScopeGroup<'a>>,
}

struct ScopeGroup<'a> {
    scope: Option<(&'a str, &'a str)>,
    spans: Vec<Pending<'a>>,
}

/// A span to convert: its message, decoded when converted (this decoder), or decoded already
/// (prost's types, `from_prost`). Boxed, so that the protobuf path's lists, which grow span by
/// span, move 16 bytes an element rather than a whole decoded span.
enum Pending<'a> {
    Bytes(&'a [u8]),
    Decoded(Box<WireSpan<'a>>),
}

fn resource_spans<'a>(buf: &'a [u8], m: &mut Meter<'_>) -> R<Group<'a>> {
    let d = 1;
    let mut g = Group { resource: Vec::new(), scopes: Vec::new() };
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => resource(message(&mut r, wire, d + 1)?, &mut g.resource, m)?,
            2 => {
                let body = message(&mut r, wire, d + 1)?;
                m.scope()?;
                g.scopes.push(scope_spans(body, m)?);
            }
            3 => drop(text(&mut r, wire, m)?),
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(g)
}

fn scope_spans<'a>(buf: &'a [u8], m: &mut Meter<'_>) -> R<ScopeGroup<'a>> {
    let d = 2;
    let mut g = ScopeGroup { scope: None, spans: Vec::new() };
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => scope(message(&mut r, wire, d + 1)?, g.scope.get_or_insert(("", "")), m)?,
            2 => {
                let body = message(&mut r, wire, d + 1)?;
                m.span()?;
                g.spans.push(Pending::Bytes(body));
            }
            3 => drop(text(&mut r, wire, m)?),
            _ => other(&mut r, wire, tag, d, m)?,
        }
    }
    Ok(g)
}

/// `Cx::kvs` on borrowed attributes.
fn kvs(cx: &mut Cx<'_>, kvs: Vec<Kv<'_>>, columns: bool) -> (Vec<KeyValue>, u32) {
    let mut refused = 0u32;
    let (out, dropped) = unique_kvs(
        cx.limits.max_attributes,
        kvs.into_iter().filter_map(|(k, v)| {
            let key = if columns { cx.column_key(k) } else { Some(cx.key(k)) };
            let Some(key) = key else {
                refused = refused.saturating_add(1);
                return None;
            };
            Some((key, value(cx, v, 0)))
        }),
    );
    let dropped = dropped.saturating_add(refused);
    if dropped > 0 {
        cx.truncated += 1;
    }
    (out, dropped)
}

/// `Cx::value` on a borrowed value.
fn value(cx: &mut Cx<'_>, v: Option<Any<'_>>, depth: usize) -> Value {
    let Some(v) = v else { return Value::Empty };
    let max_len = cx.limits.max_array_len;
    match v {
        Any::Str(s) => Value::Str(cx.text(s)),
        Any::Bool(b) => Value::Bool(b),
        Any::Int(i) => Value::Int(i),
        Any::Double(d) => Value::Double(d),
        Any::Bytes(b) => Value::Bytes(cx.bytes(b)),
        Any::Array(_) | Any::KvList(_) if depth >= cx.limits.max_value_depth => {
            cx.truncated += 1;
            Value::Empty
        }
        Any::Array(items) => {
            if items.len() > max_len {
                cx.truncated += 1;
            }
            Value::Array(items.into_iter().take(max_len).map(|v| value(cx, v, depth + 1)).collect())
        }
        Any::KvList(items) => {
            if items.len() > max_len {
                cx.truncated += 1;
            }
            Value::KvList(items.into_iter().take(max_len).map(|(k, v)| (cx.key(k), value(cx, v, depth + 1))).collect())
        }
    }
}

/// `Cx::span` on a decoded span.
#[allow(clippy::too_many_arguments)]
fn convert_span(
    cx: &mut Cx<'_>,
    s: WireSpan<'_>,
    resource: &Arc<Resource>,
    service: &Key,
    scope_name: &Key,
    scope_version: &Key,
    now_ns: u64,
    min_start_ns: u64,
) -> Result<Span, String> {
    let (trace_id, span_id, parent_span_id) =
        cx.check_span(s.trace_id, s.span_id, s.parent, s.start, s.end, now_ns, min_start_ns)?;
    let (attributes, dropped_attrs) = kvs(cx, s.attributes, true);
    let mut dropped_events = s.dropped_events;
    let mut events = Vec::with_capacity(s.events.len().min(cx.limits.max_events));
    for e in s.events {
        if events.len() == cx.limits.max_events {
            dropped_events = dropped_events.saturating_add(1);
            continue;
        }
        let (attributes, dropped) = kvs(cx, e.attributes, false);
        events.push(Event {
            time_ns: e.time,
            name: cx.str(e.name),
            attributes,
            dropped_attributes: e.dropped.saturating_add(dropped),
        });
    }
    let mut dropped_links = s.dropped_links;
    let mut links = Vec::with_capacity(s.links.len().min(cx.limits.max_links));
    for l in s.links {
        let ids = wire_id(TraceId::from_wire, l.trace_id, "link trace_id")
            .and_then(|t| Ok((t, wire_id(SpanId::from_wire, l.span_id, "link span_id")?)));
        let Ok((trace_id, span_id)) = ids else {
            dropped_links = dropped_links.saturating_add(1);
            continue;
        };
        if links.len() == cx.limits.max_links {
            dropped_links = dropped_links.saturating_add(1);
            continue;
        }
        let (attributes, dropped) = kvs(cx, l.attributes, false);
        links.push(Link {
            trace_id,
            span_id,
            trace_state: cx.str(l.trace_state),
            attributes,
            dropped_attributes: l.dropped.saturating_add(dropped),
            flags: l.flags,
        });
    }
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: cx.str(s.trace_state),
        flags: s.flags,
        service: service.clone(),
        name: cx.text(s.name),
        kind: u8::try_from(s.kind).ok().filter(|k| *k <= 5).unwrap_or(0),
        start_ns: s.start,
        duration_ns: s.end - s.start,
        status_code: u8::try_from(s.status_code).ok().filter(|c| *c <= 2).unwrap_or(0),
        status_message: cx.str(s.status_message),
        scope_name: scope_name.clone(),
        scope_version: scope_version.clone(),
        attributes,
        events,
        links,
        dropped_attributes: s.dropped_attributes.saturating_add(dropped_attrs),
        dropped_events,
        dropped_links,
        resource: resource.clone(),
    })
}

fn prost_group(rs: &ResourceSpans) -> Group<'_> {
    Group {
        resource: rs.resource.iter().flat_map(|r| &r.attributes).map(prost_kv).collect(),
        scopes: rs
            .scope_spans
            .iter()
            .map(|ss| ScopeGroup {
                scope: ss.scope.as_ref().map(|s| (s.name.as_str(), s.version.as_str())),
                spans: ss.spans.iter().map(|s| Pending::Decoded(Box::new(prost_span(s)))).collect(),
            })
            .collect(),
    }
}

fn prost_span(s: &otlp::Span) -> WireSpan<'_> {
    let status = s.status.as_ref();
    WireSpan {
        trace_id: &s.trace_id,
        span_id: &s.span_id,
        trace_state: &s.trace_state,
        parent: &s.parent_span_id,
        flags: s.flags,
        name: &s.name,
        kind: s.kind,
        start: s.start_time_unix_nano,
        end: s.end_time_unix_nano,
        attributes: s.attributes.iter().map(prost_kv).collect(),
        dropped_attributes: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| WireEvent {
                time: e.time_unix_nano,
                name: &e.name,
                attributes: e.attributes.iter().map(prost_kv).collect(),
                dropped: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| WireLink {
                trace_id: &l.trace_id,
                span_id: &l.span_id,
                trace_state: &l.trace_state,
                attributes: l.attributes.iter().map(prost_kv).collect(),
                dropped: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links: s.dropped_links_count,
        status_message: status.map_or("", |st| st.message.as_str()),
        status_code: status.map_or(0, |st| st.code),
    }
}

fn prost_kv(kv: &OtlpKeyValue) -> Kv<'_> {
    (&kv.key, prost_any(kv.value.as_ref()))
}

fn prost_any(v: Option<&AnyValue>) -> Option<Any<'_>> {
    Some(match v?.value.as_ref()? {
        any_value::Value::StringValue(s) => Any::Str(s),
        any_value::Value::BoolValue(b) => Any::Bool(*b),
        any_value::Value::IntValue(i) => Any::Int(*i),
        any_value::Value::DoubleValue(d) => Any::Double(*d),
        any_value::Value::BytesValue(b) => Any::Bytes(b),
        any_value::Value::ArrayValue(a) => Any::Array(a.values.iter().map(|v| prost_any(Some(v))).collect()),
        any_value::Value::KvlistValue(l) => Any::KvList(l.values.iter().map(prost_kv).collect()),
    })
}

#[cfg(test)]
mod tests;
