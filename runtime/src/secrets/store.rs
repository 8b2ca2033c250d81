//! The storage contract of the secrets module.
//!
//! A [`SecretStore`] keeps scopes, their ACLs, sealed secret versions, the
//! audit trail and the master key check. It holds only sealed values: it never
//! sees a plaintext, never decides who may do what (that is [`super::Vault`]),
//! and this file does no I/O. Backends: [`super::MemorySecretStore`] (tests,
//! reference behaviour) and `store::sled_secrets::SledSecretStore` (durable,
//! in the same sled database as the runs). One conformance suite
//! (`conformance.rs`) runs against both.
//!
//! Writes are buffered until [`SecretStore::flush`], like the run store's.

use super::{AclEntry, AuditRecord, ScopeId, ScopeRecord, Sealed, SealedVersion};

/// A secret store backend failed (I/O, a damaged record, a name its layout cannot hold);
/// the text says which. Backends own their error types; this is what they report.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

pub trait SecretStore: Send + Sync {
    /// One scope, if it exists.
    fn scope(&self, id: &ScopeId) -> Result<Option<ScopeRecord>, BackendError>;
    /// Every scope, sorted by (workspace, target, name).
    fn scopes(&self) -> Result<Vec<ScopeRecord>, BackendError>;
    /// Create a scope together with its first ACL entry, atomically.
    /// `Ok(false)`: a scope with that id already exists (nothing written).
    fn create_scope(&self, scope: &ScopeRecord, first: &AclEntry) -> Result<bool, BackendError>;
    /// Remove a scope with its ACL and every version of every secret in it,
    /// atomically. `Ok(false)`: no such scope.
    fn delete_scope(&self, id: &ScopeId) -> Result<bool, BackendError>;

    /// The scope's ACL, sorted by principal.
    fn acl(&self, id: &ScopeId) -> Result<Vec<AclEntry>, BackendError>;
    /// Insert or replace `entry.principal`'s entry.
    fn put_acl(&self, id: &ScopeId, entry: &AclEntry) -> Result<(), BackendError>;
    /// Remove a principal's entry. `Ok(false)`: it had none.
    fn delete_acl(&self, id: &ScopeId, principal: &str) -> Result<bool, BackendError>;

    /// Add a version of secret `key`. `Ok(false)`: that version number is
    /// taken (nothing written; the caller picks the next number and retries).
    fn add_version(&self, id: &ScopeId, key: &str, version: &SealedVersion) -> Result<bool, BackendError>;
    /// Every stored version of `key`, oldest first (empty: no such secret).
    fn versions(&self, id: &ScopeId, key: &str) -> Result<Vec<SealedVersion>, BackendError>;
    /// The newest version of `key`.
    fn latest(&self, id: &ScopeId, key: &str) -> Result<Option<SealedVersion>, BackendError>;
    /// The names of the scope's secrets, sorted.
    fn secret_keys(&self, id: &ScopeId) -> Result<Vec<String>, BackendError>;
    /// Remove every version of `key`. `Ok(false)`: no such secret.
    fn delete_secret(&self, id: &ScopeId, key: &str) -> Result<bool, BackendError>;

    /// Append to the audit trail; returns the record's sequence number
    /// (increasing; assigned here, whatever `record.seq` says).
    fn append_audit(&self, record: &AuditRecord) -> Result<u64, BackendError>;
    /// The whole audit trail, oldest first.
    fn audit(&self) -> Result<Vec<AuditRecord>, BackendError>;

    /// The master key check, if any key ever sealed something here.
    fn key_check(&self) -> Result<Option<Sealed>, BackendError>;
    /// Store the key check unless one exists; returns the one in force.
    fn init_key_check(&self, check: &Sealed) -> Result<Sealed, BackendError>;

    /// Make everything written so far durable.
    fn flush(&self) -> Result<(), BackendError>;
}
