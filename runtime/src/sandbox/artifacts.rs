//! Where compiled components live: one cache per user, shared by every bundle and state
//! directory (`$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else
//! `~/.cache/sluice`; artifacts under `components/`), bounded and pruned least recently
//! used first.
//!
//! Owns the directory's location, its bound and its pruning. Artifacts are named
//! `<component blake3>-<engine key>.cwasm` by the component cache (`cache.rs`), which
//! writes them atomically and touches one each time it loads it (its mtime is its last
//! use). It never deletes anything but `.cwasm` files (and stale temp files) in that
//! directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The most the compiled-artifact cache holds: a Python component compiles to ~40 MB, so
/// this keeps a few dozen of the largest, and a machine's disk is not filled by builds
/// nobody runs any more.
pub const MAX_COMPILED_CACHE_BYTES: u64 = 2 << 30;

/// Environment variable naming the cache directory (tests point it at their own).
pub const CACHE_DIR_ENV: &str = "SLUICE_CACHE_DIR";

/// The subdirectory compiled components go to.
const COMPONENTS: &str = "components";

/// The user's compiled-component directory, `None` when no home is known.
pub fn user_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = var(CACHE_DIR_ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("sluice")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("sluice")))?;
    Some(base.join(COMPONENTS))
}

/// What a pruning removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub removed: usize,
    pub bytes_freed: u64,
    pub kept: usize,
    pub bytes_kept: u64,
}

/// Remove artifacts unused for longer than `older_than` (if given), then the least
/// recently used until at most `max_bytes` remain. A missing directory prunes nothing.
pub fn prune(dir: &Path, older_than: Option<Duration>, max_bytes: u64) -> std::io::Result<Pruned> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pruned::default()),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let stale_temp = name.starts_with('.') && name.ends_with(".tmp") && age(now, used) > Duration::from_secs(3600);
        if stale_temp {
            let _ = std::fs::remove_file(entry.path());
        } else if meta.is_file() && name.ends_with(".cwasm") {
            files.push((used, meta.len(), entry.path()));
        }
    }
    files.sort(); // oldest use first
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    let mut pruned = Pruned::default();
    for (used, len, path) in files {
        let too_old = older_than.is_some_and(|limit| age(now, used) > limit);
        if (too_old || total > max_bytes) && std::fs::remove_file(&path).is_ok() {
            total -= len;
            pruned.removed += 1;
            pruned.bytes_freed += len;
        } else {
            pruned.kept += 1;
            pruned.bytes_kept += len;
        }
    }
    Ok(pruned)
}

fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// Mark `path` used now (its mtime), so pruning keeps what is in use.
pub(crate) fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_drops_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        for (name, when) in [("a-k.cwasm", old), ("b-k.cwasm", SystemTime::now())] {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 10]).unwrap();
            std::fs::File::options().append(true).open(&path).unwrap().set_modified(when).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"kept").unwrap();
        let p = prune(dir.path(), None, 15).unwrap();
        assert_eq!((p.removed, p.kept), (1, 1));
        assert!(!dir.path().join("a-k.cwasm").exists() && dir.path().join("b-k.cwasm").exists());
        assert!(dir.path().join("notes.txt").exists(), "only artifacts are touched");
        let p = prune(dir.path(), Some(Duration::from_secs(0)), u64::MAX).unwrap();
        assert_eq!(p.removed, 1);
        assert_eq!(prune(&dir.path().join("missing"), None, 0).unwrap(), Pruned::default());
    }
}
