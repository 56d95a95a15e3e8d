//! Values in and out of a shared memory: JSON, refusing what would not read back as written.

use crate::api::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[inline]
pub(super) fn decode<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|err| Error::SharedType {
        key: key.to_owned(),
        type_name: std::any::type_name::<T>(),
        reason: err.to_string(),
    })
}

#[inline]
pub(super) fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value> {
    let type_error = |reason: String| Error::SharedType {
        key: key.to_owned(),
        type_name: std::any::type_name::<T>(),
        reason,
    };
    let encoded = serde_json::to_value(value).map_err(|err| type_error(err.to_string()))?;
    // serde_json writes a non-finite float as `null`; only then is a deeper look worth it.
    if has_null(&encoded) {
        super::finite::check(value).map_err(|err| type_error(err.to_string()))?;
    }
    Ok(encoded)
}

/// Inlined for the common scalar value; containers are walked out of line.
#[inline]
fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(_) | Value::Object(_) => has_null_inside(value),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

fn has_null_inside(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(fields) => fields.values().any(has_null),
        Value::Null => true,
        Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}
