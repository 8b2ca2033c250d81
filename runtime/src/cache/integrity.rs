//! Copying a blob store into another, blob by blob, each rehashed on the way: what
//! `store backup` and `store restore` do with the files beside the store.
//!
//! Owns nothing but the copy; it never decides which blobs are live and never removes one.

use super::blobs::{BlobError, BlobStore};

/// What [`copy_blobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyReport {
    pub blobs: u64,
    pub bytes: u64,
}

/// Copies every blob of `from` into `to` (present ones are kept: deduplication), checking
/// that each hashes to its name, then makes them durable with one [`BlobStore::sync`].
/// A blob whose content does not match its name is an error, and is not copied.
pub fn copy_blobs(from: &BlobStore, to: &BlobStore) -> Result<CopyReport, BlobError> {
    let mut report = CopyReport::default();
    for hash in from.hashes()? {
        let (copied, size) = to.put_file_sized(&from.path(&hash))?;
        if copied != hash {
            return Err(BlobError::Corrupt { hash, actual: copied });
        }
        report.blobs += 1;
        report.bytes += size;
    }
    to.sync()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_verify_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let from = BlobStore::open(dir.path().join("a")).unwrap();
        let to = BlobStore::open(dir.path().join("b")).unwrap();
        let one = from.put_bytes(b"one").unwrap();
        let two = from.put_bytes(b"two, longer").unwrap();
        to.put_bytes(b"one").unwrap();
        let report = copy_blobs(&from, &to).unwrap();
        assert_eq!(report, CopyReport { blobs: 2, bytes: 14 });
        assert_eq!(to.get(&one).unwrap(), b"one");
        assert_eq!(to.get(&two).unwrap(), b"two, longer");

        // a blob damaged in the source is refused, not spread
        let path = from.path(&two);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, b"TWO, longer").unwrap();
        let fresh = BlobStore::open(dir.path().join("c")).unwrap();
        assert!(matches!(copy_blobs(&from, &fresh), Err(BlobError::Corrupt { .. })));
    }
}
