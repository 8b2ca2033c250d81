//! Tests of the blob store, on real temp directories.

use std::collections::HashSet;
use std::fs::{self, File};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
    (dir, blobs)
}

fn temp_files(blobs: &BlobStore) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(blobs.dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            found.push(entry.path());
        }
        if entry.path().is_dir() {
            for inner in fs::read_dir(entry.path()).unwrap().flatten() {
                if inner.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    found.push(inner.path());
                }
            }
        }
    }
    found
}

#[test]
fn put_get_round_trip_with_sharded_names() {
    let (_dir, blobs) = store();
    let hash = blobs.put_bytes(b"hello blobs").unwrap();
    assert_eq!(hash, Hash::of(b"hello blobs"));
    let hex = hash.to_string();
    assert_eq!(blobs.path(&hash), blobs.dir().join(&hex[..2]).join(&hex[2..]));
    assert!(blobs.contains(&hash));
    assert_eq!(blobs.get(&hash).unwrap(), b"hello blobs");
    assert!(blobs.path(&hash).metadata().unwrap().permissions().readonly());
    assert!(temp_files(&blobs).is_empty());
    // the empty blob is a blob like any other
    let empty = blobs.put_bytes(b"").unwrap();
    assert_eq!(blobs.get(&empty).unwrap(), b"");
}

#[test]
fn identical_content_is_stored_once() {
    let (_dir, blobs) = store();
    let first = blobs.put_bytes(b"same").unwrap();
    let inode_before = blob_identity(&blobs.path(&first));
    let second = blobs.put_bytes(b"same").unwrap();
    let (third, _) = blobs.put_reader(&b"same"[..]).unwrap();
    assert_eq!((first, first), (second, third));
    assert_eq!(blob_identity(&blobs.path(&first)), inode_before, "an existing blob is not rewritten");
    assert_eq!(blobs.hashes().unwrap(), vec![first]);
    assert!(temp_files(&blobs).is_empty(), "the deduplicated temp file is dropped");
    assert_eq!(blobs.total_size().unwrap(), 4);
}

#[cfg(unix)]
fn blob_identity(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    path.metadata().unwrap().ino()
}

#[cfg(not(unix))]
fn blob_identity(path: &Path) -> u64 {
    path.metadata().unwrap().len()
}

#[test]
fn put_file_streams_and_matches_put_bytes() {
    let (dir, blobs) = store();
    let source = dir.path().join("big.bin");
    let content: Vec<u8> = (0..3 * BUFFER_BYTES + 17).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(&source, &content).unwrap();
    let (hash, size) = blobs.put_file_sized(&source).unwrap();
    assert_eq!(hash, Hash::of(&content));
    assert_eq!(size, content.len() as u64);
    assert_eq!(blobs.put_file(&source).unwrap(), hash);
    assert_eq!(blobs.get(&hash).unwrap(), content);
    blobs.verify(&hash).unwrap();
    blobs.sync().unwrap();
}

#[test]
fn put_file_error_names_the_source() {
    let (dir, blobs) = store();
    let missing = dir.path().join("nope.txt");
    let err = blobs.put_file(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.txt"), "{err}");
}

#[test]
fn missing_and_corrupt_blobs_are_reported() {
    let (_dir, blobs) = store();
    let absent = Hash::of(b"never stored");
    assert!(matches!(blobs.get(&absent), Err(BlobError::Missing { .. })));
    assert!(matches!(blobs.verify(&absent), Err(BlobError::Missing { .. })));

    let hash = blobs.put_bytes(b"original").unwrap();
    let path = blobs.path(&hash);
    overwrite(&path, b"tampered");
    assert!(matches!(blobs.get(&hash), Err(BlobError::Corrupt { .. })));
    assert!(matches!(blobs.verify(&hash), Err(BlobError::Corrupt { .. })));
}

/// Writes over a read-only blob, as a crash or a careless user might leave it.
fn overwrite(path: &Path, bytes: &[u8]) {
    let mut permissions = path.metadata().unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    fs::set_permissions(path, permissions).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_torn_blob_of_the_wrong_size_is_replaced_by_the_next_put() {
    let (_dir, blobs) = store();
    let hash = blobs.put_bytes(b"complete content").unwrap();
    overwrite(&blobs.path(&hash), b""); // what a power loss before writeback can leave
    assert!(blobs.get(&hash).is_err());
    assert_eq!(blobs.put_bytes(b"complete content").unwrap(), hash);
    assert_eq!(blobs.get(&hash).unwrap(), b"complete content");
    assert!(temp_files(&blobs).is_empty());
}

#[test]
fn concurrent_writers_of_the_same_blob_do_not_corrupt_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs");
    // Two handles on one directory stand for two processes; 8 threads each.
    let handles = [Arc::new(BlobStore::open(&path).unwrap()), Arc::new(BlobStore::open(&path).unwrap())];
    let content: Arc<Vec<u8>> = Arc::new((0..700_000u32).map(|i| (i % 253) as u8).collect());
    let expected = Hash::of(&content);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let blobs = Arc::clone(&handles[t % 2]);
            let content = Arc::clone(&content);
            std::thread::spawn(move || {
                for round in 0..20 {
                    let hash = if (t + round) % 2 == 0 {
                        blobs.put_bytes(&content).unwrap()
                    } else {
                        blobs.put_reader(content.as_slice()).unwrap().0
                    };
                    assert_eq!(hash, expected);
                    // readers in the middle of the storm always see the whole blob
                    assert_eq!(blobs.get(&hash).unwrap().len(), content.len());
                    // and distinct content from every thread lands next to it
                    blobs.put_bytes(format!("thread {t} round {round}").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let blobs = &handles[0];
    assert_eq!(blobs.get(&expected).unwrap(), *content);
    assert_eq!(blobs.hashes().unwrap().len(), 1 + 16 * 20);
    assert!(temp_files(blobs).is_empty(), "no temp file is left behind");
    for hash in blobs.hashes().unwrap() {
        blobs.verify(&hash).unwrap();
    }
}

#[test]
fn gc_removes_only_unreferenced_blobs_and_stale_temp_files() {
    let (_dir, blobs) = store();
    let keep_a = blobs.put_bytes(b"keep a").unwrap();
    let keep_b = blobs.put_bytes(b"keep b").unwrap();
    let drop_a = blobs.put_bytes(b"drop a").unwrap();
    let drop_b = blobs.put_bytes(b"drop bb").unwrap();

    let stale = blobs.dir().join(format!("{TEMP_PREFIX}crashed"));
    File::create(&stale).unwrap().write_all(b"12345").unwrap();
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - TEMP_MAX_AGE - Duration::from_secs(60))
        .unwrap();
    let fresh = blobs.dir().join(format!("{TEMP_PREFIX}writing"));
    fs::write(&fresh, b"in progress").unwrap();
    let stranger = blobs.dir().join("README");
    fs::write(&stranger, b"not ours").unwrap();

    let referenced: HashSet<Hash> = [keep_a, keep_b, Hash::of(b"referenced but absent")].into();
    let report = blobs.gc(&referenced).unwrap();
    assert_eq!(report, GcReport { removed: 2, kept: 2, bytes_freed: 6 + 7 + 5, temps_removed: 1 });
    assert!(blobs.contains(&keep_a) && blobs.contains(&keep_b));
    assert!(!blobs.contains(&drop_a) && !blobs.contains(&drop_b));
    assert!(
        !blobs.path(&drop_a).parent().unwrap().exists() || blobs.path(&drop_a).parent() == blobs.path(&keep_a).parent()
    );
    assert!(!stale.exists() && fresh.exists() && stranger.exists());

    // a second gc finds nothing more to do, and puts still work after shards went away
    let again = blobs.gc(&referenced).unwrap();
    assert_eq!((again.removed, again.kept, again.temps_removed), (0, 2, 0));
    assert_eq!(blobs.put_bytes(b"drop a").unwrap(), drop_a);
    assert_eq!(blobs.get(&drop_a).unwrap(), b"drop a");
}

#[test]
fn foreign_files_in_shards_are_neither_blobs_nor_removed() {
    let (_dir, blobs) = store();
    let hash = blobs.put_bytes(b"x").unwrap();
    let shard = blobs.path(&hash).parent().unwrap().to_path_buf();
    let odd = shard.join("not-a-hash");
    fs::write(&odd, b"?").unwrap();
    assert_eq!(blobs.hashes().unwrap(), vec![hash]);
    let report = blobs.gc(&HashSet::new()).unwrap();
    assert_eq!(report.removed, 1);
    assert!(odd.exists());
}
