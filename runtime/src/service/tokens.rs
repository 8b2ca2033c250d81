//! API tokens (`sluice tokens create|list|revoke`) and who a bearer token makes a caller.
//!
//! A token is `sluice_` and 40 hex digits from the OS's random source; only its blake3
//! hash is stored, so the token is shown once, at creation, and a copy of the store opens
//! nothing. A token acts as its principal in its one workspace until it expires or is
//! revoked. Only a local caller (the owner's user) manages tokens.

use std::time::Duration;

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore as _;
use serde::{Deserialize, Serialize};

use super::{Caller, Service, ServiceError, Via};
use crate::store::TokenRecord;

/// What every token starts with (so a leaked one is recognisable).
pub const TOKEN_PREFIX: &str = "sluice_";
/// Random bytes in a token: 160 bits, beyond guessing.
const TOKEN_BYTES: usize = 20;
/// Hex digits of the hash that make a token's public id.
const TOKEN_ID_LEN: usize = 12;

/// An idempotency token returns the run it created for this long (Databricks' window).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest idempotency token accepted (Databricks' limit).
pub const MAX_IDEMPOTENCY_TOKEN_LEN: usize = 64;

/// A token just created: the only time the token itself is seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

impl Service {
    /// Create a token acting as `principal` in `workspace`, expiring after `expires`.
    pub fn create_token(
        &self,
        caller: &Caller,
        principal: &str,
        workspace: &str,
        expires: Option<Duration>,
    ) -> Result<NewToken, ServiceError> {
        self.local_only(caller, "create tokens")?;
        crate::secrets::check_principal(principal)?;
        crate::spec::names::check_name(workspace).map_err(|e| ServiceError::Invalid(format!("workspace: {e}")))?;
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex(&bytes));
        let hash = hash(&token);
        let now = self.inner.rt.clock().now_millis();
        let record = TokenRecord {
            id: hash[..TOKEN_ID_LEN].to_string(),
            hash,
            principal: principal.to_string(),
            workspace: workspace.to_string(),
            created_at: now,
            expires_at: expires.map(|d| now.saturating_add(d.as_millis() as u64)),
        };
        self.inner.rt.services().put_token(&record)?;
        Ok(NewToken { token, record })
    }

    /// Every token (hashes and who they act as, never the tokens).
    pub fn tokens(&self, caller: &Caller) -> Result<Vec<TokenRecord>, ServiceError> {
        self.local_only(caller, "list tokens")?;
        Ok(self.inner.rt.services().tokens()?)
    }

    /// Revoke the token with public id `id`.
    pub fn revoke_token(&self, caller: &Caller, id: &str) -> Result<(), ServiceError> {
        self.local_only(caller, "revoke tokens")?;
        if !self.inner.rt.services().remove_token(id)? {
            return Err(ServiceError::NotFound(format!("no token with id `{id}` (see `sluice tokens list`)")));
        }
        Ok(())
    }

    /// The caller a bearer token makes: refused (401) if unknown, revoked or expired.
    pub fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        let invalid = || ServiceError::Unauthenticated("Invalid access token.".into());
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(invalid());
        }
        let record = self.inner.rt.services().token(&hash(token))?.ok_or_else(invalid)?;
        if record.expires_at.is_some_and(|at| self.inner.rt.clock().now_millis() >= at) {
            return Err(ServiceError::Unauthenticated("The access token has expired.".into()));
        }
        Ok(Caller { principal: record.principal, workspace: record.workspace, via: Via::Token(record.id) })
    }

    pub(crate) fn local_only(&self, caller: &Caller, what: &str) -> Result<(), ServiceError> {
        if caller.is_local() {
            Ok(())
        } else {
            Err(ServiceError::PermissionDenied(format!(
                "only the owner's user may {what} (run `sluice tokens` on the server's machine)"
            )))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
