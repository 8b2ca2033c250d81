//! Backup directories: the store's backup file ([`sled_backup`](super::sled_backup)) and a
//! copy of the blob store beside it, which is what `sluice store backup|restore` handle.
//!
//! Layout: `<dest>/store.sluice-backup` and `<dest>/blobs/` (the blob store's own layout).
//! A backup directory appears whole or not at all: it is written as a hidden sibling and
//! renamed into place. The store file is written first, at one moment; the blobs are
//! copied after it, so every blob its records name is in the copy (blobs are immutable,
//! and a record is committed only after the blobs it names). The master key is never
//! copied: keep it separately.
//!
//! A restore checks the whole store file first, copies the blobs in (adding, never
//! removing), and only then swaps the store in. It never deletes the store it replaces.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::sled_backup::{self, BackupReport, RestoreReport};
use super::{SledStore, StoreError};
use crate::cache::BlobStore;
use crate::cache::integrity::{CopyReport, copy_blobs};

/// The store's file inside a backup directory.
pub const STORE_FILE: &str = "store.sluice-backup";

/// The blob store's copy inside a backup directory.
pub const BLOBS_DIR: &str = "blobs";

/// What [`backup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DirBackupReport {
    pub dir: PathBuf,
    pub store: BackupReport,
    pub blobs: CopyReport,
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirRestoreReport {
    pub store: RestoreReport,
    pub blobs: CopyReport,
}

/// Writes a backup of `store` and of `blobs` into the new directory `dest` (which must not
/// exist, or be empty).
pub fn backup(store: &SledStore, blobs: Option<&BlobStore>, dest: &Path) -> Result<DirBackupReport, StoreError> {
    if fs::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some()) || dest.is_file() {
        return Err(StoreError::Backup(format!(
            "{} exists and is not empty; a backup never overwrites",
            dest.display()
        )));
    }
    let name = dest.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    let partial = dest.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let result = write_into(store, blobs, &partial).and_then(|(store, blobs)| {
        if dest.is_dir() {
            fs::remove_dir(dest).map_err(|e| io_at(dest, e))?;
        }
        fs::rename(&partial, dest).map_err(|e| io_at(dest, e))?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            super::format::sync_dir(parent).map_err(|e| io_at(parent, e))?;
        }
        Ok(DirBackupReport {
            dir: dest.to_path_buf(),
            store: BackupReport { file: dest.join(STORE_FILE), ..store },
            blobs,
        })
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result
}

fn write_into(
    store: &SledStore,
    blobs: Option<&BlobStore>,
    dir: &Path,
) -> Result<(BackupReport, CopyReport), StoreError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| io_at(dir, e))?;
    }
    fs::create_dir_all(dir).map_err(|e| io_at(dir, e))?;
    let report = store.backup(&dir.join(STORE_FILE))?;
    let copied = match blobs {
        Some(blobs) => {
            let to = BlobStore::open(dir.join(BLOBS_DIR)).map_err(blob_error)?;
            copy_blobs(blobs, &to).map_err(blob_error)?
        }
        None => CopyReport::default(),
    };
    Ok((report, copied))
}

/// Replaces the store in `store_dir` with the backup in directory `src`, after adding the
/// backup's blobs to `blobs`. Refused while any process has the store open, and for a
/// damaged backup (the store is then left as it was).
pub fn restore(src: &Path, store_dir: &Path, blobs: Option<&BlobStore>) -> Result<DirRestoreReport, StoreError> {
    let file = src.join(STORE_FILE);
    if !file.is_file() {
        return Err(StoreError::Backup(format!(
            "{} is not a sluice backup directory (it has no {STORE_FILE}); make one with `sluice store backup DIR`",
            src.display()
        )));
    }
    let mut copied = CopyReport::default();
    let store = sled_backup::restore_with(&file, store_dir, || {
        let backed_up = src.join(BLOBS_DIR);
        if let (Some(blobs), true) = (blobs, backed_up.is_dir()) {
            let from = BlobStore::open(&backed_up).map_err(blob_error)?;
            copied = copy_blobs(&from, blobs).map_err(blob_error)?;
        }
        Ok(())
    })?;
    Ok(DirRestoreReport { store, blobs: copied })
}

fn blob_error(e: crate::cache::BlobError) -> StoreError {
    StoreError::Io(format!("copying blobs: {e}"))
}

fn io_at(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}
