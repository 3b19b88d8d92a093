//! How a table's columns are made: each SQL column names the stored columns it needs (what the
//! scan fetches: projection) and builds its Arrow array from a page of a segment or from rows
//! still in memory. Strings are built from a page's dictionary, once per distinct value.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, MapBuilder, StringArray, StringBuilder, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rewind_storage::codec::column as col;
use rewind_storage::model::{KeyValue, Resource};
use rewind_storage::table::page::Page;
use rewind_storage::table::SegmentMeta;
use rewind_storage::xlog::value_text;
use rewind_storage::StorageError;

use crate::hints::Keys;

/// What a column needs fetched from a page.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    Stored(&'static [u16]),
    /// Every attribute column of the segment.
    Attributes,
    /// Each row's resource index and the segment's resource table.
    Resource,
}

/// One SQL column of a table whose rows in memory are `R` and whose segments are `M`.
pub struct Column<M: 'static, R: 'static> {
    pub name: &'static str,
    pub ty: fn() -> DataType,
    pub needs: Needs,
    pub page: fn(&Page<'_, M>) -> Result<ArrayRef, StorageError>,
    pub rows: fn(&[R]) -> ArrayRef,
}

pub fn schema_of<M, R>(columns: &[Column<M, R>]) -> SchemaRef {
    schema_of_refs(&columns.iter().collect::<Vec<_>>())
}

pub fn schema_of_refs<M, R>(columns: &[&Column<M, R>]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(c.name, (c.ty)(), true)).collect::<Vec<_>>()))
}

/// The stored columns a projection needs, for a segment: of the attributes, those of `keys`.
pub fn stored_columns<M: SegmentMeta, R>(columns: &[&Column<M, R>], meta: &M, keys: &Keys) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for c in columns {
        match c.needs {
            Needs::Stored(s) => out.extend_from_slice(s),
            Needs::Attributes => match keys {
                Keys::All => out.extend(Page::attr_columns(meta)),
                Keys::Only(keys) => out.extend(keys.iter().filter_map(|k| meta.attr_column(k))),
            },
            Needs::Resource => out.extend([M::TABLE.resource_column, M::TABLE.resource_table_column]),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

pub fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub fn map_type() -> DataType {
    static TYPE: OnceLock<DataType> = OnceLock::new();
    TYPE.get_or_init(|| {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        use datafusion::arrow::array::Array;
        b.finish().data_type().clone()
    })
    .clone()
}

/// A dictionary column of a page, built from its dictionary once per distinct value.
pub fn page_strings<M: SegmentMeta>(page: &Page<'_, M>, c: u16) -> Result<ArrayRef, StorageError> {
    let body = page.fixed(c)?;
    let (dict, codes) = col::decode_dict_codes(&body, page.rows)?;
    Ok(Arc::new(StringArray::from_iter_values(codes.iter().map(|&i| dict[i as usize]))))
}

/// Ids (trace or span) as their lowercase hex text.
pub fn hex<T: std::fmt::Display>(ids: impl Iterator<Item = T>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(ids.map(|id| id.to_string())))
}

pub fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

pub fn timestamps(ns: impl Iterator<Item = u64>) -> ArrayRef {
    let v: Vec<i64> = ns.map(|n| i64::try_from(n).unwrap_or(i64::MAX)).collect();
    Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

/// Nanoseconds as milliseconds, fractions kept (the query API's unit for durations).
pub fn millis(ns: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(ns.map(|n| n as f64 / 1e6)))
}

pub fn ints(v: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))))
}

pub fn bools(v: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(v.map(Some)))
}

/// A page's attributes as a map column (values in their text form).
pub fn page_attributes<M: SegmentMeta>(page: &Page<'_, M>) -> Result<ArrayRef, StorageError> {
    let columns = page.attributes(0..page.rows)?;
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in 0..page.rows {
        for (k, values) in &columns {
            if let Some(v) = &values[r] {
                b.keys().append_value(k);
                b.values().append_value(value_text(v));
            }
        }
        b.append(true).expect("keys and values appended together");
    }
    Ok(Arc::new(b.finish()))
}

/// Each row's resource attributes as a map column.
pub fn page_resources<M: SegmentMeta>(page: &Page<'_, M>) -> Result<ArrayRef, StorageError> {
    page_resources_of(page, &Keys::All)
}

/// Each row's resource attributes of `keys` as a map column: the segment's resources are
/// narrowed once, not each row's.
pub fn page_resources_of<M: SegmentMeta>(page: &Page<'_, M>, keys: &Keys) -> Result<ArrayRef, StorageError> {
    let table = page.resources()?;
    let narrowed: Vec<Vec<KeyValue>> = table
        .iter()
        .map(|r| match keys {
            Keys::All => r.attributes.clone(),
            Keys::Only(k) => r.attributes.iter().filter(|(key, _)| k.contains(&**key)).cloned().collect(),
        })
        .collect();
    let index = page.resource_index()?;
    Ok(attribute_map(index.iter().map(|&i| narrowed[i].as_slice())))
}

pub fn attribute_map<'a>(rows: impl Iterator<Item = &'a [KeyValue]>) -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for kvs in rows {
        for (k, v) in kvs {
            b.keys().append_value(k);
            b.values().append_value(value_text(v));
        }
        b.append(true).expect("keys and values appended together");
    }
    Arc::new(b.finish())
}

pub fn resource_map<'a>(rows: impl Iterator<Item = &'a Resource>) -> ArrayRef {
    attribute_map(rows.map(|r| r.attributes.as_slice()))
}
