//! [`BlobStore`]: content-addressed files under `<state>/blobs`, named by their blake3.
//!
//! Owns the on-disk layout (`<dir>/ab/cdef…`: the first two hex characters of the hash
//! are a shard directory, the other 62 the file name; temp files are `<dir>/.tmp-*`),
//! atomic publication, deduplication and garbage collection of blobs. It must never
//! decide which blobs are live (the caller hands [`BlobStore::gc`] the referenced set),
//! never modify a published blob in place, and never follow a blob name that is not a hash.
//!
//! # Writing
//!
//! A blob is written to a uniquely named temp file in `<dir>` (same filesystem as the
//! shards), made read-only, then renamed to its name with no-clobber semantics. When the
//! name exists already the temp file is dropped (deduplication). Concurrent writers of the
//! same content — threads or processes — are harmless: each writes its own temp file, one
//! rename wins, the others find the name taken; the content is identical by construction.
//! Readers never see a partial blob because a blob appears only by rename.
//!
//! # Why there is no fsync per blob
//!
//! A blob's name is the hash of its content, so a blob is self-verifying: [`BlobStore::get`]
//! and [`BlobStore::verify`] rehash what they read, and a blob torn by a power loss (the
//! rename reached the disk, the data did not) is reported as corrupt — a cache *miss* that
//! re-executes the task — never as a wrong result. `put` also replaces a blob whose size is
//! wrong. So per-blob fsyncs would buy nothing for correctness, and would cost one disk
//! flush per file of every `/out` tree. The one durability point that matters is when a
//! cache entry that references blobs is committed to the store: call [`BlobStore::sync`]
//! just before that, which flushes every blob written since the last call with one
//! `syncfs(2)` on Linux (one fsync per pending blob elsewhere) — group commit for blobs.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::hash::Hash;

/// Temp files older than this are leftovers of a crashed writer and [`BlobStore::gc`]
/// removes them. A live writer touches its temp file with every buffer it writes, so even
/// a multi-gigabyte put never looks this old.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Prefix of temp files; blob names are hex and can never start with it.
const TEMP_PREFIX: &str = ".tmp-";

/// Copy buffer: large enough for blake3's SIMD paths and few syscalls, small enough to
/// stream any file without holding it in memory.
const BUFFER_BYTES: usize = 256 << 10;

/// How often a put retries when its shard directory vanished under it (a concurrent gc
/// removed it while empty).
const SHARD_RETRIES: usize = 3;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("blob {hash} is not in the blob store at {}", dir.display())]
    Missing { hash: Hash, dir: PathBuf },
    #[error(
        "blob {hash} is corrupt (its content hashes to {actual}); it will be rewritten by the next run that produces it"
    )]
    Corrupt { hash: Hash, actual: Hash },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BlobError + 'a {
    move |source| BlobError::Io { action, path: path.to_path_buf(), source }
}

/// What [`BlobStore::gc`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Unreferenced blobs removed.
    pub removed: u64,
    /// Referenced blobs kept.
    pub kept: u64,
    /// Bytes of removed blobs and temp files.
    pub bytes_freed: u64,
    /// Leftover temp files (older than [`TEMP_MAX_AGE`]) removed.
    pub temps_removed: u64,
}

/// Content-addressed files in one directory. Cheap to share between threads (`&self` API).
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    /// Blobs written since the last [`BlobStore::sync`].
    pending: Mutex<Vec<PathBuf>>,
}

impl BlobStore {
    /// Opens (creating it if needed) the blob store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        Ok(BlobStore { dir, pending: Mutex::new(Vec::new()) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob `hash` lives (whether or not it is there).
    pub fn path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_string();
        self.dir.join(&hex[..2]).join(&hex[2..])
    }

    /// Whether the blob is present (its content is not checked; see [`BlobStore::verify`]).
    pub fn contains(&self, hash: &Hash) -> bool {
        self.path(hash).is_file()
    }

    /// Stores `bytes`; returns their hash. Writes nothing when the blob exists already.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Hash, BlobError> {
        let hash = Hash::of(bytes);
        if self.size_matches(&hash, bytes.len() as u64) {
            return Ok(hash);
        }
        Ok(self.put_reader(bytes)?.0)
    }

    /// Stores the file at `path`, streaming (never read whole into memory); returns its hash.
    pub fn put_file(&self, path: &Path) -> Result<Hash, BlobError> {
        Ok(self.put_file_sized(path)?.0)
    }

    /// [`BlobStore::put_file`], also returning the number of bytes stored.
    pub fn put_file_sized(&self, path: &Path) -> Result<(Hash, u64), BlobError> {
        let file = File::open(path).map_err(io_error("opening", path))?;
        self.put_from(file, path)
    }

    /// Stores everything `reader` yields, hashing while writing (one pass); returns the
    /// hash and the size.
    pub fn put_reader(&self, reader: impl Read) -> Result<(Hash, u64), BlobError> {
        self.put_from(reader, Path::new("<reader>"))
    }

    /// `put_reader`; read errors name `source`.
    fn put_from(&self, mut reader: impl Read, source: &Path) -> Result<(Hash, u64), BlobError> {
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(io_error("creating a temp file in", &self.dir))?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; BUFFER_BYTES];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("reading", source)(e)),
            };
            hasher.update(&buffer[..n]);
            temp.write_all(&buffer[..n]).map_err(io_error("writing", temp.path()))?;
            size += n as u64;
        }
        let hash = Hash::from(hasher.finalize());
        set_read_only(temp.as_file()).map_err(io_error("making read-only", temp.path()))?;
        self.publish(temp, &hash, size)?;
        Ok((hash, size))
    }

    /// Renames `temp` to the blob's name unless a blob of the right size is there already.
    fn publish(&self, mut temp: tempfile::NamedTempFile, hash: &Hash, size: u64) -> Result<(), BlobError> {
        crate::util::failpoint::hit(crate::util::failpoint::Point::Blob);
        let target = self.path(hash);
        let shard = target.parent().unwrap_or(&self.dir).to_path_buf();
        for _ in 0..SHARD_RETRIES {
            fs::create_dir_all(&shard).map_err(io_error("creating", &shard))?;
            temp = match temp.persist_noclobber(&target) {
                Ok(_) => {
                    self.pending.lock().unwrap_or_else(PoisonError::into_inner).push(target);
                    return Ok(());
                }
                Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                    if self.size_matches(hash, size) {
                        return Ok(()); // dedupe: dropping e.file removes the temp file
                    }
                    // A torn blob (power loss before its data reached the disk): replace it.
                    e.file.persist(&target).map_err(|e| BlobError::Io {
                        action: "replacing",
                        path: target.clone(),
                        source: e.error,
                    })?;
                    self.pending.lock().unwrap_or_else(PoisonError::into_inner).push(target);
                    return Ok(());
                }
                Err(e) if e.error.kind() == ErrorKind::NotFound => e.file, // shard removed by gc
                Err(e) => {
                    return Err(BlobError::Io { action: "renaming a temp file to", path: target, source: e.error });
                }
            };
        }
        Err(BlobError::Io {
            action: "renaming a temp file to",
            path: target,
            source: io::Error::new(ErrorKind::NotFound, "the shard directory keeps disappearing"),
        })
    }

    fn size_matches(&self, hash: &Hash, size: u64) -> bool {
        fs::metadata(self.path(hash)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// The blob's bytes, checked against its hash.
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>, BlobError> {
        let path = self.path(hash);
        let bytes = fs::read(&path).map_err(|e| self.open_error(hash, &path, e))?;
        let actual = Hash::of(&bytes);
        if actual != *hash {
            return Err(BlobError::Corrupt { hash: *hash, actual });
        }
        Ok(bytes)
    }

    /// Rehashes the blob (streaming): `Ok` if present and intact.
    pub fn verify(&self, hash: &Hash) -> Result<(), BlobError> {
        let path = self.path(hash);
        let file = File::open(&path).map_err(|e| self.open_error(hash, &path, e))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(file).map_err(io_error("reading", &path))?;
        let actual = Hash::from(hasher.finalize());
        if actual != *hash {
            return Err(BlobError::Corrupt { hash: *hash, actual });
        }
        Ok(())
    }

    fn open_error(&self, hash: &Hash, path: &Path, e: io::Error) -> BlobError {
        if e.kind() == ErrorKind::NotFound {
            BlobError::Missing { hash: *hash, dir: self.dir.clone() }
        } else {
            BlobError::Io { action: "reading", path: path.to_path_buf(), source: e }
        }
    }

    /// Makes every blob written through this handle since the last call durable: one
    /// `syncfs(2)` on Linux, an fsync per pending blob (and its shard) elsewhere. Call it
    /// before committing a record that references new blobs.
    pub fn sync(&self) -> Result<(), BlobError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            let dir = File::open(&self.dir).map_err(io_error("opening", &self.dir))?;
            rustix::fs::syncfs(&dir).map_err(|e| BlobError::Io {
                action: "syncing the filesystem of",
                path: self.dir.clone(),
                source: e.into(),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            for path in &pending {
                File::open(path).and_then(|f| f.sync_all()).map_err(io_error("syncing", path))?;
                if let Some(shard) = path.parent() {
                    // Directories cannot be opened for syncing on every platform; best effort.
                    let _ = File::open(shard).and_then(|f| f.sync_all());
                }
            }
            Ok(())
        }
    }

    /// Every blob in the store, in no particular order.
    pub fn hashes(&self) -> Result<Vec<Hash>, BlobError> {
        let mut hashes = Vec::new();
        self.walk(|item| {
            if let Item::Blob { hash, .. } = item {
                hashes.push(hash);
            }
            Ok(())
        })?;
        Ok(hashes)
    }

    /// Bytes used by blobs and temp files.
    pub fn total_size(&self) -> Result<u64, BlobError> {
        let mut total = 0;
        self.walk(|item| {
            let (Item::Blob { size, .. } | Item::Temp { size, .. }) = item;
            total += size;
            Ok(())
        })?;
        Ok(total)
    }

    /// Removes every blob not in `referenced`, and temp files older than [`TEMP_MAX_AGE`].
    /// Files that are neither blobs nor temp files are left alone.
    ///
    /// Run it while nothing writes to the store (the CLI holds the state directory's lock):
    /// a blob written after the caller computed `referenced` would be removed.
    pub fn gc(&self, referenced: &HashSet<Hash>) -> Result<GcReport, BlobError> {
        let mut report = GcReport::default();
        let now = SystemTime::now();
        self.walk(|item| {
            match item {
                Item::Blob { hash, .. } if referenced.contains(&hash) => report.kept += 1,
                Item::Blob { path, size, .. } => {
                    if remove(&path)? {
                        report.removed += 1;
                        report.bytes_freed += size;
                    }
                }
                Item::Temp { path, size, modified } => {
                    let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
                    if age > TEMP_MAX_AGE && remove(&path)? {
                        report.temps_removed += 1;
                        report.bytes_freed += size;
                    }
                }
            }
            Ok(())
        })?;
        // Empty shards go too; a concurrent put recreates its shard (see `publish`).
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if shard_name(&entry.file_name()).is_some() {
                    let _ = fs::remove_dir(entry.path()); // fails unless empty: fine
                }
            }
        }
        Ok(report)
    }

    /// Calls `visit` for every blob and temp file.
    fn walk(&self, mut visit: impl FnMut(Item) -> Result<(), BlobError>) -> Result<(), BlobError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &self.dir))?;
            let name = entry.file_name();
            if let Some(shard) = shard_name(&name) {
                let shard_path = entry.path();
                let files = match fs::read_dir(&shard_path) {
                    Ok(files) => files,
                    Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => continue,
                    Err(e) => return Err(io_error("listing", &shard_path)(e)),
                };
                for file in files {
                    let file = file.map_err(io_error("listing", &shard_path))?;
                    let file_name = file.file_name();
                    let hash = file_name.to_str().and_then(|rest| format!("{shard}{rest}").parse().ok());
                    if let Some(item) = classify(&file, hash)? {
                        visit(item)?;
                    }
                }
            } else if let Some(item) = classify(&entry, None)? {
                visit(item)?;
            }
        }
        Ok(())
    }
}

/// A file of the store.
enum Item {
    Blob { hash: Hash, path: PathBuf, size: u64 },
    Temp { path: PathBuf, size: u64, modified: SystemTime },
}

/// A blob (when `hash` is given and it is a regular file), a temp file, or neither.
fn classify(entry: &fs::DirEntry, hash: Option<Hash>) -> Result<Option<Item>, BlobError> {
    let path = entry.path();
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None), // removed meanwhile
        Err(e) => return Err(io_error("inspecting", &path)(e)),
    };
    if !meta.is_file() {
        return Ok(None);
    }
    if let Some(hash) = hash {
        return Ok(Some(Item::Blob { hash, path, size: meta.len() }));
    }
    let is_temp = entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
    Ok(is_temp.then(|| Item::Temp {
        size: meta.len(),
        modified: meta.modified().unwrap_or_else(|_| SystemTime::now()),
        path,
    }))
}

/// `Some(name)` when `name` is a shard directory's name (two lowercase hex characters).
fn shard_name(name: &std::ffi::OsStr) -> Option<&str> {
    let name = name.to_str()?;
    let ok = name.len() == 2 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(name)
}

/// Removes a file; `Ok(false)` if it was gone already.
fn remove(path: &Path) -> Result<bool, BlobError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("removing", path)(e)),
    }
}

/// Blobs are read-only so that hard links to them (see `tree::materialize`) are too.
fn set_read_only(file: &File) -> io::Result<()> {
    let mut permissions = file.metadata()?.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        permissions.set_mode(0o444);
    }
    #[cfg(not(unix))]
    permissions.set_readonly(true);
    file.set_permissions(permissions)
}

#[cfg(test)]
#[path = "blobs_tests.rs"]
mod tests;
