//! Durable progress markers that survive into the task's later attempts.
//!
//! Save after each unit of work; on a retry (`ctx.attempt > 0`) or after a runtime restart,
//! [`load`] returns what the last successful [`save`] stored, so the task can resume instead of
//! starting over. Checkpoints belong to one task of one run.

use serde::{Serialize, de::DeserializeOwned};

use crate::{TaskError, host};

/// Store `data` under `key`; returns once it is durable.
///
/// A host failure is a transient error: the attempt can be retried and resume from the previous
/// checkpoint.
pub fn save(key: &str, data: &[u8]) -> Result<(), TaskError> {
    host::checkpoint_save(key, data)
        .map_err(|e| TaskError::transient(format!("checkpoint `{key}` could not be saved: {e}")))
}

/// The data last saved under `key` by this task in this run (any attempt), if any.
pub fn load(key: &str) -> Option<Vec<u8>> {
    host::checkpoint_load(key)
}

/// [`save`] `value` serialized as JSON.
pub fn save_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), TaskError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| TaskError::permanent(format!("checkpoint `{key}` could not be serialized: {e}")))?;
    save(key, &json)
}

/// [`load`] a checkpoint saved with [`save_json`]. Data that does not deserialize into `T` is
/// a permanent error.
pub fn load_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, TaskError> {
    match load(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TaskError::permanent(format!("checkpoint `{key}` has an unexpected shape: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;

    #[test]
    fn roundtrip() {
        MockHost::new().checkpoint("raw", b"xyz".to_vec()).install();
        assert_eq!(load("raw").as_deref(), Some(&b"xyz"[..]));
        assert_eq!(load("none"), None);
        save_json("progress", &7u32).unwrap();
        assert_eq!(load_json::<u32>("progress").unwrap(), Some(7));
        assert!(load_json::<u32>("raw").unwrap_err().is_permanent());
    }
}
