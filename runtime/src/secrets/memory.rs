//! [`MemorySecretStore`]: the in-memory [`SecretStore`], for tests and as the
//! reference behaviour the durable backend is checked against. Holds only
//! sealed values, like every backend; never does I/O.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{AclEntry, AuditRecord, BackendError, ScopeId, ScopeRecord, Sealed, SealedVersion, SecretStore};

#[derive(Default)]
struct Inner {
    scopes: BTreeMap<ScopeId, ScopeRecord>,
    acls: BTreeMap<ScopeId, BTreeMap<String, AclEntry>>,
    /// (scope, key) → version → record
    versions: BTreeMap<(ScopeId, String), BTreeMap<u32, SealedVersion>>,
    audit: Vec<AuditRecord>,
    key_check: Option<Sealed>,
}

/// Secrets kept in memory.
#[derive(Default)]
pub struct MemorySecretStore {
    inner: Mutex<Inner>,
}

impl MemorySecretStore {
    pub fn new() -> MemorySecretStore {
        MemorySecretStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SecretStore for MemorySecretStore {
    fn scope(&self, id: &ScopeId) -> Result<Option<ScopeRecord>, BackendError> {
        Ok(self.lock().scopes.get(id).cloned())
    }

    fn scopes(&self) -> Result<Vec<ScopeRecord>, BackendError> {
        Ok(self.lock().scopes.values().cloned().collect())
    }

    fn create_scope(&self, scope: &ScopeRecord, first: &AclEntry) -> Result<bool, BackendError> {
        let mut inner = self.lock();
        if inner.scopes.contains_key(&scope.id) {
            return Ok(false);
        }
        inner.scopes.insert(scope.id.clone(), scope.clone());
        inner.acls.insert(scope.id.clone(), BTreeMap::from([(first.principal.clone(), first.clone())]));
        Ok(true)
    }

    fn delete_scope(&self, id: &ScopeId) -> Result<bool, BackendError> {
        let mut inner = self.lock();
        if inner.scopes.remove(id).is_none() {
            return Ok(false);
        }
        inner.acls.remove(id);
        inner.versions.retain(|(scope, _), _| scope != id);
        Ok(true)
    }

    fn acl(&self, id: &ScopeId) -> Result<Vec<AclEntry>, BackendError> {
        Ok(self.lock().acls.get(id).map(|m| m.values().cloned().collect()).unwrap_or_default())
    }

    fn put_acl(&self, id: &ScopeId, entry: &AclEntry) -> Result<(), BackendError> {
        self.lock().acls.entry(id.clone()).or_default().insert(entry.principal.clone(), entry.clone());
        Ok(())
    }

    fn delete_acl(&self, id: &ScopeId, principal: &str) -> Result<bool, BackendError> {
        Ok(self.lock().acls.get_mut(id).is_some_and(|m| m.remove(principal).is_some()))
    }

    fn add_version(&self, id: &ScopeId, key: &str, version: &SealedVersion) -> Result<bool, BackendError> {
        let mut inner = self.lock();
        let versions = inner.versions.entry((id.clone(), key.to_string())).or_default();
        if versions.contains_key(&version.version) {
            return Ok(false);
        }
        versions.insert(version.version, version.clone());
        Ok(true)
    }

    fn versions(&self, id: &ScopeId, key: &str) -> Result<Vec<SealedVersion>, BackendError> {
        let inner = self.lock();
        Ok(inner
            .versions
            .get(&(id.clone(), key.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    fn latest(&self, id: &ScopeId, key: &str) -> Result<Option<SealedVersion>, BackendError> {
        let inner = self.lock();
        Ok(inner.versions.get(&(id.clone(), key.to_string())).and_then(|m| m.values().next_back().cloned()))
    }

    fn secret_keys(&self, id: &ScopeId) -> Result<Vec<String>, BackendError> {
        let inner = self.lock();
        Ok(inner.versions.iter().filter(|((s, _), v)| s == id && !v.is_empty()).map(|((_, k), _)| k.clone()).collect())
    }

    fn delete_secret(&self, id: &ScopeId, key: &str) -> Result<bool, BackendError> {
        Ok(self.lock().versions.remove(&(id.clone(), key.to_string())).is_some_and(|v| !v.is_empty()))
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<u64, BackendError> {
        let mut inner = self.lock();
        let seq = inner.audit.last().map_or(1, |r| r.seq + 1);
        inner.audit.push(AuditRecord { seq, ..record.clone() });
        Ok(seq)
    }

    fn audit(&self) -> Result<Vec<AuditRecord>, BackendError> {
        Ok(self.lock().audit.clone())
    }

    fn key_check(&self) -> Result<Option<Sealed>, BackendError> {
        Ok(self.lock().key_check.clone())
    }

    fn init_key_check(&self, check: &Sealed) -> Result<Sealed, BackendError> {
        Ok(self.lock().key_check.get_or_insert_with(|| check.clone()).clone())
    }

    fn flush(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run_all(&super::MemorySecretStore::new());
    }
}
