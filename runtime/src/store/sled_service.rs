//! The sled backend of [`ServiceStore`]: job ids, idempotency tokens and API token
//! hashes, in trees of the run store's database (one lock, one flush: a run's creation
//! and the idempotency token naming it become durable together).
//!
//! Owns the on-disk layout of these trees; like `sled_store.rs`, a file allowed to name
//! sled. It keeps what it is given, never decides who may use a token, and never panics
//! on what it reads: an undecodable record is a [`StoreError::Corrupt`].
//!
//! | tree                  | key                                            | value                  |
//! |-----------------------|------------------------------------------------|------------------------|
//! | `service.jobs`        | part(workspace) part(bundle) part(job)          | job id u64 BE          |
//! | `service.job_ids`     | job id u64 BE                                  | [`JobKey`] JSON        |
//! | `service.idempotency` | part(workspace) token                          | [`IdempotencyRecord`] JSON |
//! | `service.tokens`      | hash (hex)                                     | [`TokenRecord`] JSON   |
//! | `service.groups`      | group name                                     | [`GroupRecord`] JSON   |

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::service::{
    GroupRecord, IdempotencyRecord, JobKey, ServiceStore, TokenRecord, idempotency_key, job_key_bytes,
};
use super::sled_store::{decode_json, decode_u64, encode_json, storage};
use super::{SledStore, StoreError};
use crate::model::Millis;

/// The service's records in the run store's sled database.
pub struct SledServiceStore {
    db: sled::Db,
    jobs: sled::Tree,
    job_ids: sled::Tree,
    idempotency: sled::Tree,
    tokens: sled::Tree,
    groups: sled::Tree,
    /// Serializes job id assignment (read the last id, write the next).
    write_lock: Mutex<()>,
}

impl SledServiceStore {
    /// Open the service trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledServiceStore, StoreError> {
        let db = store.db().clone();
        let tree = |name: &str| db.open_tree(name).map_err(storage);
        Ok(SledServiceStore {
            jobs: tree("service.jobs")?,
            job_ids: tree("service.job_ids")?,
            idempotency: tree("service.idempotency")?,
            tokens: tree("service.tokens")?,
            groups: tree("service.groups")?,
            db,
            write_lock: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServiceStore for SledServiceStore {
    fn job_id(&self, key: &JobKey) -> Result<u64, StoreError> {
        let bytes = job_key_bytes(key)?;
        if let Some(id) = self.jobs.get(&bytes).map_err(storage)? {
            return decode_u64(&id, "job id");
        }
        let _guard = self.lock();
        if let Some(id) = self.jobs.get(&bytes).map_err(storage)? {
            return decode_u64(&id, "job id");
        }
        let next = match self.job_ids.last().map_err(storage)? {
            Some((last, _)) => decode_u64(&last, "job id")? + 1,
            None => 1,
        };
        self.job_ids.insert(next.to_be_bytes(), encode_json(key, "job key")?).map_err(storage)?;
        self.jobs.insert(bytes, &next.to_be_bytes()).map_err(storage)?;
        self.flush()?;
        Ok(next)
    }

    fn job_key(&self, id: u64) -> Result<Option<JobKey>, StoreError> {
        match self.job_ids.get(id.to_be_bytes()).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || format!("job {id}")).map(Some),
            None => Ok(None),
        }
    }

    fn idempotency(&self, workspace: &str, token: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.idempotency.get(idempotency_key(workspace, token)?).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || "idempotency token".to_string()).map(Some),
            None => Ok(None),
        }
    }

    fn put_idempotency(&self, workspace: &str, token: &str, record: IdempotencyRecord) -> Result<(), StoreError> {
        let value = encode_json(&record, "idempotency record")?;
        self.idempotency.insert(idempotency_key(workspace, token)?, value).map_err(storage)?;
        Ok(())
    }

    fn prune_idempotency(&self, before: Millis) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.idempotency.iter() {
            let (key, value) = entry.map_err(storage)?;
            let record: IdempotencyRecord = decode_json(&value, || "idempotency token".to_string())?;
            if record.at < before {
                self.idempotency.remove(key).map_err(storage)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.tokens.insert(token.hash.as_bytes(), encode_json(token, "token")?).map_err(storage)?;
        self.flush()
    }

    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        match self.tokens.get(hash.as_bytes()).map_err(storage)? {
            Some(bytes) => decode_json(&bytes, || "token".to_string()).map(Some),
            None => Ok(None),
        }
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut out: Vec<TokenRecord> = Vec::new();
        for entry in self.tokens.iter() {
            let (_, value) = entry.map_err(storage)?;
            out.push(decode_json(&value, || "token".to_string())?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn remove_token(&self, id: &str) -> Result<bool, StoreError> {
        let Some(token) = self.tokens()?.into_iter().find(|t| t.id == id) else { return Ok(false) };
        self.tokens.remove(token.hash.as_bytes()).map_err(storage)?;
        self.flush()?;
        Ok(true)
    }

    fn put_group(&self, group: &GroupRecord) -> Result<(), StoreError> {
        super::check_name(&group.name)?;
        if group.members.is_empty() {
            self.groups.remove(group.name.as_bytes()).map_err(storage)?;
        } else {
            self.groups.insert(group.name.as_bytes(), encode_json(group, "group")?).map_err(storage)?;
        }
        self.flush()
    }

    fn groups(&self) -> Result<Vec<GroupRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in self.groups.iter() {
            let (key, value) = entry.map_err(storage)?;
            out.push(decode_json(&value, || format!("group {}", String::from_utf8_lossy(&key)))?);
        }
        Ok(out)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_keeps_the_contract_and_job_ids_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = JobKey { workspace: "default".into(), bundle: "b".into(), job: "etl".into() };
        {
            let store = SledStore::open(dir.path()).unwrap();
            let service = SledServiceStore::open(&store).unwrap();
            super::super::service::conformance::all(&service);
            service.put_idempotency("default", "durable", IdempotencyRecord { run: 3, at: 9 }).unwrap();
            service.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let service = SledServiceStore::open(&store).unwrap();
        assert_eq!(service.job_id(&key).unwrap(), 1, "the first job kept its id");
        assert_eq!(service.idempotency("default", "durable").unwrap().map(|r| r.run), Some(3));
        let next = service.job_id(&JobKey { job: "new".into(), ..key }).unwrap();
        assert_eq!(next, 6, "ids continue after the five the conformance suite assigned");
    }
}
