//! The runtime handle: everything a process needs to run jobs against one state directory,
//! assembled in one place ([`Runtime::open`]) so the CLI, a server and tests build it alike.
//!
//! Owns the state directory's layout (`store/`, `components/`, `control/`, the secrets'
//! `master.key`, the cache's `blobs/`, `staging/` and `statcache.json`) and what is shared
//! by every run: the store, the vault, the sandbox, the result cache, the control
//! directory and the bound on sandboxes at once. A [`Runtime`] is cheap to clone and
//! `Send + Sync`: one long-lived process shares it across any number of concurrent runs.
//! What belongs to one run — who starts it, its workspace, where its progress goes, how
//! it is stopped, whether it may reuse results — is a [`RunOptions`], never runtime state.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Semaphore;

use super::executor::{Executor, LocalExecutor};
use super::{Control, Observer, Quiet};
use crate::cache::CacheDir;
use crate::model::{Clock, SystemClock};
use crate::sandbox::{MAX_CONCURRENT_INSTANCES, Sandbox, SandboxConfig, SandboxError};
use crate::secrets::{Resolver, StateKey, Vault};
use crate::store::sled_secrets::SledSecretStore;
use crate::store::{SledStore, Store, StoreError};

/// The run store's directory under the state directory.
pub const STORE_DIR: &str = "store";
/// Precompiled component artifacts.
pub const COMPONENTS_DIR: &str = "components";
/// Requests from other processes (cancel).
pub const CONTROL_DIR: &str = "control";

/// How to open a runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Sandboxes at once across every run of this runtime; `None`:
    /// [`MAX_CONCURRENT_INSTANCES`] (the pooling allocator's size, also the most allowed).
    pub max_parallel: Option<usize>,
}

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
    /// Content-hashed reruns (blob store, stat cache, staging); `None`: nothing is reused.
    pub(crate) cache: Option<Arc<CacheDir>>,
    /// Where other processes leave requests (cancel) for runs of this store.
    pub(crate) control: Option<Control>,
    /// Sandboxes at once, across all runs (the global bound).
    pub(crate) slots: Arc<Semaphore>,
    /// Where attempts run.
    pub(crate) executor: Arc<dyn Executor>,
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
    /// Set (e.g. on a second Ctrl-C) to stop that cleanup too.
    pub stop_cleanup: Arc<AtomicBool>,
    /// `--no-cache`: compute keys (for explain) but never reuse a stored result.
    pub no_cache: bool,
    /// `--rehash`: re-read every mounted file instead of trusting the stat cache.
    pub rehash: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            principal: String::new(),
            workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
            observer: Arc::new(Quiet),
            cancel: Arc::new(AtomicBool::new(false)),
            stop_cleanup: Arc::new(AtomicBool::new(false)),
            no_cache: false,
            rehash: false,
        }
    }
}

impl Runtime {
    /// The runtime of `state_dir` (created if missing): its sled store and the secrets in
    /// it, the sandbox with its precompiled artifacts, the result cache and the control
    /// directory. Opening the store takes its lock: one process owns a state directory.
    pub fn open(state_dir: &Path, options: RuntimeOptions) -> Result<Runtime, OpenError> {
        let max = MAX_CONCURRENT_INSTANCES as usize;
        let slots = match options.max_parallel {
            Some(n) if !(1..=max).contains(&n) => return Err(OpenError::MaxParallel(n)),
            Some(n) => n,
            None => max,
        };
        let sled = open_store(state_dir)?;
        let vault = open_vault(&sled, state_dir)?;
        let sandbox = Sandbox::new(SandboxConfig { cache_dir: Some(state_dir.join(COMPONENTS_DIR)) })?;
        let cache = CacheDir::open(state_dir, slots)
            .map_err(|message| OpenError::Cache { dir: state_dir.display().to_string(), message })?;
        let mut rt = Runtime::new(sled, Arc::new(sandbox), Arc::new(SystemClock));
        rt.secrets = Some(Arc::new(vault));
        rt.cache = Some(Arc::new(cache));
        rt.control = Some(control(state_dir));
        rt.slots = Arc::new(Semaphore::new(slots));
        rt.executor = rt.local_executor();
        Ok(rt)
    }

    /// A runtime over a store and a sandbox only: no secrets, no result cache, no control
    /// directory (tests, embedding).
    pub fn new(store: Arc<dyn Store>, sandbox: Arc<Sandbox>, clock: Arc<dyn Clock>) -> Runtime {
        let executor =
            Arc::new(LocalExecutor { sandbox: sandbox.clone(), store: store.clone(), secrets: None, cache: None });
        Runtime {
            store,
            sandbox,
            clock,
            secrets: None,
            cache: None,
            control: None,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_INSTANCES as usize)),
            executor,
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

/// The control directory of a state directory (cancel requests from other processes).
pub fn control(state_dir: &Path) -> Control {
    Control::new(state_dir.join(CONTROL_DIR))
}
