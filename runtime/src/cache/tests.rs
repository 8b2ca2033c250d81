//! Tests of what the cache module itself owns: which tasks may be reused, cache entries.

use std::path::Path;

use super::*;

/// The task `key` of job `j` of a bundle whose root is `root` (mount hosts must exist there).
fn task(root: &Path, tasks: &str, key: &str) -> crate::spec::TaskSpec {
    let text = format!("[bundle]\nname = \"b\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\n{tasks}");
    let bundle = crate::spec::parse(&text, Path::new("sluice.toml"), root).unwrap_or_else(|e| panic!("{e}"));
    bundle.jobs["j"].task(key).unwrap_or_else(|| panic!("no task {key}")).clone()
}

const TASKS: &str = r#"
[[jobs.j.tasks]]
key = "plain"
component = "c"
params = { day = "2026-11-25" }

[[jobs.j.tasks]]
key = "reads"
component = "c"
secrets = ["storage/key"]
mounts = [{ host = "data", guest = "/landing" }]

[[jobs.j.tasks]]
key = "writes"
component = "c"
mounts = [{ host = "data", guest = "/landing" }, { host = "scratch", guest = "/work", mode = "rw" }]

[[jobs.j.tasks]]
key = "online"
component = "c"
allow_hosts = ["https://api.example.com"]

[[jobs.j.tasks]]
key = "cmd"
kind = "command"
component = "c"
args = ["--n", "1"]
stdin = "hello"
stdout = "output"

[[jobs.j.tasks]]
key = "opted_out"
component = "c"
cache = false

[[jobs.j.tasks]]
key = "check"
condition = { op = "equal_to", left = "a", right = "a" }

[[jobs.j.tasks]]
key = "each"
for_each = { inputs = "[1, 2]", task = { component = "c", params = { n = "{{ input }}" } } }

[[jobs.j.tasks]]
key = "child"
run_job = { job = "other" }

[jobs.other]
tasks = [{ key = "t", component = "c" }]
"#;

fn bundle_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("scratch")).unwrap();
    dir
}

#[test]
fn which_tasks_may_be_reused() {
    let root = bundle_root();
    let verdict = |key: &str| reusable(&task(root.path(), TASKS, key));
    assert_eq!(verdict("plain"), Ok(()));
    assert_eq!(verdict("reads"), Ok(()), "secrets and read-only mounts are keyed, not refused");
    assert_eq!(verdict("cmd"), Ok(()));
    assert!(verdict("writes").unwrap_err().contains("read-write mount"));
    assert_eq!(verdict("opted_out"), Err(OPTED_OUT));
    assert!(verdict("online").unwrap_err().contains("network"));
    assert!(verdict("check").unwrap_err().contains("condition"));
    assert!(verdict("each").unwrap_err().contains("for_each"));
    assert!(verdict("child").unwrap_err().contains("run_job"));
}

#[test]
fn capabilities_come_from_the_spec() {
    let root = bundle_root();
    let caps = |key: &str| {
        let t = task(root.path(), TASKS, key);
        capabilities_of(&t.exec, t.command())
    };
    assert_eq!(caps("plain"), ["world:task"]);
    assert_eq!(caps("reads"), ["mounts:ro", "secrets", "world:task"]);
    assert_eq!(caps("writes"), ["mounts:ro", "mounts:rw", "world:task"]);
    assert_eq!(caps("online"), ["network", "world:task"]);
    assert_eq!(caps("cmd"), ["stdin", "stdout:output", "world:command"]);
}

#[test]
fn mounts_enter_the_key_by_content_never_by_host_path() {
    let root = bundle_root();
    let spec = task(root.path(), TASKS, "reads");
    let content = Hash::of(b"tree");
    let part = mount_part(&spec.exec.mounts[0], &content);
    assert_eq!(part, MountPart { guest: "/landing".into(), mode: "ro".into(), content: content.to_string() });
    let mut parts = KeyParts::new(Hash::of(b"component").to_string(), 1);
    parts.mounts.push(part);
    let json = serde_json::to_string(&parts).unwrap();
    let host = root.path().to_string_lossy();
    assert!(!json.contains(host.as_ref()), "{json}");
}

fn entry(out_tree: Option<TreeManifest>) -> CacheEntry {
    let mut parts = KeyParts::new(Hash::of(b"component").to_string(), 1);
    parts.params.insert("day".into(), "2026-11-25".into());
    CacheEntry {
        attempt: Some(0),
        key: parts.key(),
        parts,
        run: 7,
        task: "bronze".into(),
        output: Some("{\"rows\":3}".into()),
        values: vec![("rows".into(), "3".into())],
        out_tree,
        created_at: 1_764_000_000_000,
        quality: Vec::new(),
    }
}

#[test]
fn cache_entries_round_trip_and_name_their_blobs() {
    let state = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(state.path().join(BLOBS_DIR)).unwrap();
    let out = state.path().join("out");
    std::fs::create_dir_all(out.join("part")).unwrap();
    std::fs::write(out.join("part/0.csv"), b"a\n").unwrap();
    std::fs::write(out.join("summary.json"), b"{}").unwrap();
    let manifest = store_tree(&blobs, &out).unwrap();

    let stored = entry(Some(manifest.clone()));
    assert!(stored.is_consistent());
    let json = serde_json::to_string(&stored).unwrap();
    let back: CacheEntry = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stored);
    assert_eq!(back.digest(), upstream_digest(Some("{\"rows\":3}"), &stored.values, Some(&manifest.root)));

    let referenced = referenced_blobs([&stored, &entry(None)]);
    assert_eq!(referenced, manifest.blobs().collect());
    let unreferenced = blobs.put_bytes(b"orphan").unwrap();
    let report = blobs.gc(&referenced).unwrap();
    assert_eq!((report.removed, report.kept), (1, 2));
    assert!(!blobs.contains(&unreferenced));
    materialize(&blobs, &back.out_tree.unwrap(), &state.path().join("in/bronze")).unwrap();
}

#[test]
fn an_entry_whose_key_does_not_match_its_parts_is_inconsistent() {
    let mut stored = entry(None);
    stored.parts.params.insert("day".into(), "2026-11-26".into());
    assert!(!stored.is_consistent());
    let mut tree_lies = entry(Some(TreeManifest { root: Hash::of(b"x"), entries: Vec::new(), dirs: Vec::new() }));
    assert!(!tree_lies.is_consistent());
    tree_lies.out_tree = Some(TreeManifest { root: tree_root([], []), entries: Vec::new(), dirs: Vec::new() });
    assert!(tree_lies.is_consistent());
}
