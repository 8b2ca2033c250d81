//! Capability: files, through WASI preopens only.
//!
//! Owns what of the host's filesystem an attempt sees: the task's declared
//! mounts (read-only or read-write, as declared) and a scratch `/tmp` created
//! for the attempt and wiped when it ends. cap-std confines every open to its
//! preopen: `..` and symlinks that lead outside fail inside the guest, and an
//! absolute path outside every mount has nothing to resolve against. It never
//! grants a path the task did not declare.

use std::path::Path;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::spec::{Mount, MountMode};

/// Where the per-attempt scratch directory appears inside the guest.
pub const SCRATCH_GUEST_PATH: &str = "/tmp";

/// The directories one attempt may touch; dropping it wipes the scratch dir.
pub(crate) struct Files {
    scratch: Option<tempfile::TempDir>,
}

impl Files {
    /// Preopen `mounts` and a fresh scratch directory under `scratch_root`
    /// (the system temp dir when `None`). An error names the mount.
    pub(crate) fn grant(wasi: &mut WasiCtxBuilder, mounts: &[Mount], scratch_root: Option<&Path>) -> Result<Files, String> {
        for m in mounts {
            let perms = match m.mode {
                MountMode::Ro => FsPerms::ReadOnly,
                MountMode::Rw => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| format!("cannot mount {} at {}: {e:#}", m.host.display(), m.guest))?;
        }
        let scratch = match scratch_root {
            Some(root) => {
                std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
                tempfile::Builder::new().prefix("attempt-").tempdir_in(root)
            }
            None => tempfile::Builder::new().prefix("sluice-attempt-").tempdir(),
        }
        .map_err(|e| format!("cannot create the attempt's scratch directory: {e}"))?;
        wasi.preopened_dir(scratch.path(), SCRATCH_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| format!("cannot mount the scratch directory: {e:#}"))?;
        Ok(Files { scratch: Some(scratch) })
    }

    /// The scratch directory's host path (while the attempt lives).
    #[cfg(test)]
    pub(crate) fn scratch(&self) -> Option<std::path::PathBuf> {
        self.scratch.as_ref().map(|s| s.path().to_path_buf())
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Some(dir) = self.scratch.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                tracing::warn!(path = %path.display(), error = %e, "could not wipe an attempt's scratch directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_wiped_when_the_attempt_ends() {
        let root = tempfile::tempdir().unwrap();
        let mut wasi = WasiCtxBuilder::new();
        let files = Files::grant(&mut wasi, &[], Some(root.path())).unwrap();
        let scratch = files.scratch().unwrap();
        std::fs::write(scratch.join("leftover"), b"x").unwrap();
        drop(files);
        assert!(!scratch.exists());
    }

    #[test]
    fn a_missing_mount_is_named() {
        let mut wasi = WasiCtxBuilder::new();
        let m = Mount { host: std::path::PathBuf::from("/nonexistent/dir"), guest: "/data".into(), mode: MountMode::Ro };
        let err = Files::grant(&mut wasi, &[m], None).err().unwrap();
        assert!(err.contains("/nonexistent/dir") && err.contains("/data"), "{err}");
    }
}
