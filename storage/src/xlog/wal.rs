//! Write-ahead-log encoding of a batch of native XLog records. Its first byte tells it apart from
//! a batch of spans (`codec::row`), which share the `wal` column family.

use std::sync::Arc;

use super::XLog;
use crate::codec::row::{put_kvs, read_kvs};
use crate::codec::{corrupt, put_str, varint, Reader};
use crate::error::StorageError;
use crate::model::{Resource, SpanId, TraceId};

pub const XLOG_FORMAT: u8 = b'X';

pub fn is_xlog_batch(buf: &[u8]) -> bool {
    buf.first() == Some(&XLOG_FORMAT)
}

pub fn encode_batch(records: &[XLog]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 160);
    out.push(XLOG_FORMAT);
    varint::put(&mut out, records.len() as u64);
    for x in records {
        out.extend_from_slice(&x.trace_id.0);
        out.extend_from_slice(&x.span_id.0);
        for s in [&x.service, &x.instance, &x.endpoint, &x.error_message, &x.client_ip, &x.user_id] {
            put_str(&mut out, s);
        }
        put_str(&mut out, &x.user_agent);
        put_str(&mut out, &x.referer);
        for v in [x.start_ns, x.elapsed_ns, u64::from(x.error), u64::from(x.http_status), x.cpu_ns, x.alloc_bytes] {
            varint::put(&mut out, v);
        }
        for v in [u64::from(x.sql_count), x.sql_ns, u64::from(x.api_count), x.api_ns] {
            varint::put(&mut out, v);
        }
        put_kvs(&mut out, &x.attributes);
        put_kvs(&mut out, &x.resource.attributes);
    }
    out
}

pub fn decode_batch(buf: &[u8]) -> Result<Vec<XLog>, StorageError> {
    let mut r = Reader::new(buf);
    if r.u8()? != XLOG_FORMAT {
        return Err(corrupt("not an xlog batch"));
    }
    // At least ids and a dozen empty fields per record.
    let n = r.count(40)?;
    let mut out = Vec::with_capacity(n);
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| corrupt("xlog u32 field"));
    for _ in 0..n {
        let trace_id = TraceId(r.array()?);
        let span_id = SpanId(r.array()?);
        let mut strs: [Arc<str>; 8] = Default::default();
        for s in &mut strs {
            *s = r.str()?.into();
        }
        let [service, instance, endpoint, error_message, client_ip, user_id, user_agent, referer] = strs;
        let mut nums = [0u64; 10];
        for v in &mut nums {
            *v = r.varint()?;
        }
        let [start_ns, elapsed_ns, error, http_status, cpu_ns, alloc_bytes, sql_count, sql_ns, api_count, api_ns] =
            nums;
        let attributes = read_kvs(&mut r)?;
        let resource = read_kvs(&mut r)?;
        out.push(XLog {
            trace_id,
            span_id,
            service,
            instance,
            endpoint,
            start_ns,
            elapsed_ns,
            error: error != 0,
            error_message,
            http_status: u32_of(http_status)?,
            client_ip,
            user_id,
            user_agent,
            referer,
            cpu_ns,
            alloc_bytes,
            sql_count: u32_of(sql_count)?,
            sql_ns,
            api_count: u32_of(api_count)?,
            api_ns,
            attributes: attributes.into(),
            resource: Arc::new(Resource { attributes: resource }),
        });
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes after xlog batch"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::arb_xlog;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn xlog_batches_round_trip(batch in proptest::collection::vec(arb_xlog(), 0..20)) {
            let enc = encode_batch(&batch);
            prop_assert!(is_xlog_batch(&enc));
            prop_assert_eq!(decode_batch(&enc).unwrap(), batch);
        }

        #[test]
        fn truncated_batches_are_errors(batch in proptest::collection::vec(arb_xlog(), 1..5), cut in 1usize..200) {
            let enc = encode_batch(&batch);
            let cut = cut.min(enc.len() - 1);
            prop_assert!(decode_batch(&enc[..enc.len() - cut]).is_err());
        }
    }
}
