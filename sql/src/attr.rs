//! `attr(map, key)`: one attribute of a span or transaction (`attributes`) or of its resource
//! (`resource`), as text; NULL where the row has none. `attributes['k']` works too; `attr` reads
//! better in long queries and is what the README's examples use.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Attr {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Attr { signature: Signature::new(TypeSignature::Any(2), Volatility::Immutable) })
}

impl ScalarUDFImpl for Attr {
    fn name(&self) -> &str {
        "attr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Map(..), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8] => Ok(DataType::Utf8),
            _ => plan_err!("attr(map, key) takes an attributes or resource column and a key, got {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [map, key] = args.args.as_slice() else { return exec_err!("attr takes two arguments") };
        let map: ArrayRef = map.clone().into_array(rows)?;
        let map = map.as_map();
        // The key: one for every row (the usual case), or a column of them.
        let key_column = match key {
            ColumnarValue::Scalar(ScalarValue::Utf8(k) | ScalarValue::Utf8View(k) | ScalarValue::LargeUtf8(k)) => {
                Err(k.clone())
            }
            ColumnarValue::Array(a) => Ok(datafusion::arrow::compute::cast(a, &DataType::Utf8)?),
            _ => return exec_err!("attr: the key must be text"),
        };
        let key_at = |i: usize| -> Option<&str> {
            match &key_column {
                Err(k) => k.as_deref(),
                Ok(a) => {
                    let s = a.as_string::<i32>();
                    (!s.is_null(i)).then(|| s.value(i))
                }
            }
        };
        let keys = map.keys().as_string::<i32>();
        let values = map.values().as_string::<i32>();
        let offsets = map.value_offsets();
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            let found = match key_at(i) {
                Some(k) if !map.is_null(i) => (offsets[i] as usize..offsets[i + 1] as usize)
                    .find(|&j| keys.value(j) == k)
                    .filter(|&j| !values.is_null(j))
                    .map(|j| values.value(j)),
                _ => None,
            };
            out.append_option(found);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
