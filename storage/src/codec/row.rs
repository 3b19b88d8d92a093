//! Row encoding of a batch of spans: the write-ahead log's record format. Resources shared by
//! several spans of the batch are written once.

use std::sync::Arc;

use super::distinct::Distinct;
use super::{corrupt, put_str, put_strs, varint, Reader};
use crate::error::StorageError;
use crate::model::{Event, Key, KeyValue, Link, Resource, Span, SpanId, TraceId, Value};

/// Every name inline: stores written before the name table. Read, never written.
const ROW_FORMAT_INLINE: u8 = 1;
/// Names in a table at the end of the batch. Read, never written.
const ROW_FORMAT_NAMES: u8 = 2;
/// Format 2, with short string values of resources and spans in the name table too.
const ROW_FORMAT: u8 = 3;
/// The header of formats 2 and 3: the format byte and where the name table starts (u64,
/// little-endian).
const HEADER: usize = 9;
/// String values up to this long go through the name table: methods, routes, hosts and
/// statements repeat across a request's spans (the decoders intern the same ones). Longer
/// values rarely repeat and would only lengthen the table.
const MAX_NAMED_VALUE: usize = 128;
/// The most names a batch's table reserves room for before it grows as it fills.
const MAX_EXPECTED_NAMES: usize = 4096;
/// Deeper values are refused on decode; the collector never produces them.
pub const MAX_VALUE_DEPTH: usize = 32;

const TAG_EMPTY: u8 = 0;
const TAG_STR: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;
const TAG_INT: u8 = 4;
const TAG_DOUBLE: u8 = 5;
const TAG_BYTES: u8 = 6;
const TAG_ARRAY: u8 = 7;
const TAG_KVLIST: u8 = 8;
/// A string value as an index into the batch's name table (format 3, attributes of resources
/// and spans only).
const TAG_NAMED: u8 = 9;

pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Empty => out.push(TAG_EMPTY),
        Value::Str(s) => {
            out.push(TAG_STR);
            put_str(out, s);
        }
        Value::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        Value::Int(i) => {
            out.push(TAG_INT);
            varint::put(out, varint::zigzag(*i));
        }
        Value::Double(d) => {
            out.push(TAG_DOUBLE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTES);
            varint::put(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            varint::put(out, items.len() as u64);
            for item in items.iter() {
                put_value(out, item);
            }
        }
        Value::KvList(kvs) => {
            out.push(TAG_KVLIST);
            put_kvs(out, kvs);
        }
    }
}

pub fn read_value(r: &mut Reader<'_>, depth: usize) -> Result<Value, StorageError> {
    let tag = r.u8()?;
    value_of(tag, r, depth)
}

/// The value whose tag was just read.
fn value_of(tag: u8, r: &mut Reader<'_>, depth: usize) -> Result<Value, StorageError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(corrupt("value nested too deep"));
    }
    Ok(match tag {
        TAG_EMPTY => Value::Empty,
        TAG_STR => Value::Str(r.str()?.into()),
        TAG_FALSE => Value::Bool(false),
        TAG_TRUE => Value::Bool(true),
        TAG_INT => Value::Int(varint::unzigzag(r.varint()?)),
        TAG_DOUBLE => Value::Double(f64::from_le_bytes(r.array()?)),
        TAG_BYTES => {
            let n = r.varint()? as usize;
            Value::Bytes(r.bytes(n)?.into())
        }
        TAG_ARRAY => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(r, depth + 1)?);
            }
            Value::Array(items.into())
        }
        TAG_KVLIST => Value::KvList(read_kvs_at(r, depth + 1)?.into()),
        _ => return Err(corrupt("unknown value tag")),
    })
}

pub fn put_kvs(out: &mut Vec<u8>, kvs: &[KeyValue]) {
    varint::put(out, kvs.len() as u64);
    for (k, v) in kvs {
        put_str(out, k);
        put_value(out, v);
    }
}

pub fn read_kvs(r: &mut Reader<'_>) -> Result<Vec<KeyValue>, StorageError> {
    read_kvs_at(r, 0)
}

fn read_kvs_at(r: &mut Reader<'_>, depth: usize) -> Result<Vec<KeyValue>, StorageError> {
    Text::INLINE.kvs(r, depth)
}

/// How a log record's text reads: all inline (format 1), names from the batch's table
/// (format 2), short string values from it too (format 3).
#[derive(Clone, Copy)]
struct Text<'n> {
    names: Option<&'n [Key]>,
    values: bool,
}

impl Text<'_> {
    const INLINE: Text<'static> = Text { names: None, values: false };

    fn name(self, r: &mut Reader<'_>) -> Result<Key, StorageError> {
        match self.names {
            Some(names) => name(r, names),
            None => Ok(r.str()?.into()),
        }
    }

    fn value(self, r: &mut Reader<'_>, depth: usize) -> Result<Value, StorageError> {
        let tag = r.u8()?;
        match self.names {
            Some(names) if tag == TAG_NAMED && self.values => Ok(Value::Str(name(r, names)?)),
            _ => value_of(tag, r, depth),
        }
    }

    fn kvs(self, r: &mut Reader<'_>, depth: usize) -> Result<Vec<KeyValue>, StorageError> {
        let n = r.count(2)?;
        let mut kvs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.name(r)?;
            kvs.push((k, self.value(r, depth)?));
        }
        Ok(kvs)
    }
}

pub fn put_events(out: &mut Vec<u8>, span_start_ns: u64, events: &[Event]) {
    varint::put(out, events.len() as u64);
    for e in events {
        // Relative to the span's start: small, and events before the start stay representable.
        varint::put(out, varint::zigzag(e.time_ns.wrapping_sub(span_start_ns) as i64));
        put_str(out, &e.name);
        put_kvs(out, &e.attributes);
        varint::put(out, u64::from(e.dropped_attributes));
    }
}

pub fn read_events(r: &mut Reader<'_>, span_start_ns: u64) -> Result<Vec<Event>, StorageError> {
    let n = r.count(4)?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let delta = varint::unzigzag(r.varint()?);
        events.push(Event {
            time_ns: span_start_ns.wrapping_add(delta as u64),
            name: r.string()?,
            attributes: read_kvs(r)?,
            dropped_attributes: r.varint_u32()?,
        });
    }
    Ok(events)
}

pub fn put_links(out: &mut Vec<u8>, links: &[Link]) {
    varint::put(out, links.len() as u64);
    for l in links {
        out.extend_from_slice(&l.trace_id.0);
        out.extend_from_slice(&l.span_id.0);
        put_str(out, &l.trace_state);
        put_kvs(out, &l.attributes);
        varint::put(out, u64::from(l.dropped_attributes));
        varint::put(out, u64::from(l.flags));
    }
}

pub fn read_links(r: &mut Reader<'_>) -> Result<Vec<Link>, StorageError> {
    let n = r.count(28)?;
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        links.push(Link {
            trace_id: TraceId(r.array()?),
            span_id: SpanId(r.array()?),
            trace_state: r.string()?,
            attributes: read_kvs(r)?,
            dropped_attributes: r.varint_u32()?,
            flags: r.varint_u32()?,
        });
    }
    Ok(links)
}

/// Names a batch repeats (attribute keys, services, span and scope names, short string values)
/// are written once, in a table, and referred to by index: they are most of a span's bytes
/// otherwise, and every byte of a log record is copied and checksummed several times on its way
/// to disk.
struct Names<'a>(Distinct<'a>);

impl<'a> Names<'a> {
    fn put(&mut self, out: &mut Vec<u8>, s: &'a str) {
        varint::put(out, u64::from(self.0.code(s)));
    }

    fn put_kvs(&mut self, out: &mut Vec<u8>, kvs: &'a [KeyValue]) {
        varint::put(out, kvs.len() as u64);
        for (k, v) in kvs {
            self.put(out, k);
            match v {
                Value::Str(s) if s.len() <= MAX_NAMED_VALUE => {
                    out.push(TAG_NAMED);
                    self.put(out, s);
                }
                v => put_value(out, v),
            }
        }
    }
}

fn name(r: &mut Reader<'_>, names: &[Key]) -> Result<Key, StorageError> {
    let i = r.varint()?;
    usize::try_from(i).ok().and_then(|i| names.get(i)).cloned().ok_or_else(|| corrupt("name index"))
}

/// Encodes a batch: a header with where the name table starts, the resources (spans that share
/// an `Arc<Resource>` share its encoding), the spans, then the name table.
pub fn encode_batch(spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 160);
    out.push(ROW_FORMAT);
    out.extend_from_slice(&[0; HEADER - 1]);
    // A shop span names about ten strings: keys, values, its service, name and scope.
    // A shop request has a few hundred distinct (each interns its names and short values once);
    // capped, so that a request of a million bare spans does not reserve for two million.
    let mut names =
        Names(Distinct::with_capacity(spans.len() * 10).room_for((spans.len() * 2).min(MAX_EXPECTED_NAMES)));
    let mut resources: Vec<&Arc<Resource>> = Vec::new();
    let mut resource_of = Vec::with_capacity(spans.len());
    for s in spans {
        // Batches come from one export request: a handful of resources, so a linear scan wins.
        let idx = match resources.iter().position(|r| Arc::ptr_eq(r, &s.resource)) {
            Some(i) => i,
            None => {
                resources.push(&s.resource);
                resources.len() - 1
            }
        };
        resource_of.push(idx);
    }
    varint::put(&mut out, resources.len() as u64);
    for r in &resources {
        names.put_kvs(&mut out, &r.attributes);
    }
    varint::put(&mut out, spans.len() as u64);
    for (s, res) in spans.iter().zip(resource_of) {
        varint::put(&mut out, res as u64);
        out.extend_from_slice(&s.trace_id.0);
        out.extend_from_slice(&s.span_id.0);
        match s.parent_span_id {
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.0);
            }
            None => out.push(0),
        }
        put_str(&mut out, &s.trace_state);
        varint::put(&mut out, u64::from(s.flags));
        names.put(&mut out, &s.service);
        names.put(&mut out, &s.name);
        out.push(s.kind);
        varint::put(&mut out, s.start_ns);
        varint::put(&mut out, s.duration_ns);
        out.push(s.status_code);
        put_str(&mut out, &s.status_message);
        names.put(&mut out, &s.scope_name);
        names.put(&mut out, &s.scope_version);
        names.put_kvs(&mut out, &s.attributes);
        put_events(&mut out, s.start_ns, &s.events);
        put_links(&mut out, &s.links);
        varint::put(&mut out, u64::from(s.dropped_attributes));
        varint::put(&mut out, u64::from(s.dropped_events));
        varint::put(&mut out, u64::from(s.dropped_links));
    }
    // Eight bytes: what a request decodes into is bounded by configuration, not below 4 GiB.
    let table = out.len() as u64;
    out[1..HEADER].copy_from_slice(&table.to_le_bytes());
    put_strs(&mut out, names.0.list());
    out
}

pub fn decode_batch(buf: &[u8]) -> Result<Vec<Span>, StorageError> {
    let mut r = Reader::new(buf);
    let format = r.u8()?;
    let (mut r, names) = match format {
        ROW_FORMAT_INLINE => (r, None),
        ROW_FORMAT_NAMES | ROW_FORMAT => {
            let at = u64::from_le_bytes(r.array()?);
            let at = usize::try_from(at).ok().filter(|at| (HEADER..=buf.len()).contains(at));
            let Some(at) = at else {
                return Err(corrupt("name table offset"));
            };
            let mut t = Reader::new(&buf[at..]);
            let n = t.count(1)?;
            let mut names: Vec<Key> = Vec::with_capacity(n);
            for _ in 0..n {
                names.push(t.str()?.into());
            }
            if !t.is_empty() {
                return Err(corrupt("trailing bytes after the name table"));
            }
            (Reader::new(&buf[HEADER..at]), Some(names))
        }
        _ => return Err(corrupt("unknown row format")),
    };
    let t = Text { names: names.as_deref(), values: format == ROW_FORMAT };
    let text = |r: &mut Reader<'_>| t.name(r);
    let kvs = |r: &mut Reader<'_>| t.kvs(r, 0);
    let n_res = r.count(1)?;
    let mut resources = Vec::with_capacity(n_res);
    for _ in 0..n_res {
        resources.push(Arc::new(Resource { attributes: kvs(&mut r)? }));
    }
    let n = r.count(40)?;
    let mut spans = Vec::with_capacity(n);
    for _ in 0..n {
        let res = r.varint()? as usize;
        let resource = resources.get(res).cloned().ok_or_else(|| corrupt("resource index"))?;
        let trace_id = TraceId(r.array()?);
        let span_id = SpanId(r.array()?);
        let parent_span_id = match r.u8()? {
            0 => None,
            1 => Some(SpanId(r.array()?)),
            _ => return Err(corrupt("parent tag")),
        };
        let trace_state = r.string()?;
        let flags = r.varint_u32()?;
        let service = text(&mut r)?;
        let name = text(&mut r)?;
        let kind = r.u8()?;
        let start_ns = r.varint()?;
        let duration_ns = r.varint()?;
        let status_code = r.u8()?;
        let status_message = r.string()?;
        let scope_name = text(&mut r)?;
        let scope_version = text(&mut r)?;
        let attributes = kvs(&mut r)?;
        let events = read_events(&mut r, start_ns)?;
        let links = read_links(&mut r)?;
        spans.push(Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags,
            service,
            name,
            kind,
            start_ns,
            duration_ns,
            status_code,
            status_message,
            scope_name,
            scope_version,
            attributes,
            events,
            links,
            dropped_attributes: r.varint_u32()?,
            dropped_events: r.varint_u32()?,
            dropped_links: r.varint_u32()?,
            resource,
        });
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes after batch"));
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, arb_batch};
    use proptest::prelude::*;

    /// Two spans as a build before the name table wrote them (format 1, every name inline).
    const FORMAT_1: &str = "0101010c736572766963652e6e616d650103737663020001010101010101010101010101010101000000000000000200000103737663036f70320280a094a58d1dc0843d00000000020a687474702e726f75746501052f63617274016e040e00000000000001010101010101010101010101010101000000000000000200000103737663036f70320280a094a58d1dc0843d00000000020a687474702e726f75746501052f63617274016e040e0000000000";

    /// An older record of the two spans reads back as them; written again it takes the current
    /// format, shorter (names and values the two spans repeat written once), which is returned.
    fn reads_as_the_two_spans(old: &[u8]) -> Vec<u8> {
        let s = testing::span(1, 2).attrs(&[("http.route", Value::Str("/cart".into())), ("n", Value::Int(7))]).build();
        assert_eq!(decode_batch(old).unwrap(), vec![s.clone(), s.clone()]);
        let again = encode_batch(&[s.clone(), s]);
        assert_eq!(again[0], ROW_FORMAT);
        assert!(again.len() < old.len(), "{} against {}", again.len(), old.len());
        again
    }

    #[test]
    fn a_log_record_written_before_the_name_table_still_reads() {
        reads_as_the_two_spans(&hex(FORMAT_1));
    }

    /// The same two spans as format 2 wrote them: names in the table, values inline.
    const FORMAT_2: &str = "028c000000000000000101000103737663020001010101010101010101010101010101000000000000000200000101020280a094a58d1dc0843d00000303020401052f6361727405040e00000000000001010101010101010101010101010101000000000000000200000101020280a094a58d1dc0843d00000303020401052f6361727405040e0000000000060c736572766963652e6e616d6503737663036f7032000a687474702e726f757465016e";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn a_log_record_written_before_values_were_named_still_reads() {
        let again = reads_as_the_two_spans(&hex(FORMAT_2));
        // A named value in a format 2 record is an unknown tag there, not a name.
        // The table: service.name, svc, op, "" (the scope), http.route, /cart, n.
        let named = again.windows(2).position(|w| w == [TAG_NAMED, 5]).expect("the route is named");
        let mut old = again.clone();
        old[0] = ROW_FORMAT_NAMES;
        assert!(decode_batch(&old).is_err());
        // And a name index past the table is corrupt.
        let mut past = again;
        past[named + 1] = 0x7f;
        assert!(decode_batch(&past).is_err());
    }

    /// Short values are written once a batch and read back shared; long ones stay inline.
    #[test]
    fn short_values_are_written_once_and_read_back_shared() {
        let long = "x".repeat(MAX_NAMED_VALUE + 1);
        let span = |i: u64| {
            testing::span(1, i)
                .attrs(&[("db.query.text", Value::Str("SELECT 1".into())), ("blob", Value::Str(long.as_str().into()))])
                .build()
        };
        let spans: Vec<Span> = (1..=3).map(span).collect();
        let bytes = encode_batch(&spans);
        let occurrences = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(occurrences(b"SELECT 1"), 1);
        assert_eq!(occurrences(long.as_bytes()), 3);
        let back = decode_batch(&bytes).unwrap();
        assert_eq!(back, spans);
        let value = |s: &Span| match &s.attributes[0].1 {
            Value::Str(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert!(Arc::ptr_eq(&value(&back[0]), &value(&back[2])));
    }

    #[test]
    fn a_name_table_out_of_bounds_is_corrupt() {
        let mut bytes = encode_batch(&[testing::span(1, 2).build()]);
        let past = (bytes.len() as u64 + 1).to_le_bytes();
        bytes[1..HEADER].copy_from_slice(&past);
        assert!(decode_batch(&bytes).is_err());
        bytes[1..HEADER].copy_from_slice(&2u64.to_le_bytes());
        assert!(decode_batch(&bytes).is_err());
        bytes[1..HEADER].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_batch(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn batch_round_trips(batch in arb_batch()) {
            let bytes = encode_batch(&batch);
            prop_assert_eq!(decode_batch(&bytes).unwrap(), batch);
        }

        #[test]
        fn truncated_batch_is_an_error_not_a_panic(batch in arb_batch(), cut in 0usize..1000) {
            let bytes = encode_batch(&batch);
            if cut < bytes.len() {
                prop_assert!(decode_batch(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batch(&bytes);
        }
    }
}
