//! The sled backend of [`SecretStore`]: sealed secrets, ACLs and the audit
//! trail, in trees of the same `sled::Db` as the runs (one lock, one flush).
//!
//! Owns the on-disk layout of the secrets trees. Like `sled_store.rs`, the
//! only kind of file allowed to name sled. It stores what the vault gives it
//! (values arrive sealed; there is no plaintext to write), never decides
//! permissions, and never panics on what it reads: an undecodable record is a
//! [`StoreError::Corrupt`].
//!
//! Layout (`part(s)` = one length byte, then the bytes of `s`; every name is
//! at most 128 bytes, and length prefixes keep `db`/`db2` and `pw`/`pw2` apart):
//!
//! | tree                | key                                              | value                    |
//! |---------------------|--------------------------------------------------|--------------------------|
//! | `secrets.scopes`    | part(workspace) part(target) part(scope)         | `ScopeRecord` JSON       |
//! | `secrets.acls`      | scope key, principal                             | `AclEntry` JSON          |
//! | `secrets.versions`  | scope key, part(key), version u32 BE             | `SealedVersion` JSON     |
//! | `secrets.audit`     | seq u64 BE                                       | `AuditRecord` JSON       |
//! | `secrets.meta`      | `key_check`                                      | `Sealed` JSON            |

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional as _;

use super::{SledStore, StoreError};
use crate::secrets::{AclEntry, AuditRecord, BackendError, ScopeId, ScopeRecord, Sealed, SealedVersion, SecretStore};

const KEY_CHECK: &[u8] = b"key_check";

/// Secrets in the run store's sled database.
pub struct SledSecretStore {
    db: sled::Db,
    scopes: sled::Tree,
    acls: sled::Tree,
    versions: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    /// Serializes the writes that read before they write (audit sequence,
    /// deletes that gather keys first) against each other and against adds.
    write_lock: Mutex<()>,
    /// The run store's write gate: a backup sees no secrets write half-done either.
    gate: Arc<RwLock<()>>,
}

/// Held by a secrets write: the gate (shared), then the write lock.
struct Writing<'a> {
    _gate: RwLockReadGuard<'a, ()>,
    _lock: MutexGuard<'a, ()>,
}

impl SledSecretStore {
    /// Open the secrets trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledSecretStore, StoreError> {
        let db = store.db().clone();
        let tree = |name: &str| db.open_tree(name).map_err(|e| StoreError::Io(e.to_string()));
        Ok(SledSecretStore {
            scopes: tree("secrets.scopes")?,
            acls: tree("secrets.acls")?,
            versions: tree("secrets.versions")?,
            audit: tree("secrets.audit")?,
            meta: tree("secrets.meta")?,
            db,
            write_lock: Mutex::new(()),
            gate: store.gate(),
        })
    }

    /// Taken by every write (and only by writes).
    fn lock(&self) -> Writing<'_> {
        crate::util::failpoint::hit(crate::util::failpoint::Point::Secret);
        Writing {
            _gate: self.gate.read().unwrap_or_else(PoisonError::into_inner),
            _lock: self.write_lock.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Keys of every record under `prefix` in `tree`.
    fn keys_under(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<sled::IVec>, BackendError> {
        tree.scan_prefix(prefix).keys().map(|k| k.map_err(storage)).collect()
    }
}

impl SecretStore for SledSecretStore {
    fn scope(&self, id: &ScopeId) -> Result<Option<ScopeRecord>, BackendError> {
        match self.scopes.get(scope_key(id)?).map_err(storage)? {
            Some(bytes) => decode(&bytes, "scope").map(Some),
            None => Ok(None),
        }
    }

    fn scopes(&self) -> Result<Vec<ScopeRecord>, BackendError> {
        let mut out: Vec<ScopeRecord> = self
            .scopes
            .iter()
            .values()
            .map(|v| v.map_err(storage).and_then(|b| decode(&b, "scope")))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn create_scope(&self, scope: &ScopeRecord, first: &AclEntry) -> Result<bool, BackendError> {
        let key = scope_key(&scope.id)?;
        let acl_key = [key.as_slice(), first.principal.as_bytes()].concat();
        let (scope_bytes, acl_bytes) = (encode(scope, "scope")?, encode(first, "ACL entry")?);
        let _guard = self.lock();
        (&self.scopes, &self.acls)
            .transaction(|(scopes, acls)| {
                if scopes.get(&key)?.is_some() {
                    return Ok(false);
                }
                scopes.insert(key.as_slice(), scope_bytes.as_slice())?;
                acls.insert(acl_key.as_slice(), acl_bytes.as_slice())?;
                Ok(true)
            })
            .map_err(transaction)
    }

    fn delete_scope(&self, id: &ScopeId) -> Result<bool, BackendError> {
        let key = scope_key(id)?;
        let _guard = self.lock();
        let acl_keys = Self::keys_under(&self.acls, &key)?;
        let version_keys = Self::keys_under(&self.versions, &key)?;
        (&self.scopes, &self.acls, &self.versions)
            .transaction(|(scopes, acls, versions)| {
                if scopes.remove(key.as_slice())?.is_none() {
                    return Ok(false);
                }
                for k in &acl_keys {
                    acls.remove(k)?;
                }
                for k in &version_keys {
                    versions.remove(k)?;
                }
                Ok(true)
            })
            .map_err(transaction)
    }

    fn acl(&self, id: &ScopeId) -> Result<Vec<AclEntry>, BackendError> {
        self.acls
            .scan_prefix(scope_key(id)?)
            .values()
            .map(|v| v.map_err(storage).and_then(|b| decode(&b, "ACL entry")))
            .collect()
    }

    fn put_acl(&self, id: &ScopeId, entry: &AclEntry) -> Result<(), BackendError> {
        let key = [scope_key(id)?.as_slice(), entry.principal.as_bytes()].concat();
        let _guard = self.lock();
        self.acls.insert(key, encode(entry, "ACL entry")?).map_err(storage)?;
        Ok(())
    }

    fn delete_acl(&self, id: &ScopeId, principal: &str) -> Result<bool, BackendError> {
        let key = [scope_key(id)?.as_slice(), principal.as_bytes()].concat();
        let _guard = self.lock();
        Ok(self.acls.remove(key).map_err(storage)?.is_some())
    }

    fn add_version(&self, id: &ScopeId, key: &str, version: &SealedVersion) -> Result<bool, BackendError> {
        let mut full = secret_prefix(id, key)?;
        full.extend_from_slice(&version.version.to_be_bytes());
        let bytes = encode(version, "secret version")?;
        let _guard = self.lock();
        let swapped = self.versions.compare_and_swap(full, None as Option<&[u8]>, Some(bytes)).map_err(storage)?;
        Ok(swapped.is_ok())
    }

    fn versions(&self, id: &ScopeId, key: &str) -> Result<Vec<SealedVersion>, BackendError> {
        self.versions
            .scan_prefix(secret_prefix(id, key)?)
            .values()
            .map(|v| v.map_err(storage).and_then(|b| decode(&b, "secret version")))
            .collect()
    }

    fn latest(&self, id: &ScopeId, key: &str) -> Result<Option<SealedVersion>, BackendError> {
        match self.versions.scan_prefix(secret_prefix(id, key)?).values().next_back() {
            Some(v) => decode(&v.map_err(storage)?, "secret version").map(Some),
            None => Ok(None),
        }
    }

    fn secret_keys(&self, id: &ScopeId) -> Result<Vec<String>, BackendError> {
        let prefix = scope_key(id)?;
        let mut out: Vec<String> = Vec::new();
        for k in Self::keys_under(&self.versions, &prefix)? {
            let rest = &k[prefix.len()..];
            let name = rest
                .split_first()
                .and_then(|(&len, tail)| tail.get(..usize::from(len)))
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| corrupt("secret version key", "malformed key name"))?;
            if out.last().is_none_or(|last| last != name) {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    fn delete_secret(&self, id: &ScopeId, key: &str) -> Result<bool, BackendError> {
        let prefix = secret_prefix(id, key)?;
        let _guard = self.lock();
        let keys = Self::keys_under(&self.versions, &prefix)?;
        let mut batch = sled::Batch::default();
        for k in &keys {
            batch.remove(k);
        }
        self.versions.apply_batch(batch).map_err(storage)?;
        Ok(!keys.is_empty())
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<u64, BackendError> {
        let _guard = self.lock();
        let last = match self.audit.last().map_err(storage)? {
            Some((k, _)) => seq_of(&k)?,
            None => 0,
        };
        let seq = last.checked_add(1).ok_or_else(|| corrupt("audit trail", "sequence numbers exhausted"))?;
        let stored = AuditRecord { seq, ..record.clone() };
        self.audit.insert(seq.to_be_bytes(), encode(&stored, "audit record")?).map_err(storage)?;
        Ok(seq)
    }

    fn audit(&self) -> Result<Vec<AuditRecord>, BackendError> {
        self.audit
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(storage)?;
                let record: AuditRecord = decode(&v, "audit record")?;
                Ok(AuditRecord { seq: seq_of(&k)?, ..record })
            })
            .collect()
    }

    fn key_check(&self) -> Result<Option<Sealed>, BackendError> {
        match self.meta.get(KEY_CHECK).map_err(storage)? {
            Some(bytes) => decode(&bytes, "master key check").map(Some),
            None => Ok(None),
        }
    }

    fn init_key_check(&self, check: &Sealed) -> Result<Sealed, BackendError> {
        let bytes = encode(check, "master key check")?;
        let _guard = self.lock();
        match self.meta.compare_and_swap(KEY_CHECK, None as Option<&[u8]>, Some(bytes)).map_err(storage)? {
            Ok(()) => Ok(check.clone()),
            Err(existing) => match existing.current {
                Some(bytes) => decode(&bytes, "master key check"),
                None => Err(corrupt("master key check", "vanished while being set")),
            },
        }
    }

    fn flush(&self) -> Result<(), BackendError> {
        crate::util::failpoint::hit(crate::util::failpoint::Point::Flush);
        self.db.flush().map_err(storage)?;
        Ok(())
    }
}

fn part(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), BackendError> {
    let len = u8::try_from(s.len()).map_err(|_| {
        BackendError::from(StoreError::InvalidName {
            name: what.to_string(),
            reason: "names must be at most 255 bytes long",
        })
    })?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn scope_key(id: &ScopeId) -> Result<Vec<u8>, BackendError> {
    let mut key = Vec::with_capacity(3 + id.workspace.len() + id.target.len() + id.name.len());
    part(&mut key, &id.workspace, "workspace")?;
    part(&mut key, &id.target, "target")?;
    part(&mut key, &id.name, "scope")?;
    Ok(key)
}

fn secret_prefix(id: &ScopeId, key: &str) -> Result<Vec<u8>, BackendError> {
    let mut prefix = scope_key(id)?;
    part(&mut prefix, key, "secret key")?;
    Ok(prefix)
}

fn seq_of(key: &[u8]) -> Result<u64, BackendError> {
    let bytes: [u8; 8] =
        key.try_into().map_err(|_| corrupt("audit key", format!("{} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, BackendError> {
    serde_json::to_vec(value).map_err(|e| corrupt(what, e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, BackendError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e.to_string()))
}

fn storage(e: sled::Error) -> BackendError {
    match e {
        sled::Error::Corruption { .. } => corrupt("storage file", e.to_string()),
        other => StoreError::Io(other.to_string()).into(),
    }
}

fn transaction(e: sled::transaction::TransactionError<()>) -> BackendError {
    match e {
        sled::transaction::TransactionError::Storage(e) => storage(e),
        sled::transaction::TransactionError::Abort(()) => {
            StoreError::Io("a secrets transaction was aborted".into()).into()
        }
    }
}

fn corrupt(what: impl Into<String>, message: impl Into<String>) -> BackendError {
    StoreError::Corrupt { what: what.into(), message: message.into() }.into()
}

/// The secrets module's backends report failures as text; the store's wording is kept.
impl From<StoreError> for BackendError {
    fn from(e: StoreError) -> BackendError {
        BackendError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        crate::secrets::conformance::run_all(&SledSecretStore::open(&store).unwrap());
    }

    #[test]
    fn secrets_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = ScopeId::new("default", "prod", "db").unwrap();
        {
            let store = SledStore::open(&dir.path().join("store")).unwrap();
            let secrets = SledSecretStore::open(&store).unwrap();
            let scope = ScopeRecord { id: id.clone(), created_at: 1, created_by: "alice".into() };
            let first = AclEntry { principal: "alice".into(), permission: crate::secrets::Permission::Manage };
            assert!(secrets.create_scope(&scope, &first).unwrap());
            secrets.flush().unwrap();
        }
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        let secrets = SledSecretStore::open(&store).unwrap();
        assert_eq!(secrets.scope(&id).unwrap().unwrap().created_by, "alice");
        assert_eq!(secrets.acl(&id).unwrap().len(), 1);
    }
}
