//! The sled backend of [`TriggerStore`], in trees of the run store's database (one flush:
//! a run's creation and the firing and files that started it become durable together).
//!
//! Owns the on-disk layout of these trees; a file allowed to name sled. It keeps what it
//! is given and never panics on what it reads: an undecodable record is
//! [`StoreError::Corrupt`].
//!
//! | tree                | key                                   | value                 |
//! |---------------------|---------------------------------------|-----------------------|
//! | `triggers.firings`  | job BE, 0, tick BE / job BE, 1, name   | [`FiringRecord`] JSON |
//! | `triggers.state`    | job BE                                | [`TriggerState`] JSON |
//! | `triggers.consumed` | job BE, path                          | [`Consumed`] JSON     |

use super::sled_store::{decode_json, encode_json, storage};
use super::triggers::{
    Consumed, FiringKey, FiringRecord, TriggerState, TriggerStore, consumed_key, decode_firing_key, firing_key,
};
use super::{SledStore, StoreError};
use crate::model::Millis;

/// The trigger engine's records in the run store's sled database.
pub struct SledTriggerStore {
    db: sled::Db,
    firings: sled::Tree,
    state: sled::Tree,
    consumed: sled::Tree,
}

impl SledTriggerStore {
    /// Open the trigger trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledTriggerStore, StoreError> {
        let db = store.db().clone();
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        Ok(SledTriggerStore {
            firings: tree("triggers.firings")?,
            state: tree("triggers.state")?,
            consumed: tree("triggers.consumed")?,
            db,
        })
    }
}

impl TriggerStore for SledTriggerStore {
    fn firing(&self, job: u64, key: &FiringKey) -> Result<Option<FiringRecord>, StoreError> {
        match self.firings.get(firing_key(job, key)).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || format!("firing of job {job}")).map(Some),
            None => Ok(None),
        }
    }

    fn put_firing(&self, job: u64, key: &FiringKey, record: &FiringRecord) -> Result<(), StoreError> {
        self.firings.insert(firing_key(job, key), encode_json(record, "firing")?).map_err(storage)?;
        Ok(())
    }

    fn last_tick(&self, job: u64) -> Result<Option<Millis>, StoreError> {
        let (from, to) = (firing_key(job, &FiringKey::Tick(0)), firing_key(job, &FiringKey::Tick(u64::MAX)));
        match self.firings.range(from..=to).next_back() {
            Some(entry) => {
                let (key, _) = entry.map_err(storage)?;
                Ok(match decode_firing_key(&key) {
                    Some(FiringKey::Tick(at)) => Some(at),
                    _ => None,
                })
            }
            None => Ok(None),
        }
    }

    fn firings(&self, job: u64) -> Result<Vec<(FiringKey, FiringRecord)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.firings.scan_prefix(job.to_be_bytes()) {
            let (key, value) = entry.map_err(storage)?;
            let Some(key) = decode_firing_key(&key) else { continue };
            out.push((key, decode_json(&value, || format!("firing of job {job}"))?));
        }
        Ok(out)
    }

    fn state(&self, job: u64) -> Result<Option<TriggerState>, StoreError> {
        match self.state.get(job.to_be_bytes()).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || format!("trigger state of job {job}")).map(Some),
            None => Ok(None),
        }
    }

    fn put_state(&self, job: u64, state: &TriggerState) -> Result<(), StoreError> {
        self.state.insert(job.to_be_bytes(), encode_json(state, "trigger state")?).map_err(storage)?;
        self.flush()
    }

    fn consumed(&self, job: u64, path: &str) -> Result<Option<Consumed>, StoreError> {
        match self.consumed.get(consumed_key(job, path)).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || format!("consumed file {path}")).map(Some),
            None => Ok(None),
        }
    }

    fn put_consumed(&self, job: u64, path: &str, consumed: &Consumed) -> Result<(), StoreError> {
        self.consumed.insert(consumed_key(job, path), encode_json(consumed, "consumed file")?).map_err(storage)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(storage)?;
        Ok(())
    }
}
