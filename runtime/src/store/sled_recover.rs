//! Recovering a sled store that does not open, without ever writing to its files.
//!
//! sled's snapshot is a cache of its log: without one, sled rebuilds the page table from
//! the previous snapshot, or from the log alone (`sled_open_tests` checks it keeps every
//! record across heavy segment reuse). But sled's recovery also *writes*: it zeroes what
//! it takes for the torn tail of the log. Run on a wrong premise, that would destroy what
//! it did not find. So a recovery works on a copy, `<store>.recovering-…`: the newest
//! snapshot is dropped from the copy, one per attempt, until sled opens it; the result must
//! pass the caller's validation (every run id ever handed out is there, by the
//! [`RunMark`] kept outside sled); only then are the two directories swapped (atomically on
//! Linux) and the damaged store kept as `<store>.damaged-<millis>-<pid>`. A copy that
//! fails is removed and the store is left as it was.
//!
//! It never deletes the damaged store and never swaps in a copy that did not validate.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::StoreError;
use super::sled_open::{Attempt, LOCK_FILE, Validate, attempt, snapshot_files};

/// The file beside sled's that holds the last run id handed out (8 bytes, little-endian),
/// written after the id is durable in sled: a recovery that lost it lost part of the log.
pub const RUN_MARK_FILE: &str = "sluice-last-run-id";

/// The last run id handed out, as a file outside sled.
#[derive(Debug)]
pub(crate) struct RunMark {
    file: File,
}

impl RunMark {
    pub(crate) fn open(dir: &Path) -> Result<RunMark, StoreError> {
        let path = dir.join(RUN_MARK_FILE);
        let file =
            File::options().create(true).truncate(false).read(true).write(true).open(&path).map_err(|e| {
                StoreError::Open { path: dir.to_path_buf(), message: format!("{}: {e}", path.display()) }
            })?;
        Ok(RunMark { file })
    }

    /// Records `id` in place (one 8-byte write: no state in which the file is empty).
    /// Not fsynced: the page cache survives a killed process, and after a power loss a
    /// stale mark only makes the validation weaker, never wrong.
    pub(crate) fn record(&self, id: u64) -> Result<(), StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.write_all_at(&id.to_le_bytes(), 0).map_err(|e| StoreError::Io(format!("run mark: {e}")))
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek, Write};
            let mut file = &self.file;
            file.seek(std::io::SeekFrom::Start(0))
                .and_then(|_| file.write_all(&id.to_le_bytes()))
                .map_err(|e| StoreError::Io(format!("run mark: {e}")))
        }
    }

    /// The mark of the store in `dir`, if it has a whole one.
    pub(crate) fn read(dir: &Path) -> Option<u64> {
        let bytes = fs::read(dir.join(RUN_MARK_FILE)).ok()?;
        Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
    }
}

/// Recovers the store in `dir` (held under its lock by the caller) in a copy and swaps it
/// in; returns where the damaged store is kept. `first_error` is what sled said.
pub(crate) fn recover(dir: &Path, first_error: &str, validate: Validate<'_>) -> Result<PathBuf, StoreError> {
    // a fresh name: what a killed recovery left (a partial copy, or after the swap the
    // damaged store) is never removed by the next
    let copy = unique_sibling(dir, "recovering");
    let damaged = |why: String| StoreError::Damaged {
        path: dir.to_path_buf(),
        message: format!("sled: {first_error}; a recovery from its log failed too: {why}"),
    };
    let result = rebuild_copy(dir, &copy, validate).map_err(damaged);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&copy);
        return Err(e);
    }
    let kept = unique_sibling(dir, "damaged");
    swap_in(dir, &copy, &kept)?;
    Ok(kept)
}

/// Copies `dir` to `copy` and rebuilds the copy until sled opens it and it validates.
fn rebuild_copy(dir: &Path, copy: &Path, validate: Validate<'_>) -> Result<(), String> {
    copy_dir(dir, copy).map_err(|e| format!("copying the store to {}: {e}", copy.display()))?;
    let mut snapshots = snapshot_files(copy).map_err(|e| e.to_string())?;
    let mut last = String::new();
    // drop the newest snapshot, then the next…, and finally rebuild from the log alone
    while let Some(newest) = snapshots.pop() {
        fs::remove_file(&newest).map_err(|e| format!("{}: {e}", newest.display()))?;
        match attempt(copy) {
            Attempt::Opened(db) => {
                let valid = validate(&db, copy);
                let flushed = db.flush().map(drop).map_err(|e| e.to_string());
                drop(db);
                match valid.and(flushed) {
                    Ok(()) => return Ok(()),
                    Err(why) => last = why,
                }
            }
            Attempt::Corrupt(why) => last = why,
            Attempt::Failed(e) => return Err(e.to_string()),
        }
    }
    Err(if last.is_empty() { "it has no snapshot to rebuild without".into() } else { last })
}

/// Copies a store directory (files and sled's `blobs/`), leaving out sluice's lock file.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (name, kind) = (entry.file_name(), entry.file_type()?);
        if name == LOCK_FILE {
            continue;
        }
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(&name))?;
        }
    }
    File::open(to)?.sync_all()
}

/// Puts directory `new` in `live`'s place and the old `live` at `kept`: one atomic
/// exchange on Linux, two renames elsewhere. Makes the renames durable.
pub(crate) fn swap_in(live: &Path, new: &Path, kept: &Path) -> Result<(), StoreError> {
    let io = |path: &Path, e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        renameat_with(CWD, new, CWD, live, RenameFlags::EXCHANGE).map_err(|e| io(live, e.into()))?;
        fs::rename(new, kept).map_err(|e| io(new, e))?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        fs::rename(live, kept).map_err(|e| io(live, e))?;
        fs::rename(new, live).map_err(|e| io(new, e))?;
    }
    match live.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => super::format::sync_dir(parent).map_err(|e| io(parent, e)),
        None => Ok(()),
    }
}

/// `<dir>.<kind>-<millis>-<pid>`, beside `dir`: a name no earlier run of this code used.
pub(crate) fn unique_sibling(dir: &Path, kind: &str) -> PathBuf {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = dir.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.{kind}-{millis}-{}", std::process::id()))
}
