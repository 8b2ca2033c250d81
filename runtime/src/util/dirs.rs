//! [`DirPool`]: empty directories, reused.
//!
//! Creating and deleting a directory per attempt costs milliseconds on filesystems that
//! discard freed blocks synchronously (ext4 with `discard`), so an attempt borrows an empty
//! directory and gives it back emptied. Owns only the directories it made; it never
//! touches anything else under its root.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// A pool of empty directories under one root.
#[derive(Debug)]
pub struct DirPool {
    root: PathBuf,
    /// The root when the pool made it itself (removed with the pool).
    _owned: Option<tempfile::TempDir>,
    prefix: String,
    /// Empty directories kept for reuse at most; more are deleted when given back.
    keep: usize,
    free: Mutex<Vec<PathBuf>>,
    next: AtomicU64,
}

impl DirPool {
    /// A pool of `<root>/<prefix><pid>-<n>` directories, keeping at most `keep` for reuse.
    pub fn new(root: impl Into<PathBuf>, prefix: &str, keep: usize) -> DirPool {
        DirPool {
            root: root.into(),
            _owned: None,
            prefix: prefix.to_string(),
            keep,
            free: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        }
    }

    /// A pool under a fresh directory of the system's temp dir, removed with the pool.
    pub fn in_temp(prefix: &str, keep: usize) -> std::io::Result<DirPool> {
        let owned = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let mut pool = DirPool::new(owned.path(), "", keep);
        pool._owned = Some(owned);
        Ok(pool)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An empty directory: a pooled one, or a new one.
    pub fn take(&self) -> Result<PathBuf, String> {
        if let Some(dir) = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(dir);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(format!("{}{}-{n}", self.prefix, std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Empty `dir` and keep it for the next [`DirPool::take`] (or delete it when that
    /// fails or enough are kept).
    pub fn give_back(&self, dir: PathBuf) {
        let emptied = empty(&dir);
        self.keep_or_remove(dir, emptied);
    }

    /// Keep `dir`, which the caller has just listed as empty and nothing writes any more,
    /// without listing it again (one walk of an attempt's `/out` instead of two).
    pub fn give_back_empty(&self, dir: PathBuf) {
        self.keep_or_remove(dir, Ok(()));
    }

    fn keep_or_remove(&self, dir: PathBuf, emptied: std::io::Result<()>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if emptied.is_ok() && free.len() < self.keep {
            free.push(dir);
            return;
        }
        drop(free);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(path = %dir.display(), error = %e, "could not remove a pooled directory");
        }
    }
}

/// Remove everything inside `dir`, keeping `dir`.
fn empty(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_come_back_empty_and_are_reused_up_to_the_limit() {
        let pool = DirPool::in_temp("sluice-pool-test-", 1).unwrap();
        let (a, b) = (pool.take().unwrap(), pool.take().unwrap());
        assert_ne!(a, b);
        std::fs::create_dir(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/leftover"), b"x").unwrap();
        std::fs::write(a.join("leftover"), b"x").unwrap();
        pool.give_back(a.clone());
        assert_eq!(std::fs::read_dir(&a).unwrap().count(), 0, "emptied");
        pool.give_back(b.clone());
        assert!(!b.exists(), "beyond the limit a directory is removed");
        assert_eq!(pool.take().unwrap(), a, "reused");
        let root = pool.root().to_path_buf();
        drop(pool);
        assert!(!root.exists(), "a pool in the temp dir removes its root");
    }
}
