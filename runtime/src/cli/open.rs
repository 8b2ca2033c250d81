//! Which state directory a command works on, who is asking, and the command's session
//! with the directory's owner (this process, or another `sluice` over the socket).
//!
//! The election and the owner's lifetime are the library's ([`Session`]); this module only
//! chooses where (`--state`, `SLUICE_STATE`, else `.sluice` beside the bundle or in the
//! current directory), for whom (`SLUICE_PRINCIPAL`, else the OS user), runs the command
//! on tokio, and says on stderr when an owner stays on for other clients' runs.

use super::out::errln;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::client::{BoxFuture, OwnerOptions, Session};
use crate::scheduler::{RuntimeOptions, STORE_DIR};
use crate::spec::BUNDLE_FILE;

/// The name of the default state directory.
pub const STATE_DIR: &str = ".sluice";

/// The environment variable naming who runs `sluice` (else `USER`).
pub const PRINCIPAL_ENV: &str = "SLUICE_PRINCIPAL";

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

/// Who is running `sluice`: `SLUICE_PRINCIPAL`, else `USER`, else `LOGNAME`.
pub fn principal() -> Option<String> {
    [PRINCIPAL_ENV, "USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// How a command that becomes the owner of `dir` sets up, working in `workspace`.
pub fn owner_options(workspace: &str, runtime: RuntimeOptions) -> OwnerOptions {
    OwnerOptions {
        runtime,
        listen: None,
        principal: principal().unwrap_or_else(|| crate::service::ANONYMOUS.into()),
        workspace: workspace.to_string(),
    }
}

pub(crate) fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Run `command` in a session with `dir`'s owner; then, if this process owns it, serve
/// other clients until their runs end.
pub fn with_session<T, F>(dir: &Path, options: OwnerOptions, command: F) -> anyhow::Result<T>
where
    F: for<'a> FnOnce(&'a mut Session) -> BoxFuture<'a, anyhow::Result<T>>,
{
    let tokio = tokio_runtime()?;
    tokio.block_on(async {
        let mut session = Session::open(dir, options).await.with_context(|| format!("opening {}", dir.display()))?;
        let result = command(&mut session).await;
        let lingering = |runs: usize| {
            errln!(
                "sluice: {runs} other run{} in progress in {}; serving {} until {} (Ctrl-C stops; \
                 runs resume later)",
                if runs == 1 { " is" } else { "s are" },
                dir.display(),
                if runs == 1 { "it" } else { "them" },
                if runs == 1 { "it ends" } else { "they end" },
            );
        };
        session.finish(lingering, interrupted(), STOP_GRACE).await;
        result
    })
}

/// How long an owner stopped by Ctrl-C gives running attempts to end before it exits
/// (their runs resume on the next start).
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ctrl-C (or SIGTERM) while an owner stays for other clients' runs: stop.
async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
}
