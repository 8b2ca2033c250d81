//! Backups of the sled store: one file holding every record of every tree at one moment,
//! and the restore that turns such a file back into a store.
//!
//! A backup is consistent while the store is in use: [`SledStore::backup`] holds the
//! store's write gate exclusively while it copies, so no write of the run store or of the
//! secrets (each of which may span several trees) is half in it. Writers wait for the
//! copy (a store of a million records takes about a second on these disks).
//!
//! File layout (integers little-endian): `SLUICEBK`; a u32-length-prefixed JSON header
//! ([`BackupHeader`]: backup and store format, who wrote it, when); records, each `1u8`,
//! then tree name, key and value, each u32-length-prefixed; the end, `0u8`, the record
//! count (u64) and the blake3 of every byte before it. The file is written to a temporary
//! name, fsynced and renamed, so a backup either exists whole or not at all.
//!
//! A restore reads the whole file into a new store beside the old one, checks the count
//! and the hash, and only then swaps the two directories (atomically on Linux); the old
//! store is kept as `<store>.replaced-<millis>-<pid>`, never deleted. It refuses a backup of
//! another store format and a damaged file, leaving the store as it was.
//!
//! Secrets stay sealed in a backup: it never holds the master key, which must be kept
//! (and restored) separately.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::format::{self, STORE_FORMAT};
use super::sled_open::{self, StoreLock};
use super::sled_recover;
use super::{SledStore, StoreError};

/// The first bytes of every backup file.
const MAGIC: &[u8; 8] = b"SLUICEBK";

/// The layout of the backup file itself (not of the records in it: that is the store format).
pub const BACKUP_FORMAT: u32 = 1;

/// The largest header, tree name or record a restore reads: far above anything sluice
/// writes (logs, outputs and checkpoints are capped at a few MiB), so a length beyond it
/// means a damaged file, not a big record.
const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Copy buffer of backup and restore.
const BUFFER_BYTES: usize = 1 << 20;

const RECORD_TAG: u8 = 1;
const END_TAG: u8 = 0;

/// What a backup file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub backup_format: u32,
    pub store_format: u32,
    pub written_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// What [`SledStore::backup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub trees: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    pub records: u64,
    pub trees: u64,
    pub written_by: String,
    pub created_at: u64,
    /// Where the store that was replaced now is (`None`: there was none).
    pub replaced: Option<PathBuf>,
}

impl SledStore {
    /// Writes every record of every tree (runs and secrets) to `file`, as of one moment.
    /// `file` must not exist.
    pub fn backup(&self, file: &Path) -> Result<BackupReport, StoreError> {
        if file.exists() {
            return Err(StoreError::Backup(format!("{} exists already; a backup never overwrites", file.display())));
        }
        let temp = temp_beside(file);
        let result = self.write_backup(&temp, file);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn write_backup(&self, temp: &Path, file: &Path) -> Result<BackupReport, StoreError> {
        let io = |e: io::Error| StoreError::Backup(format!("writing the backup {}: {e}", temp.display()));
        let mut out = HashingWriter::new(BufWriter::with_capacity(BUFFER_BYTES, File::create(temp).map_err(io)?));
        let header = BackupHeader {
            backup_format: BACKUP_FORMAT,
            store_format: STORE_FORMAT,
            written_by: format::this_sluice(),
            created_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        };
        out.write_all(MAGIC).map_err(io)?;
        write_part(&mut out, &serde_json::to_vec(&header).map_err(|e| StoreError::Io(e.to_string()))?).map_err(io)?;
        let (mut trees, mut records) = (0u64, 0u64);
        {
            let gate = self.gate();
            let _exclusive = gate.write().unwrap_or_else(PoisonError::into_inner);
            for name in self.db().tree_names() {
                let tree = self.db().open_tree(&name).map_err(storage)?;
                trees += 1;
                for entry in tree.iter() {
                    let (key, value) = entry.map_err(storage)?;
                    out.write_all(&[RECORD_TAG]).map_err(io)?;
                    for part in [&name[..], &key[..], &value[..]] {
                        write_part(&mut out, part).map_err(io)?;
                    }
                    records += 1;
                }
            }
        }
        out.write_all(&[END_TAG]).map_err(io)?;
        out.write_all(&records.to_le_bytes()).map_err(io)?;
        let hash = out.hasher.finalize();
        let mut inner = out.inner;
        inner.write_all(hash.as_bytes()).map_err(io)?;
        let file_handle = inner.into_inner().map_err(|e| io(e.into_error()))?;
        file_handle.sync_all().map_err(io)?;
        let bytes = file_handle.metadata().map_err(io)?.len();
        fs::rename(temp, file).map_err(io)?;
        if let Some(parent) = file.parent() {
            format::sync_dir(parent).map_err(io)?;
        }
        Ok(BackupReport { file: file.to_path_buf(), trees, records, bytes })
    }
}

/// Replaces the store in `store_dir` (created if missing) with the content of the backup
/// `file`. Refused while any process has the store open.
pub fn restore(file: &Path, store_dir: &Path) -> Result<RestoreReport, StoreError> {
    restore_with(file, store_dir, || Ok(()))
}

/// [`restore`], calling `before_swap` once the backup has been read and checked, just
/// before the store is swapped in (still holding the store's lock); its error aborts the
/// restore with the store as it was.
pub fn restore_with(
    file: &Path,
    store_dir: &Path,
    before_swap: impl FnOnce() -> Result<(), StoreError>,
) -> Result<RestoreReport, StoreError> {
    fs::create_dir_all(store_dir)
        .map_err(|e| StoreError::Open { path: store_dir.to_path_buf(), message: e.to_string() })?;
    let lock = StoreLock::acquire(store_dir)?;
    // a fresh name: what a killed restore left (a half-made store, or after the swap the
    // replaced one) is never removed by the next
    let staging = sled_recover::unique_sibling(store_dir, "restoring");
    let read = read_into(file, &staging).and_then(|done| before_swap().map(|()| done));
    let (header, trees, records) = match read {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let replaced = swap_in(store_dir, &staging)?;
    drop(lock);
    Ok(RestoreReport { records, trees, written_by: header.written_by, created_at: header.created_at, replaced })
}

/// Reads the backup `file` into a new store at `staging`; checks count and hash.
fn read_into(file: &Path, staging: &Path) -> Result<(BackupHeader, u64, u64), StoreError> {
    let damaged =
        |why: String| StoreError::Backup(format!("the backup {} is damaged or not a backup: {why}", file.display()));
    let source =
        File::open(file).map_err(|e| StoreError::Backup(format!("opening the backup {}: {e}", file.display())))?;
    let mut input = HashingReader::new(BufReader::with_capacity(BUFFER_BYTES, source));
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|e| damaged(e.to_string()))?;
    if &magic != MAGIC {
        return Err(damaged("it does not start with a sluice backup's signature".into()));
    }
    let header: BackupHeader = serde_json::from_slice(&read_part(&mut input).map_err(|e| damaged(e.to_string()))?)
        .map_err(|e| damaged(format!("header: {e}")))?;
    if header.backup_format != BACKUP_FORMAT || header.store_format != STORE_FORMAT {
        return Err(StoreError::Format {
            path: file.to_path_buf(),
            message: format!(
                "the backup {} was written by {} (backup format {}, store format {}); this sluice ({}) restores \
                 only backup format {BACKUP_FORMAT} of store format {STORE_FORMAT}: restore it with {0} or newer",
                file.display(),
                header.written_by,
                header.backup_format,
                header.store_format,
                format::this_sluice(),
            ),
        });
    }
    let (db, _lock, _) = sled_open::open(staging, &|_, _| Ok(()))?;
    let (mut trees, mut records) = (std::collections::BTreeSet::new(), 0u64);
    loop {
        let mut tag = [0u8; 1];
        input.read_exact(&mut tag).map_err(|e| damaged(e.to_string()))?;
        match tag[0] {
            RECORD_TAG => {}
            END_TAG => break,
            other => return Err(damaged(format!("unexpected tag {other} after {records} records"))),
        }
        let name = read_part(&mut input).map_err(|e| damaged(e.to_string()))?;
        let key = read_part(&mut input).map_err(|e| damaged(e.to_string()))?;
        let value = read_part(&mut input).map_err(|e| damaged(e.to_string()))?;
        db.open_tree(&name).and_then(|tree| tree.insert(key, value)).map_err(storage)?;
        trees.insert(name);
        records += 1;
    }
    let mut count = [0u8; 8];
    input.read_exact(&mut count).map_err(|e| damaged(e.to_string()))?;
    let expected_hash = input.hasher.finalize();
    let mut stored_hash = [0u8; 32];
    input.inner.read_exact(&mut stored_hash).map_err(|e| damaged(e.to_string()))?;
    if u64::from_le_bytes(count) != records || stored_hash != *expected_hash.as_bytes() {
        return Err(damaged("its checksum does not match its content".into()));
    }
    db.flush().map_err(storage)?;
    Ok((header, trees.len() as u64, records))
}

/// Puts the store in `staging` in `store_dir`'s place; the old one becomes
/// `<store>.replaced-…` (removed instead if it held no data).
fn swap_in(store_dir: &Path, staging: &Path) -> Result<Option<PathBuf>, StoreError> {
    let replaced = sled_recover::unique_sibling(store_dir, "replaced");
    sled_recover::swap_in(store_dir, staging, &replaced)?;
    if holds_no_data(&replaced) {
        let _ = fs::remove_dir_all(&replaced);
        return Ok(None);
    }
    Ok(Some(replaced))
}

/// Whether a store directory holds nothing but sluice's own lock and format files.
fn holds_no_data(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).all(|e| {
            let name = e.file_name();
            name == sled_open::LOCK_FILE || name == format::FORMAT_FILE || name == sled_recover::RUN_MARK_FILE
        })
    })
}

fn temp_beside(file: &Path) -> PathBuf {
    let name = file.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn storage(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn write_part(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a record longer than 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

fn read_part(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    if len > MAX_RECORD_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a record of {len} bytes")));
    }
    let mut bytes = Vec::new();
    input.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ends inside a record"));
    }
    Ok(bytes)
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: blake3::Hasher::new() }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader { inner, hasher: blake3::Hasher::new() }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
#[path = "sled_backup_tests.rs"]
mod tests;
