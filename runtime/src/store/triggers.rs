//! What the trigger engine keeps: each firing under its key (a schedule's tick, a
//! webhook's idempotency key, a file batch), each trigger's state (paused, first seen),
//! and the file versions a file-arrival trigger consumed — behind [`TriggerStore`].
//!
//! The sled backend is `sled_triggers.rs`, in the run store's database: a firing's record
//! and the files it consumed are written right after the run's creation and made durable
//! by the same flush, so a crash keeps both or neither (exactly once). It must never
//! decide anything: the `triggers` module and the service do.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Millis, RunId};

/// What one firing of a trigger is known by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FiringKey {
    /// A schedule's or a periodic trigger's tick: its logical time.
    Tick(Millis),
    /// Anything else (a webhook's idempotency key or signature, a file batch, a manual fire).
    Named(String),
}

/// What became of a firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// A run was created for it.
    Fired { run: RunId },
    /// It was due while the server was down (or behind) and catch-up did not start it;
    /// `count` ticks from `first` up to the key's.
    Missed { first: Millis, count: u64, reason: String },
    /// It was due but the trigger was paused, or daylight saving removed its local time.
    Skipped { first: Millis, count: u64, reason: String },
}

/// One firing as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringRecord {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// When it was recorded (the engine's clock).
    pub recorded_at: Millis,
}

/// A trigger's own durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    /// When the engine first saw the trigger: ticks before it were never due.
    pub since: Millis,
    /// `sluice triggers pause|resume` (overrides the bundle's `pause_status`).
    #[serde(default)]
    pub paused: Option<bool>,
}

/// A file version a file-arrival trigger consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumed {
    pub version: String,
    pub run: RunId,
}

/// Durable records of the trigger engine. Writes are durable once the run store's flush
/// (which shares it) returns, unless a method says it flushes.
pub trait TriggerStore: Send + Sync {
    fn firing(&self, job: u64, key: &FiringKey) -> Result<Option<FiringRecord>, StoreError>;
    /// Record a firing (not flushed: flushed with the run's creation).
    fn put_firing(&self, job: u64, key: &FiringKey, record: &FiringRecord) -> Result<(), StoreError>;
    /// The latest tick recorded for `job` (fired, missed or skipped).
    fn last_tick(&self, job: u64) -> Result<Option<Millis>, StoreError>;
    /// Every firing recorded for `job`, in key order (ticks by time, then named ones).
    fn firings(&self, job: u64) -> Result<Vec<(FiringKey, FiringRecord)>, StoreError>;
    fn state(&self, job: u64) -> Result<Option<TriggerState>, StoreError>;
    /// Flushed before returning.
    fn put_state(&self, job: u64, state: &TriggerState) -> Result<(), StoreError>;
    /// The version of `path` that `job`'s trigger consumed last, if any.
    fn consumed(&self, job: u64, path: &str) -> Result<Option<Consumed>, StoreError>;
    /// Record a consumed file version (not flushed: flushed with the run's creation).
    fn put_consumed(&self, job: u64, path: &str, consumed: &Consumed) -> Result<(), StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
}

/// `job` BE, then 0 and the tick's time BE, or 1 and the name's bytes: ticks sort by time.
pub(crate) fn firing_key(job: u64, key: &FiringKey) -> Vec<u8> {
    let mut out = job.to_be_bytes().to_vec();
    match key {
        FiringKey::Tick(at) => {
            out.push(0);
            out.extend_from_slice(&at.to_be_bytes());
        }
        FiringKey::Named(name) => {
            out.push(1);
            out.extend_from_slice(name.as_bytes());
        }
    }
    out
}

/// The key a [`firing_key`] encodes (after the job's 8 bytes).
pub(crate) fn decode_firing_key(bytes: &[u8]) -> Option<FiringKey> {
    match bytes.get(8)? {
        0 => Some(FiringKey::Tick(u64::from_be_bytes(bytes.get(9..17)?.try_into().ok()?))),
        1 => Some(FiringKey::Named(String::from_utf8(bytes.get(9..)?.to_vec()).ok()?)),
        _ => None,
    }
}

pub(crate) fn consumed_key(job: u64, path: &str) -> Vec<u8> {
    let mut out = job.to_be_bytes().to_vec();
    out.extend_from_slice(path.as_bytes());
    out
}

/// In memory: the reference behaviour, for unit tests.
#[derive(Default)]
pub struct MemoryTriggerStore {
    inner: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    firings: BTreeMap<Vec<u8>, FiringRecord>,
    states: BTreeMap<u64, TriggerState>,
    consumed: BTreeMap<Vec<u8>, Consumed>,
}

impl MemoryTriggerStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TriggerStore for MemoryTriggerStore {
    fn firing(&self, job: u64, key: &FiringKey) -> Result<Option<FiringRecord>, StoreError> {
        Ok(self.lock().firings.get(&firing_key(job, key)).cloned())
    }

    fn put_firing(&self, job: u64, key: &FiringKey, record: &FiringRecord) -> Result<(), StoreError> {
        self.lock().firings.insert(firing_key(job, key), record.clone());
        Ok(())
    }

    fn last_tick(&self, job: u64) -> Result<Option<Millis>, StoreError> {
        let m = self.lock();
        let (from, to) = (firing_key(job, &FiringKey::Tick(0)), firing_key(job, &FiringKey::Tick(u64::MAX)));
        Ok(m.firings.range(from..=to).next_back().and_then(|(k, _)| match decode_firing_key(k) {
            Some(FiringKey::Tick(at)) => Some(at),
            _ => None,
        }))
    }

    fn firings(&self, job: u64) -> Result<Vec<(FiringKey, FiringRecord)>, StoreError> {
        let m = self.lock();
        let prefix = job.to_be_bytes();
        Ok(m.firings
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, v)| Some((decode_firing_key(k)?, v.clone())))
            .collect())
    }

    fn state(&self, job: u64) -> Result<Option<TriggerState>, StoreError> {
        Ok(self.lock().states.get(&job).cloned())
    }

    fn put_state(&self, job: u64, state: &TriggerState) -> Result<(), StoreError> {
        self.lock().states.insert(job, state.clone());
        Ok(())
    }

    fn consumed(&self, job: u64, path: &str) -> Result<Option<Consumed>, StoreError> {
        Ok(self.lock().consumed.get(&consumed_key(job, path)).cloned())
    }

    fn put_consumed(&self, job: u64, path: &str, consumed: &Consumed) -> Result<(), StoreError> {
        self.lock().consumed.insert(consumed_key(job, path), consumed.clone());
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
