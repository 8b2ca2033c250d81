//! How the sled backend's records are keyed and encoded: run, event and (task, key) keys,
//! u64 and JSON encodings, and sled's errors as [`StoreError`]s. Shared by every `sled_*`
//! store; it never opens a tree or decides what a record means.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, check_name};
use crate::model::RunId;

pub(super) const RUN_KEY_LEN: usize = 8;
pub(super) const EVENT_KEY_LEN: usize = 16;

/// A sled error as a store error.
pub(super) fn storage(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => corrupt("storage file", e.to_string()),
        other => StoreError::Io(other.to_string()),
    }
}

pub(super) fn corrupt(what: impl Into<String>, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into(), message: message.into() }
}

pub(super) fn run_key(run: RunId) -> [u8; RUN_KEY_LEN] {
    run.to_be_bytes()
}

pub(super) fn event_key(run: RunId, seq: u64) -> [u8; EVENT_KEY_LEN] {
    let mut key = [0; EVENT_KEY_LEN];
    key[..RUN_KEY_LEN].copy_from_slice(&run.to_be_bytes());
    key[RUN_KEY_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix every (task, key) record of one task of one run starts with.
pub(super) fn task_prefix(run: RunId, task: &str) -> Result<Vec<u8>, StoreError> {
    check_name(task)?;
    let len = u8::try_from(task.len()).map_err(|_| corrupt("task name", "longer than 255 bytes"))?;
    let mut prefix = Vec::with_capacity(RUN_KEY_LEN + 1 + task.len());
    prefix.extend_from_slice(&run_key(run));
    prefix.push(len);
    prefix.extend_from_slice(task.as_bytes());
    Ok(prefix)
}

pub(super) fn named_key(run: RunId, task: &str, key: &str) -> Result<Vec<u8>, StoreError> {
    check_name(key)?;
    let mut full = task_prefix(run, task)?;
    full.extend_from_slice(key.as_bytes());
    Ok(full)
}

pub(super) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| corrupt(what, format!("{} bytes, expected 8", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

pub(super) fn decode_run_key(key: &[u8], what: &str) -> Result<RunId, StoreError> {
    decode_u64(key, what)
}

pub(super) fn decode_event_key(key: &[u8]) -> Result<(RunId, u64), StoreError> {
    if key.len() != EVENT_KEY_LEN {
        return Err(corrupt("event key", format!("{} bytes, expected {EVENT_KEY_LEN}", key.len())));
    }
    let (run, seq) = key.split_at(RUN_KEY_LEN);
    Ok((decode_u64(run, "event key")?, decode_u64(seq, "event key")?))
}

pub(super) fn encode_json<T: Serialize>(record: &T, what: &str) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| corrupt(format!("{what} to write"), e.to_string()))
}

pub(super) fn decode_json<T: DeserializeOwned>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what(), e.to_string()))
}

pub(super) fn decode_utf8(bytes: &[u8], what: impl FnOnce() -> String) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| corrupt(what(), e.to_string()))
}

/// Every JSON value of `tree` under `prefix`, in key order (`what` names one in an error).
pub(super) fn scan_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    prefix: Vec<u8>,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in tree.scan_prefix(prefix) {
        let (_, value) = entry.map_err(storage)?;
        out.push(decode_json(&value, || what.to_string())?);
    }
    Ok(out)
}
