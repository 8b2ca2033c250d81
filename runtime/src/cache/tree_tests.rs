//! Tests of trees, manifests, materialising and the stat cache, on real temp directories.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::cache::STAT_CACHE_FILE;
use crate::cache::merkle::TREE_DOMAIN;

/// A change made to a sample tree, named.
type Change = (&'static str, fn(&Path));
/// Where a test's link points, given the tree's top.
type LinkCase<'a> = (&'static str, Box<dyn Fn(&Path) -> std::path::PathBuf + 'a>);

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A small tree: nested files, an empty directory, two files with equal content.
fn sample(root: &Path) {
    write(root, "a.csv", b"id,n\n1,2\n");
    write(root, "sub/b.json", b"{\"x\":1}");
    write(root, "sub/deeper/c.txt", b"same");
    write(root, "d.txt", b"same");
    fs::create_dir_all(root.join("empty")).unwrap();
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

fn cache() -> StatCache {
    let mut cache = StatCache::new();
    cache.set_settle(Duration::ZERO);
    cache
}

#[test]
fn snapshot_lists_files_and_dirs_sorted_with_their_hashes() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let tree = snapshot(dir.path()).unwrap();
    let paths: Vec<&str> = tree.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a.csv", "d.txt", "sub/b.json", "sub/deeper/c.txt"]);
    assert_eq!(tree.dirs, ["empty", "sub", "sub/deeper"]);
    assert_eq!(tree.files[1].hash, Hash::of(b"same"));
    assert_eq!(tree.files[1].size, 4);
    assert_eq!(
        tree.stats,
        SnapshotStats { files: 4, dirs: 3, links: 0, bytes: 9 + 7 + 4 + 4, reread: 4, cached: 0, bytes_read: 24 }
    );
    assert_eq!(
        tree.root,
        tree_root(tree.files.iter().map(|f| (f.path.as_str(), &f.hash)), tree.dirs.iter().map(String::as_str))
    );
    assert_eq!(snapshot(dir.path()).unwrap().root, tree.root, "deterministic");
}

#[test]
fn the_root_depends_on_relative_paths_and_contents_only() {
    let base = tempfile::tempdir().unwrap();
    let original = base.path().join("landing");
    sample(&original);
    let root = snapshot(&original).unwrap().root;

    // renamed: same root
    let renamed = base.path().join("landing-2026");
    fs::rename(&original, &renamed).unwrap();
    assert_eq!(snapshot(&renamed).unwrap().root, root);
    // copied elsewhere: same root
    let copy = tempfile::tempdir().unwrap();
    sample(copy.path());
    assert_eq!(snapshot(copy.path()).unwrap().root, root);
    // permissions and timestamps are not content
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(copy.path().join("a.csv"), fs::Permissions::from_mode(0o755)).unwrap();
    }
    set_mtime(&copy.path().join("d.txt"), SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    assert_eq!(snapshot(copy.path()).unwrap().root, root);

    // one byte, a file name, an empty directory, a file moved between directories: new roots
    let changes: [Change; 4] = [
        ("content", |p| write(p, "a.csv", b"id,n\n1,3\n")),
        ("file name", |p| fs::rename(p.join("d.txt"), p.join("e.txt")).unwrap()),
        ("empty dir", |p| fs::create_dir(p.join("empty2")).unwrap()),
        ("moved file", |p| fs::rename(p.join("d.txt"), p.join("sub/d.txt")).unwrap()),
    ];
    for (what, change) in changes {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        change(dir.path());
        assert_ne!(snapshot(dir.path()).unwrap().root, root, "{what}");
    }
}

#[test]
fn a_file_and_an_empty_directory_of_the_same_name_differ() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), "x", b"");
    fs::create_dir(b.path().join("x")).unwrap();
    assert_ne!(snapshot(a.path()).unwrap().root, snapshot(b.path()).unwrap().root);
}

#[cfg(unix)]
#[test]
fn symlinks_are_hashed_by_their_target_never_followed() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"not yours");
    let plain = {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        snapshot(dir.path()).unwrap().root
    };
    let cases: [LinkCase<'_>; 4] = [
        ("sub/link-out", Box::new(|_| outside.path().join("secret.txt"))),
        ("sub/link-in", Box::new(|_| "../a.csv".into())),
        ("dir-link", Box::new(|_| "sub/deeper".into())),
        ("dangling", Box::new(|root: &Path| root.join("nowhere"))),
    ];
    for (name, target) in cases {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let target = target(dir.path());
        symlink(&target, dir.path().join(name)).unwrap();
        let tree = snapshot(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tree.links, [TreeLink { path: name.into(), target: target.to_str().unwrap().into() }], "{name}");
        assert_eq!(tree.stats.links, 1);
        assert_eq!(tree.files.len(), 4, "{name}: a link adds no file, and a linked directory is not walked twice");
        assert_ne!(tree.root, plain, "{name}: the link is part of the tree");
        let cached = snapshot_cached(dir.path(), &mut cache(), false).unwrap();
        assert_eq!(cached.root, tree.root, "{name}");

        // another target is another tree
        fs::remove_file(dir.path().join(name)).unwrap();
        symlink("elsewhere", dir.path().join(name)).unwrap();
        assert_ne!(snapshot(dir.path()).unwrap().root, tree.root, "{name}");

        // a stored tree (`/out`) has no links: refused, naming it
        let state = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(state.path().join("blobs")).unwrap();
        let error = store_tree(&blobs, dir.path()).unwrap_err();
        assert!(matches!(error, TreeError::Symlink { .. }) && error.to_string().contains(name), "{name}: {error}");
    }
    // what a link leads to outside the tree is never read: changing it changes nothing
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    symlink(outside.path().join("secret.txt"), dir.path().join("out")).unwrap();
    let before = snapshot(dir.path()).unwrap();
    write(outside.path(), "secret.txt", b"changed");
    assert_eq!(snapshot(dir.path()).unwrap().root, before.root);
    assert_eq!(before.stats.bytes, 9 + 7 + 4 + 4, "only the tree's own files were read");

    // the top itself may not be a link
    let dir = tempfile::tempdir().unwrap();
    sample(&dir.path().join("real"));
    symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
    assert!(matches!(snapshot(&dir.path().join("alias")), Err(TreeError::Symlink { .. })));
}

#[test]
fn roots_of_trees_without_links_are_unchanged() {
    // the root of this tree as computed before links were part of trees (format v1)
    let hash = Hash::of(b"same");
    let root = merkle_root([("a", &hash)], ["d"], []);
    assert_eq!(root, tree_root([("a", &hash)], ["d"]));
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN);
    for (kind, path, content) in [(b"f", "a", Some(&hash)), (b"d", "d", None)] {
        hasher.update(kind);
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        if let Some(hash) = content {
            hasher.update(hash.as_bytes());
        }
    }
    assert_eq!(root, Hash::from(hasher.finalize()));
    // a link and a file of the same path and "content" never collide
    assert_ne!(merkle_root([], [], [("a", "b")]), merkle_root([("a", &Hash::of(b"b"))], [], []));
}

#[cfg(unix)]
#[test]
fn non_utf8_names_and_special_files_are_refused() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(OsStr::from_bytes(b"bad\xff.txt")), b"x").unwrap();
    assert!(matches!(snapshot(dir.path()), Err(TreeError::NonUtf8 { .. })));

    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"to\xff"), dir.path().join("link")).unwrap();
    let error = snapshot(dir.path()).unwrap_err();
    assert!(matches!(error, TreeError::NonUtf8Link { .. }) && error.to_string().contains("link"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let error = snapshot(dir.path()).unwrap_err();
    assert!(matches!(error, TreeError::Special { .. }) && error.to_string().contains("sock"), "{error}");

    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(snapshot(&file), Err(TreeError::NotADirectory { .. })));
}

#[test]
fn store_and_materialize_round_trip() {
    let state = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(state.path().join("blobs")).unwrap();
    let out = state.path().join("out");
    sample(&out);
    let manifest = store_tree(&blobs, &out).unwrap();
    assert_eq!(manifest.root, snapshot(&out).unwrap().root);
    assert_eq!(manifest.entries.len(), 4);
    assert_eq!(blobs.hashes().unwrap().len(), 3, "equal files share one blob");
    assert_eq!(manifest.total_size(), 24);

    let json = serde_json::to_string(&manifest).unwrap();
    assert!(json.contains("\"path\":\"sub/deeper/c.txt\""), "{json}");
    let manifest: TreeManifest = serde_json::from_str(&json).unwrap();

    let dest = state.path().join("in/bronze");
    let report = materialize(&blobs, &manifest, &dest).unwrap();
    assert_eq!((report.files, report.linked + report.copied, report.bytes), (4, 4, 24));
    assert_eq!(report.linked, 4, "same filesystem: hard links");
    assert_eq!(fs::read(dest.join("sub/b.json")).unwrap(), b"{\"x\":1}");
    assert!(dest.join("empty").is_dir());
    assert_eq!(snapshot(&dest).unwrap().root, manifest.root);
    for entry in &manifest.entries {
        let meta = fs::metadata(dest.join(&entry.path)).unwrap();
        assert!(meta.permissions().readonly(), "{} is writable", entry.path);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let linked = fs::metadata(dest.join("a.csv")).unwrap().ino();
        assert_eq!(linked, fs::metadata(blobs.path(&manifest.entries[0].hash)).unwrap().ino());
    }
    // the caller can remove what it materialised; the blobs stay
    fs::remove_dir_all(&dest).unwrap();
    assert_eq!(blobs.get(&manifest.entries[0].hash).unwrap(), b"id,n\n1,2\n");
}

#[test]
fn materialize_refuses_bad_manifests_and_existing_files() {
    let state = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(state.path().join("blobs")).unwrap();
    let hash = blobs.put_bytes(b"data").unwrap();
    let manifest_of = |paths: &[&str], size: u64, hash: Hash| {
        let entries: Vec<TreeEntry> = paths.iter().map(|p| TreeEntry { path: p.to_string(), hash, size }).collect();
        let root = tree_root(entries.iter().map(|e| (e.path.as_str(), &e.hash)), []);
        TreeManifest { root, entries, dirs: Vec::new() }
    };
    let dest = state.path().join("dest");
    for bad in ["../escape", "/etc/passwd", "a//b", "./a", "a/..", "", "a/./b"] {
        let result = materialize(&blobs, &manifest_of(&[bad], 4, hash), &dest);
        assert!(matches!(result, Err(TreeError::UnsafePath { .. })), "{bad:?}: {result:?}");
    }
    assert!(!state.path().join("escape").exists());

    let mut tampered = manifest_of(&["a"], 4, hash);
    tampered.entries[0].path = "b".into();
    assert!(matches!(materialize(&blobs, &tampered, &dest), Err(TreeError::RootMismatch { .. })));

    let missing = manifest_of(&["a"], 4, Hash::of(b"absent"));
    assert!(matches!(materialize(&blobs, &missing, &dest), Err(TreeError::Blob(BlobError::Missing { .. }))));
    let wrong_size = manifest_of(&["a"], 5, hash);
    assert!(matches!(materialize(&blobs, &wrong_size, &dest), Err(TreeError::SizeMismatch { .. })));

    let good = manifest_of(&["a", "sub/b"], 4, hash);
    materialize(&blobs, &good, &dest).unwrap();
    assert!(matches!(materialize(&blobs, &good, &dest), Err(TreeError::Exists { .. })));
}

#[cfg(target_os = "linux")]
#[test]
fn materialize_copies_across_filesystems() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let state = tempfile::tempdir().unwrap();
    let Ok(other) = tempfile::tempdir_in(shm) else { return };
    if fs::metadata(other.path()).unwrap().dev() == fs::metadata(state.path()).unwrap().dev() {
        return; // one filesystem here: nothing to show
    }
    let blobs = BlobStore::open(state.path().join("blobs")).unwrap();
    sample(&state.path().join("out"));
    let manifest = store_tree(&blobs, &state.path().join("out")).unwrap();
    let report = materialize(&blobs, &manifest, &other.path().join("in")).unwrap();
    assert_eq!((report.linked, report.copied), (0, 4));
    assert!(fs::metadata(other.path().join("in/a.csv")).unwrap().permissions().readonly());
    assert_eq!(snapshot(&other.path().join("in")).unwrap().root, manifest.root);
}

#[test]
fn the_stat_cache_skips_unchanged_files_and_rereads_changed_ones() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    sample(&data);
    let mut cache = cache();
    let first = snapshot_cached(&data, &mut cache, false).unwrap();
    assert_eq!((first.stats.reread, first.stats.cached), (4, 0));
    assert_eq!(cache.len(), 4);

    let second = snapshot_cached(&data, &mut cache, false).unwrap();
    assert_eq!((second.stats.reread, second.stats.cached, second.stats.bytes_read), (0, 4, 0));
    assert_eq!(second.root, first.root);
    assert_eq!(second.files, first.files);

    // touching a file: re-read that one (same content, same root)
    set_mtime(&data.join("a.csv"), SystemTime::now() - Duration::from_secs(3600));
    let touched = snapshot_cached(&data, &mut cache, false).unwrap();
    assert_eq!((touched.stats.reread, touched.stats.cached), (1, 3));
    assert_eq!(touched.root, first.root);

    // same size, mtime put back: ctime still tells
    let before = fs::metadata(data.join("d.txt")).unwrap().modified().unwrap();
    fs::write(data.join("d.txt"), b"SAME").unwrap();
    set_mtime(&data.join("d.txt"), before);
    let sneaky = snapshot_cached(&data, &mut cache, false).unwrap();
    assert_eq!(sneaky.stats.reread, 1);
    assert_ne!(sneaky.root, first.root);

    // --rehash reads everything
    let rehashed = snapshot_cached(&data, &mut cache, true).unwrap();
    assert_eq!((rehashed.stats.reread, rehashed.stats.cached), (4, 0));
    assert_eq!(rehashed.root, sneaky.root);

    // a renamed directory with identical content: same root, nothing re-read
    let moved = base.path().join("data-renamed");
    fs::rename(&data, &moved).unwrap();
    let renamed = snapshot_cached(&moved, &mut cache, false).unwrap();
    assert_eq!(renamed.root, sneaky.root);
    assert_eq!((renamed.stats.reread, renamed.stats.cached), (0, 4));

    // a new file is the only one read; a deleted one leaves the cache
    write(&moved, "new.txt", b"new");
    fs::remove_file(moved.join("a.csv")).unwrap();
    let grown = snapshot_cached(&moved, &mut cache, false).unwrap();
    assert_eq!((grown.stats.reread, grown.stats.cached), (1, 3));
    assert_eq!(cache.len(), 4 + 4, "old paths stay until pruned");
    assert_eq!(cache.prune_missing(), 4);
    assert_eq!(cache.len(), 4);
}

#[test]
fn the_stat_cache_survives_save_and_load_and_ignores_garbage() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    sample(&data);
    let file = base.path().join("state").join(STAT_CACHE_FILE);
    let mut cache = cache();
    let first = snapshot_cached(&data, &mut cache, false).unwrap();
    cache.save(&file).unwrap();
    assert!(fs::read_dir(file.parent().unwrap()).unwrap().count() == 1, "no temp file left");

    let mut loaded = StatCache::load(&file).unwrap();
    assert_eq!(loaded.len(), 4);
    let again = snapshot_cached(&data, &mut loaded, false).unwrap();
    assert_eq!((again.stats.cached, again.root), (4, first.root));

    assert!(StatCache::load(&base.path().join("absent.json")).unwrap().is_empty());
    for garbage in
        [&b"{not json"[..], b"", br#"{"format":99,"files":{}}"#, br#"{"format":1,"files":{"/x":{"hash":"zz"}}}"#]
    {
        fs::write(&file, garbage).unwrap();
        assert!(StatCache::load(&file).unwrap().is_empty());
    }
}

#[test]
fn freshly_changed_files_are_not_trusted_by_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let mut cache = StatCache::new(); // default settle: these files changed just now
    snapshot_cached(dir.path(), &mut cache, false).unwrap();
    assert!(cache.is_empty());
    let second = snapshot_cached(dir.path(), &mut cache, false).unwrap();
    assert_eq!((second.stats.reread, second.stats.cached), (4, 0));
}

#[test]
fn many_files_hash_in_parallel_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        write(dir.path(), &format!("d{}/f{i:03}.bin", i % 7), &vec![i as u8; i * 97]);
    }
    let tree = snapshot(dir.path()).unwrap();
    assert_eq!(tree.files.len(), 200);
    for entry in &tree.files {
        assert_eq!(entry.hash, Hash::of(&fs::read(dir.path().join(&entry.path)).unwrap()), "{}", entry.path);
    }
    let state = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(state.path().join("blobs")).unwrap();
    let manifest = store_tree(&blobs, dir.path()).unwrap();
    assert_eq!(manifest.root, tree.root);
}

/// Figures, not a check: `SLUICE_HASH_FIGURES_MIB=1024 cargo test --release -p sluice
/// cache::tree::tests::hashing_figures -- --ignored --nocapture` prints how long a first
/// (every file read) and a second (stat cache) snapshot of a directory that size take.
#[test]
#[ignore]
fn hashing_figures() {
    let mib: usize = std::env::var("SLUICE_HASH_FIGURES_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().unwrap();
    let chunk: Vec<u8> = (0..16usize << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for i in 0..mib / 16 {
        write(dir.path(), &format!("part-{i:04}.bin"), &chunk);
    }
    for i in 0..1000 {
        write(dir.path(), &format!("small/{i:04}.json"), format!("{{\"i\":{i}}}").as_bytes());
    }
    let old = SystemTime::now() - Duration::from_secs(60);
    for entry in snapshot(dir.path()).unwrap().files {
        set_mtime(&dir.path().join(entry.path), old);
    }
    std::thread::sleep(SETTLE_FOR_FIGURES);
    let mut cache = StatCache::new();
    let started = std::time::Instant::now();
    let first = snapshot_cached(dir.path(), &mut cache, false).unwrap();
    let first_time = started.elapsed();
    let started = std::time::Instant::now();
    let second = snapshot_cached(dir.path(), &mut cache, false).unwrap();
    let second_time = started.elapsed();
    assert_eq!(first.root, second.root);
    let gib_s = first.stats.bytes_read as f64 / first_time.as_secs_f64() / f64::from(1u32 << 30);
    eprintln!(
        "{} files, {} MiB: first snapshot {first_time:?} ({gib_s:.2} GiB/s, {} read), second {second_time:?} ({} cached, {} read)",
        first.stats.files,
        first.stats.bytes >> 20,
        first.stats.reread,
        second.stats.cached,
        second.stats.reread
    );
}

/// Setting mtimes changes ctimes: wait out the stat cache's settle time before the figures.
const SETTLE_FOR_FIGURES: Duration = Duration::from_millis(2100);
