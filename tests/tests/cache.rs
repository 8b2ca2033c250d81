//! Content-hashed reruns end to end: what reruns, what is reused, why, and
//! whether a rerun reproduces the recorded bytes.

use serde_json::Value;
use sluice_tests::{Out, Sluice, guest, task_of};

/// Which tasks of `run` executed (were not reused), sorted.
fn executed(run: &Value) -> Vec<String> {
    let mut keys: Vec<String> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["attempts"]
                .as_array()
                .and_then(|a| a.last())
                .is_some_and(|a| a["cache"]["reused_from"].is_null() && a["result"] == "success")
        })
        .map(|t| t["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

fn output(run: &Value, key: &str) -> Value {
    serde_json::from_str(sluice_tests::last_attempt(run, key)["output"].as_str().unwrap()).unwrap()
}

fn run(s: &Sluice, dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec!["run", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out: Out = s.run(&args);
    out.assert_exit(0);
    out.json()
}

/// a → b → c plus an independent d; `a` reads a mounted directory.
fn pipeline(s: &Sluice, n: u32, data: &str) -> std::path::PathBuf {
    let dir = s.dir.path().join("p");
    std::fs::create_dir_all(dir.join(data)).unwrap();
    let text = format!(
        "[bundle]\nname = \"c\"\n[components]\nprobe = \"{}\"\nfs = \"{}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fs\"\nmounts = [{{ host = \"{data}\", guest = \"/data\" }}]\nparams = {{ read = \"/data/in.txt\", write = \"/out/copy.txt\", data = \"from a\" }}\n\
         [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"fs\"\ndepends_on = [\"a\"]\nparams = {{ read = \"/in/a/copy.txt\" }}\n\
         [[jobs.j.tasks]]\nkey = \"c\"\ncomponent = \"probe\"\ndepends_on = [\"b\"]\nparams = {{ n = \"{n}\" }}\n\
         [[jobs.j.tasks]]\nkey = \"d\"\ncomponent = \"probe\"\nparams = {{ entropy = \"1\" }}\n",
        guest("probe").display(),
        guest("fsprobe").display()
    );
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
    dir
}

#[test]
fn a_rerun_with_nothing_changed_executes_nothing_and_reproduces_outputs() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    let first = run(&s, &dir, &[]);
    assert_eq!(executed(&first), ["a", "b", "c", "d"]);
    assert_eq!(output(&first, "b")["read"]["ok"], "from a", "b read a's /out file at /in/a");
    let second = run(&s, &dir, &[]);
    assert_eq!(executed(&second), Vec::<String>::new(), "every task was reused");
    for key in ["a", "b", "c", "d"] {
        assert_eq!(output(&first, key), output(&second, key), "{key}");
        let from = &sluice_tests::last_attempt(&second, key)["cache"]["reused_from"];
        assert_eq!(from, &Value::String(format!("{}/{key}", first["run_id"])));
    }
    // --no-cache runs everything again
    assert_eq!(executed(&run(&s, &dir, &["--no-cache"])), ["a", "b", "c", "d"]);
}

#[test]
fn a_workspace_never_reuses_another_workspaces_results() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    let acme = run(&s, &dir, &["--workspace", "acme"]);
    assert_eq!(executed(&acme), ["a", "b", "c", "d"]);
    // the same bundle in another tenant's workspace: nothing of acme's is handed to globex
    let globex = run(&s, &dir, &["--workspace", "globex"]);
    assert_eq!(executed(&globex), ["a", "b", "c", "d"], "globex must not be given acme's results");
    // within one workspace, reuse works as before
    let again = run(&s, &dir, &["--workspace", "globex"]);
    assert_eq!(executed(&again), Vec::<String>::new());
    let from = &sluice_tests::last_attempt(&again, "a")["cache"]["reused_from"];
    assert_eq!(from, &Value::String(format!("{}/a", globex["run_id"])));
}

#[test]
fn a_changed_param_reruns_that_task_and_its_dependents_only() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    run(&s, &dir, &[]);
    std::fs::write(
        dir.join("sluice.toml"),
        std::fs::read_to_string(dir.join("sluice.toml")).unwrap().replace("n = \"1\"", "n = \"2\""),
    )
    .unwrap();
    let second = run(&s, &dir, &[]);
    assert_eq!(executed(&second), ["c"]);
    let explain = s.run(&["cache", "explain", &second["run_id"].to_string(), "c"]);
    explain.assert_exit(0);
    assert!(explain.stdout.contains("miss") && explain.stdout.contains("param n: 1 → 2"), "{}", explain.stdout);
    let hit = s.run(&["cache", "explain", &second["run_id"].to_string(), "a"]);
    assert!(hit.stdout.contains("hit"), "{}", hit.stdout);
}

#[test]
fn a_changed_input_file_reruns_the_reader_and_everything_downstream() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    run(&s, &dir, &[]);
    std::fs::write(dir.join("data/in.txt"), "other rows").unwrap();
    let second = run(&s, &dir, &[]);
    // a read different bytes: it and everything downstream of it rerun; d does not
    assert_eq!(executed(&second), ["a", "b", "c"]);
    let explain = s.run(&["cache", "explain", &second["run_id"].to_string(), "a"]);
    assert!(explain.stdout.contains("mount /data"), "{}", explain.stdout);
}

#[test]
fn a_changed_component_reruns_its_tasks_and_their_dependents() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    // give `b` a component file of its own, then change that file's bytes
    let own = s.dir.path().join("fs-copy.wasm");
    std::fs::copy(guest("fsprobe"), &own).unwrap();
    let toml = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    let toml = toml
        .replace("[jobs.j]", &format!("fs2 = \"{}\"\n[jobs.j]", own.display()))
        .replace("key = \"b\"\ncomponent = \"fs\"", "key = \"b\"\ncomponent = \"fs2\"");
    std::fs::write(dir.join("sluice.toml"), &toml).unwrap();
    run(&s, &dir, &[]);
    let mut bytes = std::fs::read(&own).unwrap();
    bytes.extend_from_slice(b"\0\x08\x06customx"); // an extra custom section: same code, new bytes
    std::fs::write(&own, bytes).unwrap();
    let second = run(&s, &dir, &[]);
    assert_eq!(executed(&second), ["b"], "b's output is unchanged, so c is still reused");
    let explain = s.run(&["cache", "explain", &second["run_id"].to_string(), "b"]);
    assert!(explain.stdout.contains("component changed"), "{}", explain.stdout);
}

#[test]
fn a_mount_renamed_with_the_same_contents_is_still_a_hit() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    run(&s, &dir, &[]);
    std::fs::rename(dir.join("data"), dir.join("renamed")).unwrap();
    let toml =
        std::fs::read_to_string(dir.join("sluice.toml")).unwrap().replace("host = \"data\"", "host = \"renamed\"");
    std::fs::write(dir.join("sluice.toml"), toml).unwrap();
    let second = run(&s, &dir, &[]);
    assert_eq!(executed(&second), Vec::<String>::new(), "content, not paths, is keyed");
    // same path, different contents: a miss (with --rehash every file is re-read)
    std::fs::write(dir.join("renamed/in.txt"), "rowz").unwrap();
    assert_eq!(executed(&run(&s, &dir, &["--rehash"])), ["a", "b", "c"]);
}

#[test]
fn clocks_and_randomness_are_reproducible_and_verify_proves_it() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    let first = run(&s, &dir, &[]);
    let id = first["run_id"].to_string();
    let verify = s.run(&["verify", &id, "--json"]);
    verify.assert_exit(0);
    let results = verify.json();
    let verdict = |task: &str| {
        results.as_array().unwrap().iter().find(|v| v["task"] == task).unwrap()["verdict"].as_str().unwrap().to_string()
    };
    for task in ["a", "b", "c", "d"] {
        assert_eq!(verdict(task), "identical", "{task}: {results:#}");
    }
    // the entropy task's clock reading is the run's logical start, not the host's time
    let now_ns: u128 = output(&first, "d")["entropy"]["now_ns"].as_str().unwrap().parse().unwrap();
    let created_ns = u128::from(first["created_at"].as_u64().unwrap()) * 1_000_000;
    assert!(now_ns >= created_ns && now_ns < created_ns + 1_000_000, "virtual clock starts at the run's start");
}

#[test]
fn tasks_with_network_access_or_cache_false_always_run() {
    let s = Sluice::new();
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"net\"\ncomponent = \"probe\"\nallow_hosts = [\"http://127.0.0.1:9\"]\n\
         [[jobs.j.tasks]]\nkey = \"off\"\ncomponent = \"probe\"\ncache = false\n\
         [[jobs.j.tasks]]\nkey = \"on\"\ncomponent = \"probe\"\n",
        guest("probe").display()
    );
    let dir = s.bundle("n", &text);
    run(&s, &dir, &[]);
    let second = run(&s, &dir, &[]);
    assert_eq!(executed(&second), ["net", "off"]);
    assert!(task_of(&second, "net")["attempts"][0]["cache"]["not_cached"].as_str().unwrap().contains("network"));
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let s = Sluice::new();
    let dir = pipeline(&s, 1, "data");
    std::fs::write(dir.join("data/in.txt"), "rows").unwrap();
    let first = run(&s, &dir, &[]);
    let blobs = s.state().join("blobs");
    let stray_dir = blobs.join("ff");
    std::fs::create_dir_all(&stray_dir).unwrap();
    let stray = stray_dir.join("f".repeat(62));
    std::fs::write(&stray, b"nobody needs me").unwrap();
    let gc = s.run(&["cache", "gc", "--keep", "0", "--json"]);
    gc.assert_exit(0);
    let report = gc.json();
    assert!(report["removed_blobs"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(!stray.exists(), "the unreferenced blob is gone");
    // the run's own artifacts are still referenced: a repair of b still finds /in/a
    let repaired = s.run(&["runs", "repair", &first["run_id"].to_string(), "--task", "b", "--no-cache", "--json"]);
    repaired.assert_exit(0);
    assert_eq!(output(&repaired.json(), "b")["read"]["ok"], "from a");
}

#[test]
fn a_rotated_secret_changes_the_key_through_its_version_only() {
    let s = Sluice::new();
    let key = "ab".repeat(32);
    let env: &[(&str, &str)] = &[("SLUICE_PRINCIPAL", "alice"), ("SLUICE_MASTER_KEY", &key)];
    s.run_with(&["secrets", "scopes", "create", "db"], env, None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], env, Some(b"first-secret-value")).assert_exit(0);
    let text = format!(
        "[bundle]\nname = \"s\"\n[components]\nprobe = \"{}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nsecrets = [\"db/pw\"]\nparams = {{ secret = \"db/pw\" }}\n",
        guest("probe").display()
    );
    let dir = s.bundle("s", &text);
    let go = || {
        let out = s.run_with(&["run", dir.to_str().unwrap(), "--json"], env, None);
        out.assert_exit(0);
        out.json()
    };
    assert_eq!(executed(&go()), ["t"]);
    assert_eq!(executed(&go()), Vec::<String>::new(), "same secret version: a hit");
    s.run_with(&["secrets", "put", "db", "pw"], env, Some(b"second-secret-value")).assert_exit(0);
    let third = go();
    assert_eq!(executed(&third), ["t"], "a new version: a miss");
    let explain = s.run_with(&["cache", "explain", &third["run_id"].to_string(), "t"], env, None);
    assert!(explain.stdout.contains("secret db/pw: version 1 → 2"), "{}", explain.stdout);
    for value in ["first-secret-value", "second-secret-value"] {
        for entry in walk(&s.state()) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "{value} found in {}", entry.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The key is assembled from the task as the run sees it: each of a command's args, env and
/// stdin, a limit, `max_out`, the target and (for a task revealing secrets) the principal
/// reruns the task when it changes, and `cache explain` names what changed.
#[test]
fn every_part_the_run_assembles_into_a_key_reruns_the_task_when_it_changes() {
    let s = Sluice::new();
    let as_user =
        |who: &str, args: &[&str], stdin: Option<&[u8]>| s.run_with(args, &[("SLUICE_PRINCIPAL", who)], stdin);
    as_user("alice", &["secrets", "scopes", "create", "db"], None).assert_exit(0);
    as_user("alice", &["secrets", "put", "db", "pw"], Some(b"s3cret")).assert_exit(0);
    as_user("alice", &["secrets", "acl", "put", "db", "bob", "read"], None).assert_exit(0);
    let base = "[[jobs.j.tasks]]\nkey = \"cmd\"\nkind = \"command\"\ncomponent = \"cmd\"\nargs = [\"--who\", \"a\"]\n\
                env = { GREETING = \"hi\" }\nstdin = \"one\"\n\
                [[jobs.j.tasks]]\nkey = \"probe\"\ncomponent = \"probe\"\nsecrets = [\"db/pw\"]\n\
                limits = { memory = \"64MiB\", max_out = \"1MiB\" }\nparams = { secret = \"db/pw\" }\n";
    let head = format!(
        "[bundle]\nname = \"k\"\n[components]\nprobe = \"{}\"\ncmd = \"{}\"\n[jobs.j]\n",
        guest("probe").display(),
        guest("cmd").display()
    );
    let dir = s.dir.path().join("k");
    std::fs::create_dir_all(&dir).unwrap();
    let run_as = |who: &str, tasks: &str, extra: &[&str]| {
        std::fs::write(dir.join("sluice.toml"), format!("{head}{tasks}")).unwrap();
        let mut args = vec!["run", dir.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = as_user(who, &args, None);
        out.assert_exit(0);
        out.json()
    };
    assert_eq!(executed(&run_as("alice", base, &[])), ["cmd", "probe"]);
    assert_eq!(executed(&run_as("alice", base, &[])), Vec::<String>::new(), "nothing changed: both reused");
    let changes: [(&str, &str, &[&str], &str, &str); 7] = [
        ("args", "\"--who\", \"a\"", &[], "cmd", "args changed"),
        ("env", "GREETING = \"hi\"", &[], "cmd", "env GREETING"),
        ("stdin", "stdin = \"one\"", &[], "cmd", "stdin changed"),
        ("memory", "memory = \"64MiB\"", &[], "probe", "limit memory"),
        ("max_out", "max_out = \"1MiB\"", &[], "probe", "limit max_out"),
        ("target", "", &["--target", "prod"], "probe", "context.target"),
        ("principal", "", &[], "probe", "context.principal"),
    ];
    for (what, from, extra, task, named) in changes {
        let to = match what {
            "args" => "\"--who\", \"b\"",
            "env" => "GREETING = \"hello\"",
            "stdin" => "stdin = \"two\"",
            "memory" => "memory = \"96MiB\"",
            "max_out" => "max_out = \"2MiB\"",
            _ => "",
        };
        let tasks = if from.is_empty() { base.to_string() } else { base.replace(from, to) };
        let who = if what == "principal" { "bob" } else { "alice" };
        let changed = run_as(who, &tasks, extra);
        let ran = executed(&changed);
        assert!(ran.contains(&task.to_string()), "{what}: `{task}` reran, not reused: {ran:?}");
        let explain = as_user(who, &["cache", "explain", &changed["run_id"].to_string(), task], None);
        explain.assert_exit(0);
        assert!(explain.stdout.contains(named), "{what}: the explanation names it:\n{}", explain.stdout);
    }
}
