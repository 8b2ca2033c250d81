//! Task values: small JSON documents a task publishes for its dependents.

use serde::{Serialize, de::DeserializeOwned};

use crate::{TaskError, host};

/// Publish `value` (serialized to JSON) under `key` for downstream tasks.
///
/// Fails permanently if `value` cannot be serialized or the host refuses it (e.g. a size cap).
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), TaskError> {
    let json = serde_json::to_string(value)
        .map_err(|e| TaskError::permanent(format!("value `{key}` could not be serialized: {e}")))?;
    set_json(key, &json)
}

/// Publish an already-serialized JSON document under `key`.
pub fn set_json(key: &str, json: &str) -> Result<(), TaskError> {
    host::value_set(key, json).map_err(|e| TaskError::permanent(format!("value `{key}` was refused: {e}")))
}

/// Read value `key` published by upstream task `task` of the same run, `None` if it was not
/// published. A value that does not deserialize into `T` is a permanent error.
pub fn get<T: DeserializeOwned>(task: &str, key: &str) -> Result<Option<T>, TaskError> {
    match get_json(task, key) {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| TaskError::permanent(format!("value `{task}.{key}` has an unexpected shape: {e}"))),
    }
}

/// Like [`get`], but a missing value is a permanent error naming it (``missing upstream value
/// `extract.rows` ``).
pub fn require<T: DeserializeOwned>(task: &str, key: &str) -> Result<T, TaskError> {
    get(task, key)?.ok_or_else(|| TaskError::permanent(format!("missing upstream value `{task}.{key}`")))
}

/// The raw JSON text of value `key` of upstream task `task`.
pub fn get_json(task: &str, key: &str) -> Option<String> {
    host::value_get(task, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MockHost, published};

    #[test]
    fn set_and_get() {
        MockHost::new().upstream("extract", "rows", 3).install();
        assert_eq!(get::<u32>("extract", "rows").unwrap(), Some(3));
        assert_eq!(get::<u32>("extract", "nope").unwrap(), None);
        assert!(get::<String>("extract", "rows").unwrap_err().is_permanent());
        let e = require::<u32>("extract", "valid").unwrap_err();
        assert_eq!(e.message(), "missing upstream value `extract.valid`");
        set("out", &vec![1, 2]).unwrap();
        assert_eq!(published("out"), Some(serde_json::json!([1, 2])));
        assert!(set_json("bad", "{").unwrap_err().is_permanent());
    }
}
