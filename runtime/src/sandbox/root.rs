//! The guest's `/`: a read-only directory holding nothing but empty directories named
//! after the attempt's mount points (`/data`, `/in/extract`, `/out`, `/tmp`, …), offered as
//! the preopen `/` beside the real ones.
//!
//! Owns those synthetic roots. Without a `/` preopen, `stat("/")` fails, so the usual
//! idioms (`os.makedirs("/out", exist_ok=True)`, `Path("/out").mkdir(parents=True,
//! exist_ok=True)`, listing `/`) fail although the directory exists. The root grants
//! nothing: it is read-only, holds no file, and every path under a mount point resolves
//! through that mount's own (longer) preopen. One root is made per distinct layout and
//! shared by the attempts using it; at most [`MAX_IDLE_ROOTS`] unused ones are kept. They
//! live on a memory filesystem when the host has one (`/dev/shm`: making directories on a
//! disk cost ~1 ms a layout, and a chain's tasks each have their own `/in/KEY` layout), else
//! in the system's temp dir, under a directory removed with the sandbox. It never holds
//! anything of the host's but those empty directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Unused roots kept for the next attempt with the same layout; past this, a root is
/// removed when its last attempt ends (each is a few empty directories, in memory on
/// `/dev/shm`, so a long-lived process must not keep one per layout it ever saw).
pub(crate) const MAX_IDLE_ROOTS: usize = 1024;

/// The memory filesystem tried first for the roots.
const MEMORY_FS: &str = "/dev/shm";

/// The synthetic roots of one sandbox, by layout digest.
pub(crate) struct Roots {
    dir: tempfile::TempDir,
    /// Roots made, with the number of attempts using each.
    made: Mutex<HashMap<String, usize>>,
}

/// One attempt's hold on its root: the root outlives it.
pub(crate) struct RootLease {
    roots: Arc<Roots>,
    digest: String,
}

impl Roots {
    /// A fresh directory for the roots: on `/dev/shm` when it takes one, else in the
    /// system's temp dir.
    pub(crate) fn new() -> Result<Roots, String> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("sluice-roots-");
        let dir = match Path::new(MEMORY_FS).is_dir().then(|| builder.tempdir_in(MEMORY_FS)) {
            Some(Ok(dir)) => dir,
            _ => builder.tempdir().map_err(|e| format!("cannot create a directory in the temp dir: {e}"))?,
        };
        Ok(Roots { dir, made: Mutex::new(HashMap::new()) })
    }

    /// Where the roots live.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Offer `/` read-only: a directory holding an empty directory for each of `guests`
    /// (absolute guest paths of the attempt's preopens). The lease keeps it.
    pub(crate) fn grant(self: &Arc<Self>, wasi: &mut WasiCtxBuilder, guests: &[String]) -> Result<RootLease, String> {
        let (lease, root) = self.lease(guests)?;
        wasi.preopened_dir(&root, "/", FsPerms::ReadOnly).map_err(|e| format!("cannot offer `/`: {e:#}"))?;
        Ok(lease)
    }

    /// The root directory for this layout (made when no attempt holds it), leased.
    fn lease(self: &Arc<Self>, guests: &[String]) -> Result<(RootLease, PathBuf), String> {
        let mut layout: Vec<&str> =
            guests.iter().map(|g| g.trim_start_matches('/')).filter(|g| !g.is_empty()).collect();
        layout.sort_unstable();
        layout.dedup();
        let digest = blake3::hash(layout.join("\n").as_bytes()).to_hex()[..16].to_string();
        let dir = self.dir.path().join(&digest);
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        let users = match made.get_mut(&digest) {
            Some(users) => users,
            None => {
                let failed = |e: std::io::Error| format!("making the guest's `/`: {e}");
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir(&dir).map_err(failed)?;
                for guest in &layout {
                    std::fs::create_dir_all(dir.join(guest)).map_err(failed)?;
                }
                made.entry(digest.clone()).or_insert(0)
            }
        };
        *users += 1;
        Ok((RootLease { roots: self.clone(), digest }, dir))
    }
}

impl Drop for RootLease {
    fn drop(&mut self) {
        let mut made = self.roots.made.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(users) = made.get_mut(&self.digest) else { return };
        *users = users.saturating_sub(1);
        if *users > 0 {
            return;
        }
        if made.values().filter(|u| **u == 0).count() > MAX_IDLE_ROOTS {
            made.remove(&self.digest);
            let _ = std::fs::remove_dir_all(self.roots.dir.path().join(&self.digest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_root_lists_the_mount_points_and_is_reused_per_layout() {
        let roots = Arc::new(Roots::new().unwrap());
        let guests = ["/data/raw".to_string(), "/out".into(), "/in/extract".into(), "/tmp".into()];
        let (lease, root) = roots.lease(&guests).unwrap();
        assert_eq!(listing(&root), ["data", "in", "out", "tmp"]);
        assert!(root.join("data/raw").is_dir() && root.join("in/extract").is_dir());
        let mut shuffled = guests.to_vec();
        shuffled.reverse();
        assert_eq!(roots.lease(&shuffled).unwrap().1, root, "same layout, same root");
        assert_ne!(roots.lease(&guests[..2]).unwrap().1, root);
        drop(lease);
        assert!(root.is_dir(), "an idle root is kept for the next attempt");
        if Path::new(MEMORY_FS).is_dir() {
            assert!(roots.path().starts_with(MEMORY_FS), "{}", roots.path().display());
        }
    }

    #[test]
    fn idle_roots_past_the_bound_are_removed_and_the_rest_go_with_the_sandbox() {
        let roots = Arc::new(Roots::new().unwrap());
        let base = roots.path().to_path_buf();
        let held = roots.lease(&["/in/held".to_string()]).unwrap();
        for i in 0..MAX_IDLE_ROOTS + 10 {
            drop(roots.lease(&[format!("/in/t{i}")]).unwrap());
        }
        assert_eq!(listing(&base).len(), MAX_IDLE_ROOTS + 1, "the bound, and the one in use");
        assert!(held.1.join("in/held").is_dir(), "a root in use is never removed");
        drop(held);
        drop(roots);
        assert!(!base.exists(), "removed with the sandbox");
    }

    #[test]
    fn attempts_starting_together_all_get_the_root() {
        const THREADS: usize = 8;
        let roots = Arc::new(Roots::new().unwrap());
        for round in 0..20 {
            let guests: Vec<String> = (0..20).map(|i| format!("/in/t{round}/{i}/a/b")).collect();
            let start = std::sync::Barrier::new(THREADS);
            let made: Vec<Result<(RootLease, PathBuf), String>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            roots.lease(&guests)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for root in &made {
                assert!(
                    root.as_ref().is_ok_and(|r| r.1.join(format!("in/t{round}/19/a/b")).is_dir()),
                    "{:?}",
                    root.as_ref().err()
                );
            }
        }
    }
}
