//! Test verdicts: what `sluice test` concluded about a bundle's exact bytes for a target,
//! behind the narrow [`VerdictStore`] trait, with an in-memory reference backend.
//!
//! Owns the [`Verdict`] record and the contract every backend keeps: one latest verdict
//! per (bundle content hash, target), replaced by the next, durable once `put_verdict`
//! returns. The promotion gate reads it (`testing::verdict_for`). This file must never do
//! I/O nor name a storage engine; the sled backend is `sled_verdicts.rs`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::Millis;

/// The outcome of one `sluice test` for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `bundle.name`.
    pub bundle: String,
    /// The bundle's content hash (`testing::bundle_hash`).
    pub bundle_hash: String,
    pub target: String,
    /// Every test of this target passed.
    pub passed: bool,
    /// How many tests ran for this target.
    pub tests: usize,
    /// The names of those that failed.
    pub failed: Vec<String>,
    /// When the verdict was reached (ms since the epoch).
    pub at: Millis,
    /// Who ran the tests.
    pub by: String,
}

/// Where verdicts are kept.
pub trait VerdictStore: Send + Sync {
    /// Record `verdict` as the latest for its (bundle hash, target); durable on return.
    fn put_verdict(&self, verdict: &Verdict) -> Result<(), StoreError>;
    /// The latest verdict for (bundle hash, target), if any.
    fn verdict(&self, bundle_hash: &str, target: &str) -> Result<Option<Verdict>, StoreError>;
}

/// Verdicts in memory (unit tests, the reference behaviour).
#[derive(Default)]
pub struct MemoryVerdictStore {
    verdicts: Mutex<BTreeMap<(String, String), Verdict>>,
}

impl VerdictStore for MemoryVerdictStore {
    fn put_verdict(&self, verdict: &Verdict) -> Result<(), StoreError> {
        let mut map = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert((verdict.bundle_hash.clone(), verdict.target.clone()), verdict.clone());
        Ok(())
    }

    fn verdict(&self, bundle_hash: &str, target: &str) -> Result<Option<Verdict>, StoreError> {
        let map = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(&(bundle_hash.to_string(), target.to_string())).cloned())
    }
}

/// The behaviour every backend shows (run against both in `tests` below).
#[cfg(test)]
pub(super) fn conformance(store: &dyn VerdictStore) {
    let verdict = |hash: &str, target: &str, passed: bool, at: Millis| Verdict {
        bundle: "b".into(),
        bundle_hash: hash.into(),
        target: target.into(),
        passed,
        tests: 2,
        failed: if passed { vec![] } else { vec!["t1".into()] },
        at,
        by: "me".into(),
    };
    assert_eq!(store.verdict("h1", "test").unwrap(), None);
    store.put_verdict(&verdict("h1", "test", false, 1)).unwrap();
    store.put_verdict(&verdict("h1", "prod", true, 2)).unwrap();
    store.put_verdict(&verdict("h2", "test", true, 3)).unwrap();
    assert_eq!(store.verdict("h1", "test").unwrap(), Some(verdict("h1", "test", false, 1)));
    assert_eq!(store.verdict("h1", "prod").unwrap(), Some(verdict("h1", "prod", true, 2)));
    // the latest replaces the earlier one, for that hash and target only
    store.put_verdict(&verdict("h1", "test", true, 4)).unwrap();
    assert_eq!(store.verdict("h1", "test").unwrap(), Some(verdict("h1", "test", true, 4)));
    assert_eq!(store.verdict("h2", "test").unwrap(), Some(verdict("h2", "test", true, 3)));
    // a hash that is a prefix of another, a target that is a prefix of another
    assert_eq!(store.verdict("h", "test").unwrap(), None);
    assert_eq!(store.verdict("h1", "tes").unwrap(), None);
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_verdicts_conform() {
        super::conformance(&super::MemoryVerdictStore::default());
    }

    #[test]
    fn sled_verdicts_conform_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let sled = super::super::SledStore::open(&dir.path().join("store")).unwrap();
            super::conformance(&super::super::sled_verdicts::SledVerdictStore::open(&sled).unwrap());
        }
        let sled = super::super::SledStore::open(&dir.path().join("store")).unwrap();
        let store = super::super::sled_verdicts::SledVerdictStore::open(&sled).unwrap();
        use super::VerdictStore as _;
        assert!(store.verdict("h1", "test").unwrap().is_some_and(|v| v.passed && v.at == 4));
    }
}
