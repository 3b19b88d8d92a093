//! A query's answer: JSON (`{"columns": [...], "types": [...], "rows": [[...]]}`, timestamps as
//! RFC 3339 text, maps as objects) or Arrow IPC (the stream format).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type};
use datafusion::arrow::datatypes::{SchemaRef, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::SqlError;

/// A column of the answer: its name and its SQL type as DataFusion names it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// The JSON answer of `POST /api/sql`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub columns: Vec<String>,
    pub types: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

pub fn json(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Answer, SqlError> {
    let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types =
        schema.fields().iter().map(|f| Column { name: f.name().clone(), ty: f.data_type().to_string() }).collect();
    let mut rows = Vec::new();
    for b in batches {
        let cells: Vec<Vec<Value>> = b.columns().iter().map(|a| cells(a.as_ref())).collect::<Result<_, SqlError>>()?;
        for r in 0..b.num_rows() {
            rows.push(cells.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(Answer { columns, types, rows })
}

fn number(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Every cell of a column as JSON.
fn cells(a: &dyn Array) -> Result<Vec<Value>, SqlError> {
    let n = a.len();
    let each = |f: &dyn Fn(usize) -> Value| -> Vec<Value> {
        (0..n).map(|i| if a.is_null(i) { Value::Null } else { f(i) }).collect()
    };
    macro_rules! prim {
        ($t:ty, $conv:expr) => {{
            let p = a.as_primitive::<$t>();
            each(&|i| $conv(p.value(i)))
        }};
    }
    Ok(match a.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let b = a.as_boolean();
            each(&|i| Value::Bool(b.value(i)))
        }
        DataType::Int8 => prim!(Int8Type, |v: i8| Value::from(v)),
        DataType::Int16 => prim!(Int16Type, |v: i16| Value::from(v)),
        DataType::Int32 => prim!(Int32Type, |v: i32| Value::from(v)),
        DataType::Int64 => prim!(Int64Type, |v: i64| Value::from(v)),
        DataType::UInt8 => prim!(UInt8Type, |v: u8| Value::from(v)),
        DataType::UInt16 => prim!(UInt16Type, |v: u16| Value::from(v)),
        DataType::UInt32 => prim!(UInt32Type, |v: u32| Value::from(v)),
        DataType::UInt64 => prim!(UInt64Type, |v: u64| Value::from(v)),
        DataType::Float32 => prim!(Float32Type, |v: f32| number(f64::from(v))),
        DataType::Float64 => prim!(Float64Type, number),
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            each(&|i| Value::String(s.value(i).to_string()))
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            each(&|i| Value::String(s.value(i).to_string()))
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            each(&|i| Value::String(s.value(i).to_string()))
        }
        DataType::Map(..) => {
            let m = a.as_map();
            let (keys, values) = (m.keys(), m.values());
            let (kf, vf) = (formatter(keys.as_ref())?, formatter(values.as_ref())?);
            let offsets = m.value_offsets();
            each(&|i| {
                let mut o = Map::new();
                for j in offsets[i] as usize..offsets[i + 1] as usize {
                    let v = if values.is_null(j) { Value::Null } else { Value::String(vf.value(j).to_string()) };
                    o.insert(kf.value(j).to_string(), v);
                }
                Value::Object(o)
            })
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _)
        | DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64 => {
            let f = formatter(a)?;
            each(&|i| Value::String(f.value(i).to_string()))
        }
        _ => {
            let f = formatter(a)?;
            each(&|i| Value::String(f.value(i).to_string()))
        }
    })
}

fn formatter(a: &dyn Array) -> Result<ArrayFormatter<'_>, SqlError> {
    const OPTIONS: FormatOptions<'static> = FormatOptions::new();
    ArrayFormatter::try_new(a, &OPTIONS).map_err(|e| SqlError::Internal(e.to_string()))
}

/// The batches in Arrow's IPC stream format.
pub fn arrow_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, SqlError> {
    let mut out = Vec::new();
    let err = |e: datafusion::arrow::error::ArrowError| SqlError::Internal(e.to_string());
    let mut w = StreamWriter::try_new(&mut out, schema).map_err(err)?;
    for b in batches {
        w.write(b).map_err(err)?;
    }
    w.finish().map_err(err)?;
    drop(w);
    Ok(out)
}
