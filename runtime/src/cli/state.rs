//! Finding and opening the state directory.
//!
//! Layout: `<state>/store` (the sled store), `<state>/components` (precompiled
//! component artifacts).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::model::SystemClock;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::scheduler::Runtime;
use crate::store::{SledStore, Store};

/// The name of the default state directory.
pub const STATE_DIR: &str = ".sluice";

/// `--state`/`SLUICE_STATE` if given, else `.sluice` inside `default_parent`.
pub fn state_dir(explicit: Option<PathBuf>, default_parent: &Path) -> PathBuf {
    explicit.unwrap_or_else(|| default_parent.join(STATE_DIR))
}

/// Open the store, creating the state directory if needed.
pub fn open_store(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating state directory {}", dir.display()))?;
    let store = SledStore::open(&dir.join("store"))?;
    Ok(Arc::new(store))
}

/// Open the store of an existing state directory, for read-only commands.
pub fn open_existing(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if !dir.join("store").exists() {
        anyhow::bail!(
            "no sluice state in {} (nothing has run there yet); pass --state DIR, e.g. --state examples/hello/{STATE_DIR}",
            dir.display()
        );
    }
    open_store(dir)
}

/// Store, sandbox and clock for running tasks.
pub fn runtime(dir: &Path) -> anyhow::Result<Runtime> {
    let store = open_store(dir)?;
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: Some(dir.join("components")) })?;
    Ok(Runtime { store, sandbox: Arc::new(sandbox), clock: Arc::new(SystemClock), cancel: Arc::new(AtomicBool::new(false)) })
}
