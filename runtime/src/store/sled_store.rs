//! The embedded sled 0.34 backend: the default [`Store`].
//!
//! Owns the on-disk layout of the store directory: which trees exist, how
//! their keys are built, how records are encoded. This is the only file in the
//! project that names sled; everything else speaks [`Store`]. It never
//! interprets events, summaries or values beyond (de)serializing them, never
//! flushes on its own except to make a run id durable before handing it out,
//! and never panics on what it reads from disk: an undecodable record is a
//! [`StoreError::Corrupt`].
//!
//! Layout (every run-scoped key starts with the run id, 8 bytes big-endian, so
//! one run's records sort together and never share a prefix with another's):
//!
//! | tree          | key                                   | value                      |
//! |---------------|---------------------------------------|----------------------------|
//! | `summaries`   | run                                   | [`RunSummary`] as JSON     |
//! | `unfinished`  | run                                   | empty (index of in-flight) |
//! | `events`      | run, seq (u64 BE, from 0)             | [`Event`] as JSON          |
//! | `values`      | run, len(task) u8, task, key          | JSON text                  |
//! | `checkpoints` | run, len(task) u8, task, key          | bytes                      |
//! | `meta`        | `last_run_id`                         | u64 BE                     |
//!
//! Beside sled's files in the directory: `sluice.lock` (held while open), the format
//! marker `sluice-format.json` and `sluice-last-run-id` (see `sled_open`, `format`,
//! `sled_recover`).
//!
//! The task name is length-prefixed and the key runs to the end of the key, so
//! (task "a", key "bc") and (task "ab", key "c") cannot collide; names are
//! still checked with [`check_name`] (non-empty, ≤ 255 bytes, no control
//! characters) so that the length fits its byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use super::sled_codec::{
    RUN_KEY_LEN, decode_event_key, decode_run_key, decode_utf8, event_key, named_key, run_key, task_prefix,
};
pub(super) use super::sled_codec::{corrupt, decode_json, decode_u64, encode_json, scan_json, storage};
use super::sled_recover::RunMark;
use super::{Store, StoreError};
use crate::cache::{CacheEntry, Hash, KeyParts};
use crate::model::{Event, RunId, RunSummary};

const SUMMARIES: &str = "summaries";
const UNFINISHED: &str = "unfinished";
const EVENTS: &str = "events";
const VALUES: &str = "values";
const CHECKPOINTS: &str = "checkpoints";
const CACHE: &str = "cache";
const KEY_PARTS: &str = "key_parts";
const META: &str = "meta";

/// Meta key of the last run id handed out.
const LAST_RUN_ID: &[u8] = b"last_run_id";

/// A [`Store`] in a sled database directory. Single-process: sled locks the
/// directory, and a second open (from this or another process) fails with
/// [`StoreError::Open`].
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    summaries: sled::Tree,
    unfinished: sled::Tree,
    events: sled::Tree,
    values: sled::Tree,
    checkpoints: sled::Tree,
    cache: sled::Tree,
    key_parts: sled::Tree,
    meta: sled::Tree,
    /// Serializes the writes that are more than one sled operation: an append
    /// (find the run's next sequence number, write after it) and a summary
    /// (summary plus in-flight index), so concurrent callers cannot interleave them.
    /// It guards the next sequence number of each run appended to since it last
    /// finished: only appends write the events tree, so a run's next number is known
    /// without looking up its last key (a reverse scan of sled per event otherwise).
    write_lock: Mutex<HashMap<RunId, u64>>,
    /// Every write holds it shared; a backup holds it exclusively, so that what it
    /// copies is one moment of the whole database (shared with the secrets' trees).
    gate: Arc<RwLock<()>>,
    /// The last run id handed out, outside sled, for validating a recovery.
    run_mark: RunMark,
    /// sluice's lock on the directory, released when the store is dropped.
    _lock: super::sled_open::StoreLock,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SledStore {
    /// Open (or create) the store in `dir`: locks it, checks its format version, and
    /// repairs what a process killed while opening it left behind (see `sled_open`).
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let (db, lock, _repairs) = super::sled_open::open(dir, &validate_recovered)?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| super::sled_open::open_error(dir, &e));
        Ok(SledStore {
            path: dir.to_path_buf(),
            summaries: tree(SUMMARIES)?,
            unfinished: tree(UNFINISHED)?,
            events: tree(EVENTS)?,
            values: tree(VALUES)?,
            checkpoints: tree(CHECKPOINTS)?,
            cache: tree(CACHE)?,
            key_parts: tree(KEY_PARTS)?,
            meta: tree(META)?,
            db,
            write_lock: Mutex::new(HashMap::new()),
            gate: Arc::new(RwLock::new(())),
            run_mark: RunMark::open(dir)?,
            _lock: lock,
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every run the store holds a summary or events of, ascending: what `store check`
    /// goes through. Keys that are not a run's are skipped here; reading the run they
    /// seem to belong to reports them.
    pub fn run_ids(&self) -> Result<Vec<RunId>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        for key in self.summaries.iter().keys() {
            if let Ok(run) = decode_run_key(&key.map_err(storage)?, "summary key") {
                ids.insert(run);
            }
        }
        // one lookup per run, not one per event
        let mut from = Vec::new();
        while let Some(entry) = self.events.range(from.clone()..).next() {
            let (key, _) = entry.map_err(storage)?;
            let Some(run) = key.get(..RUN_KEY_LEN).and_then(|k| decode_run_key(k, "event key").ok()) else {
                from = key.to_vec();
                from.push(0);
                continue;
            };
            ids.insert(run);
            match run.checked_add(1) {
                Some(next) => from = run_key(next).to_vec(),
                None => break,
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// What `store check` goes through: every run ([`SledStore::run_ids`]) and the cache
    /// entries that do not decode, which [`Store::cache_entries`] leaves out.
    pub fn inventory(&self) -> Result<super::check::Inventory, StoreError> {
        let mut undecodable = Vec::new();
        for entry in self.cache.iter() {
            let (key, bytes) = entry.map_err(storage)?;
            if let Err(e) = serde_json::from_slice::<CacheEntry>(&bytes) {
                undecodable.push((String::from_utf8_lossy(&key).into_owned(), format!("not a cache entry: {e}")));
            }
        }
        Ok(super::check::Inventory { runs: self.run_ids()?, undecodable_cache_entries: undecodable })
    }

    /// Stores raw bytes as cache entry `key`: damage, for tests of what reads it.
    #[cfg(test)]
    pub(crate) fn insert_raw_cache_entry(&self, key: &str, bytes: &[u8]) {
        self.cache.insert(key.as_bytes(), bytes).unwrap();
    }

    /// Stores raw bytes as event `seq` of `run`: damage, for tests of what reads it.
    #[cfg(test)]
    pub(crate) fn insert_raw_event(&self, run: RunId, seq: u64, bytes: &[u8]) {
        self.write_lock().remove(&run);
        self.events.insert(event_key(run, seq), bytes).unwrap();
    }

    /// The sled database, for the record kinds other modules keep in it
    /// (`sled_secrets`), so that one flush covers them all.
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The gate every write passes (see [`SledStore::backup`](super::sled_backup)).
    pub(crate) fn gate(&self) -> Arc<RwLock<()>> {
        Arc::clone(&self.gate)
    }

    /// Held (shared) by every write, so that a backup sees no write half-done.
    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held for a multi-step write. Nothing panics while holding it, and a
    /// poisoned lock guards no data, so poisoning is ignored.
    fn write_lock(&self) -> MutexGuard<'_, HashMap<RunId, u64>> {
        self.write_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sequence number the run's next event gets: one past the last stored.
    fn next_seq(&self, run: RunId) -> Result<u64, StoreError> {
        let Some(last) = self.events.scan_prefix(run_key(run)).next_back() else {
            return Ok(0);
        };
        let (key, _) = last.map_err(storage)?;
        let (_, seq) = decode_event_key(&key)?;
        seq.checked_add(1).ok_or_else(|| corrupt(format!("event log of run {run}"), "sequence numbers exhausted"))
    }

    /// A summary as stored under `key`, checked to belong to the run the key names.
    fn decode_summary(key: &[u8], bytes: &[u8]) -> Result<RunSummary, StoreError> {
        let run = decode_run_key(key, "summary key")?;
        let summary: RunSummary = decode_json(bytes, || format!("summary of run {run}"))?;
        if summary.run_id != run {
            return Err(corrupt(format!("summary of run {run}"), format!("record names run {}", summary.run_id)));
        }
        Ok(summary)
    }
}

impl Store for SledStore {
    /// A counter in the meta tree, bumped by compare-and-swap and flushed
    /// before the id is returned, so an id is never handed out twice even if
    /// the process dies right after. (sled's `generate_id` is also crash-safe,
    /// but after every restart it skips ahead by twice its persist interval,
    /// two million by default; run ids are meant to stay small and dense.)
    /// Costs one fsync per run, which also commits whatever was pending.
    fn next_run_id(&self) -> Result<RunId, StoreError> {
        let _writing = self.writing();
        loop {
            let current = self.meta.get(LAST_RUN_ID).map_err(storage)?;
            let last = match &current {
                Some(bytes) => decode_u64(bytes, "run id counter")?,
                None => 0,
            };
            let next = last.checked_add(1).ok_or_else(|| corrupt("run id counter", "run ids exhausted"))?;
            let swapped =
                self.meta.compare_and_swap(LAST_RUN_ID, current, Some(&next.to_be_bytes()[..])).map_err(storage)?;
            if swapped.is_ok() {
                self.flush()?;
                self.run_mark.record(next)?;
                return Ok(next);
            }
        }
    }

    fn append(&self, run: RunId, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let _writing = self.writing();
        let mut next = self.write_lock();
        // taken out: a failed write leaves the run to be looked up again
        let first = match next.remove(&run) {
            Some(seq) => seq,
            None => self.next_seq(run)?,
        };
        let end = u64::try_from(events.len())
            .ok()
            .and_then(|count| first.checked_add(count))
            .ok_or_else(|| corrupt(format!("event log of run {run}"), "sequence numbers exhausted"))?;
        if let [event] = events {
            // a single insert is atomic on its own; sled batches cost a log
            // write each, which a group commit cannot amortise
            self.events.insert(&event_key(run, first)[..], super::encode_event(event)?).map_err(storage)?;
        } else {
            let mut batch = sled::Batch::default();
            for (seq, event) in (first..end).zip(events) {
                batch.insert(&event_key(run, seq)[..], super::encode_event(event)?);
            }
            self.events.apply_batch(batch).map_err(storage)?;
        }
        // a finished run is forgotten (a repair or resume looks it up again), so the map
        // holds only runs in flight
        if !matches!(events.last(), Some(Event::RunFinished { .. })) {
            next.insert(run, end);
        }
        Ok(())
    }

    fn events(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        self.events
            .scan_prefix(run_key(run))
            .map(|entry| {
                let (key, bytes) = entry.map_err(storage)?;
                let (_, seq) = decode_event_key(&key)?;
                super::decode_event(&bytes, || format!("event {seq} of run {run}"))
            })
            .collect()
    }

    fn events_from(&self, run: RunId, from: u64) -> Result<Vec<Event>, StoreError> {
        self.events
            .range(event_key(run, from)..=event_key(run, u64::MAX))
            .map(|entry| {
                let (key, bytes) = entry.map_err(storage)?;
                let (_, seq) = decode_event_key(&key)?;
                super::decode_event(&bytes, || format!("event {seq} of run {run}"))
            })
            .collect()
    }

    fn event_count(&self, run: RunId) -> Result<u64, StoreError> {
        self.next_seq(run)
    }

    /// Writes the in-flight index so that a crash between the two writes
    /// leaves at worst a stale index entry, which `unfinished_runs` filters out.
    fn put_summary(&self, summary: &RunSummary) -> Result<(), StoreError> {
        let key = run_key(summary.run_id);
        let bytes = encode_json(summary, "run summary")?;
        let _writing = self.writing();
        let _guard = self.write_lock();
        if summary.result.is_none() {
            self.unfinished.insert(key, sled::IVec::default()).map_err(storage)?;
            self.summaries.insert(key, bytes).map_err(storage)?;
        } else {
            self.summaries.insert(key, bytes).map_err(storage)?;
            self.unfinished.remove(key).map_err(storage)?;
        }
        Ok(())
    }

    fn summary(&self, run: RunId) -> Result<Option<RunSummary>, StoreError> {
        let key = run_key(run);
        match self.summaries.get(key).map_err(storage)? {
            Some(bytes) => Self::decode_summary(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn list_summaries(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        self.summaries
            .iter()
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, bytes) = entry.map_err(storage)?;
                Self::decode_summary(&key, &bytes)
            })
            .collect()
    }

    fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let mut runs = Vec::new();
        for entry in self.unfinished.iter() {
            let (key, _) = entry.map_err(storage)?;
            let run = decode_run_key(&key, "in-flight index key")?;
            if self.summary(run)?.is_some_and(|s| s.result.is_none()) {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    fn put_value(&self, run: RunId, task: &str, key: &str, json: &str) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.values.insert(named_key(run, task, key)?, json.as_bytes()).map_err(storage)?;
        Ok(())
    }

    fn value(&self, run: RunId, task: &str, key: &str) -> Result<Option<String>, StoreError> {
        match self.values.get(named_key(run, task, key)?).map_err(storage)? {
            Some(bytes) => decode_utf8(&bytes, || format!("value `{key}` of task `{task}` in run {run}")).map(Some),
            None => Ok(None),
        }
    }

    fn values(&self, run: RunId, task: &str) -> Result<Vec<(String, String)>, StoreError> {
        let prefix = task_prefix(run, task)?;
        self.values
            .scan_prefix(&prefix)
            .map(|entry| {
                let (full_key, bytes) = entry.map_err(storage)?;
                let what = || format!("a value of task `{task}` in run {run}");
                let key = decode_utf8(&full_key[prefix.len()..], what)?;
                let json = decode_utf8(&bytes, || format!("value `{key}` of task `{task}` in run {run}"))?;
                Ok((key, json))
            })
            .collect()
    }

    fn save_checkpoint(&self, run: RunId, task: &str, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.checkpoints.insert(named_key(run, task, key)?, data).map_err(storage)?;
        Ok(())
    }

    fn load_checkpoint(&self, run: RunId, task: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let saved = self.checkpoints.get(named_key(run, task, key)?).map_err(storage)?;
        Ok(saved.map(|bytes| bytes.to_vec()))
    }

    fn checkpoints(&self, run: RunId, task: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = task_prefix(run, task)?;
        self.checkpoints
            .scan_prefix(&prefix)
            .map(|entry| {
                let (full_key, bytes) = entry.map_err(storage)?;
                let key =
                    decode_utf8(&full_key[prefix.len()..], || format!("a checkpoint of task `{task}` in run {run}"))?;
                Ok((key, bytes.to_vec()))
            })
            .collect()
    }

    /// One fsync of sled's shared log: covers every tree.
    fn flush(&self) -> Result<(), StoreError> {
        crate::util::failpoint::hit(crate::util::failpoint::Point::Flush);
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        let json = encode_json(entry, "cache entry")?;
        let _writing = self.writing();
        self.cache.insert(entry.key.to_hex().as_bytes(), json).map_err(storage)?;
        Ok(())
    }

    fn cache_entry(&self, key: &Hash) -> Result<Option<CacheEntry>, StoreError> {
        let found = self.cache.get(key.to_hex().as_bytes()).map_err(storage)?;
        found.map(|bytes| decode_json(&bytes, || format!("cache entry {key}"))).transpose()
    }

    fn cache_entries(&self) -> Result<Vec<CacheEntry>, StoreError> {
        let mut entries = Vec::new();
        for entry in self.cache.iter() {
            let (key, bytes) = entry.map_err(storage)?;
            match decode_json(&bytes, || format!("cache entry {}", String::from_utf8_lossy(&key))) {
                Ok(entry) => entries.push(entry),
                Err(e) => tracing::warn!(error = %e, "cache entry left out"),
            }
        }
        Ok(entries)
    }

    fn remove_cache_entry(&self, key: &Hash) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.cache.remove(key.to_hex().as_bytes()).map_err(storage)?;
        Ok(())
    }

    fn put_key_parts(&self, key: &Hash, parts: &KeyParts) -> Result<(), StoreError> {
        let json = encode_json(parts, "key parts")?;
        let _writing = self.writing();
        self.key_parts.insert(key.to_hex().as_bytes(), json).map_err(storage)?;
        Ok(())
    }

    fn key_parts(&self, key: &Hash) -> Result<Option<KeyParts>, StoreError> {
        let found = self.key_parts.get(key.to_hex().as_bytes()).map_err(storage)?;
        found.map(|bytes| decode_json(&bytes, || format!("key parts {key}"))).transpose()
    }
}

/// Whether a database rebuilt by a recovery holds every run id ever handed out (the run
/// mark, a file outside sled, says which): a rebuild that lost the tail of the log lost
/// the newest runs with their ids, and must not replace the damaged store.
fn validate_recovered(db: &sled::Db, dir: &Path) -> Result<(), String> {
    let meta = db.open_tree(META).map_err(|e| e.to_string())?;
    let last = match meta.get(LAST_RUN_ID).map_err(|e| e.to_string())? {
        Some(bytes) => decode_u64(&bytes, "run id counter").map_err(|e| e.to_string())?,
        None => 0,
    };
    match RunMark::read(dir) {
        Some(handed_out) if last < handed_out => {
            Err(format!("the rebuilt store knows run ids up to {last}, but {handed_out} had been handed out"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "sled_store_tests.rs"]
mod tests;
