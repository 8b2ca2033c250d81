//! Capability: files, through WASI preopens only.
//!
//! Owns what of the host's filesystem an attempt sees: the task's declared
//! mounts (read-only or read-write, as declared) and a scratch `/tmp` that is
//! empty when the attempt starts and wiped when it ends. cap-std confines every open to its
//! preopen: `..` and symlinks that lead outside fail inside the guest, and an
//! absolute path outside every mount has nothing to resolve against. It never
//! grants a path the task did not declare.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::secrets::Revealed;
use super::{Capability, Prepare};
use crate::secrets::Redactor;
use crate::spec::{Mount, MountMode};
use crate::util::DirPool;

/// Where the per-attempt scratch directory appears inside the guest.
pub const SCRATCH_GUEST_PATH: &str = "/tmp";

/// Where a task writes the files it hands downstream.
pub const OUT_GUEST_PATH: &str = "/out";

/// Where upstream task `KEY`'s `/out` files appear, read-only: `/in/KEY`.
pub const IN_GUEST_ROOT: &str = "/in";

/// What of the host's filesystem an attempt may see.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Host directories the guest sees (WASI preopens), besides its scratch `/tmp`.
    pub mounts: Vec<Mount>,
    /// Upstream tasks' output directories, offered read-only at `/in/<task>`.
    pub inputs: Vec<(String, PathBuf)>,
    /// The directory the guest sees as `/out` (the caller collects it afterwards).
    pub out: Option<PathBuf>,
}

impl Capability for Files {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        let mut files = Files::grant(cx.wasi, &grant.mounts, cx.scratch)?;
        grant_artifacts(cx.wasi, &grant.inputs, grant.out.as_ref())?;
        let mut guests: Vec<String> = grant.mounts.iter().map(|m| m.guest.clone()).collect();
        guests.push(SCRATCH_GUEST_PATH.into());
        guests.extend(grant.inputs.iter().map(|(task, _)| format!("{IN_GUEST_ROOT}/{task}")));
        if grant.out.is_some() {
            guests.push(OUT_GUEST_PATH.into());
        }
        files.root = Some(cx.roots.grant(cx.wasi, &guests)?);
        files.out = grant.out;
        Ok(files)
    }
}

/// Preopen upstream outputs read-only at `/in/<task>` and the attempt's own
/// output directory read-write at `/out`.
fn grant_artifacts(
    wasi: &mut WasiCtxBuilder,
    inputs: &[(String, PathBuf)],
    out: Option<&PathBuf>,
) -> Result<(), String> {
    for (task, dir) in inputs {
        let guest = format!("{IN_GUEST_ROOT}/{task}");
        wasi.preopened_dir(dir, &guest, FsPerms::ReadOnly).map_err(|e| format!("cannot offer {guest}: {e:#}"))?;
    }
    if let Some(dir) = out {
        wasi.preopened_dir(dir, OUT_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| format!("cannot mount {OUT_GUEST_PATH}: {e:#}"))?;
    }
    Ok(())
}

/// Empty scratch directories kept for reuse: enough for every sandbox slot.
pub(crate) const MAX_POOLED_SCRATCH_DIRS: usize = super::engine::MAX_CONCURRENT_INSTANCES as usize;

/// The pool every attempt's scratch `/tmp` comes from: a fresh directory of the system's
/// temp dir (removed with the pool).
pub(crate) fn scratch_pool() -> Result<DirPool, String> {
    DirPool::in_temp("sluice-scratch-", MAX_POOLED_SCRATCH_DIRS)
        .map_err(|e| format!("cannot create a scratch directory in the temp dir: {e}"))
}

/// The directories one attempt may touch; dropping it wipes the scratch dir.
pub(crate) struct Files {
    scratch: Option<(PathBuf, Arc<DirPool>)>,
    /// The host directory offered as `/out`.
    out: Option<PathBuf>,
    /// The guest's `/`, held while the attempt lives.
    root: Option<super::root::RootLease>,
}

impl Files {
    /// Preopen `mounts` and an empty scratch directory as `/tmp`. An error names the mount.
    pub(crate) fn grant(wasi: &mut WasiCtxBuilder, mounts: &[Mount], pool: &Arc<DirPool>) -> Result<Files, String> {
        for m in mounts {
            let perms = match m.mode {
                MountMode::Ro => FsPerms::ReadOnly,
                MountMode::Rw => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| format!("cannot mount {} at {}: {e:#}", m.host.display(), m.guest))?;
        }
        let dir = pool.take()?;
        let files = Files { scratch: Some((dir.clone(), pool.clone())), out: None, root: None };
        wasi.preopened_dir(&dir, SCRATCH_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| format!("cannot mount the scratch directory: {e:#}"))?;
        Ok(files)
    }

    /// The first file of `/out` (its path inside `/out`) whose name, contents or link
    /// target hold a value `revealed` knows, in any form. Links are read, never followed.
    pub(crate) fn out_holding(&self, revealed: &Revealed) -> Result<Option<String>, String> {
        match &self.out {
            Some(out) if !revealed.is_empty() => find_revealed(out, "", &revealed.redactor()),
            _ => Ok(None),
        }
    }

    /// The scratch directory's host path (while the attempt lives).
    #[cfg(test)]
    pub(crate) fn scratch(&self) -> Option<PathBuf> {
        self.scratch.as_ref().map(|s| s.0.clone())
    }
}

/// Walk `dir` (shown as `/out/<at>`) for a file holding what `redactor` finds.
fn find_revealed(dir: &Path, at: &str, redactor: &Redactor) -> Result<Option<String>, String> {
    let failed = |e: std::io::Error| format!("reading {OUT_GUEST_PATH}{at}: {e}");
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(failed)?.collect::<Result<_, _>>().map_err(failed)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let shown = format!("{at}/{}", name.to_string_lossy());
        let kind = entry.file_type().map_err(failed)?;
        let holds = if redactor.found_in(name.as_encoded_bytes()) {
            true
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(failed)?;
            redactor.found_in(target.as_os_str().as_encoded_bytes())
        } else if kind.is_dir() {
            if let Some(found) = find_revealed(&entry.path(), &shown, redactor)? {
                return Ok(Some(found));
            }
            false
        } else {
            let file = std::fs::File::open(entry.path()).map_err(failed)?;
            redactor.found_in_reader(file).map_err(failed)?
        };
        if holds {
            return Ok(Some(format!("{OUT_GUEST_PATH}{shown}")));
        }
    }
    Ok(None)
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Some((dir, pool)) = self.scratch.take() {
            pool.give_back(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_wiped_when_the_attempt_ends() {
        let pool = Arc::new(scratch_pool().unwrap());
        let mut wasi = WasiCtxBuilder::new();
        let files = Files::grant(&mut wasi, &[], &pool).unwrap();
        let scratch = files.scratch().unwrap();
        std::fs::create_dir(scratch.join("sub")).unwrap();
        std::fs::write(scratch.join("sub/leftover"), b"x").unwrap();
        std::fs::write(scratch.join("leftover"), b"x").unwrap();
        drop(files);
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "emptied");
        let again = Files::grant(&mut WasiCtxBuilder::new(), &[], &pool).unwrap();
        assert_eq!(again.scratch().unwrap(), scratch, "reused");
    }

    #[test]
    fn a_missing_mount_is_named() {
        let mut wasi = WasiCtxBuilder::new();
        let m = Mount {
            host: std::path::PathBuf::from("/nonexistent/dir"),
            guest: "/data".into(),
            mode: MountMode::Ro,
            outside_roots: false,
            object: None,
        };
        let err = Files::grant(&mut wasi, &[m], &Arc::new(scratch_pool().unwrap())).err().unwrap();
        assert!(err.contains("/nonexistent/dir") && err.contains("/data"), "{err}");
    }
}
