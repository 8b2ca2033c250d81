//! Secrets: encrypted scopes, ACLs, grants, redaction and the audit trail.
//!
//! A *scope* is a named set of secrets bound to a workspace and a target
//! (`dev`, `test`, `prod`, …): a run of target `test` never reads a `prod`
//! scope. Each secret keeps every version it was `put` with, sealed with
//! XChaCha20-Poly1305 under the master key ([`crypto`]); the associated data
//! binds workspace, target, scope, key and version, so a record moved or
//! swapped in the store fails to open. ACLs give principals `read`, `write` or
//! `manage` on a scope ([`acl`]). A task reveals only the `scope/key` names its
//! spec lists, and only if the run's principal may read the scope; every
//! reveal and every denial, and every change to a scope, is appended to a
//! durable audit trail ([`Vault`]). What a task revealed is replaced by
//! `[REDACTED]` in everything its attempt reports ([`redact`]).
//!
//! Parts:
//!
//! | file        | owns |
//! |-------------|------|
//! | `mod.rs`    | the records (scopes, ACL entries, sealed versions, audit records), name rules, errors |
//! | `store.rs`  | the [`SecretStore`] trait (no I/O); `store::sled_secrets` is the durable backend |
//! | `memory.rs` | [`MemorySecretStore`], the reference backend for tests |
//! | `crypto.rs` | the master key, sealing and opening, the key check |
//! | `key.rs`    | where the master key comes from: `SLUICE_MASTER_KEY` or `<state>/master.key` (the only file I/O here) |
//! | `acl.rs`    | permissions and principals |
//! | `vault.rs`  | every operation, its permission check and its audit record |
//! | `resolve.rs`| [`Resolver`], what the sandbox calls to reveal a granted name |
//! | `redact.rs` | [`Redactor`]: a value and its encodings → `[REDACTED]` |
//!
//! This module must never write a secret's value anywhere but into a sealed
//! record, never log or audit a value (names, versions and reasons only), and
//! never name a storage engine.

pub mod acl;
#[cfg(test)]
pub(crate) mod conformance;
pub mod crypto;
pub mod key;
pub mod memory;
pub mod redact;
pub mod resolve;
pub mod store;
pub mod vault;

use serde::{Deserialize, Serialize};

use crate::model::{Millis, RunId};

pub use acl::Permission;
pub use crypto::{MasterKey, Sealed};
pub use key::{KeySource, MASTER_KEY_ENV, MASTER_KEY_FILE, StateKey};
pub use memory::MemorySecretStore;
pub use redact::{REDACTED, Redactor};
pub use resolve::{Resolver, RevealRequest};
pub use secrecy::{ExposeSecret, SecretString};
pub use store::{BackendError, SecretStore};
pub use vault::{AuditFilter, SecretInfo, Vault};

/// The workspace a scope belongs to when none is named.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Longest scope, key, workspace, target or principal name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Largest secret value: credentials and certificates, not data
/// (Databricks allows 128 KiB; a value travels through every redaction pass).
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// Why a secrets operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("invalid {what} `{name}`: {why}")]
    InvalidName { what: &'static str, name: String, why: &'static str },
    #[error("no scope `{0}`")]
    NoSuchScope(ScopeId),
    #[error("scope `{0}` already exists")]
    ScopeExists(ScopeId),
    #[error("scope `{scope}` has no secret `{key}`")]
    NoSuchSecret { scope: ScopeId, key: String },
    #[error("permission denied: principal `{principal}` needs {needed} on scope `{scope}`")]
    Denied { principal: String, needed: Permission, scope: ScopeId },
    #[error("{0}")]
    Refused(String),
    #[error("invalid secret value: {0}")]
    InvalidValue(String),
    #[error(
        "the master key from {source_name} is not the key the secrets in this store were sealed with \
         (the stored key check does not open); nothing was changed. Use the original key \
         ({MASTER_KEY_ENV} or the state's {MASTER_KEY_FILE})"
    )]
    WrongMasterKey { source_name: String },
    #[error("master key: {0}")]
    MasterKey(String),
    #[error(
        "secret `{name}` version {version} does not open with the master key: the record was tampered with or moved"
    )]
    Tampered { name: String, version: u32 },
    #[error("secret store: {0}")]
    Store(#[from] BackendError),
}

/// Where a scope lives: its workspace, its target and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ScopeId {
    pub workspace: String,
    pub target: String,
    pub name: String,
}

impl ScopeId {
    /// A scope id with every part checked.
    pub fn new(workspace: &str, target: &str, name: &str) -> Result<ScopeId, SecretsError> {
        check_name("workspace", workspace)?;
        check_name("target", target)?;
        check_name("scope", name)?;
        Ok(ScopeId { workspace: workspace.into(), target: target.into(), name: name.into() })
    }
}

impl std::fmt::Display for ScopeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if self.workspace != DEFAULT_WORKSPACE {
            write!(f, " in workspace {}", self.workspace)?;
        }
        write!(f, " (target {})", self.target)
    }
}

/// A scope as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRecord {
    pub id: ScopeId,
    pub created_at: Millis,
    pub created_by: String,
}

/// One principal's permission on a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub principal: String,
    pub permission: Permission,
}

/// One version of a secret: its value sealed, and who put it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedVersion {
    pub version: u32,
    pub sealed: Sealed,
    pub created_at: Millis,
    pub created_by: String,
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A task asked for a secret (`secrets.reveal`).
    Reveal,
    Put,
    Delete,
    List,
    ScopeCreate,
    ScopeDelete,
    AclPut,
    AclDelete,
    AclList,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Reveal => "reveal",
            AuditAction::Put => "put",
            AuditAction::Delete => "delete",
            AuditAction::List => "list",
            AuditAction::ScopeCreate => "scope_create",
            AuditAction::ScopeDelete => "scope_delete",
            AuditAction::AclPut => "acl_put",
            AuditAction::AclDelete => "acl_delete",
            AuditAction::AclList => "acl_list",
        }
    }
}

/// One entry of the audit trail. Never holds a value: names, versions, reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the trail (assigned by the store, increasing).
    #[serde(default)]
    pub seq: u64,
    pub at: Millis,
    pub action: AuditAction,
    pub principal: String,
    pub workspace: String,
    pub target: String,
    /// The scope (for a reveal of a malformed name: the name as asked, shortened).
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The version revealed or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub granted: bool,
    /// Why it was denied, or what was done.
    pub reason: String,
    /// Who asked on a task's behalf when it ran elsewhere (`worker:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Check a scope, key, workspace or target name: 1–128 of `A-Z a-z 0-9 _ . -`
/// (the characters of a bundle's `scope/key` grants).
pub fn check_name(what: &'static str, name: &str) -> Result<(), SecretsError> {
    let why = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_NAME_BYTES {
        "must be at most 128 bytes"
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        "use only letters, digits, `_`, `.` and `-`"
    } else if name == "." || name == ".." {
        "must not be `.` or `..`"
    } else {
        return Ok(());
    };
    Err(SecretsError::InvalidName { what, name: shown(name), why })
}

/// Check a principal: 1–128 bytes, no whitespace or control characters.
pub fn check_principal(name: &str) -> Result<(), SecretsError> {
    let why = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_NAME_BYTES {
        "must be at most 128 bytes"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(SecretsError::InvalidName { what: "principal", name: shown(name), why })
}

/// Split a grant name `scope/key`, checking both parts.
pub fn split_name(name: &str) -> Result<(&str, &str), SecretsError> {
    let (scope, key) = name.split_once('/').ok_or_else(|| SecretsError::InvalidName {
        what: "secret name",
        name: shown(name),
        why: "is not of the form `scope/key`",
    })?;
    check_name("scope", scope)?;
    check_name("secret key", key)?;
    Ok((scope, key))
}

/// A name as error messages and audit records repeat it: escaped, at most 64 characters.
pub(crate) fn shown(name: &str) -> String {
    let escaped: String = name.escape_debug().collect();
    match escaped.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grant_rule() {
        assert!(ScopeId::new("default", "prod", "storage.v2-a_b").is_ok());
        for bad in ["", "a/b", "a b", "..", "ünï", &"x".repeat(129)] {
            assert!(check_name("scope", bad).is_err(), "{bad:?}");
        }
        assert!(check_principal("alice@example.com").is_ok());
        for bad in ["", "a b", "a\nb"] {
            assert!(check_principal(bad).is_err(), "{bad:?}");
        }
        assert_eq!(split_name("db/password").unwrap(), ("db", "password"));
        assert!(split_name("db").is_err() && split_name("a/b/c").is_err());
        assert!(shown(&"\n".repeat(100)).len() < 140);
    }
}
