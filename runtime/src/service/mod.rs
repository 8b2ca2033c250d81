//! The owner's service: what one process holding a state directory does for every client
//! (the CLI in process, other `sluice` commands over the Unix socket, HTTP clients of
//! `sluice serve`), each request made by a [`Caller`].
//!
//! Owns the run manager — many runs at once, each driven by its own coordinator task;
//! `max_concurrent_runs` per job with a durable queue (`RunQueued` in the run's log) or
//! a skip; cancel, repair, resume and the takeover of what a dead owner left — the fan-out
//! of flushed events to subscribers ([`Subscription`]), the jobs of served bundles with
//! stable ids, idempotency tokens (24 h, durable), API tokens (hashed, expiring, scoped to
//! a workspace), and the store, secrets, audit and cache operations callers may make. A
//! caller sees only its workspace: another workspace's run is "not found".
//!
//! It must never speak HTTP, parse requests, print, or name sled or wasmtime: the server
//! and the CLI translate, the scheduler runs, the store keeps.

mod access;
mod admin;
mod datasets;
mod deployments;
mod groups;
mod hub;
mod jobs;
mod manager;
mod models;
mod records;
mod tokens;
mod triggers;
mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::model::RunId;
use crate::scheduler::{Runtime, SchedulerError};
use crate::secrets::SecretsError;
use crate::store::StoreError;

pub use access::caller_level;
pub use admin::RunFilter;
pub use datasets::{DatasetView, VersionView};
pub use deployments::{DeployAnswer, DeployOp};
pub use hub::{StreamItem, Subscription};
pub use jobs::{BundleRead, JobInfo, ServedBundle, read_bundle, read_bundle_with};
pub use manager::{CancelOutcome, ComponentTask, Repaired, Source, Submission, Submitted};
pub use models::ModelView;
pub use records::{RunRecord, TaskRunRef, decode_task_run_id, task_run_id};
pub use tokens::{IDEMPOTENCY_WINDOW, MAX_IDEMPOTENCY_TOKEN_LEN, NewToken, TOKEN_PREFIX};
pub use triggers::{HookRequest, TriggerAction, TriggerAnswer};

/// The principal of a caller that cannot say who it is.
pub const ANONYMOUS: &str = "anonymous";

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who starts runs and reveals secrets.
    pub principal: String,
    /// The only workspace whose jobs and runs the caller sees.
    pub workspace: String,
    /// How the caller was authenticated.
    pub via: Via,
}

/// How a caller was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The owner's own process, or a process of the same user over the Unix socket:
    /// trusted to say who it is and which workspace it works in.
    Local,
    /// A bearer token (its public id): principal and workspace are the token's.
    Token(String),
}

impl Caller {
    /// A local caller (same process or same user).
    pub fn local(principal: impl Into<String>, workspace: impl Into<String>) -> Caller {
        Caller { principal: principal.into(), workspace: workspace.into(), via: Via::Local }
    }

    fn is_local(&self) -> bool {
        self.via == Via::Local
    }
}

/// Why a request failed; each kind is one HTTP status and `error_code` to the server.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A bad or missing field, parameter or name (400 `INVALID_PARAMETER_VALUE`).
    #[error("{0}")]
    Invalid(String),
    /// No such job or run in the caller's workspace (404 `RESOURCE_DOES_NOT_EXIST`).
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the run's state (400 `INVALID_STATE`).
    #[error("{0}")]
    InvalidState(String),
    /// No credentials, or wrong or expired ones (401 `UNAUTHENTICATED`).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this (403 `PERMISSION_DENIED`).
    #[error("{0}")]
    PermissionDenied(String),
    /// The owner is stopping (503 `TEMPORARILY_UNAVAILABLE`; clients retry).
    #[error("{0}")]
    Stopping(String),
    /// The store or the runtime failed (500 `INTERNAL_ERROR`).
    #[error("{0}")]
    Internal(String),
}

impl From<SchedulerError> for ServiceError {
    fn from(e: SchedulerError) -> Self {
        let text = e.to_string();
        match e {
            SchedulerError::Spec(_) | SchedulerError::Sandbox(_) | SchedulerError::Parameters(_) => {
                ServiceError::Invalid(text)
            }
            SchedulerError::NoSuchRun(run) => ServiceError::NotFound(run_not_found(run)),
            SchedulerError::Refused { .. } => ServiceError::InvalidState(text),
            SchedulerError::Interrupted(_) => ServiceError::Stopping(text),
            SchedulerError::Store(_) | SchedulerError::Corrupt { .. } => ServiceError::Internal(text),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidName { .. } => ServiceError::Invalid(e.to_string()),
            other => ServiceError::Internal(format!("state store: {other}")),
        }
    }
}

impl From<SecretsError> for ServiceError {
    fn from(e: SecretsError) -> Self {
        let text = e.to_string();
        match e {
            SecretsError::InvalidName { .. } | SecretsError::InvalidValue(_) => ServiceError::Invalid(text),
            SecretsError::NoSuchScope(_) | SecretsError::NoSuchSecret { .. } => ServiceError::NotFound(text),
            SecretsError::ScopeExists(_) | SecretsError::Refused(_) => ServiceError::InvalidState(text),
            SecretsError::Denied { .. } => ServiceError::PermissionDenied(text),
            _ => ServiceError::Internal(text),
        }
    }
}

/// The message for a run the caller cannot see: the same whether it does not exist or
/// belongs to another workspace.
pub fn run_not_found(run: RunId) -> String {
    format!("Run {run} does not exist.")
}

/// The service of one owner. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    rt: Runtime,
    /// The state directory (what clients' bundle paths are relative to is their own business).
    state_dir: PathBuf,
    manager: manager::Manager,
    hub: Arc<hub::Hub>,
    bundles: Mutex<Vec<ServedBundle>>,
    /// Notifications of the runs driven here, and their delivery.
    notifier: Arc<crate::notify::Notifier>,
    /// What runs driven here tell about their events: the hub and the notifier.
    observer: Arc<dyn crate::scheduler::Observer>,
    views: Arc<views::Views>,
    parsed: jobs::Parsed,
    /// The trigger engine, once `sluice serve` started it.
    triggers: std::sync::OnceLock<triggers::Triggers>,
}

impl Service {
    /// The service over `rt`, the runtime of `state_dir`.
    pub fn new(rt: Runtime, state_dir: PathBuf) -> Service {
        let views = Arc::new(views::Views::default());
        let hub = Arc::new(hub::Hub::with_views(views.clone()));
        let notifier = Arc::new(crate::notify::Notifier::new(
            rt.notices().clone(),
            rt.store().clone(),
            rt.clock().clone(),
            rt.resolver().cloned(),
        ));
        let observer = Arc::new(crate::notify::Both(hub.clone(), notifier.clone()));
        Service {
            inner: Arc::new(Inner {
                manager: manager::Manager::default(),
                hub,
                notifier,
                observer,
                rt,
                state_dir,
                bundles: Mutex::new(Vec::new()),
                views,
                parsed: jobs::Parsed::default(),
                triggers: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.rt
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.inner.state_dir
    }

    fn bundles(&self) -> MutexGuard<'_, Vec<ServedBundle>> {
        self.inner.bundles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs being driven or waiting in a queue: while there are any, the owner stays.
    pub fn busy(&self) -> bool {
        self.inner.manager.busy()
    }

    /// Wait until no run is driven or queued.
    pub async fn idle(&self) {
        self.inner.manager.idle().await
    }

    /// Wait until no run is driven (after [`Service::drain`]: every run has stopped).
    pub async fn drained(&self) {
        self.inner.manager.drained().await
    }

    /// Start delivering notifications (the owner, once; within a tokio runtime): first
    /// what earlier owners left pending. Links point at `link` + `/runs/ID`.
    pub fn start_notifications(&self, link: Option<String>) {
        self.inner.notifier.start(link);
    }

    /// Wait (at most `within`) until every pending notification was tried once here.
    pub async fn settle_notifications(&self, within: std::time::Duration) {
        self.inner.notifier.settle(within).await;
    }

    /// Counts for metrics: (runs being driven, runs queued).
    pub fn run_counts(&self) -> (usize, usize) {
        self.inner.manager.counts()
    }

    /// Stop gracefully: refuse new runs, let running attempts end (their runs stay
    /// unfinished and resume on the next start).
    pub fn drain(&self) {
        self.inner.manager.stop_accepting();
        self.inner.rt.drain();
    }
}
