//! [`CacheDir`]: the cache's part of a state directory — the blob store, the stat cache and
//! the staging area where attempts' `/out` directories and `/in` copies live.
//!
//! Owns the layout below the state directory (`blobs/`, `statcache.json`, `staging/`, the
//! object-storage mounts' index `objects/`) and
//! clearing what an earlier process left in `staging`. It never decides what is cached.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::{BLOBS_DIR, BlobStore, Hash, STAT_CACHE_FILE, StatCache, TreeManifest};
use crate::util::DirPool;

/// Where attempts' `/out` directories and materialised `/in` copies live: on the blob
/// store's filesystem, so files move in and out of it by rename and hard link.
pub const STAGING_DIR: &str = "staging";

/// Where content-hashed reruns keep their state.
#[derive(Debug)]
pub struct CacheDir {
    pub blobs: BlobStore,
    /// Scratch space on the blob store's filesystem: `/out` dirs and `/in` copies.
    pub staging: PathBuf,
    pub stat_cache: Mutex<StatCache>,
    stat_cache_path: PathBuf,
    /// The object-storage mounts' index: object version → content hash
    /// (`objstore::stage`).
    pub objects: PathBuf,
    /// Empty `/out` directories, reused (in `staging`).
    pub out_dirs: DirPool,
}

impl CacheDir {
    /// The cache of a state directory; keeps up to `pooled` empty `/out` directories
    /// (one per sandbox slot is enough).
    pub fn open(state: &Path, pooled: usize) -> Result<CacheDir, String> {
        let blobs = BlobStore::open(state.join(BLOBS_DIR)).map_err(|e| e.to_string())?;
        let stat_cache_path = state.join(STAT_CACHE_FILE);
        let stat_cache = StatCache::load(&stat_cache_path).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stat cache unreadable; mounts are re-hashed");
            StatCache::new()
        });
        let staging = state.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).map_err(|e| format!("creating {}: {e}", staging.display()))?;
        // the store's lock makes this the only process using the state: `/out`
        // dirs and half-made `/in` copies left by earlier processes are garbage
        for entry in std::fs::read_dir(&staging).map_err(|e| format!("reading {}: {e}", staging.display()))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("out-") || name.starts_with(".in-") || name.starts_with("rw-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(CacheDir {
            blobs,
            out_dirs: DirPool::new(&staging, "out-", pooled),
            staging,
            stat_cache: Mutex::new(stat_cache),
            stat_cache_path,
            objects: state.join(crate::objstore::stage::OBJECTS_DIR),
        })
    }

    /// The tree manifest stored as blob `hash` (an attempt's recorded `artifacts`), if it
    /// is there and reads as one.
    pub fn manifest(&self, hash: &str) -> Option<TreeManifest> {
        let bytes = self.blobs.get(&hash.parse::<Hash>().ok()?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keep the stat cache for the next run (forgetting files that are gone).
    pub fn save(&self) {
        let mut cache = self.stat_cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.prune_missing();
        if let Err(e) = cache.save(&self.stat_cache_path) {
            tracing::warn!(error = %e, "could not save the stat cache");
        }
    }
}
