//! Object-storage mounts, host side: staging the objects under a prefix into the blob store
//! by content (and into a local directory a guest gets as a preopen), and uploading what a
//! task wrote into a read-write mount back to the prefix.
//!
//! An object index under the state directory ([`OBJECTS_DIR`]: one small file per object
//! version, named by blake3 of its URL, path, size and etag — else size and mtime — holding
//! the blake3 of its content) lets a restage of an unchanged object skip its download; an
//! object whose blob was collected is downloaded again. The staged tree's Merkle root is
//! what a cache key records, so an unchanged prefix gives the same key and any changed
//! object another one.
//!
//! It takes an opened [`Store`]: it never sees which credentials opened it, and never hands
//! anything of the store to a guest. It never deletes an object: an upload only adds and
//! replaces (files a task deleted from a rw mount stay in the bucket).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ObjstoreError, Store};
use crate::cache::{self, BlobStore, Hash, TreeEntry, TreeManifest};

/// The object index's directory under the state directory.
pub const OBJECTS_DIR: &str = "objects";

/// Most objects one mount stages: a mount is a task's input, not a whole lake; a prefix
/// holding more is an error saying to narrow it, never a silent cut.
pub const MAX_STAGED_OBJECTS: usize = 100_000;

/// Tries of one transfer (a listing, a get, a put) when it fails transiently (a server
/// error, a lost connection). The store client already retries each request twice within
/// its timeout; a few more tries, paused, ride out a brief outage of the store without
/// holding a run for minutes on one that is down.
pub const TRANSFER_TRIES: u32 = 3;

/// The pause before the first retry of a transfer, doubled before each further one.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Why a mount could not be staged or uploaded.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Store(#[from] ObjstoreError),
    #[error("{0}")]
    Local(String),
}

impl StageError {
    /// Whether trying the transfer again later may succeed (a store's transient failure that
    /// outlasted [`TRANSFER_TRIES`]); local trouble is not.
    pub fn is_transient(&self) -> bool {
        matches!(self, StageError::Store(e) if e.is_transient())
    }
}

fn local(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StageError {
    let what = format!("{what} {}", path.display());
    move |e| StageError::Local(format!("{what}: {e}"))
}

/// A prefix's objects, by content.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub manifest: TreeManifest,
    /// Objects downloaded now, and objects the index and blob store already held.
    pub downloaded: u64,
    pub reused: u64,
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    pub files: u64,
    pub bytes: u64,
}

/// Run `op` up to [`TRANSFER_TRIES`] times while it fails transiently.
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T, ObjstoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ObjstoreError>>,
{
    let mut pause = RETRY_PAUSE;
    for _ in 1..TRANSFER_TRIES {
        match op().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "object storage: transient failure, trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    op().await
}

/// Every object under `store`'s prefix in `blobs` (downloading only those the index in
/// `index` does not know by version), and their tree.
pub async fn fetch(store: &Store, blobs: &BlobStore, index: &Path) -> Result<Fetched, StageError> {
    let listed = retrying(|| store.list(MAX_STAGED_OBJECTS + 1)).await?;
    if listed.len() > MAX_STAGED_OBJECTS {
        return Err(StageError::Local(format!(
            "{} holds more than {MAX_STAGED_OBJECTS} objects; mount a narrower prefix",
            store.location().url
        )));
    }
    std::fs::create_dir_all(index).map_err(local("creating", index))?;
    let (mut entries, mut downloaded, mut reused) = (Vec::with_capacity(listed.len()), 0, 0);
    for object in &listed {
        let id = Hash::of(
            format!("{}\n{}\n{}\n{}", store.location().url, object.path, object.size, object.version()).as_bytes(),
        );
        let record = index.join(id.to_hex());
        let known = std::fs::read_to_string(&record).ok().and_then(|h| h.trim().parse::<Hash>().ok());
        let hash = match known.filter(|h| blobs.contains(h)) {
            Some(hash) => {
                reused += 1;
                hash
            }
            None => {
                let bytes = retrying(|| store.get(&object.path)).await?;
                let hash = blobs.put_bytes(&bytes).map_err(|e| StageError::Local(e.to_string()))?;
                write_atomically(&record, hash.to_hex().as_bytes())?;
                downloaded += 1;
                hash
            }
        };
        let size = std::fs::metadata(blobs.path(&hash)).map_err(local("reading", &blobs.path(&hash)))?.len();
        entries.push(TreeEntry { path: object.path.clone(), hash, size });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let dirs: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| e.path.match_indices('/').map(|(i, _)| e.path[..i].to_string()).collect::<Vec<_>>())
        .collect();
    // a "directory marker" object (`day/`, or `day` beside `day/x`) is the directory itself
    entries.retain(|e| !e.path.ends_with('/') && !dirs.contains(&e.path));
    let dirs: Vec<String> = dirs.into_iter().collect();
    let root = cache::tree_root(entries.iter().map(|e| (e.path.as_str(), &e.hash)), dirs.iter().map(String::as_str));
    Ok(Fetched { manifest: TreeManifest { root, entries, dirs }, downloaded, reused })
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), StageError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(local("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(local("renaming", &tmp))
}

/// The tree read-only under `staging/obj-<root>`, made once per tree (hard links to the
/// blobs where the filesystem allows): what a read-only mount offers.
pub fn offer_read_only(blobs: &BlobStore, staging: &Path, manifest: &TreeManifest) -> Result<PathBuf, StageError> {
    let dir = staging.join(format!("obj-{}", manifest.root));
    if dir.exists() {
        return Ok(dir);
    }
    let tmp = staging.join(format!(".in-obj-{}-{}-{}", manifest.root, std::process::id(), sequence()));
    let _ = std::fs::remove_dir_all(&tmp);
    cache::materialize(blobs, manifest, &tmp).map_err(|e| StageError::Local(e.to_string()))?;
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.exists() {
            return Err(local("renaming", &tmp)(e));
        }
    }
    Ok(dir)
}

/// A private, writable copy of the tree under `staging/rw-…` (copies, never links: the
/// task may change the files): what a read-write mount offers. The caller removes it.
pub fn offer_writable(blobs: &BlobStore, staging: &Path, manifest: &TreeManifest) -> Result<PathBuf, StageError> {
    let dir = staging.join(format!("rw-{}-{}", std::process::id(), sequence()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(local("creating", &dir))?;
    for sub in &manifest.dirs {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(local("creating", &path))?;
    }
    for entry in &manifest.entries {
        if entry.path.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(StageError::Local(format!("object `{}` has an unsafe path", entry.path)));
        }
        let target = dir.join(&entry.path);
        std::fs::copy(blobs.path(&entry.hash), &target).map_err(local("copying to", &target))?;
        let mut permissions = std::fs::metadata(&target).map_err(local("reading", &target))?.permissions();
        #[allow(clippy::permissions_set_readonly_false)] // the task's own copy
        permissions.set_readonly(false);
        std::fs::set_permissions(&target, permissions).map_err(local("making writable", &target))?;
    }
    Ok(dir)
}

fn sequence() -> u64 {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Upload every file under `dir` that is new or changed since `staged` to `store`'s prefix,
/// at the same relative path. Deleted files are left in the bucket; a symbolic link is an
/// error (an object store holds only files).
pub async fn upload(store: &Store, dir: &Path, staged: &TreeManifest) -> Result<Uploaded, StageError> {
    let tree = cache::snapshot(dir).map_err(|e| StageError::Local(e.to_string()))?;
    if let Some(link) = tree.links.first() {
        return Err(StageError::Local(format!(
            "`{}` is a symbolic link; only files are uploaded to {}",
            link.path,
            store.location().url
        )));
    }
    let before: HashMap<&str, &Hash> = staged.entries.iter().map(|e| (e.path.as_str(), &e.hash)).collect();
    let mut sent = Uploaded::default();
    for file in tree.files.iter().filter(|f| before.get(f.path.as_str()) != Some(&&f.hash)) {
        let path = dir.join(&file.path);
        let data = bytes::Bytes::from(std::fs::read(&path).map_err(local("reading", &path))?);
        retrying(|| store.put(&file.path, data.clone())).await?;
        sent.files += 1;
        sent.bytes += file.size;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_error(transient: bool) -> StageError {
        StageError::Store(ObjstoreError::Store { url: "s3://b/p/".into(), message: "503".into(), transient })
    }

    #[test]
    fn only_a_stores_transient_failure_is_worth_a_retry() {
        assert!(store_error(true).is_transient());
        assert!(!store_error(false).is_transient(), "a refusal (denied, not found) is final");
        assert!(!StageError::Local("disk full".into()).is_transient());
        let url = ObjstoreError::Url("ftp://x".into());
        assert!(!StageError::Store(url).is_transient());
    }
}
