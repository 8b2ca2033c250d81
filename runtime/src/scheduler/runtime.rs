//! The runtime handle: everything a process needs to run jobs against one state directory,
//! assembled in one place ([`Runtime::open`]) so the CLI, a server and tests build it alike.
//!
//! Owns the state directory's layout (`store/`, `components/`, the secrets' `master.key`,
//! the cache's `blobs/`, `staging/` and `statcache.json`; the owner's socket is the
//! client module's) and what is shared by every run: the store, the vault, the sandbox,
//! the result cache, the sandbox slots (shared between workspaces by weighted fair
//! queuing, [`Slots`]), telemetry, and the drain flag of a graceful stop. A [`Runtime`] is cheap to clone and
//! `Send + Sync`: one long-lived process shares it across any number of concurrent runs.
//! What belongs to one run — who starts it, its workspace, where its progress goes, how
//! it is stopped, whether it may reuse results — is a [`RunOptions`], never runtime state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::executor::{Executor, LocalExecutor};
use super::slots::{FairShare, Slots};
use super::{Observer, Quiet};
use crate::cache::{BLOBS_DIR, BlobStore, CacheDir};
use crate::model::{Clock, NoTelemetry, SystemClock, Telemetry};
use crate::sandbox::{MAX_CONCURRENT_INSTANCES, Sandbox, SandboxConfig, SandboxError};
use crate::secrets::{Resolver, StateKey, Vault};
use crate::store::backup::DirBackupReport;
use crate::store::sled_notify::SledNoticeStore;
use crate::store::sled_secrets::SledSecretStore;
use crate::store::{
    DeploymentStore, MemoryDeploymentStore, MemoryNoticeStore, MemoryServiceStore, MemoryTriggerStore,
    MemoryVerdictStore, NoticeStore, ServiceStore, SledDeploymentStore, SledServiceStore, SledStore, SledTriggerStore,
    SledVerdictStore, Store, StoreError, TriggerStore, VerdictStore,
};

/// The run store's directory under the state directory.
pub const STORE_DIR: &str = "store";
/// Precompiled component artifacts.
pub const COMPONENTS_DIR: &str = "components";

/// How to open a runtime.
#[derive(Clone, Default)]
pub struct RuntimeOptions {
    /// Sandboxes at once across every run of this runtime; `None`:
    /// [`MAX_CONCURRENT_INSTANCES`] (the pooling allocator's size, also the most allowed).
    pub max_parallel: Option<usize>,
    /// How those sandboxes are shared between workspaces.
    pub fair_share: FairShare,
    /// Told about attempts, runs, instantiations and slot waits (metrics).
    pub telemetry: Option<Arc<dyn Telemetry>>,
    /// Where attempts run, made from the opened runtime; `None`: this process's sandbox.
    pub executor: Option<ExecutorFactory>,
}

/// Starts building the sandbox (the engine, its pooling allocator, the host linker: ~2 ms
/// of CPU) on a thread of its own while the caller opens the store, and returns how to
/// wait for it. If the store turns out to be another process's, the thread finishes and
/// its sandbox is dropped unused.
fn sandbox_aside(compiled: PathBuf) -> impl FnOnce() -> Result<Sandbox, SandboxError> {
    let build = move || Sandbox::new(SandboxConfig { cache_dir: Some(compiled) });
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("sluice-sandbox".into()).spawn({
        let build = build.clone();
        move || {
            let _ = tx.send(build());
        }
    });
    move || match spawned {
        Ok(_) => rx.recv().unwrap_or_else(|_| Err(SandboxError::Engine("building the sandbox failed".into()))),
        Err(_) => build(),
    }
}

/// Makes the executor of an opened runtime (`sluice serve --nats`: workers elsewhere).
pub type ExecutorFactory = Arc<dyn Fn(&Runtime) -> Arc<dyn Executor> + Send + Sync>;

/// Why a runtime could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("opening the result cache in {dir}: {message}")]
    Cache { dir: String, message: String },
    #[error("--max-parallel must be from 1 to {MAX_CONCURRENT_INSTANCES} (the sandbox pool's size), not {0}")]
    MaxParallel(usize),
}

/// Everything runs share. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Resolves tasks' `secrets.reveal` calls; `None`: granted names do not resolve.
    pub(crate) secrets: Option<Arc<dyn Resolver>>,
    /// Job ids, idempotency tokens and API tokens (in the run store's database).
    pub(crate) services: Arc<dyn ServiceStore>,
    /// Deployments: numbered snapshots per target, current pointers, their journal.
    pub(crate) deployments: Arc<dyn DeploymentStore>,
    /// `sluice test` verdicts by bundle content hash and target (the promotion gate reads them).
    pub(crate) verdicts: Arc<dyn VerdictStore>,
    /// Trigger firings, trigger state and consumed files (in the run store's database).
    pub(crate) triggers: Arc<dyn TriggerStore>,
    /// Named datasets' versions and who consumed them (in the run store's database).
    pub(crate) datasets: Arc<dyn crate::store::DatasetStore>,
    /// The model registry: versions and what each target loads (in the run store's database).
    pub(crate) models: Arc<dyn crate::store::ModelStore>,
    /// Notifications and their delivery (in the run store's database).
    pub(crate) notices: Arc<dyn NoticeStore>,
    /// The vault behind `secrets` (scopes, values, ACLs, audit), when opened from a state directory.
    pub(crate) vault: Option<Arc<Vault>>,
    /// Content-hashed reruns (blob store, stat cache, staging); `None`: nothing is reused.
    pub(crate) cache: Option<Arc<CacheDir>>,
    /// Sandboxes at once, across all runs (the global bound), shared fairly by workspace.
    pub(crate) slots: Arc<Slots>,
    /// Where attempts run.
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) telemetry: Arc<dyn Telemetry>,
    /// Set by a graceful stop: runs start no new attempts and return once the running
    /// ones are recorded, unfinished (they resume on the next start).
    pub(crate) drain: Arc<AtomicBool>,
    /// The store files and state directory, when opened from one: what a backup copies.
    pub(crate) files: Option<(Arc<SledStore>, PathBuf)>,
}

/// What one run is started (or resumed, repaired, canceled) with.
#[derive(Clone)]
pub struct RunOptions {
    /// Who starts the run: recorded in a new run's plan; its secrets are revealed for them.
    pub principal: String,
    /// The workspace a new run belongs to and reads secret scopes from.
    pub workspace: String,
    /// Told about every event once it is durable (progress output).
    pub observer: Arc<dyn Observer>,
    /// Set (e.g. on Ctrl-C) to cancel the run; failure-handling tasks still run as its cleanup.
    pub cancel: Arc<AtomicBool>,
    /// Why, when whoever set `cancel` said (set before `cancel`).
    pub cancel_reason: Arc<OnceLock<String>>,
    /// Set (e.g. on a second Ctrl-C or cancel request) to stop that cleanup too.
    pub stop_cleanup: Arc<AtomicBool>,
    /// Why, when whoever set `stop_cleanup` said (set before it).
    pub stop_cleanup_reason: Arc<OnceLock<String>>,
    /// `--no-cache`: compute keys (for explain) but never reuse a stored result.
    pub no_cache: bool,
    /// `--rehash`: re-read every mounted file instead of trusting the stat cache.
    pub rehash: bool,
    /// The trigger firing that starts a new run (pinned into its plan), if one does.
    pub trigger: Option<crate::model::TriggerContext>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            principal: String::new(),
            workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
            observer: Arc::new(Quiet),
            cancel: Arc::new(AtomicBool::new(false)),
            cancel_reason: Arc::new(OnceLock::new()),
            stop_cleanup: Arc::new(AtomicBool::new(false)),
            stop_cleanup_reason: Arc::new(OnceLock::new()),
            no_cache: false,
            rehash: false,
            trigger: None,
        }
    }
}

impl RunOptions {
    /// Ask the run to stop, saying why; asked again while it stops, its cleanup (the
    /// failure-handling tasks still running) stops too.
    pub fn request_cancel(&self, reason: impl Into<String>) {
        if self.cancel.load(Ordering::Relaxed) {
            let _ = self.stop_cleanup_reason.set(format!("{} again", reason.into()));
            self.stop_cleanup.store(true, Ordering::Relaxed);
        } else {
            let _ = self.cancel_reason.set(reason.into());
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}

impl Runtime {
    /// The runtime of `state_dir` (created if missing): its sled store and the secrets in
    /// it, the sandbox with its precompiled artifacts, the result cache and the sandbox
    /// slots. Opening the store takes its lock without waiting ([`StoreError::Locked`] if
    /// another process holds it): one process owns a state directory.
    pub fn open(state_dir: &Path, options: RuntimeOptions) -> Result<Runtime, OpenError> {
        let max = MAX_CONCURRENT_INSTANCES as usize;
        let slots = match options.max_parallel {
            Some(n) if !(1..=max).contains(&n) => return Err(OpenError::MaxParallel(n)),
            Some(n) => n,
            None => max,
        };
        // compiled components: the user's cache (shared by state directories), else this one's
        let compiled = crate::sandbox::artifacts::user_cache_dir().unwrap_or_else(|| state_dir.join(COMPONENTS_DIR));
        let sandbox = sandbox_aside(compiled);
        let sled = open_store(state_dir)?;
        let vault = open_vault(&sled, state_dir)?;
        let services = Arc::new(SledServiceStore::open(&sled)?);
        let deployments = Arc::new(SledDeploymentStore::open(&sled)?);
        let notices = Arc::new(SledNoticeStore::open(&sled)?);
        let telemetry = options.telemetry.unwrap_or_else(|| Arc::new(NoTelemetry));
        let sandbox = sandbox()?.with_telemetry(telemetry.clone());
        let cache = CacheDir::open(state_dir, slots)
            .map_err(|message| OpenError::Cache { dir: state_dir.display().to_string(), message })?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut rt = Runtime::new(sled.clone(), Arc::new(sandbox), clock.clone());
        rt.triggers = Arc::new(SledTriggerStore::open(&sled)?);
        rt.datasets = Arc::new(crate::store::SledDatasetStore::open(&sled)?);
        rt.models = Arc::new(crate::store::SledModelStore::open(&sled)?);
        rt.verdicts = Arc::new(SledVerdictStore::open(&sled)?);
        rt.files = Some((sled, state_dir.to_path_buf()));
        rt.services = services;
        rt.deployments = deployments;
        rt.notices = notices;
        let vault = Arc::new(vault);
        rt.secrets = Some(vault.clone());
        rt.vault = Some(vault);
        rt.cache = Some(Arc::new(cache));
        rt.slots = Slots::with_observer(slots, options.fair_share, clock, Some(telemetry.clone()));
        rt.telemetry = telemetry;
        rt.executor = match &options.executor {
            Some(make) => make(&rt),
            None => rt.local_executor(),
        };
        Ok(rt)
    }

    /// A runtime over a store and a sandbox only: no secrets, no result cache (tests,
    /// embedding).
    pub fn new(store: Arc<dyn Store>, sandbox: Arc<Sandbox>, clock: Arc<dyn Clock>) -> Runtime {
        let executor =
            Arc::new(LocalExecutor { sandbox: sandbox.clone(), store: store.clone(), secrets: None, cache: None });
        Runtime {
            store,
            sandbox,
            secrets: None,
            services: Arc::new(MemoryServiceStore::default()),
            deployments: Arc::new(MemoryDeploymentStore::default()),
            verdicts: Arc::new(MemoryVerdictStore::default()),
            triggers: Arc::new(MemoryTriggerStore::default()),
            datasets: Arc::new(crate::store::MemoryDatasetStore::default()),
            models: Arc::new(crate::store::MemoryModelStore::default()),
            notices: Arc::new(MemoryNoticeStore::default()),
            vault: None,
            cache: None,
            slots: Slots::new(MAX_CONCURRENT_INSTANCES as usize, FairShare::default(), clock.clone()),
            executor,
            telemetry: Arc::new(NoTelemetry),
            drain: Arc::new(AtomicBool::new(false)),
            files: None,
            clock,
        }
    }

    /// The same runtime handing its attempts to `executor` (another process's sandboxes,
    /// say) instead of this process's sandbox.
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Runtime {
        self.executor = executor;
        self
    }

    /// The executor running attempts in this process's sandbox, with this runtime's store,
    /// secrets and result cache.
    fn local_executor(&self) -> Arc<dyn Executor> {
        Arc::new(LocalExecutor {
            sandbox: self.sandbox.clone(),
            store: self.store.clone(),
            secrets: self.secrets.clone(),
            cache: self.cache.clone(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The vault (secret scopes, values, ACLs, the audit trail), when the runtime has one.
    pub fn vault(&self) -> Option<&Arc<Vault>> {
        self.vault.as_ref()
    }

    /// Job ids, idempotency tokens and API tokens.
    pub fn services(&self) -> &Arc<dyn ServiceStore> {
        &self.services
    }

    /// Deployments (see the deploy module).
    pub fn deployments(&self) -> &Arc<dyn DeploymentStore> {
        &self.deployments
    }

    /// `sluice test` verdicts.
    pub fn verdicts(&self) -> &Arc<dyn VerdictStore> {
        &self.verdicts
    }

    /// Trigger firings, trigger state and consumed files.
    pub fn triggers(&self) -> &Arc<dyn TriggerStore> {
        &self.triggers
    }

    /// Named datasets' versions and lineage.
    pub fn datasets(&self) -> &Arc<dyn crate::store::DatasetStore> {
        &self.datasets
    }

    /// The model registry.
    pub fn models(&self) -> &Arc<dyn crate::store::ModelStore> {
        &self.models
    }

    /// Notifications and their delivery.
    pub fn notices(&self) -> &Arc<dyn NoticeStore> {
        &self.notices
    }

    /// The resolver of secret names (the vault), when the runtime has one.
    pub fn resolver(&self) -> Option<&Arc<dyn Resolver>> {
        self.secrets.as_ref()
    }

    /// The sandbox slots every run shares.
    pub fn slots(&self) -> &Arc<Slots> {
        &self.slots
    }

    /// The result cache's directory (blobs, staging), when the runtime has one.
    pub fn cache_dir(&self) -> Option<&Arc<CacheDir>> {
        self.cache.as_ref()
    }

    /// Stop gracefully: runs start no new attempts and return
    /// [`SchedulerError::Interrupted`](super::SchedulerError::Interrupted) once their running
    /// attempts are recorded; they stay unfinished and resume on the next start.
    pub fn drain(&self) {
        self.drain.store(true, Ordering::Relaxed);
    }

    /// Write a consistent copy of the store and its blobs into the new directory `dest`
    /// while runs go on (the store holds writers back while it copies its records).
    pub fn backup(&self, dest: &Path) -> Result<DirBackupReport, StoreError> {
        let Some((sled, dir)) = &self.files else {
            return Err(StoreError::Backup("this runtime has no state directory to back up".into()));
        };
        let blobs = BlobStore::open(dir.join(BLOBS_DIR))
            .map_err(|e| StoreError::Backup(format!("opening the blob store: {e}")))?;
        crate::store::backup::backup(sled, Some(&blobs), dest)
    }

    pub fn draining(&self) -> bool {
        self.drain.load(Ordering::Relaxed)
    }
}

/// Open the run store of `state_dir`, creating the directory if needed.
pub fn open_store(state_dir: &Path) -> Result<Arc<SledStore>, StoreError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| StoreError::Open { path: state_dir.to_path_buf(), message: e.to_string() })?;
    Ok(Arc::new(SledStore::open(&state_dir.join(STORE_DIR))?))
}

/// The vault of a state directory whose store is open: the secrets in the store's
/// database, the master key from `SLUICE_MASTER_KEY` or `<state>/master.key`.
pub fn open_vault(store: &SledStore, state_dir: &Path) -> Result<Vault, StoreError> {
    let secrets = SledSecretStore::open(store)?;
    Ok(Vault::new(Arc::new(secrets), Arc::new(StateKey::new(state_dir)), Arc::new(SystemClock)))
}
