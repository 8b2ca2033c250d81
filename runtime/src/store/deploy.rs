//! What deployments keep: numbered deployment records per (workspace, bundle, target), the
//! target's current deployment, and a journal of every change, behind the
//! [`DeploymentStore`] trait.
//!
//! Owns the contract — a change is **one atomic write** (the new record, the pointer and
//! the journal entry together, or nothing), made only if the target's current deployment
//! is still the one the caller expected (compare-and-swap), durable when it returns — and
//! [`MemoryDeploymentStore`], the reference for unit tests; the sled backend is
//! `sled_deploy.rs`. Records and journal entries are opaque bytes here: the deploy module
//! encodes them. It must never decide anything (who may deploy, what a deployment holds)
//! and never do I/O in this file.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{StoreError, check_name};

/// The place deployments are numbered in: one target of one bundle in one workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    pub workspace: String,
    pub bundle: String,
    pub target: String,
}

/// Where a change leaves the target's current pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointer {
    /// The record this change adds becomes current.
    New,
    /// An existing deployment becomes current (rollback).
    Existing(u64),
    /// No deployment is current (destroy).
    Clear,
    /// The pointer stays as it is (an approval: only the journal grows).
    Keep,
}

/// One change of a target, applied atomically.
#[derive(Debug, Clone)]
pub struct Change {
    /// The current deployment the caller saw; the change is refused if it moved since.
    pub expected: Option<u64>,
    /// A new deployment record (numbered last + 1).
    pub record: Option<Vec<u8>>,
    pub pointer: Pointer,
    /// The journal entry saying what happened.
    pub journal: Vec<u8>,
}

/// What became of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied: the number the new record got (or the pointer's, without a record).
    Done { number: Option<u64> },
    /// Refused: the target's current deployment is `current`, not the one expected.
    Conflict { current: Option<u64> },
}

/// Durable deployments. Every write is flushed before it returns.
pub trait DeploymentStore: Send + Sync {
    /// Apply `change` to `key` if its current deployment is `change.expected`.
    fn apply(&self, key: &TargetKey, change: Change) -> Result<Applied, StoreError>;
    /// The current deployment's number.
    fn current(&self, key: &TargetKey) -> Result<Option<u64>, StoreError>;
    /// Deployment `number`'s record.
    fn record(&self, key: &TargetKey, number: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record of `key`, oldest first.
    fn records(&self, key: &TargetKey) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Every journal entry of `key`, oldest first.
    fn journal(&self, key: &TargetKey) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Every target with at least one record in `workspace` (`None`: in any), with its
    /// current deployment.
    fn targets(&self, workspace: Option<&str>) -> Result<Vec<(TargetKey, Option<u64>)>, StoreError>;
}

/// `key`'s encoding: each part length-prefixed (names are checked, so a length fits its
/// byte), so no two keys share an encoding or a prefix.
pub(crate) fn target_key_bytes(key: &TargetKey) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for part in [&key.workspace, &key.bundle, &key.target] {
        check_name(part)?;
        out.push(part.len() as u8);
        out.extend_from_slice(part.as_bytes());
    }
    Ok(out)
}

/// Decodes [`target_key_bytes`]; `None` for bytes it did not write.
pub(crate) fn decode_target_key(bytes: &[u8]) -> Option<TargetKey> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    for _ in 0..3 {
        let (&len, tail) = rest.split_first()?;
        let (part, tail) = tail.split_at_checked(len as usize)?;
        parts.push(String::from_utf8(part.to_vec()).ok()?);
        rest = tail;
    }
    let [workspace, bundle, target] = <[String; 3]>::try_from(parts).ok()?;
    rest.is_empty().then_some(TargetKey { workspace, bundle, target })
}

/// In memory: the reference behaviour, for unit tests.
#[derive(Default)]
pub struct MemoryDeploymentStore {
    inner: Mutex<BTreeMap<TargetKey, Target>>,
}

#[derive(Default)]
struct Target {
    records: BTreeMap<u64, Vec<u8>>,
    current: Option<u64>,
    journal: Vec<Vec<u8>>,
}

impl MemoryDeploymentStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TargetKey, Target>> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DeploymentStore for MemoryDeploymentStore {
    fn apply(&self, key: &TargetKey, change: Change) -> Result<Applied, StoreError> {
        target_key_bytes(key)?;
        let mut all = self.lock();
        let t = all.entry(key.clone()).or_default();
        if t.current != change.expected {
            return Ok(Applied::Conflict { current: t.current });
        }
        let next = t.records.keys().next_back().map_or(1, |n| n + 1);
        let number = match change.pointer {
            Pointer::New => Some(next),
            Pointer::Existing(n) if !t.records.contains_key(&n) => {
                return Err(StoreError::Io(format!("deployment {n} does not exist")));
            }
            Pointer::Existing(n) => Some(n),
            Pointer::Clear | Pointer::Keep => t.current,
        };
        if let Some(record) = change.record {
            t.records.insert(next, record);
        }
        match change.pointer {
            Pointer::Clear => t.current = None,
            Pointer::Keep => {}
            _ => t.current = number,
        }
        t.journal.push(change.journal);
        Ok(Applied::Done { number })
    }

    fn current(&self, key: &TargetKey) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().get(key).and_then(|t| t.current))
    }

    fn record(&self, key: &TargetKey, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).and_then(|t| t.records.get(&number).cloned()))
    }

    fn records(&self, key: &TargetKey) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self.lock().get(key).map(|t| t.records.clone().into_iter().collect()).unwrap_or_default())
    }

    fn journal(&self, key: &TargetKey) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).map(|t| t.journal.clone()).unwrap_or_default())
    }

    fn targets(&self, workspace: Option<&str>) -> Result<Vec<(TargetKey, Option<u64>)>, StoreError> {
        let all = self.lock();
        Ok(all
            .iter()
            .filter(|(k, t)| workspace.is_none_or(|w| k.workspace == w) && !t.records.is_empty())
            .map(|(k, t)| (k.clone(), t.current))
            .collect())
    }
}

/// The contract every backend keeps; run against each (`memory` here, sled in its tests).
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn key(target: &str) -> TargetKey {
        TargetKey { workspace: "default".into(), bundle: "b".into(), target: target.into() }
    }

    fn change(expected: Option<u64>, record: Option<&str>, pointer: Pointer) -> Change {
        Change { expected, record: record.map(|r| r.as_bytes().to_vec()), pointer, journal: b"j".to_vec() }
    }

    pub(crate) fn deploys_number_and_point(s: &dyn DeploymentStore) {
        let k = key("dev");
        assert_eq!(s.current(&k).unwrap(), None);
        assert_eq!(s.apply(&k, change(None, Some("one"), Pointer::New)).unwrap(), Applied::Done { number: Some(1) });
        assert_eq!(s.apply(&k, change(Some(1), Some("two"), Pointer::New)).unwrap(), Applied::Done { number: Some(2) });
        assert_eq!(s.current(&k).unwrap(), Some(2));
        assert_eq!(s.record(&k, 1).unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(s.records(&k).unwrap().iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.record(&key("prod"), 1).unwrap(), None, "targets are numbered apart");
    }

    pub(crate) fn a_stale_expectation_conflicts_and_writes_nothing(s: &dyn DeploymentStore) {
        let k = key("test");
        s.apply(&k, change(None, Some("one"), Pointer::New)).unwrap();
        let refused = s.apply(&k, change(None, Some("late"), Pointer::New)).unwrap();
        assert_eq!(refused, Applied::Conflict { current: Some(1) });
        assert_eq!(s.records(&k).unwrap().len(), 1, "the refused record was not written");
        assert_eq!(s.journal(&k).unwrap().len(), 1, "nor its journal entry");
    }

    pub(crate) fn rollback_destroy_and_journal(s: &dyn DeploymentStore) {
        let k = key("prod");
        s.apply(&k, change(None, Some("one"), Pointer::New)).unwrap();
        s.apply(&k, change(Some(1), Some("two"), Pointer::New)).unwrap();
        assert_eq!(
            s.apply(&k, change(Some(2), None, Pointer::Existing(1))).unwrap(),
            Applied::Done { number: Some(1) }
        );
        assert_eq!(s.current(&k).unwrap(), Some(1));
        assert!(s.apply(&k, change(Some(1), None, Pointer::Existing(9))).is_err(), "no deployment 9");
        s.apply(&k, change(Some(1), None, Pointer::Keep)).unwrap();
        assert_eq!(s.current(&k).unwrap(), Some(1), "keep keeps");
        s.apply(&k, change(Some(1), None, Pointer::Clear)).unwrap();
        assert_eq!(s.current(&k).unwrap(), None);
        assert_eq!(s.journal(&k).unwrap().len(), 5);
        let next = s.apply(&k, change(None, Some("three"), Pointer::New)).unwrap();
        assert_eq!(next, Applied::Done { number: Some(3) }, "numbers are never reused");
        let listed = s.targets(Some("default")).unwrap();
        assert!(listed.contains(&(k.clone(), Some(3))), "{listed:?}");
        assert!(s.targets(Some("other")).unwrap().is_empty());
    }

    pub(crate) fn keys_round_trip(_s: &dyn DeploymentStore) {
        let k = TargetKey { workspace: "w".into(), bundle: "ab".into(), target: "c".into() };
        assert_eq!(decode_target_key(&target_key_bytes(&k).unwrap()), Some(k));
        assert_eq!(decode_target_key(b"\x05ab"), None);
    }

    pub(crate) fn all(s: &dyn DeploymentStore) {
        deploys_number_and_point(s);
        a_stale_expectation_conflicts_and_writes_nothing(s);
        rollback_destroy_and_journal(s);
        keys_round_trip(s);
    }

    #[test]
    fn memory_keeps_the_contract() {
        all(&MemoryDeploymentStore::default());
    }
}
