//! The store end to end: reopening after a kill mid-open, format versions, `sluice store
//! check|backup|restore`, and read-only mounts holding symbolic links. Real binary, real
//! sled store, real components.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_tests::{Out, Sluice, repo};

fn hello(s: &Sluice) -> Value {
    let out = s.run(&["run", repo().join("examples/hello").to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    out.json()
}

fn listed(s: &Sluice) -> Vec<u64> {
    let out = s.run(&["runs", "list", "--json"]);
    out.assert_exit(0);
    out.json().as_array().unwrap().iter().map(|r| r["run_id"].as_u64().unwrap()).collect()
}

fn snapshots(store: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("snap."))
        .collect();
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// sled#1527/#1533: a process killed while sled wrote the snapshot of a store whose log grew
/// left `snap.N.generating` behind, partial or empty, and every later command failed with
/// "Read corrupted data". The on-disk state is made from the very snapshot a real `sluice`
/// process writes on that store's next open.
#[test]
fn a_store_left_by_a_kill_mid_snapshot_reopens_with_every_run() {
    let s = Sluice::new();
    let runs: Vec<u64> = (0..3).map(|_| hello(&s)["run_id"].as_u64().unwrap()).collect();
    let store = s.state().join("store");
    // what the next open will write, taken from a copy opened by a real process
    let twin = Sluice::new();
    copy_dir(&s.state(), &twin.state());
    fs::remove_file(twin.state().join("store/sluice.lock")).ok();
    assert_eq!(listed(&twin).len(), 3);
    let written = snapshots(&twin.state().join("store")).pop().unwrap();
    let name = written.file_name().unwrap().to_string_lossy().into_owned();
    assert!(snapshots(&store).iter().all(|p| *p.file_name().unwrap().to_string_lossy() < *name.as_str()));
    let bytes = fs::read(&written).unwrap();
    for keep in [0, bytes.len() / 3] {
        let partial = store.join(format!("{name}.generating"));
        fs::write(&partial, &bytes[..keep]).unwrap();
        let mut ids = listed(&s);
        ids.sort();
        assert_eq!(ids, runs, "every run is listed after a kill that left {keep} bytes");
        assert!(!partial.exists());
    }
    // and the store goes on working
    assert_eq!(hello(&s)["result"], "success");
}

#[test]
fn a_store_of_another_format_is_refused_naming_both_versions() {
    let s = Sluice::new();
    hello(&s);
    let marker = s.state().join("store/sluice-format.json");
    let ours: Value = serde_json::from_slice(&fs::read(&marker).unwrap()).unwrap();
    assert_eq!(ours["format"], 1);
    fs::write(&marker, r#"{"format":2,"engine":"sled 0.34","written_by":"sluice 9.9.9"}"#).unwrap();
    let refused = fs::read(&marker).unwrap();
    for args in [&["runs", "list"][..], &["store", "check"]] {
        let out = s.run(args);
        out.assert_exit(2);
        for needle in ["format 2", "sluice 9.9.9", "only format 1"] {
            assert!(out.stderr.contains(needle), "{args:?}: {needle} missing in {}", out.stderr);
        }
    }
    assert_eq!(fs::read(&marker).unwrap(), refused, "the marker is left as it was");
}

/// A bundle whose task writes `/out/result.txt` (so the run has blobs).
fn writer(s: &Sluice) -> PathBuf {
    s.bundle(
        "writer",
        "[bundle]\nname = \"w\"\n[components]\nfs = \"{guest:fsprobe}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"w\"\ncomponent = \"fs\"\nparams = { write = \"/out/result.txt\", data = \"payload\" }\n",
    )
}

fn run_json(s: &Sluice, dir: &Path) -> Value {
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    out.json()
}

/// Every blob file under `<state>/blobs`.
fn blob_files(state: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for shard in fs::read_dir(state.join("blobs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        found.extend(fs::read_dir(shard).unwrap().map(|e| e.unwrap().path()));
    }
    found
}

fn check(s: &Sluice) -> (Out, Value) {
    let out = s.run(&["store", "check", "--json"]);
    let json = out.json();
    (out, json)
}

#[test]
fn store_check_reports_damaged_blobs_and_secrets_naming_where() {
    let s = Sluice::new();
    let dir = writer(&s);
    let run = run_json(&s, &dir);
    let env = [("SLUICE_PRINCIPAL", "alice")];
    s.run_with(&["secrets", "scopes", "create", "db"], &env, None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &env, Some(b"hunter2")).assert_exit(0);
    let (out, report) = check(&s);
    out.assert_exit(0);
    assert_eq!(report["runs"], 1);
    assert_eq!(report["secrets_opened"], 1, "{report:#}");
    assert!(report["blobs"].as_u64().unwrap() >= 2, "the manifest and the file: {report:#}");
    let human = s.run(&["store", "check"]);
    assert!(human.stdout.contains("ok: nothing damaged"), "{}", human.stdout);

    for blob in blob_files(&s.state()) {
        fs::remove_file(blob).unwrap();
    }
    let (out, report) = check(&s);
    out.assert_exit(1);
    let what = report["problems"][0]["what"].as_str().unwrap();
    assert_eq!(what, format!("run {}, task w, attempt 0: /out files", run["run_id"]), "{report:#}");

    // without the master key, values are not opened: said, not counted as damage
    fs::remove_file(s.state().join("master.key")).unwrap();
    let (_, report) = check(&s);
    assert!(report["notes"].to_string().contains("not opened"), "{report:#}");
}

#[test]
fn a_backup_restores_runs_blobs_and_secrets_and_keeps_the_replaced_store() {
    let s = Sluice::new();
    let dir = writer(&s);
    let first = run_json(&s, &dir)["run_id"].as_u64().unwrap();
    let env = [("SLUICE_PRINCIPAL", "alice")];
    s.run_with(&["secrets", "scopes", "create", "db"], &env, None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &env, Some(b"hunter2")).assert_exit(0);
    let backup = s.dir.path().join("backup");
    let out = s.run(&["store", "backup", backup.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    assert!(out.json()["blobs"]["blobs"].as_u64().unwrap() >= 2, "{}", out.stdout);
    assert!(!backup.join("master.key").exists(), "a backup never holds the master key");
    s.run(&["store", "backup", backup.to_str().unwrap()]).assert_exit(2);

    // after the backup: another run, and the blobs lost
    let later = run_json(&s, &dir)["run_id"].as_u64().unwrap();
    for blob in blob_files(&s.state()) {
        fs::remove_file(blob).unwrap();
    }
    let out = s.run(&["store", "restore", backup.to_str().unwrap()]);
    out.assert_exit(0);
    assert!(out.stdout.contains("kept in"), "{}", out.stdout);
    assert_eq!(listed(&s), vec![first], "run {later} came after the backup");
    let (out, report) = check(&s);
    out.assert_exit(0);
    assert_eq!(report["secrets_opened"], 1, "{report:#}");
    let kept: Vec<PathBuf> = fs::read_dir(s.state())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("store.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced store is kept");

    // a damaged backup is refused and changes nothing
    let file = backup.join("store.sluice-backup");
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&file, bytes).unwrap();
    let out = s.run(&["store", "restore", backup.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    assert_eq!(listed(&s), vec![first]);
}

#[test]
fn check_and_restore_refuse_while_an_owner_runs_with_a_clear_message() {
    let s = Sluice::new();
    hello(&s);
    let backup = s.dir.path().join("b");
    s.run(&["store", "backup", backup.to_str().unwrap()]).assert_exit(0);
    let slow = s.bundle(
        "slow",
        "[bundle]\nname = \"slow\"\n[components]\nspin = \"{guest:spin}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"spin\"\ncomponent = \"spin\"\ntimeout = \"30s\"\n",
    );
    let owner = s.spawn(&["run", slow.to_str().unwrap()]);
    // wait until the run holds the store, without ever taking its lock ourselves
    let lock = s.state().join("store/sluice.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !flock_held(&lock) {
        assert!(std::time::Instant::now() < deadline, "the run never took the store");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let backup = backup.to_str().unwrap();
    // restore and check work on the store's files; backup goes through the owner (owner.rs)
    for args in [&["store", "restore", backup][..], &["store", "check"]] {
        let out = s.run(args);
        out.assert_exit(2);
        assert!(out.stderr.contains("in use by another sluice process"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("need the directory to themselves"), "{args:?}: {}", out.stderr);
    }
    owner.kill();
}

/// Whether some process holds a `flock` on `path`, read from /proc/locks (taking the lock
/// to find out could make the holder-to-be fail).
fn flock_held(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(inode) = fs::metadata(path).map(|m| m.ino()) else { return false };
    let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"FLOCK") && fields.get(5).and_then(|f| f.rsplit(':').next()) == Some(&inode.to_string())
    })
}

#[test]
fn a_damaged_store_says_what_to_do_and_is_left_as_it_was() {
    let s = Sluice::new();
    hello(&s);
    hello(&s);
    let store = s.state().join("store");
    let newest = snapshots(&store).pop().expect("a snapshot");
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4].copy_from_slice(b"\xde\xad\xbe\xef");
    fs::write(&newest, &bytes).unwrap();
    // runs up to 50 were handed out: a rebuild that finds 2 lost some, so none is swapped in
    fs::write(store.join("sluice-last-run-id"), 50u64.to_le_bytes()).unwrap();
    let out = s.run(&["runs", "list"]);
    out.assert_exit(2);
    for needle in ["damaged", "sluice store restore", "sluice store check", "Nothing was changed"] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    assert_eq!(fs::read(&newest).unwrap(), bytes);

    // with the mark as it really was, the copy rebuilt from the log replaces it
    fs::write(store.join("sluice-last-run-id"), 2u64.to_le_bytes()).unwrap();
    assert_eq!(listed(&s).len(), 2);
}

/// A read-only mount holding symbolic links: the task reads through a link inside the
/// mount, a link leading out stays unreadable, and the results are cached by the links'
/// targets (never by what they lead to outside the mount).
#[test]
fn read_only_mounts_with_symlinks_run_and_cache_by_link_target() {
    use std::os::unix::fs::symlink;
    let s = Sluice::new();
    let dir = s.bundle(
        "links",
        "[bundle]\nname = \"links\"\n[components]\nfs = \"{guest:fsprobe}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"inside\"\ncomponent = \"fs\"\nmounts = [{ host = \"data\", guest = \"/data\" }]\nparams = { read = \"/data/current\" }\n\
         [[jobs.j.tasks]]\nkey = \"outside\"\ncomponent = \"fs\"\nmounts = [{ host = \"data\", guest = \"/data\" }]\nparams = { read = \"/data/escape\" }\n",
    );
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("data/v1.csv"), "v1").unwrap();
    fs::write(dir.join("data/v2.csv"), "v2").unwrap();
    let secret = s.dir.path().join("outside.txt");
    fs::write(&secret, "outside the mount").unwrap();
    symlink("v1.csv", dir.join("data/current")).unwrap();
    symlink(&secret, dir.join("data/escape")).unwrap();

    let first = run_json(&s, &dir);
    let read = |run: &Value, key: &str| -> Value {
        serde_json::from_str(sluice_tests::last_attempt(run, key)["output"].as_str().unwrap()).unwrap()
    };
    assert_eq!(read(&first, "inside")["read"]["ok"], "v1", "{first:#}");
    assert!(read(&first, "outside")["read"]["err"].is_string(), "a link out of the mount is not followed");
    let reused = |run: &Value, key: &str| !sluice_tests::last_attempt(run, key)["cache"]["reused_from"].is_null();

    // what a link outside leads to is no input: changing it reuses the results
    fs::write(&secret, "changed outside").unwrap();
    let second = run_json(&s, &dir);
    assert!(reused(&second, "inside") && reused(&second, "outside"), "{second:#}");

    // retargeting the link inside is a change of input: both tasks see a new mount content
    fs::remove_file(dir.join("data/current")).unwrap();
    symlink("v2.csv", dir.join("data/current")).unwrap();
    let third = run_json(&s, &dir);
    assert!(!reused(&third, "inside"), "{third:#}");
    assert_eq!(read(&third, "inside")["read"]["ok"], "v2");
    let explain = s.run(&["cache", "explain", &third["run_id"].to_string(), "inside"]);
    assert!(explain.stdout.contains("mount /data"), "{}", explain.stdout);
}
