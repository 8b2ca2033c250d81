//! The sled backend of [`DeploymentStore`]: every record of every target in one tree of
//! the run store's database, so that a change — new record, pointer, journal entry — is
//! one `apply_batch` (atomic: after a crash the target shows the old deployment or the
//! new one, never a mix), flushed before it returns.
//!
//! Owns the tree's layout; like `sled_store.rs`, a file allowed to name sled. Keys start
//! with one tag byte, then the target's key (length-prefixed parts):
//!
//! | key                              | value                                  |
//! |----------------------------------|----------------------------------------|
//! | `r` target number (u64 BE)       | a deployment record (the deploy module's bytes) |
//! | `c` target                       | the current deployment's number (absent: none) |
//! | `l` target                       | the last number given (never reused)   |
//! | `j` target seq (u64 BE)          | a journal entry                        |
//! | `s` target                       | the last journal seq                   |

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::deploy::{Applied, Change, DeploymentStore, Pointer, TargetKey, decode_target_key, target_key_bytes};
use super::sled_store::{decode_u64, storage};
use super::{SledStore, StoreError};
use crate::util::failpoint::{self, Point};

const TREE: &str = "deploy";

/// Deployments in the run store's sled database.
pub struct SledDeploymentStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Serializes changes (read the pointer, compare, write).
    write_lock: Mutex<()>,
    /// The run store's write gate: a backup sees no change half-done.
    gate: Arc<RwLock<()>>,
}

fn tagged(tag: u8, key: &[u8], number: Option<u64>) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(key);
    if let Some(n) = number {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out
}

impl SledDeploymentStore {
    /// Open the deployments tree of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledDeploymentStore, StoreError> {
        let db = store.db().clone();
        let tree = db.open_tree(TREE).map_err(storage)?;
        Ok(SledDeploymentStore { db, tree, write_lock: Mutex::new(()), gate: store.gate() })
    }

    fn number(&self, key: Vec<u8>, what: &str) -> Result<Option<u64>, StoreError> {
        self.tree.get(key).map_err(storage)?.map(|v| decode_u64(&v, what)).transpose()
    }

    fn under(&self, prefix: Vec<u8>) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (k, v) = entry.map_err(storage)?;
            let n = decode_u64(&k[prefix.len()..], "deployment key")?;
            out.push((n, v.to_vec()));
        }
        Ok(out)
    }
}

impl DeploymentStore for SledDeploymentStore {
    fn apply(&self, key: &TargetKey, change: Change) -> Result<Applied, StoreError> {
        let k = target_key_bytes(key)?;
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        let _lock = self.write_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.number(tagged(b'c', &k, None), "current deployment")?;
        if current != change.expected {
            return Ok(Applied::Conflict { current });
        }
        let last = self.number(tagged(b'l', &k, None), "last deployment")?.unwrap_or(0);
        let seq = self.number(tagged(b's', &k, None), "journal seq")?.unwrap_or(0) + 1;
        let mut batch = sled::Batch::default();
        let next = last + 1;
        if let Some(record) = change.record {
            batch.insert(tagged(b'r', &k, Some(next)), record);
            batch.insert(tagged(b'l', &k, None), &next.to_be_bytes());
        }
        let number = match change.pointer {
            Pointer::New => Some(next),
            Pointer::Existing(n) if self.tree.get(tagged(b'r', &k, Some(n))).map_err(storage)?.is_none() => {
                return Err(StoreError::Io(format!("deployment {n} does not exist")));
            }
            Pointer::Existing(n) => Some(n),
            Pointer::Clear | Pointer::Keep => current,
        };
        match (change.pointer, number) {
            (Pointer::Keep, _) => {}
            (Pointer::Clear, _) | (_, None) => batch.remove(tagged(b'c', &k, None)),
            (_, Some(n)) => batch.insert(tagged(b'c', &k, None), &n.to_be_bytes()),
        }
        batch.insert(tagged(b'j', &k, Some(seq)), change.journal);
        batch.insert(tagged(b's', &k, None), &seq.to_be_bytes());
        // a crash here leaves the old deployment; one after the batch, before the flush,
        // leaves whichever the disk holds: the batch is atomic either way
        failpoint::hit(Point::Deploy);
        self.tree.apply_batch(batch).map_err(storage)?;
        failpoint::hit(Point::Deploy);
        self.db.flush().map_err(storage)?;
        Ok(Applied::Done { number })
    }

    fn current(&self, key: &TargetKey) -> Result<Option<u64>, StoreError> {
        self.number(tagged(b'c', &target_key_bytes(key)?, None), "current deployment")
    }

    fn record(&self, key: &TargetKey, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let k = tagged(b'r', &target_key_bytes(key)?, Some(number));
        Ok(self.tree.get(k).map_err(storage)?.map(|v| v.to_vec()))
    }

    fn records(&self, key: &TargetKey) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.under(tagged(b'r', &target_key_bytes(key)?, None))
    }

    fn journal(&self, key: &TargetKey) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.under(tagged(b'j', &target_key_bytes(key)?, None))?.into_iter().map(|(_, v)| v).collect())
    }

    fn targets(&self, workspace: Option<&str>) -> Result<Vec<(TargetKey, Option<u64>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([b'l']) {
            let (k, _) = entry.map_err(storage)?;
            let Some(key) = decode_target_key(&k[1..]) else {
                return Err(StoreError::Corrupt { what: "deployment target key".into(), message: format!("{k:?}") });
            };
            if workspace.is_none_or(|w| key.workspace == w) {
                let current = self.current(&key)?;
                out.push((key, current));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_keeps_the_contract_and_deployments_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = TargetKey { workspace: "default".into(), bundle: "b".into(), target: "dev".into() };
        {
            let store = SledStore::open(dir.path()).unwrap();
            let deploys = SledDeploymentStore::open(&store).unwrap();
            super::super::deploy::conformance::all(&deploys);
        }
        let store = SledStore::open(dir.path()).unwrap();
        let deploys = SledDeploymentStore::open(&store).unwrap();
        assert_eq!(deploys.current(&key).unwrap(), Some(2), "the pointer survived");
        assert_eq!(deploys.record(&key, 2).unwrap().as_deref(), Some(&b"two"[..]));
    }
}
