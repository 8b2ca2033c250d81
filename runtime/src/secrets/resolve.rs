//! What the sandbox calls to reveal a secret: the [`Resolver`] trait and its request.
//!
//! The sandbox's secrets capability knows which names the task was granted and
//! who started the run; a resolver knows where the values are. Every call is
//! audited by the resolver, the grant check's denials included, so the
//! sandbox passes ungranted names on too (with `granted: false`). This file
//! defines the contract only; [`super::Vault`] implements it.

use secrecy::SecretString;

use crate::model::RunId;

/// One `secrets.reveal(name)` call of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealRequest {
    pub run: RunId,
    pub task: String,
    pub attempt: u32,
    /// Who started the run.
    pub principal: String,
    pub workspace: String,
    /// The run's target: only scopes of this target resolve.
    pub target: String,
    /// The name as the guest asked for it (`scope/key` if well formed).
    pub name: String,
    /// Whether the task's spec lists `name` in its `secrets`.
    pub granted: bool,
    /// Who asked on the task's behalf when it ran elsewhere (`worker:NAME`): audited.
    pub via: Option<String>,
}

/// Resolves granted secret names for running tasks.
pub trait Resolver: Send + Sync {
    /// The value of `req.name`, or why not (a message for the guest: never a value).
    /// Must audit every call, granted or denied, before returning.
    fn reveal(&self, req: &RevealRequest) -> Result<SecretString, String>;

    /// The version a reveal of `name` (`scope/key`) would return for a run of
    /// `workspace` and `target`, without revealing anything: what a cache key
    /// records so that a rotation changes it. `None`: no such secret.
    fn version(&self, workspace: &str, target: &str, name: &str) -> Option<u32> {
        let _ = (workspace, target, name);
        None
    }
}
