//! Finding and opening the state directory.
//!
//! Layout: `<state>/store` (the sled store), `<state>/components` (precompiled
//! component artifacts), `<state>/control` (requests from other processes),
//! `<state>/master.key` (the secrets' master key, unless `SLUICE_MASTER_KEY` is set;
//! beside the store, never in it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::model::SystemClock;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::scheduler::{Control, Observer, Runtime};
use crate::store::{SledStore, Store, StoreError};

/// The name of the default state directory.
pub const STATE_DIR: &str = ".sluice";

/// `--state`/`SLUICE_STATE` if given, else `.sluice` inside `default_parent`.
pub fn state_dir(explicit: Option<PathBuf>, default_parent: &Path) -> PathBuf {
    explicit.unwrap_or_else(|| default_parent.join(STATE_DIR))
}

pub fn control(dir: &Path) -> Control {
    Control::new(dir.join("control"))
}

/// Open the store, creating the state directory if needed.
pub fn open_store(dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(open_sled(dir)?)
}

/// [`open_store`], keeping the backend's type (its database also holds the secrets).
pub fn open_sled(dir: &Path) -> Result<Arc<SledStore>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open { path: dir.to_path_buf(), message: e.to_string() })?;
    Ok(Arc::new(SledStore::open(&dir.join("store"))?))
}

/// Open the store of an existing state directory, for commands that only inspect.
pub fn open_existing(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if !dir.join("store").exists() {
        anyhow::bail!(
            "no sluice state in {} (nothing has run there yet); pass --state DIR, e.g. --state examples/hello/{STATE_DIR}",
            dir.display()
        );
    }
    open_store(dir).map_err(|e| match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}: a run is in progress; try again when it ends (or cancel it: `sluice runs cancel RUN_ID`)"
        ),
        other => other.into(),
    })
}

/// Store, sandbox, clock and control directory for running tasks.
pub fn runtime(dir: &Path, observer: Arc<dyn Observer>) -> anyhow::Result<Runtime> {
    let sled = open_sled(dir).with_context(|| format!("opening the state in {}", dir.display()))?;
    let vault = super::secrets::vault(&sled, dir)?;
    let store: Arc<dyn Store> = sled;
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: Some(dir.join("components")) })?;
    let mut rt = Runtime::new(store, Arc::new(sandbox), Arc::new(SystemClock));
    rt.secrets = Some(Arc::new(vault));
    rt.principal = super::secrets::principal().unwrap_or_else(|| super::secrets::ANONYMOUS.into());
    rt.control = Some(control(dir));
    rt.observer = observer;
    let cache = crate::scheduler::CacheConfig::open(dir)
        .map_err(|e| anyhow::anyhow!("opening the result cache in {}: {e}", dir.display()))?;
    rt.cache = Some(Arc::new(cache));
    Ok(rt)
}

/// Turn off reuse (`--no-cache`) or trust no stat cache (`--rehash`) for this process.
pub fn cache_flags(rt: &mut Runtime, no_cache: bool, rehash: bool) {
    if let Some(cfg) = rt.cache.as_mut().and_then(Arc::get_mut) {
        cfg.no_cache = no_cache;
        cfg.rehash = rehash;
    }
}
