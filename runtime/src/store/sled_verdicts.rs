//! The sled backend of [`VerdictStore`]: one tree of the run store's database.
//!
//! Owns the tree's layout; like `sled_store.rs`, a file allowed to name sled. It keeps
//! what it is given and never panics on what it reads: an undecodable record is a
//! [`StoreError::Corrupt`].
//!
//! | tree               | key                          | value            |
//! |--------------------|------------------------------|------------------|
//! | `testing.verdicts` | bundle hash, 0x00, target    | [`Verdict`] JSON |

use super::sled_store::{decode_json, encode_json, storage};
use super::verdicts::{Verdict, VerdictStore};
use super::{SledStore, StoreError};

/// Verdicts in the run store's sled database.
pub struct SledVerdictStore {
    db: sled::Db,
    verdicts: sled::Tree,
}

impl SledVerdictStore {
    /// Open the verdicts tree of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledVerdictStore, StoreError> {
        let db = store.db().clone();
        let verdicts = db.open_tree("testing.verdicts").map_err(storage)?;
        Ok(SledVerdictStore { db, verdicts })
    }
}

fn key(bundle_hash: &str, target: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(bundle_hash.len() + 1 + target.len());
    key.extend_from_slice(bundle_hash.as_bytes());
    key.push(0);
    key.extend_from_slice(target.as_bytes());
    key
}

impl VerdictStore for SledVerdictStore {
    fn put_verdict(&self, verdict: &Verdict) -> Result<(), StoreError> {
        super::check_name(&verdict.bundle_hash)?;
        super::check_name(&verdict.target)?;
        let bytes = encode_json(verdict, "verdict")?;
        self.verdicts.insert(key(&verdict.bundle_hash, &verdict.target), bytes).map_err(storage)?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn verdict(&self, bundle_hash: &str, target: &str) -> Result<Option<Verdict>, StoreError> {
        let Some(bytes) = self.verdicts.get(key(bundle_hash, target)).map_err(storage)? else {
            return Ok(None);
        };
        decode_json(&bytes, || format!("verdict of {bundle_hash} for {target}")).map(Some)
    }
}
