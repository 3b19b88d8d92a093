//! Row encoding of a batch of spans: the write-ahead log's record format. Resources shared by
//! several spans of the batch are written once.

use std::sync::Arc;

use super::{corrupt, put_str, varint, Reader};
use crate::error::StorageError;
use crate::model::{Event, KeyValue, Link, Resource, Span, SpanId, TraceId, Value};

const ROW_FORMAT: u8 = 1;
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
            for item in items {
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
    if depth > MAX_VALUE_DEPTH {
        return Err(corrupt("value nested too deep"));
    }
    Ok(match r.u8()? {
        TAG_EMPTY => Value::Empty,
        TAG_STR => Value::Str(r.string()?),
        TAG_FALSE => Value::Bool(false),
        TAG_TRUE => Value::Bool(true),
        TAG_INT => Value::Int(varint::unzigzag(r.varint()?)),
        TAG_DOUBLE => Value::Double(f64::from_le_bytes(r.array()?)),
        TAG_BYTES => {
            let n = r.varint()? as usize;
            Value::Bytes(r.bytes(n)?.to_vec())
        }
        TAG_ARRAY => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(r, depth + 1)?);
            }
            Value::Array(items)
        }
        TAG_KVLIST => Value::KvList(read_kvs_at(r, depth + 1)?),
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
    let n = r.count(2)?;
    let mut kvs = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.string()?;
        kvs.push((k.into(), read_value(r, depth)?));
    }
    Ok(kvs)
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

/// Encodes a batch; spans that share an `Arc<Resource>` share its encoding.
pub fn encode_batch(spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 256);
    out.push(ROW_FORMAT);
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
        put_kvs(&mut out, &r.attributes);
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
        put_str(&mut out, &s.service);
        put_str(&mut out, &s.name);
        out.push(s.kind);
        varint::put(&mut out, s.start_ns);
        varint::put(&mut out, s.duration_ns);
        out.push(s.status_code);
        put_str(&mut out, &s.status_message);
        put_str(&mut out, &s.scope_name);
        put_str(&mut out, &s.scope_version);
        put_kvs(&mut out, &s.attributes);
        put_events(&mut out, s.start_ns, &s.events);
        put_links(&mut out, &s.links);
        varint::put(&mut out, u64::from(s.dropped_attributes));
        varint::put(&mut out, u64::from(s.dropped_events));
        varint::put(&mut out, u64::from(s.dropped_links));
    }
    out
}

pub fn decode_batch(buf: &[u8]) -> Result<Vec<Span>, StorageError> {
    let mut r = Reader::new(buf);
    if r.u8()? != ROW_FORMAT {
        return Err(corrupt("unknown row format"));
    }
    let n_res = r.count(1)?;
    let mut resources = Vec::with_capacity(n_res);
    for _ in 0..n_res {
        resources.push(Arc::new(Resource { attributes: read_kvs(&mut r)? }));
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
        let service = r.string()?;
        let name = r.string()?;
        let kind = r.u8()?;
        let start_ns = r.varint()?;
        let duration_ns = r.varint()?;
        let status_code = r.u8()?;
        let status_message = r.string()?;
        let scope_name = r.string()?;
        let scope_version = r.string()?;
        let attributes = read_kvs(&mut r)?;
        let events = read_events(&mut r, start_ns)?;
        let links = read_links(&mut r)?;
        spans.push(Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags,
            service: service.into(),
            name,
            kind,
            start_ns,
            duration_ns,
            status_code,
            status_message,
            scope_name: scope_name.into(),
            scope_version: scope_version.into(),
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
    use crate::testing::arb_batch;
    use proptest::prelude::*;

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
