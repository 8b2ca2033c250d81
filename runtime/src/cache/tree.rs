//! Directory trees as content: snapshots, their Merkle root, storing a tree in the blob store
//! (a [`TreeManifest`]) and materialising a manifest back into a directory.
//!
//! Owns the walk of a host directory and the canonical root hash of a tree. A tree is its
//! directories, regular files and symbolic links, each named by its path relative to the
//! tree's top with `/` separators; a file contributes the blake3 of its content, a link the
//! text of its target. The root is blake3 over the sorted nodes (see [`merkle_root`]), so
//! it depends on relative paths and contents only:
//! a directory renamed or copied elsewhere keeps its root, and the host path never enters a
//! cache key. Empty directories count (a task can list them). Deliberately *not* part of
//! the root: permissions and the executable bit (WASI shows a guest neither), timestamps,
//! owners. A task whose result depends on those is outside the cache's contract.
//!
//! It must never follow a symbolic link: a link could lead out of the mounted directory. A
//! link is hashed as what it says (its target path, read with `readlink`), never as what it
//! points to: a link to a file inside the tree is covered by that file's own node, and one
//! that leads outside cannot be followed by a task either (the sandbox's preopens refuse
//! it), so its text is all the task can observe. A stored tree (a task's `/out`) has no
//! links: [`store_tree`] refuses one, naming it. Files are opened with `O_NOFOLLOW` on Unix
//! and checked to be regular files after opening. Non-UTF-8 names and link targets are
//! refused (WASI paths are strings).
//! It never writes into a snapshotted directory, and materialised files are read-only.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::blobs::{BlobError, BlobStore};
use super::hash::Hash;
pub use super::merkle::{merkle_root, tree_root};
use super::statcache::{FileStat, StatCache};

/// Most threads hashing files of one tree: beyond this the disk, not blake3 (~1 GB/s per
/// core), is the bottleneck.
const MAX_HASH_THREADS: usize = 8;

/// Below this many files to read, hashing stays on the calling thread (spawning costs more).
const PARALLEL_FROM_FILES: usize = 4;

/// Read buffer of the hashing workers.
const HASH_BUFFER_BYTES: usize = 256 << 10;

/// Why a tree could not be snapshotted, stored or materialised.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{} is a symbolic link; stored trees (a task's /out) hold only files and directories (write the file itself)", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a regular file or directory (a socket, fifo or device); trees hold only files and directories", path.display())]
    Special { path: PathBuf },
    #[error("{} has a name that is not UTF-8; tasks see paths as strings", path.display())]
    NonUtf8 { path: PathBuf },
    #[error("{} is a symbolic link whose target is not UTF-8; tasks see paths as strings", path.display())]
    NonUtf8Link { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("manifest path {path:?} is not a safe relative path (empty, absolute, or with `.`/`..` parts)")]
    UnsafePath { path: String },
    #[error("manifest is inconsistent: its entries hash to {actual}, not to its root {expected}")]
    RootMismatch { expected: Hash, actual: Hash },
    #[error("blob {hash} for {path:?} has {actual} bytes, the manifest says {expected}")]
    SizeMismatch { hash: Hash, path: String, expected: u64, actual: u64 },
    #[error("{} exists already; materialise into an empty directory", path.display())]
    Exists { path: PathBuf },
}

pub(crate) fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TreeError + 'a {
    move |source| TreeError::Io { action, path: path.to_path_buf(), source }
}

/// One regular file of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Relative, `/`-separated, never empty, no `.` or `..` parts.
    pub path: String,
    /// blake3 of the content.
    pub hash: Hash,
    pub size: u64,
}

/// One symbolic link of a tree, as it reads (never followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeLink {
    /// Relative, `/`-separated, like [`TreeEntry::path`].
    pub path: String,
    /// The link's target path, as written in the link.
    pub target: String,
}

/// What a snapshot did; the scheduler reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    /// Symbolic links (hashed by their target path).
    #[serde(default)]
    pub links: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// Files read and hashed.
    pub reread: u64,
    /// Files whose hash came from the stat cache.
    pub cached: u64,
    /// Bytes read to hash the re-read files.
    pub bytes_read: u64,
}

/// A directory's content at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub root: Hash,
    /// Sorted by path.
    pub files: Vec<TreeEntry>,
    /// Every directory below the top, sorted.
    pub dirs: Vec<String>,
    /// Symbolic links, sorted by path.
    pub links: Vec<TreeLink>,
    pub stats: SnapshotStats,
}

/// A tree stored in the blob store: every file's content is the blob of its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeManifest {
    pub root: Hash,
    /// Sorted by path.
    pub entries: Vec<TreeEntry>,
    /// Directories below the top (so empty ones come back), sorted.
    #[serde(default)]
    pub dirs: Vec<String>,
}

impl Tree {
    /// The manifest of this tree (its blobs are stored by [`store_tree`], not by this).
    pub fn manifest(&self) -> TreeManifest {
        TreeManifest { root: self.root, entries: self.files.clone(), dirs: self.dirs.clone() }
    }
}

impl TreeManifest {
    /// The blobs this manifest needs.
    pub fn blobs(&self) -> impl Iterator<Item = Hash> + '_ {
        self.entries.iter().map(|entry| entry.hash)
    }

    /// Bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|entry| entry.size).sum()
    }
}

/// Hashes every file under `dir` (no cache).
pub fn snapshot(dir: &Path) -> Result<Tree, TreeError> {
    snapshot_inner(dir, None, true)
}

/// Hashes the files under `dir`, taking the hash of a file whose size, mtime, ctime, inode
/// and device are as `cache` recorded them from the cache (`rehash` reads every file
/// anyway), and updating `cache` with what was read. Entries for files under `dir` that no
/// longer exist are dropped from the cache.
pub fn snapshot_cached(dir: &Path, cache: &mut StatCache, rehash: bool) -> Result<Tree, TreeError> {
    snapshot_inner(dir, Some(cache), rehash)
}

fn snapshot_inner(dir: &Path, mut cache: Option<&mut StatCache>, rehash: bool) -> Result<Tree, TreeError> {
    let started = SystemTime::now();
    let walked = walk(dir)?;
    let top = std::path::absolute(dir).map_err(io_error("resolving", dir))?;
    let keys: Vec<Option<String>> =
        walked.files.iter().map(|(rel, _, _)| top.join(rel).to_str().map(str::to_string)).collect();

    let mut hashes: Vec<Option<(Hash, u64)>> = vec![None; walked.files.len()];
    let mut to_read = Vec::new();
    let mut stats =
        SnapshotStats { dirs: walked.dirs.len() as u64, links: walked.links.len() as u64, ..SnapshotStats::default() };
    for (i, (_, _, stat)) in walked.files.iter().enumerate() {
        let hit = match (cache.as_deref_mut(), &keys[i]) {
            (Some(cache), Some(key)) if !rehash => cache.lookup(key, stat),
            _ => None,
        };
        match hit {
            Some(hash) => {
                hashes[i] = Some((hash, stat.size));
                stats.cached += 1;
            }
            None => to_read.push(i),
        }
    }

    let read =
        parallel_map(&to_read, || vec![0u8; HASH_BUFFER_BYTES], |buffer, &i| hash_file(&walked.files[i].1, buffer));
    for (&i, result) in to_read.iter().zip(read) {
        let (hash, size, stat) = result?;
        hashes[i] = Some((hash, size));
        stats.reread += 1;
        stats.bytes_read += size;
        if let (Some(cache), Some(key)) = (cache.as_deref_mut(), &keys[i]) {
            cache.record(key, &stat, hash, started);
        }
    }

    let mut files = Vec::with_capacity(walked.files.len());
    for ((rel, _, _), hashed) in walked.files.into_iter().zip(hashes) {
        let (hash, size) = hashed.ok_or_else(|| TreeError::Io {
            action: "hashing",
            path: top.join(&rel),
            source: io::Error::other("file was neither cached nor read"),
        })?;
        stats.bytes += size;
        files.push(TreeEntry { path: rel, hash, size });
    }
    stats.files = files.len() as u64;
    if let (Some(cache), Some(top)) = (cache, top.to_str()) {
        let seen: std::collections::HashSet<&str> = keys.iter().flatten().map(String::as_str).collect();
        cache.forget_missing_under(top, &seen);
    }
    let links: Vec<TreeLink> = walked.links.into_iter().map(|(path, _, target)| TreeLink { path, target }).collect();
    let root = merkle_root(
        files.iter().map(|f| (f.path.as_str(), &f.hash)),
        walked.dirs.iter().map(String::as_str),
        links.iter().map(|l| (l.path.as_str(), l.target.as_str())),
    );
    Ok(Tree { root, files, dirs: walked.dirs, links, stats })
}

/// Stores every file under `dir` as a blob; returns the tree's manifest.
pub fn store_tree(blobs: &BlobStore, dir: &Path) -> Result<TreeManifest, TreeError> {
    let walked = walk(dir)?;
    if let Some((_, path, _)) = walked.links.into_iter().next() {
        return Err(TreeError::Symlink { path });
    }
    let indices: Vec<usize> = (0..walked.files.len()).collect();
    let stored = parallel_map(
        &indices,
        || (),
        |_, &i| -> Result<(Hash, u64), TreeError> {
            let path = &walked.files[i].1;
            let (file, _) = open_regular(path)?;
            blobs.put_reader(file).map_err(|e| match e {
                BlobError::Io { action: "reading", source, .. } => io_error("reading", path)(source),
                other => TreeError::Blob(other),
            })
        },
    );
    let mut entries = Vec::with_capacity(walked.files.len());
    for ((rel, _, _), result) in walked.files.into_iter().zip(stored) {
        let (hash, size) = result?;
        entries.push(TreeEntry { path: rel, hash, size });
    }
    let root = tree_root(entries.iter().map(|e| (e.path.as_str(), &e.hash)), walked.dirs.iter().map(String::as_str));
    Ok(TreeManifest { root, entries, dirs: walked.dirs })
}

/// What [`materialize`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaterializeReport {
    pub files: u64,
    /// Files hard-linked from the blob store (same filesystem).
    pub linked: u64,
    /// Files copied (another filesystem, or links refused).
    pub copied: u64,
    pub bytes: u64,
}

/// Recreates the manifest's tree under `dest` (created if missing; no file may exist at
/// any entry's path). Files are read-only: hard links to their blobs when the filesystem
/// allows, copies otherwise. The manifest is checked first: its paths must be safe relative
/// paths, its entries must hash to its root, and each blob must exist with the right size
/// (a blob's content is verified by [`BlobStore::verify`], not here). Directories stay
/// writable so that the caller can remove the tree.
///
/// Only offer the result read-only (it shares inodes with the blob store).
pub fn materialize(blobs: &BlobStore, manifest: &TreeManifest, dest: &Path) -> Result<MaterializeReport, TreeError> {
    for path in manifest.entries.iter().map(|e| &e.path).chain(&manifest.dirs) {
        check_relative(path)?;
    }
    let actual = tree_root(
        manifest.entries.iter().map(|e| (e.path.as_str(), &e.hash)),
        manifest.dirs.iter().map(String::as_str),
    );
    if actual != manifest.root {
        return Err(TreeError::RootMismatch { expected: manifest.root, actual });
    }
    for entry in &manifest.entries {
        let size = fs::metadata(blobs.path(&entry.hash))
            .map_err(|_| BlobError::Missing { hash: entry.hash, dir: blobs.dir().to_path_buf() })?
            .len();
        if size != entry.size {
            return Err(TreeError::SizeMismatch {
                hash: entry.hash,
                path: entry.path.clone(),
                expected: entry.size,
                actual: size,
            });
        }
    }
    fs::create_dir_all(dest).map_err(io_error("creating", dest))?;
    for dir in &manifest.dirs {
        let path = dest.join(dir);
        fs::create_dir_all(&path).map_err(io_error("creating", &path))?;
    }
    let mut report = MaterializeReport::default();
    for entry in &manifest.entries {
        let target = dest.join(&entry.path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
        }
        let blob = blobs.path(&entry.hash);
        match fs::hard_link(&blob, &target) {
            Ok(()) => report.linked += 1,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(TreeError::Exists { path: target }),
            Err(_) => {
                // EXDEV (another filesystem), EMLINK (too many links), EPERM (links refused)…
                copy_read_only(&blob, &target)?;
                report.copied += 1;
            }
        }
        report.files += 1;
        report.bytes += entry.size;
    }
    Ok(report)
}

fn copy_read_only(blob: &Path, target: &Path) -> Result<(), TreeError> {
    let mut from = File::open(blob).map_err(io_error("opening", blob))?;
    let mut to = File::options().write(true).create_new(true).open(target).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => TreeError::Exists { path: target.to_path_buf() },
        _ => io_error("creating", target)(e),
    })?;
    io::copy(&mut from, &mut to).map_err(io_error("copying to", target))?;
    let mut permissions = to.metadata().map_err(io_error("inspecting", target))?.permissions();
    permissions.set_readonly(true);
    to.set_permissions(permissions).map_err(io_error("making read-only", target))
}

/// A manifest path is safe when it is relative, `/`-separated, and every part is a plain name.
fn check_relative(path: &str) -> Result<(), TreeError> {
    let bad_part = |part: &str| {
        part.is_empty()
            || part == "."
            || part == ".."
            || part.contains('\0')
            || (cfg!(windows) && part.contains(['\\', ':']))
    };
    if path.split('/').any(bad_part) {
        return Err(TreeError::UnsafePath { path: path.to_string() });
    }
    Ok(())
}

/// The regular files (relative path, absolute path, lstat), directories and symbolic links
/// (relative path, absolute path, target) under `root`.
struct Walked {
    files: Vec<(String, PathBuf, FileStat)>,
    dirs: Vec<String>,
    links: Vec<(String, PathBuf, String)>,
}

fn walk(root: &Path) -> Result<Walked, TreeError> {
    let meta = fs::symlink_metadata(root).map_err(io_error("reading", root))?;
    if meta.file_type().is_symlink() {
        return Err(TreeError::Symlink { path: root.to_path_buf() });
    }
    if !meta.is_dir() {
        return Err(TreeError::NotADirectory { path: root.to_path_buf() });
    }
    let mut walked = Walked { files: Vec::new(), dirs: Vec::new(), links: Vec::new() };
    let mut stack = vec![(String::new(), root.to_path_buf())];
    while let Some((rel, abs)) = stack.pop() {
        for entry in fs::read_dir(&abs).map_err(io_error("listing", &abs))? {
            let entry = entry.map_err(io_error("listing", &abs))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(TreeError::NonUtf8 { path });
            };
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = entry.file_type().map_err(io_error("inspecting", &path))?; // never follows
            if kind.is_symlink() {
                let target = fs::read_link(&path).map_err(io_error("reading the link", &path))?;
                let Some(target) = target.to_str().map(str::to_string) else {
                    return Err(TreeError::NonUtf8Link { path });
                };
                walked.links.push((child, path, target));
            } else if kind.is_dir() {
                walked.dirs.push(child.clone());
                stack.push((child, path));
            } else if kind.is_file() {
                let meta = entry.metadata().map_err(io_error("inspecting", &path))?; // lstat
                walked.files.push((child, path, FileStat::of(&meta)));
            } else {
                return Err(TreeError::Special { path });
            }
        }
    }
    walked.files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    walked.dirs.sort_unstable();
    walked.links.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(walked)
}

/// Opens `path` without following a symlink in its last part and checks it is a regular
/// file; returns the file and its stat as of opening.
fn open_regular(path: &Path) -> Result<(File, FileStat), TreeError> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let file = options.open(path).map_err(|e| match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => TreeError::Symlink { path: path.to_path_buf() },
        _ => io_error("opening", path)(e),
    })?;
    let meta = file.metadata().map_err(io_error("inspecting", path))?;
    if !meta.is_file() {
        return Err(TreeError::Special { path: path.to_path_buf() });
    }
    Ok((file, FileStat::of(&meta)))
}

/// blake3 of the file, the bytes read, and its stat from before reading.
fn hash_file(path: &Path, buffer: &mut [u8]) -> Result<(Hash, u64, FileStat), TreeError> {
    let (mut file, stat) = open_regular(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error("reading", path)(e)),
        }
    }
    Ok((Hash::from(hasher.finalize()), size, stat))
}

/// `work` over `items` on up to [`MAX_HASH_THREADS`] threads, each with its own scratch
/// state from `scratch`; results in the order of `items`, as errors for items whose worker
/// died (only a panic in `work` could do that).
fn parallel_map<T: Sync, S, R: Send>(
    items: &[T],
    scratch: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> Result<R, TreeError> + Sync,
) -> Vec<Result<R, TreeError>> {
    if items.len() < PARALLEL_FROM_FILES {
        let mut state = scratch();
        return items.iter().map(|item| work(&mut state, item)).collect();
    }
    // asking the OS (cgroup files) costs more than hashing a small tree: once per process
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads =
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_HASH_THREADS));
    if threads <= 1 {
        let mut state = scratch();
        return items.iter().map(|item| work(&mut state, item)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<R, TreeError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut state = scratch();
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break out };
                        out.push((i, work(&mut state, item)));
                    }
                })
            })
            .collect();
        // A worker only panics if `work` does; ours return errors instead.
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut done = done.into_iter().peekable();
    (0..items.len())
        .map(|i| match done.next_if(|(j, _)| *j == i) {
            Some((_, result)) => result,
            None => Err(TreeError::Io {
                action: "hashing",
                path: PathBuf::from(format!("<item {i}>")),
                source: io::Error::other("a hashing thread failed"),
            }),
        })
        .collect()
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
