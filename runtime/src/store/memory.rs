//! The in-memory backend.
//!
//! Owns a [`Store`] that keeps everything in process memory behind one lock:
//! what unit tests use, and the reference behaviour the conformance suite
//! holds every other backend to. It must never touch the disk, and it is not
//! durable: `flush` does nothing and everything is gone when it is dropped.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{Store, StoreError, check_name, check_names};
use crate::cache::{CacheEntry, Hash, KeyParts};
use crate::model::{Event, RunId, RunSummary};

/// A [`Store`] in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    last_run_id: RunId,
    events: BTreeMap<RunId, Vec<Event>>,
    summaries: BTreeMap<RunId, RunSummary>,
    /// (run, task) → key → JSON text.
    values: BTreeMap<(RunId, String), BTreeMap<String, String>>,
    /// (run, task) → key → bytes.
    checkpoints: BTreeMap<(RunId, String), BTreeMap<String, Vec<u8>>>,
    cache: BTreeMap<Hash, CacheEntry>,
    key_parts: BTreeMap<Hash, KeyParts>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The state. A panic while the lock was held cannot leave it half-written
    /// (every change is a single map operation), so a poisoned lock is still usable.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn next_run_id(&self) -> Result<RunId, StoreError> {
        let mut inner = self.inner();
        let next = inner.last_run_id.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            what: "run id counter".into(),
            message: "run ids exhausted".into(),
        })?;
        inner.last_run_id = next;
        Ok(next)
    }

    fn append(&self, run: RunId, events: &[Event]) -> Result<(), StoreError> {
        self.inner().events.entry(run).or_default().extend_from_slice(events);
        Ok(())
    }

    fn events(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        Ok(self.inner().events.get(&run).cloned().unwrap_or_default())
    }

    fn put_summary(&self, summary: &RunSummary) -> Result<(), StoreError> {
        self.inner().summaries.insert(summary.run_id, summary.clone());
        Ok(())
    }

    fn summary(&self, run: RunId) -> Result<Option<RunSummary>, StoreError> {
        Ok(self.inner().summaries.get(&run).cloned())
    }

    fn list_summaries(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        Ok(self.inner().summaries.values().rev().take(limit).cloned().collect())
    }

    fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let inner = self.inner();
        Ok(inner.summaries.values().filter(|s| s.result.is_none()).map(|s| s.run_id).collect())
    }

    fn put_value(&self, run: RunId, task: &str, key: &str, json: &str) -> Result<(), StoreError> {
        check_names(task, key)?;
        let mut inner = self.inner();
        inner.values.entry((run, task.to_owned())).or_default().insert(key.to_owned(), json.to_owned());
        Ok(())
    }

    fn value(&self, run: RunId, task: &str, key: &str) -> Result<Option<String>, StoreError> {
        check_names(task, key)?;
        let inner = self.inner();
        Ok(inner.values.get(&(run, task.to_owned())).and_then(|values| values.get(key)).cloned())
    }

    fn values(&self, run: RunId, task: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_name(task)?;
        let inner = self.inner();
        let values = inner.values.get(&(run, task.to_owned()));
        Ok(values.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn save_checkpoint(&self, run: RunId, task: &str, key: &str, data: &[u8]) -> Result<(), StoreError> {
        check_names(task, key)?;
        let mut inner = self.inner();
        inner.checkpoints.entry((run, task.to_owned())).or_default().insert(key.to_owned(), data.to_vec());
        Ok(())
    }

    fn load_checkpoint(&self, run: RunId, task: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_names(task, key)?;
        let inner = self.inner();
        Ok(inner.checkpoints.get(&(run, task.to_owned())).and_then(|saved| saved.get(key)).cloned())
    }

    fn checkpoints(&self, run: RunId, task: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        check_name(task)?;
        let inner = self.inner();
        let saved = inner.checkpoints.get(&(run, task.to_owned()));
        Ok(saved.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        self.inner().cache.insert(entry.key, entry.clone());
        Ok(())
    }

    fn cache_entry(&self, key: &Hash) -> Result<Option<CacheEntry>, StoreError> {
        Ok(self.inner().cache.get(key).cloned())
    }

    fn cache_entries(&self) -> Result<Vec<CacheEntry>, StoreError> {
        Ok(self.inner().cache.values().cloned().collect())
    }

    fn remove_cache_entry(&self, key: &Hash) -> Result<(), StoreError> {
        self.inner().cache.remove(key);
        Ok(())
    }

    fn put_key_parts(&self, key: &Hash, parts: &KeyParts) -> Result<(), StoreError> {
        self.inner().key_parts.insert(*key, parts.clone());
        Ok(())
    }

    fn key_parts(&self, key: &Hash) -> Result<Option<KeyParts>, StoreError> {
        Ok(self.inner().key_parts.get(key).cloned())
    }
}
