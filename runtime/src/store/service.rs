//! What a serving owner keeps beside the runs: stable job ids, idempotency tokens, API
//! tokens and groups (who belongs to which group), behind the [`ServiceStore`] trait.
//!
//! Owns the record types and the contract; the sled backend is `sled_service.rs` (in the
//! same database as the runs, so one flush covers a run's creation and the idempotency
//! token that names it), [`MemoryServiceStore`] is the reference for unit tests. It must
//! never decide anything (who may use a token, whether a token is still valid, what a
//! job is): the service module does; this only keeps what it is given. API tokens are
//! kept as hashes only, never as the token itself.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{StoreError, check_name};
use crate::model::{Millis, RunId};

/// Where a job lives: the stable job id belongs to this triple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobKey {
    pub workspace: String,
    /// The bundle's `[bundle] name`.
    pub bundle: String,
    pub job: String,
}

/// The run an idempotency token created, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub run: RunId,
    pub at: Millis,
}

/// An API token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A short public name for listing and revoking (not enough to authenticate).
    pub id: String,
    /// blake3 of the token, hex.
    pub hash: String,
    /// Who the token's requests act as.
    pub principal: String,
    /// The only workspace the token sees.
    pub workspace: String,
    pub created_at: Millis,
    /// `None`: the token never expires.
    pub expires_at: Option<Millis>,
}

/// A group and its members (principals), as `permissions`' `group_name` grants name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    /// Principals (users or service principals), sorted.
    pub members: std::collections::BTreeSet<String>,
    pub updated_at: Millis,
}

/// Durable records of a serving owner. Writes are durable once [`ServiceStore::flush`]
/// (or the run store's flush, which shares it) returns, unless a method says it flushes.
pub trait ServiceStore: Send + Sync {
    /// The job's stable id: the one it was given when first seen, else a new one (from
    /// a counter starting at 1; made durable before it is returned).
    fn job_id(&self, key: &JobKey) -> Result<u64, StoreError>;
    /// The job a stable id names.
    fn job_key(&self, id: u64) -> Result<Option<JobKey>, StoreError>;
    /// The run `token` created in `workspace`, if one did.
    fn idempotency(&self, workspace: &str, token: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Remember the run `token` created (not flushed: flushed with the run's creation).
    fn put_idempotency(&self, workspace: &str, token: &str, record: IdempotencyRecord) -> Result<(), StoreError>;
    /// Forget tokens recorded before `before`; how many were forgotten.
    fn prune_idempotency(&self, before: Millis) -> Result<usize, StoreError>;
    /// Add (or replace) an API token by its hash; flushed before returning.
    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The token whose hash is `hash`.
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token, by id.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Remove the token with public id `id`; whether there was one. Flushed before returning.
    fn remove_token(&self, id: &str) -> Result<bool, StoreError>;
    /// Add or replace a group; one without members is removed. Flushed before returning.
    fn put_group(&self, group: &GroupRecord) -> Result<(), StoreError>;
    /// Every group, by name.
    fn groups(&self) -> Result<Vec<GroupRecord>, StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
}

/// The key a job is found under: each part length-prefixed (names are checked, so each
/// length fits its byte), so no two triples share an encoding.
pub(crate) fn job_key_bytes(key: &JobKey) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for part in [&key.workspace, &key.bundle, &key.job] {
        check_name(part)?;
        out.push(part.len() as u8);
        out.extend_from_slice(part.as_bytes());
    }
    Ok(out)
}

/// The key an idempotency token is found under: the workspace length-prefixed, then the token.
pub(crate) fn idempotency_key(workspace: &str, token: &str) -> Result<Vec<u8>, StoreError> {
    check_name(workspace)?;
    check_name(token)?;
    let mut out = vec![workspace.len() as u8];
    out.extend_from_slice(workspace.as_bytes());
    out.extend_from_slice(token.as_bytes());
    Ok(out)
}

/// In memory: the reference behaviour, for unit tests.
#[derive(Default)]
pub struct MemoryServiceStore {
    inner: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    jobs: BTreeMap<Vec<u8>, u64>,
    job_keys: BTreeMap<u64, JobKey>,
    idempotency: BTreeMap<Vec<u8>, IdempotencyRecord>,
    tokens: BTreeMap<String, TokenRecord>,
    groups: BTreeMap<String, GroupRecord>,
}

impl MemoryServiceStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ServiceStore for MemoryServiceStore {
    fn job_id(&self, key: &JobKey) -> Result<u64, StoreError> {
        let bytes = job_key_bytes(key)?;
        let mut m = self.lock();
        if let Some(&id) = m.jobs.get(&bytes) {
            return Ok(id);
        }
        let id = m.job_keys.keys().next_back().map_or(1, |last| last + 1);
        m.jobs.insert(bytes, id);
        m.job_keys.insert(id, key.clone());
        Ok(id)
    }

    fn job_key(&self, id: u64) -> Result<Option<JobKey>, StoreError> {
        Ok(self.lock().job_keys.get(&id).cloned())
    }

    fn idempotency(&self, workspace: &str, token: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().idempotency.get(&idempotency_key(workspace, token)?).copied())
    }

    fn put_idempotency(&self, workspace: &str, token: &str, record: IdempotencyRecord) -> Result<(), StoreError> {
        self.lock().idempotency.insert(idempotency_key(workspace, token)?, record);
        Ok(())
    }

    fn prune_idempotency(&self, before: Millis) -> Result<usize, StoreError> {
        let mut m = self.lock();
        let n = m.idempotency.len();
        m.idempotency.retain(|_, r| r.at >= before);
        Ok(n - m.idempotency.len())
    }

    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.lock().tokens.insert(token.hash.clone(), token.clone());
        Ok(())
    }

    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut all: Vec<TokenRecord> = self.lock().tokens.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    fn remove_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut m = self.lock();
        let n = m.tokens.len();
        m.tokens.retain(|_, t| t.id != id);
        Ok(m.tokens.len() < n)
    }

    fn put_group(&self, group: &GroupRecord) -> Result<(), StoreError> {
        check_name(&group.name)?;
        let mut m = self.lock();
        if group.members.is_empty() {
            m.groups.remove(&group.name);
        } else {
            m.groups.insert(group.name.clone(), group.clone());
        }
        Ok(())
    }

    fn groups(&self) -> Result<Vec<GroupRecord>, StoreError> {
        Ok(self.lock().groups.values().cloned().collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The contract every backend keeps; run against each (`memory` here, sled in its tests).
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn key(ws: &str, bundle: &str, job: &str) -> JobKey {
        JobKey { workspace: ws.into(), bundle: bundle.into(), job: job.into() }
    }

    pub(crate) fn job_ids_are_stable_small_and_distinct(s: &dyn ServiceStore) {
        let a = s.job_id(&key("default", "b", "etl")).unwrap();
        let b = s.job_id(&key("default", "b", "flaky")).unwrap();
        let c = s.job_id(&key("other", "b", "etl")).unwrap();
        // length prefixes keep ("ab","c") and ("a","bc") apart
        let d = s.job_id(&key("default", "ab", "c")).unwrap();
        let e = s.job_id(&key("default", "a", "bc")).unwrap();
        assert_eq!(vec![a, b, c, d, e], vec![1, 2, 3, 4, 5]);
        assert_eq!(s.job_id(&key("default", "b", "etl")).unwrap(), a, "the same job keeps its id");
        assert_eq!(s.job_key(c).unwrap(), Some(key("other", "b", "etl")));
        assert_eq!(s.job_key(99).unwrap(), None);
        assert!(s.job_id(&key("", "b", "etl")).is_err(), "empty names are refused");
    }

    pub(crate) fn idempotency_tokens_per_workspace(s: &dyn ServiceStore) {
        s.put_idempotency("default", "tok-1", IdempotencyRecord { run: 7, at: 100 }).unwrap();
        s.put_idempotency("other", "tok-1", IdempotencyRecord { run: 8, at: 200 }).unwrap();
        assert_eq!(s.idempotency("default", "tok-1").unwrap(), Some(IdempotencyRecord { run: 7, at: 100 }));
        assert_eq!(s.idempotency("other", "tok-1").unwrap().map(|r| r.run), Some(8));
        assert_eq!(s.idempotency("default", "tok-2").unwrap(), None);
        assert_eq!(s.prune_idempotency(150).unwrap(), 1);
        assert_eq!(s.idempotency("default", "tok-1").unwrap(), None);
        assert!(s.idempotency("other", "tok-1").unwrap().is_some());
    }

    pub(crate) fn tokens_by_hash_listed_by_id_and_revoked(s: &dyn ServiceStore) {
        let t = |id: &str, hash: &str| TokenRecord {
            id: id.into(),
            hash: hash.into(),
            principal: "alice".into(),
            workspace: "default".into(),
            created_at: 1,
            expires_at: Some(5),
        };
        s.put_token(&t("b", "h2")).unwrap();
        s.put_token(&t("a", "h1")).unwrap();
        assert_eq!(s.token("h1").unwrap(), Some(t("a", "h1")));
        assert_eq!(s.token("nope").unwrap(), None);
        assert_eq!(s.tokens().unwrap().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(s.remove_token("a").unwrap());
        assert!(!s.remove_token("a").unwrap());
        assert_eq!(s.token("h1").unwrap(), None);
    }

    pub(crate) fn groups_replaced_listed_by_name_and_removed_when_empty(s: &dyn ServiceStore) {
        let g = |name: &str, members: &[&str]| GroupRecord {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            updated_at: 1,
        };
        s.put_group(&g("ops", &["bob", "ana"])).unwrap();
        s.put_group(&g("analysts", &["cy"])).unwrap();
        assert_eq!(s.groups().unwrap(), vec![g("analysts", &["cy"]), g("ops", &["ana", "bob"])]);
        s.put_group(&g("ops", &["bob"])).unwrap();
        s.put_group(&g("analysts", &[])).unwrap();
        assert_eq!(s.groups().unwrap(), vec![g("ops", &["bob"])], "replaced, and removed when empty");
        assert!(s.put_group(&g("", &["x"])).is_err(), "an empty name is refused");
    }

    pub(crate) fn all(s: &dyn ServiceStore) {
        job_ids_are_stable_small_and_distinct(s);
        idempotency_tokens_per_workspace(s);
        tokens_by_hash_listed_by_id_and_revoked(s);
        groups_replaced_listed_by_name_and_removed_when_empty(s);
    }

    #[test]
    fn memory_keeps_the_contract() {
        all(&MemoryServiceStore::default());
    }
}
