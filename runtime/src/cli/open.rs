//! Which state directory a command works on, and opening it with the messages a person
//! needs: nothing there yet, a run holding it, who is asking.
//!
//! The runtime itself is assembled by the library ([`Runtime::open`]); this module only
//! chooses where (`--state`, `SLUICE_STATE`, else `.sluice` beside the bundle or in the
//! current directory), for whom (`SLUICE_PRINCIPAL`, else the OS user), where progress
//! goes (stderr) and what stops a run (the first Ctrl-C).

use super::out::errln;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::progress::Progress;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::scheduler::{Observer, Quiet, RunOptions, Runtime, RuntimeOptions, STORE_DIR, open_store};
use crate::spec::BUNDLE_FILE;
use crate::store::{Store, StoreError};

/// The name of the default state directory.
pub const STATE_DIR: &str = ".sluice";

/// The environment variable naming who runs `sluice` (else `USER`).
pub const PRINCIPAL_ENV: &str = "SLUICE_PRINCIPAL";

/// The principal of a run started without one (no `SLUICE_PRINCIPAL`, `USER` or `LOGNAME`).
pub const ANONYMOUS: &str = "anonymous";

/// `--state`/`SLUICE_STATE` if given, else `.sluice` inside `default_parent`.
pub fn state_dir(explicit: Option<PathBuf>, default_parent: &Path) -> PathBuf {
    explicit.unwrap_or_else(|| default_parent.join(STATE_DIR))
}

/// The state directory of a command that works on existing state: `--state`/`SLUICE_STATE`,
/// else the nearest `.sluice` walking up from the current directory, as cargo finds its
/// manifest — stopping at the first directory holding a `sluice.toml` (a bundle's state
/// lives beside it). The error says where it looked.
pub fn existing_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        if !dir.join(STORE_DIR).exists() {
            anyhow::bail!("no sluice state in {} (nothing has run there yet)", dir.display());
        }
        return Ok(dir);
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        let state = dir.join(STATE_DIR);
        if state.join(STORE_DIR).exists() {
            return Ok(state);
        }
        if dir.join(BUNDLE_FILE).is_file() {
            anyhow::bail!(
                "no sluice state for the bundle in {}: {} does not exist yet (nothing has run there; `sluice run {}` first)",
                dir.display(),
                state.display(),
                dir.display()
            );
        }
    }
    anyhow::bail!(
        "no sluice state found: looked for {STATE_DIR}/ and {BUNDLE_FILE} in {} and every directory above it; \
         run this from a bundle's directory, or pass --state DIR (or set SLUICE_STATE)",
        cwd.display()
    )
}

/// Explain a store another process holds.
pub fn locked(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}: a run is in progress; try again when it ends (or cancel it: `sluice runs cancel RUN_ID`)"
        ),
        other => other.into(),
    }
}

/// Open the store of an existing state directory, for commands that only inspect.
pub fn existing_store(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_store(dir).map_err(locked)?)
}

/// The runtime of `dir` (created if missing).
pub fn runtime(dir: &Path, options: RuntimeOptions) -> anyhow::Result<Runtime> {
    Runtime::open(dir, options)
        .map_err(|e| match e {
            crate::scheduler::OpenError::Store(e) => locked(e),
            other => other.into(),
        })
        .with_context(|| format!("opening the state in {}", dir.display()))
}

/// Who is running `sluice`: `SLUICE_PRINCIPAL`, else `USER`, else `LOGNAME`.
pub fn principal() -> Option<String> {
    [PRINCIPAL_ENV, "USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// The options of a run this command starts or continues: the principal, `workspace`,
/// progress on stderr (nothing with `--json`), canceled by the first Ctrl-C.
pub fn run_options(workspace: &str, json: bool, width: usize) -> RunOptions {
    let opts = RunOptions {
        principal: principal().unwrap_or_else(|| ANONYMOUS.into()),
        workspace: workspace.to_string(),
        observer: observer(json, width),
        ..RunOptions::default()
    };
    watch_ctrl_c(opts.cancel.clone(), opts.stop_cleanup.clone());
    opts
}

/// Progress on stderr (a live board on a terminal, lines elsewhere), or nothing with `--json`.
fn observer(json: bool, width: usize) -> Arc<dyn Observer> {
    if json { Arc::new(Quiet) } else { Arc::new(Progress::new(width)) }
}

pub(crate) fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// The first Ctrl-C cancels the run (running sandboxes stop at their next epoch tick;
/// failure-handling tasks still run as its cleanup); the second stops that cleanup too.
fn watch_ctrl_c(cancel: Arc<AtomicBool>, stop_cleanup: Arc<AtomicBool>) {
    let _ = ctrlc_thread(cancel, stop_cleanup);
}

fn ctrlc_thread(cancel: Arc<AtomicBool>, stop_cleanup: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new().name("sluice-signal".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(_) => return,
        };
        if rt.block_on(tokio::signal::ctrl_c()).is_err() {
            return;
        }
        errln!("canceling the run (Ctrl-C); cleanup tasks still run: Ctrl-C again stops them too…");
        cancel.store(true, Ordering::Relaxed);
        if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
            errln!("stopping the run's cleanup too (Ctrl-C again)…");
            stop_cleanup.store(true, Ordering::Relaxed);
        }
    })?;
    Ok(())
}
