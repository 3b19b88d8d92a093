//! The scatter's two encodings. JSON is written by hand: a million points through `serde_json`
//! values would cost more than the scan that found them.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow_schema::{ArrowError, Field, Schema};
use rewind_storage::Points;
#[cfg(test)]
use rewind_storage::TraceId;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decimal digits of `v`, written without `fmt` (a million points make it count).
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Milliseconds with up to three decimals (microseconds), without float formatting.
fn push_ms(out: &mut Vec<u8>, ns: u64) {
    let us = ns.saturating_add(500) / 1000;
    push_u64(out, us / 1000);
    let frac = us % 1000;
    if frac != 0 {
        let digits = [b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
        let keep = 3 - digits.iter().rev().take_while(|d| **d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..keep]);
    }
}

fn column<T>(out: &mut Vec<u8>, name: &str, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, x);
    }
    out.extend_from_slice(b"],");
}

pub fn json(p: &Points) -> Vec<u8> {
    let n = p.end_ns.len();
    let mut out = Vec::with_capacity(96 + n * 96);
    // Service names escaped once, not once per point.
    let services: Vec<String> =
        p.services.iter().map(|s| serde_json::to_string(s).expect("strings serialize")).collect();
    out.push(b'{');
    column(&mut out, "end_ms", &p.end_ns, |o, ns| push_ms(o, *ns));
    column(&mut out, "elapsed_ms", &p.elapsed_ns, |o, ns| push_ms(o, *ns));
    column(&mut out, "error", &p.error, |o, e| o.extend_from_slice(if *e { b"true" } else { b"false" }));
    column(&mut out, "trace_id", &p.trace_id, |o, id| {
        o.push(b'"');
        for b in id.0 {
            o.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        o.push(b'"');
    });
    column(&mut out, "service", &p.service, |o, s| o.extend_from_slice(services[*s as usize].as_bytes()));
    column(&mut out, "sql_ms", &p.sql_ns, |o, ns| push_ms(o, *ns));
    column(&mut out, "api_ms", &p.api_ns, |o, ns| push_ms(o, *ns));
    column(&mut out, "cpu_ms", &p.cpu_ns, |o, ns| push_ms(o, *ns));
    out.extend_from_slice(format!("\"count\":{n},\"truncated\":{}}}", p.truncated).as_bytes());
    out
}

/// One record batch in the Arrow IPC stream format: `end_ms` (int64), `elapsed_ms`, `sql_ms`,
/// `api_ms`, `cpu_ms` (float64), `error` (bool), `trace_id` (16 bytes), `service` (dictionary).
/// Schema metadata `truncated` says whether the limit cut some.
pub fn arrow(p: &Points) -> Result<Vec<u8>, ArrowError> {
    let ms = |v: &[u64]| -> ArrayRef { Arc::new(Float64Array::from_iter_values(v.iter().map(|ns| *ns as f64 / 1e6))) };
    let ids =
        FixedSizeBinaryArray::try_new(16, p.trace_id.iter().flat_map(|id| id.0).collect::<Vec<u8>>().into(), None)?;
    let keys = Int32Array::from_iter_values(p.service.iter().map(|i| *i as i32));
    let services = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(p.services.clone())))?;
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("end_ms", Arc::new(Int64Array::from_iter_values(p.end_ns.iter().map(|ns| (*ns / 1_000_000) as i64)))),
        ("elapsed_ms", ms(&p.elapsed_ns)),
        ("error", Arc::new(BooleanArray::from(p.error.clone()))),
        ("trace_id", Arc::new(ids)),
        ("service", Arc::new(services)),
        ("sql_ms", ms(&p.sql_ns)),
        ("api_ms", ms(&p.api_ns)),
        ("cpu_ms", ms(&p.cpu_ns)),
    ];
    let fields: Vec<Field> = columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), false)).collect();
    let metadata = [("truncated".to_string(), p.truncated.to_string())].into_iter().collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())?;
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema)?;
        w.write(&batch)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Points {
        Points {
            end_ns: vec![1_700_000_000_123_456_789, 1_700_000_001_000_000_000],
            elapsed_ns: vec![12_345_678, 1_000_000],
            error: vec![false, true],
            trace_id: vec![TraceId([0xab; 16]), TraceId([1; 16])],
            service: vec![0, 1],
            services: vec!["cart".into(), "quote\"d".into()],
            sql_ns: vec![0, 500],
            api_ns: vec![2_000_000, 0],
            cpu_ns: vec![0, 0],
            truncated: true,
        }
    }

    #[test]
    fn json_is_valid_and_columnar() {
        let v: serde_json::Value = serde_json::from_slice(&json(&points())).unwrap();
        assert_eq!(v["end_ms"], serde_json::json!([1_700_000_000_123.457, 1_700_000_001_000u64]));
        assert_eq!(v["elapsed_ms"], serde_json::json!([12.346, 1]));
        assert_eq!(v["error"], serde_json::json!([false, true]));
        assert_eq!(v["trace_id"][0], "ab".repeat(16));
        assert_eq!(v["service"], serde_json::json!(["cart", "quote\"d"]));
        assert_eq!(v["sql_ms"], serde_json::json!([0, 0.001]));
        assert_eq!((v["count"].as_u64(), v["truncated"].as_bool()), (Some(2), Some(true)));
        let empty: serde_json::Value = serde_json::from_slice(&json(&Points::default())).unwrap();
        assert_eq!(empty["count"], 0);
    }

    /// The hand-written JSON is the shape the OpenAPI description gives (`ScatterAnswer`, which
    /// refuses unknown fields): every column, nothing else.
    #[test]
    fn json_is_the_described_answer() {
        let a: super::super::ScatterAnswer = serde_json::from_slice(&json(&points())).unwrap();
        assert_eq!((a.count, a.truncated, a.end_ms.len(), a.cpu_ms.len()), (2, true, 2, 2));
        serde_json::from_slice::<super::super::ScatterAnswer>(&json(&Points::default())).unwrap();
    }

    #[test]
    fn arrow_reads_back() {
        let bytes = arrow(&points()).unwrap();
        let mut r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
        assert_eq!(r.schema().metadata()["truncated"], "true");
        let batch = r.next().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let end = batch.column_by_name("end_ms").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(end.value(0), 1_700_000_000_123);
        let err = batch.column_by_name("error").unwrap().as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(err.value(1));
        assert!(r.next().is_none());
    }
}
