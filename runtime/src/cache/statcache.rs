//! [`StatCache`]: remembers the hash of files that have not changed since they were read,
//! so a second snapshot of a large read-only mount does not read it again.
//!
//! Owns the cache's records — absolute path → (size, mtime, ctime, inode, device, blake3) —
//! and its file (`<state>/statcache.json`, replaced atomically). A file is taken from the
//! cache only when all five stat fields are exactly as recorded; anything else (or
//! `--rehash`) reads it again. It must never return a hash for a file whose stat differs
//! from the record, and never record a file that may still change within the timestamp
//! granularity ("racy" files, see [`SETTLE`]).
//!
//! Choices:
//! - ctime is checked besides the size, mtime and inode: a program can restore a file's
//!   mtime after changing it (`touch -r`, some copy tools), but cannot set its ctime.
//! - A file renamed or moved with its directory keeps inode, device and ctime; a path miss
//!   is looked up by (device, inode) and accepted when every stat field matches, so renaming
//!   a mounted directory does not rehash it.
//! - The file is a cache: unreadable or from another format version, it is ignored (every
//!   file is re-read) rather than reported; a lost update only costs a re-read. Saving needs
//!   no fsync for the same reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, Metadata};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::hash::Hash;
use super::tree::{TreeError, io_error};

/// The stat cache's file name under the state directory.
pub const STAT_CACHE_FILE: &str = "statcache.json";

/// A file changed less than this before a snapshot started is hashed but not recorded: a
/// second change within the same timestamp tick (2 s on FAT, a few ms on ext4) would leave
/// its stat as recorded. Such files are re-read next time; old files are what matter.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Version of the file's layout; another version is ignored.
const FORMAT: u32 = 1;

/// What identifies one state of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Nanoseconds since the Unix epoch (0 where the platform has no ctime).
    pub ctime_ns: i64,
    /// 0 where the platform has no inode numbers.
    pub ino: u64,
    pub dev: u64,
}

impl FileStat {
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
        FileStat {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    #[cfg(not(unix))]
    pub fn of(meta: &Metadata) -> FileStat {
        let mtime_ns = meta.modified().ok().map_or(0, |t| nanos_since_epoch(t));
        FileStat { size: meta.len(), mtime_ns, ctime_ns: 0, ino: 0, dev: 0 }
    }
}

fn nanos_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    stat: FileStat,
    hash: Hash,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    /// Sorted, so the file is stable and diffable.
    files: BTreeMap<String, Record>,
}

/// Hashes of files by absolute path, valid while their stat is unchanged.
#[derive(Debug, Clone)]
pub struct StatCache {
    records: HashMap<String, Record>,
    /// (device, inode) → a path recorded with it; may be stale, every use re-checks.
    by_inode: HashMap<(u64, u64), String>,
    settle: Duration,
}

impl Default for StatCache {
    fn default() -> Self {
        StatCache { records: HashMap::new(), by_inode: HashMap::new(), settle: SETTLE }
    }
}

impl StatCache {
    /// An empty cache.
    pub fn new() -> StatCache {
        StatCache::default()
    }

    /// The cache saved at `path`; empty when there is none, or when it cannot be decoded.
    pub fn load(path: &Path) -> Result<StatCache, TreeError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(StatCache::new()),
            Err(e) => return Err(io_error("reading", path)(e)),
        };
        let mut cache = StatCache::new();
        if let Ok(OnDisk { format: FORMAT, files }) = serde_json::from_slice::<OnDisk>(&bytes) {
            for (path, record) in files {
                cache.insert(path, record);
            }
        }
        Ok(cache)
    }

    /// Writes the cache to `path` atomically (temp file in the same directory, then rename).
    pub fn save(&self, path: &Path) -> Result<(), TreeError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let files: BTreeMap<&String, &Record> = self.records.iter().collect();
        let json = serde_json::to_vec(&serde_json::json!({ "format": FORMAT, "files": files }))
            .map_err(|e| io_error("encoding", path)(e.into()))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".statcache-")
            .tempfile_in(dir)
            .map_err(io_error("creating a temp file in", dir))?;
        temp.write_all(&json).map_err(io_error("writing", temp.path()))?;
        temp.persist(path).map_err(|e| io_error("replacing", path)(e.error))?;
        Ok(())
    }

    /// How many files are recorded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Changes how old a file's last change must be for it to be recorded ([`SETTLE`] by
    /// default). Tests use zero.
    pub fn set_settle(&mut self, settle: Duration) {
        self.settle = settle;
    }

    /// The recorded hash of the file at `key` if its stat is exactly as recorded, or of the
    /// same file (device, inode, times, size) recorded under another path — then it is
    /// recorded under `key` too, so a renamed directory stays cached once its old path goes.
    pub(crate) fn lookup(&mut self, key: &str, stat: &FileStat) -> Option<Hash> {
        if let Some(record) = self.records.get(key)
            && record.stat == *stat
        {
            return Some(record.hash);
        }
        if stat.ino == 0 {
            return None;
        }
        let other = self.by_inode.get(&(stat.dev, stat.ino))?;
        let record = *self.records.get(other).filter(|record| record.stat == *stat)?;
        self.insert(key.to_string(), record);
        Some(record.hash)
    }

    /// Records `hash` for the file at `key`, read with stat `stat` during a snapshot that
    /// started at `started`, unless it changed too recently to be trusted.
    pub(crate) fn record(&mut self, key: &str, stat: &FileStat, hash: Hash, started: SystemTime) {
        let last_change = stat.mtime_ns.max(stat.ctime_ns);
        let settled_before =
            nanos_since_epoch(started).saturating_sub(i64::try_from(self.settle.as_nanos()).unwrap_or(i64::MAX));
        if last_change < settled_before {
            self.insert(key.to_string(), Record { stat: *stat, hash });
        } else {
            self.records.remove(key);
        }
    }

    fn insert(&mut self, key: String, record: Record) {
        if record.stat.ino != 0 {
            self.by_inode.insert((record.stat.dev, record.stat.ino), key.clone());
        }
        self.records.insert(key, record);
    }

    /// Drops records of files under the directory `top` that are not in `seen`.
    pub(crate) fn forget_missing_under(&mut self, top: &str, seen: &HashSet<&str>) {
        let prefix = if top.ends_with('/') { top.to_string() } else { format!("{top}/") };
        self.records.retain(|key, _| !key.starts_with(&prefix) || seen.contains(key.as_str()));
    }

    /// Drops records of files that no longer exist (say, a mount that was renamed); returns
    /// how many went. Costs one `stat` per record.
    pub fn prune_missing(&mut self) -> usize {
        let before = self.records.len();
        self.records.retain(|key, _| fs::symlink_metadata(key).is_ok());
        self.by_inode.retain(|_, key| self.records.contains_key(key));
        before - self.records.len()
    }
}
