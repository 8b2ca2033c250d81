//! Durable state behind a small trait.
//!
//! Owns the [`Store`] trait every other module persists through, the
//! [`StoreError`] it reports, and the rules for task and key names
//! ([`check_name`]) that every backend enforces the same way. Backends:
//! [`sled_store::SledStore`], the embedded default, and
//! [`memory::MemoryStore`], for unit tests and as the reference behaviour.
//! One conformance suite (`conformance.rs`) runs against both. Beside them:
//! the store's format version ([`format`]), `sluice store check` ([`check`]) and
//! backups ([`backup`], [`sled_backup`]).
//!
//! This file must never do I/O and never name a storage engine: it is the
//! contract, and a new backend (NATS JetStream, say) is an addition beside it.
//! A store keeps what it is given; it never interprets events, summaries or
//! values beyond (de)serializing them (but [`check`] folds logs with the model's
//! own fold, to report which ones no reader could use). Deciding *when* to flush is the
//! caller's job (see "Durability" in the design): writes are buffered until
//! [`Store::flush`], so many transitions can share one fsync.

use std::path::PathBuf;

use crate::cache::{CacheEntry, Hash, KeyParts};
use crate::model::{Event, RunId, RunSummary};

pub mod backup;
pub mod check;
pub mod datasets;
pub mod deploy;
pub mod format;
pub mod memory;
pub mod models;
pub mod notify;
pub mod service;
pub mod sled_backup;
mod sled_codec;
pub mod sled_datasets;
pub mod sled_deploy;
pub mod sled_models;
pub mod sled_notify;
mod sled_open;
mod sled_recover;
pub mod sled_secrets;
pub mod sled_service;
pub mod sled_store;
pub mod sled_triggers;
pub mod sled_verdicts;
pub mod triggers;
pub mod verdicts;

#[cfg(test)]
mod conformance;

pub use check::{BlobCheck, CheckReport, Problem};
pub use datasets::{DatasetStore, MemoryDatasetStore};
pub use deploy::{Applied, Change, DeploymentStore, MemoryDeploymentStore, Pointer, TargetKey};
pub use format::STORE_FORMAT;
pub use memory::MemoryStore;
pub use models::{MemoryModelStore, ModelStage, ModelStore, ModelVersion};
pub use notify::{MemoryNoticeStore, Notice, NoticeStore};
pub use service::{GroupRecord, IdempotencyRecord, JobKey, MemoryServiceStore, ServiceStore, TokenRecord};
pub use sled_backup::{BackupReport, RestoreReport};
pub use sled_datasets::SledDatasetStore;
pub use sled_deploy::SledDeploymentStore;
pub use sled_models::SledModelStore;
pub use sled_service::SledServiceStore;
pub use sled_store::SledStore;
pub use sled_triggers::SledTriggerStore;
pub use sled_verdicts::SledVerdictStore;
pub use triggers::{MemoryTriggerStore, TriggerStore};
pub use verdicts::{MemoryVerdictStore, Verdict, VerdictStore};

/// What to do about a store that does not open: said by every such error.
pub const DAMAGED_ADVICE: &str = "Nothing was changed or deleted. `sluice store check` reports what is \
     readable; `sluice store restore BACKUP` puts back a backup made with `sluice store backup`; or move the \
     store directory aside to start with an empty one";

/// What to do about a record that does not decode.
const CORRUPT_ADVICE: &str = "Run `sluice store check` to see what else is damaged; \
     `sluice store restore BACKUP` puts back a backup made with `sluice store backup`";

/// The longest task or key name a store accepts, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// How much of a refused name an error message repeats.
const NAME_SHOWN_IN_ERRORS: usize = 64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error(
        "cannot open the store at {}: {message}. Another sluice process may be holding it \
         (while `sluice serve` runs, go through its API), or the store may be damaged",
        path.display()
    )]
    Open { path: PathBuf, message: String },
    /// Another process holds the store (sled is single-process).
    #[error("the store at {} is in use by another sluice process", path.display())]
    Locked { path: PathBuf },
    /// The store's files are damaged beyond what opening repairs on its own.
    #[error(
        "the store at {} is damaged and could not be recovered: {message}. {DAMAGED_ADVICE}",
        path.display()
    )]
    Damaged { path: PathBuf, message: String },
    /// The store was written in a format this sluice does not read (see [`format`]).
    #[error("{message}")]
    Format { path: PathBuf, message: String },
    /// A backup could not be written or restored (the message says which file and why).
    #[error("{0}")]
    Backup(String),
    /// Reading or writing failed.
    #[error("store I/O error: {0}")]
    Io(String),
    /// A stored record could not be decoded (or a record could not be encoded).
    #[error("corrupt record in the store ({what}): {message}. {CORRUPT_ADVICE}")]
    Corrupt { what: String, message: String },
    /// A task or key name that could escape its namespace, or is empty or too long.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
}

/// Durable state: run ids, event logs, run summaries, task values and checkpoints.
///
/// Writes are buffered; they are durable only once [`Store::flush`] returns.
/// Task and key names are checked with [`check_name`] and refused with
/// [`StoreError::InvalidName`].
pub trait Store: Send + Sync {
    /// Allocate the next run id (monotonic, starting at 1, never reused even after a crash/restart).
    fn next_run_id(&self) -> Result<RunId, StoreError>;
    /// Append events to a run's log, in order, after any already there. Not flushed: call `flush`.
    fn append(&self, run: RunId, events: &[Event]) -> Result<(), StoreError>;
    /// The run's whole event log in append order (empty if unknown run).
    fn events(&self, run: RunId) -> Result<Vec<Event>, StoreError>;
    /// The run's events from position `from` on (what a reader that folded the first `from`
    /// already has not seen).
    fn events_from(&self, run: RunId, from: u64) -> Result<Vec<Event>, StoreError> {
        let mut events = self.events(run)?;
        Ok(events.split_off((from as usize).min(events.len())))
    }
    /// How many events the run's log holds (0 if unknown run), without reading them.
    fn event_count(&self, run: RunId) -> Result<u64, StoreError> {
        Ok(self.events(run)?.len() as u64)
    }
    /// Insert or replace the run's summary (what listings read).
    fn put_summary(&self, summary: &RunSummary) -> Result<(), StoreError>;
    /// The run's summary, if it has one.
    fn summary(&self, run: RunId) -> Result<Option<RunSummary>, StoreError>;
    /// Newest first, at most `limit`.
    fn list_summaries(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError>;
    /// Runs whose summary has `result == None` (in flight), oldest first.
    fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError>;
    /// Task values: JSON text per (run, task, key).
    fn put_value(&self, run: RunId, task: &str, key: &str, json: &str) -> Result<(), StoreError>;
    /// One task value, if it was set.
    fn value(&self, run: RunId, task: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// All values of one task, sorted by key.
    fn values(&self, run: RunId, task: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Checkpoints: bytes per (run, task, key); survive across attempts.
    fn save_checkpoint(&self, run: RunId, task: &str, key: &str, data: &[u8]) -> Result<(), StoreError>;
    /// A saved checkpoint, if any.
    fn load_checkpoint(&self, run: RunId, task: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every checkpoint of one task, sorted by key (what its next attempt resumes from).
    fn checkpoints(&self, run: RunId, task: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Make everything written so far durable (one fsync for many writes: group commit).
    fn flush(&self) -> Result<(), StoreError>;
    /// Store a cache entry under its key (`entry.key`); replaces an existing one.
    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError>;
    /// The cache entry under `key`, if any.
    fn cache_entry(&self, key: &Hash) -> Result<Option<CacheEntry>, StoreError>;
    /// Every cache entry, sorted by key. An entry a backend cannot decode is left out (a
    /// cache entry lost is a miss, never lost data).
    fn cache_entries(&self) -> Result<Vec<CacheEntry>, StoreError>;
    /// Forget a cache entry (gc).
    fn remove_cache_entry(&self, key: &Hash) -> Result<(), StoreError>;
    /// The parts a cache key was computed from, by key (content-addressed: the
    /// same parts always give the same key), so a miss can be explained later.
    fn put_key_parts(&self, key: &Hash, parts: &KeyParts) -> Result<(), StoreError>;
    fn key_parts(&self, key: &Hash) -> Result<Option<KeyParts>, StoreError>;
}

/// The store's encoding of one event (JSON), shared by every backend that keeps bytes.
pub fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(event).map_err(|e| StoreError::Corrupt { what: "event to write".into(), message: e.to_string() })
}

/// Decodes one stored event; anything that is not an [`Event`] is [`StoreError::Corrupt`], never a panic.
pub fn decode_event(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { what: what(), message: e.to_string() })
}

/// Check a task or key name: non-empty, at most [`MAX_NAME_LEN`] bytes, and
/// free of control characters (NUL among them), so that no name can reach
/// into another task's or key's namespace in any backend's key layout.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "names must not be empty"
    } else if name.len() > MAX_NAME_LEN {
        "names must be at most 255 bytes long"
    } else if name.chars().any(char::is_control) {
        "names must not contain control characters (NUL among them)"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName { name: shown_name(name), reason })
}

/// Check a (task, key) pair.
pub(crate) fn check_names(task: &str, key: &str) -> Result<(), StoreError> {
    check_name(task)?;
    check_name(key)
}

/// The part of a refused name an error repeats, so a huge name makes no huge message.
fn shown_name(name: &str) -> String {
    let mut shown: String = name.chars().take(NAME_SHOWN_IN_ERRORS).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_at_the_limits() {
        assert!(check_name("a").is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(check_name("ünïcødé/with spaces.and:punct").is_ok());
        for bad in ["", "a\0b", "a\nb", "\u{7f}", "tab\there"] {
            assert!(matches!(check_name(bad), Err(StoreError::InvalidName { .. })), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        // The limit is in bytes: 128 two-byte characters are 256 bytes.
        assert!(check_name(&"é".repeat(128)).is_err());
    }

    #[test]
    fn refused_huge_names_are_shortened_in_errors() {
        let err = check_name(&"y".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn open_error_names_path_and_hints() {
        let err = StoreError::Open { path: PathBuf::from("/data/sluice.db"), message: "locked".into() };
        let text = err.to_string().to_lowercase();
        assert!(text.contains("/data/sluice.db") && text.contains("another sluice process"), "{text}");
        assert!(text.contains("damaged"), "{text}");
    }
}
