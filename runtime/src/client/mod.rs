//! How a `sluice` command reaches the owner of its state directory: the [`Client`] trait,
//! with two implementations — [`LocalClient`] (this process owns the store: calls the
//! [`Service`] directly) and [`SocketClient`] (another process owns it: HTTP over its
//! Unix socket) — and the election that decides which one a command gets ([`Session`]).
//!
//! Owns the socket's place in the state directory, the election (open the store without
//! waiting → owner; else connect to the socket → client; else the owner is starting or
//! dying: back off and try again, for at most [`ELECTION_WAIT`]), an owner's lifetime (it
//! serves its socket while its command works, then stays while other clients' runs are in
//! flight or clients are connected), and reconnecting when an owner vanishes. It never
//! decides anything about runs (the service does) and never prints.

mod local;
pub mod remote;
mod session;
mod socket;

use std::future::Future;
use std::pin::Pin;

use crate::model::{Millis, RunId, RunSummary, RunView};
use crate::scheduler::{Explanation, GcSummary, RepairRequest, Verification};
use crate::secrets::{AclEntry, AuditFilter, AuditRecord, Permission, ScopeId, ScopeRecord, SecretInfo};
use crate::service::{
    CancelOutcome, DeployAnswer, DeployOp, NewToken, Repaired, RunFilter, ServiceError, StreamItem, Submission,
    Submitted,
};
use crate::store::{GroupRecord, TokenRecord};

pub use local::LocalClient;
pub use session::{ELECTION_WAIT, Owner, OwnerOptions, Session, SessionError};
pub use socket::SocketClient;

/// The owner's socket, in the state directory.
pub const SOCKET_FILE: &str = "sluice.sock";

/// A boxed future, so [`Client`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The owner answered with an error.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The owner went away (its socket closed mid-call, or vanished): reconnect.
    #[error("the sluice process owning the state directory went away: {0}")]
    Disconnected(String),
    /// The owner's answer made no sense (a different sluice version?).
    #[error("unexpected answer from the sluice process owning the state directory: {0}")]
    Protocol(String),
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A run's flushed events, as the owner streams them.
pub trait EventStream: Send {
    /// The next event; `None` once the run has finished.
    fn next(&mut self) -> BoxFuture<'_, ClientResult<Option<StreamItem>>>;
}

/// Everything a command asks of the owner, as one caller (principal and workspace).
pub trait Client: Send + Sync {
    fn submit(&self, sub: Submission) -> BoxFuture<'_, ClientResult<Submitted>>;
    fn view(&self, run: RunId) -> BoxFuture<'_, ClientResult<RunView>>;
    fn list(&self, filter: RunFilter) -> BoxFuture<'_, ClientResult<Vec<RunSummary>>>;
    /// Follow a run from position `from` of its log (earlier events come as history).
    fn events(&self, run: RunId, from: u64) -> BoxFuture<'_, ClientResult<Box<dyn EventStream>>>;
    fn cancel(&self, run: RunId) -> BoxFuture<'_, ClientResult<CancelOutcome>>;
    fn repair(&self, run: RunId, req: RepairRequest, no_cache: bool) -> BoxFuture<'_, ClientResult<Repaired>>;
    /// Resume `run`, or every interrupted run of the caller's workspace: (run, where its new events start).
    fn resume(&self, run: Option<RunId>) -> BoxFuture<'_, ClientResult<Vec<(RunId, u64)>>>;
    /// Have the owner take over what a dead owner left: the runs it resumed, with their workspaces.
    fn take_over(&self) -> BoxFuture<'_, ClientResult<Vec<(RunId, String)>>>;
    fn audit(&self, filter: AuditFilter) -> BoxFuture<'_, ClientResult<Vec<AuditRecord>>>;
    fn explain(&self, run: RunId, task: String) -> BoxFuture<'_, ClientResult<Explanation>>;
    fn gc(&self, keep: Option<usize>, before: Option<Millis>) -> BoxFuture<'_, ClientResult<GcSummary>>;
    fn verify(&self, run: RunId, task: Option<String>) -> BoxFuture<'_, ClientResult<Vec<Verification>>>;
    fn secrets(&self, op: SecretsOp) -> BoxFuture<'_, ClientResult<SecretsAnswer>>;
    fn tokens(&self, op: TokensOp) -> BoxFuture<'_, ClientResult<TokensAnswer>>;
    /// Write a consistent copy of the store into the new directory `dest` (absolute), while
    /// the owner runs.
    fn backup(&self, dest: std::path::PathBuf) -> BoxFuture<'_, ClientResult<crate::store::backup::DirBackupReport>>;
    /// A deployments request (plan, deploy, list, promote, …).
    fn deployments(&self, op: DeployOp) -> BoxFuture<'_, ClientResult<DeployAnswer>>;
    /// `sluice triggers list|pause|resume|fire` (the owner must be `sluice serve`).
    fn triggers(
        &self,
        action: crate::service::TriggerAction,
    ) -> BoxFuture<'_, ClientResult<crate::service::TriggerAnswer>>;
}

/// A secrets operation (one request each).
#[derive(Debug, Clone)]
pub enum SecretsOp {
    CreateScope(ScopeId),
    Scopes { workspace: Option<String>, target: Option<String> },
    DeleteScope(ScopeId),
    Put { scope: ScopeId, key: String, value: String },
    List(ScopeId),
    Delete { scope: ScopeId, key: String },
    AclPut { scope: ScopeId, principal: String, permission: Permission },
    AclList(ScopeId),
    AclDelete { scope: ScopeId, principal: String },
}

/// What a secrets operation answers.
#[derive(Debug, Clone)]
pub enum SecretsAnswer {
    Done,
    Scope(ScopeRecord),
    Scopes(Vec<(ScopeRecord, Option<Permission>)>),
    Version(u32),
    Secrets(Vec<SecretInfo>),
    Acl(Vec<AclEntry>),
}

/// An operation on who callers are: API tokens and groups (local callers only).
#[derive(Debug, Clone)]
pub enum TokensOp {
    Create {
        principal: String,
        workspace: String,
        expires_in_secs: Option<u64>,
    },
    List,
    Revoke(String),
    /// Add and remove members of a group.
    Group {
        name: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Every group and its members.
    Groups,
}

/// What a tokens operation answers.
#[derive(Debug, Clone)]
pub enum TokensAnswer {
    Created(Box<NewToken>),
    Listed(Vec<TokenRecord>),
    Revoked,
    Group(GroupRecord),
    Groups(Vec<GroupRecord>),
}
