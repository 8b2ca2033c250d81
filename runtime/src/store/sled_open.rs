//! Opening the sled database, with sluice's own line of defence around sled 0.34's crash
//! recovery.
//!
//! While it opens a database whose log grew since its last snapshot, sled 0.34 writes a new
//! snapshot of its page table to `snap.<lsn>.generating`, fsyncs it and renames it to
//! `snap.<lsn>`. Its next open reads the file whose name sorts last among *all* `snap.*`
//! files, `.generating` ones included, and refuses an empty or partial one for good ("Read
//! corrupted data"; spacejam/sled#1527, #1533, #1509). So a process killed at the wrong
//! instant of any open — a read-only `sluice runs list` too — left a store no later command
//! could open. A snapshot is only a cache of the log (sled rebuilds one from the previous
//! snapshot, or from nothing, and the log), and a `.generating` file is by construction one
//! whose writer died before publishing it. Hence, in this order:
//!
//! 1. [`LOCK_FILE`] is locked (`flock`, not waiting) before anything is looked at, so no other
//!    sluice process is opening or using the store while this one repairs it; it stays
//!    locked for as long as the store is open;
//! 2. the format marker is checked or stamped ([`super::format`]);
//! 3. every `snap.*.generating` file is removed;
//! 4. sled opens, with sluice's explicit configuration;
//! 5. should sled still report corruption (or panic) while opening, the store is recovered
//!    in a copy ([`super::sled_recover`]) and replaces the damaged one only if it passes a
//!    validation; the damaged one is kept; otherwise the error is [`StoreError::Damaged`],
//!    which says what to do, and nothing was changed.
//!
//! It never deletes anything but unpublished `.generating` snapshots, never writes to a
//! damaged store's files, and never retries an open that failed for another reason (a
//! lock, permissions).

use std::fs::{self, File};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The engine named in the store's format marker.
pub(crate) const ENGINE: &str = "sled 0.34";

/// sluice's lock on a store directory, held while the store is open (inside the store
/// directory, beside sled's own lock on its `db` file).
pub const LOCK_FILE: &str = "sluice.lock";

/// How long an open waits for sled's lock once sluice's is held: sled's background I/O
/// threads release a dropped database's file within milliseconds; seconds mean another
/// program holds it.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the open tries again meanwhile.
const SLED_LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// The prefix of sled 0.34's snapshot files, and the suffix of an unpublished one.
const SNAPSHOT_PREFIX: &str = "snap.";
const UNPUBLISHED_SUFFIX: &str = ".generating";
/// sled skips files with this suffix when it looks for snapshots.
const IGNORED_BY_SLED_SUFFIX: &str = ".in___motion";

/// An exclusive lock on a store directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Locks `dir`, or [`StoreError::Locked`] if another process (or another open in
    /// this one) holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<StoreLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let file =
            File::options().create(true).truncate(false).write(true).open(&path).map_err(|e| StoreError::Open {
                path: dir.to_path_buf(),
                message: format!("{}: {e}", path.display()),
            })?;
        #[cfg(unix)]
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                StoreError::Locked { path: dir.to_path_buf() }
            } else {
                StoreError::Open { path: dir.to_path_buf(), message: format!("locking {}: {e}", path.display()) }
            }
        })?;
        Ok(StoreLock { _file: file })
    }
}

/// What opening did beyond opening.
#[derive(Debug, Default)]
pub(crate) struct Repairs {
    /// Unpublished snapshots that were removed.
    pub removed: Vec<String>,
    /// Where the damaged store was kept after a recovery replaced it (`None`: none was needed).
    pub quarantined: Option<PathBuf>,
}

/// Checks a database rebuilt by a recovery before it replaces the damaged one: `Err(why)`
/// when it lacks something the damaged store is known to have held.
pub(crate) type Validate<'a> = &'a dyn Fn(&sled::Db, &Path) -> Result<(), String>;

/// Opens the sled database in `dir` (created if missing) under [`StoreLock`], repairing
/// what a killed open leaves behind (see the module docs); a recovery's result must pass
/// `validate`.
pub(crate) fn open(dir: &Path, validate: Validate<'_>) -> Result<(sled::Db, StoreLock, Repairs), StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::Open { path: dir.to_path_buf(), message: e.to_string() })?;
    let mut lock = StoreLock::acquire(dir)?;
    super::format::check_or_stamp(dir, ENGINE)?;
    let mut repairs = Repairs { removed: remove_unpublished_snapshots(dir)?, quarantined: None };
    let db = match attempt_waiting_for_sled(dir) {
        Attempt::Opened(db) => db,
        Attempt::Failed(e) => return Err(e),
        Attempt::Corrupt(first) => {
            let damaged = super::sled_recover::recover(dir, &first, validate)?;
            repairs.quarantined = Some(damaged);
            // the recovered store now sits in `dir`, with a lock file of its own
            lock = StoreLock::acquire(dir)?;
            match attempt_waiting_for_sled(dir) {
                Attempt::Opened(db) => db,
                Attempt::Failed(e) => return Err(e),
                Attempt::Corrupt(e) => return Err(StoreError::Damaged { path: dir.to_path_buf(), message: e }),
            }
        }
    };
    if !repairs.removed.is_empty() || repairs.quarantined.is_some() {
        tracing::warn!(
            store = %dir.display(),
            removed = ?repairs.removed,
            damaged_copy_kept_in = ?repairs.quarantined,
            "the store was left damaged by a killed process and has been repaired"
        );
    }
    Ok((db, lock, repairs))
}

/// The outcome of one `sled::Config::open`.
pub(crate) enum Attempt {
    Opened(sled::Db),
    /// sled found (or choked on) damaged files: worth a recovery.
    Corrupt(String),
    /// Anything else (the lock, permissions, a configuration sled refuses).
    Failed(StoreError),
}

/// [`attempt`], waiting up to [`SLED_LOCK_WAIT`] while sled's own lock is still held.
/// With sluice's lock taken, that can only be this process's previous `Db` winding down
/// (sled's I/O threads close its file after the last handle is dropped), or a program
/// that is not sluice.
fn attempt_waiting_for_sled(dir: &Path) -> Attempt {
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match attempt(dir) {
            Attempt::Failed(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(SLED_LOCK_POLL);
            }
            other => return other,
        }
    }
}

pub(crate) fn attempt(dir: &Path) -> Attempt {
    let config = sled::Config::new()
        .path(dir)
        // HighThroughput rather than LowSpace: our writes are appends of small records
        // that are never overwritten (event logs) or rarely (summaries, values), so there
        // is little garbage for LowSpace's more frequent rewriting to reclaim, and write
        // latency is what group commit is about.
        .mode(sled::Mode::HighThroughput)
        // No background flusher: a write is durable only where the caller flushes (see
        // the design's durability contract).
        .flush_every_ms(None);
    // sled 0.34 has `unwrap`s on its recovery path; a panic there is damage, not a crash of ours.
    match std::panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Attempt::Opened(db),
        Ok(Err(e)) if is_damage(&e) => Attempt::Corrupt(e.to_string()),
        Ok(Err(e)) => Attempt::Failed(open_error(dir, &e)),
        Err(panic) => Attempt::Corrupt(format!("sled panicked while opening: {}", panic_text(&panic))),
    }
}

fn is_damage(e: &sled::Error) -> bool {
    match e {
        sled::Error::Corruption { .. } => true,
        sled::Error::Io(io) => {
            matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData)
        }
        _ => false,
    }
}

/// A sled error from opening as a store error.
pub(crate) fn open_error(dir: &Path, e: &sled::Error) -> StoreError {
    match e {
        // sled wraps the flock failure in an io error of its own text
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked { path: dir.to_path_buf() }
        }
        _ => StoreError::Open { path: dir.to_path_buf(), message: e.to_string() },
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Every `snap.*` file sled would consider, sorted as sled sorts them (the last is the one it reads).
pub(crate) fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let listing =
        fs::read_dir(dir).map_err(|e| StoreError::Open { path: dir.to_path_buf(), message: e.to_string() })?;
    let mut found: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(SNAPSHOT_PREFIX) && !name.ends_with(IGNORED_BY_SLED_SUFFIX)
        })
        .map(|entry| entry.path())
        .collect();
    found.sort();
    Ok(found)
}

/// Removes `snap.*.generating` files: snapshots whose writer died before publishing them.
/// Returns their names.
fn remove_unpublished_snapshots(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut removed = Vec::new();
    for path in snapshot_files(dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(UNPUBLISHED_SUFFIX) {
            continue;
        }
        fs::remove_file(&path).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            message: format!("removing the unpublished snapshot {}: {e}", path.display()),
        })?;
        removed.push(name);
    }
    if !removed.is_empty() {
        super::format::sync_dir(dir)
            .map_err(|e| StoreError::Open { path: dir.to_path_buf(), message: e.to_string() })?;
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "sled_open_tests.rs"]
mod tests;
