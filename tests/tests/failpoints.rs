//! Crashes at every point of a run, deterministically: the `sluice` binary of the tests'
//! build has the `failpoints` feature, so `SLUICE_FAILPOINT=POINT:N` aborts it at the Nth
//! journal append, store flush, blob write or secret write (`runtime/src/util/failpoint.rs`).
//!
//! Each test sweeps one point over a representative run — a chain passing `/out` files, a
//! fan-out, a for_each, a run_job, a task revealing a secret and saving a checkpoint, a task
//! with side effects (a read-write mount), a transient failure and its retry wait — for
//! N = 1, 2, … until the run no longer reaches the Nth hit. After each abort the next
//! commands must find the durability contract kept (docs/ARCHITECTURE.md, "Durability" and
//! "Recovery: the resume rule"): the store opens and `store check` passes; every task the
//! crashed process reported finished (it reports only flushed events) is still finished in
//! the log and never runs again; `runs resume` completes the run with every result; and
//! every execution of the side-effecting task (each leaves a file) is an attempt in the log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_tests::{Out, Sluice, attempt_results, task_of};

const PRINCIPAL: (&str, &str) = ("SLUICE_PRINCIPAL", "alice");

const BUNDLE: &str = r#"[bundle]
name = "sweep"
[components]
probe = "{guest:probe}"
fs = "{guest:fsprobe}"

[jobs.main]
[[jobs.main.tasks]]
key = "first"
component = "fs"
params = { write = "/out/a.txt", data = "from first" }

[[jobs.main.tasks]]
key = "second"
component = "fs"
depends_on = ["first"]
params = { read = "/in/first/a.txt" }

[[jobs.main.tasks]]
key = "value"
component = "probe"
depends_on = ["first"]
secrets = ["db/pw"]
params = { set_n = "7", secret = "db/pw", checkpoint = "saved" }

[[jobs.main.tasks]]
key = "side"
component = "probe"
depends_on = ["first"]
mounts = [{ host = "work", guest = "/work", mode = "rw" }]
params = { touch = "/work/side-{{ task.attempt }}" }

[[jobs.main.tasks]]
key = "child"
depends_on = ["value"]
run_job = { job = "sub", parameters = { n = "{{ tasks.value.values.n }}" } }

[[jobs.main.tasks]]
key = "each"
depends_on = ["second", "value"]
for_each = { inputs = "[1, 2, 3]", concurrency = 2, task = { component = "probe", params = { set_i = "{{ input }}" } } }

[[jobs.main.tasks]]
key = "flaky"
component = "probe"
depends_on = ["value"]
params = { fail_below_attempt = 1 }
retries = { max = 2, initial = "100ms", jitter = 0 }

[[jobs.main.tasks]]
key = "last"
component = "probe"
depends_on = ["each", "child", "side", "flaky"]
params = { read_value = "value.n" }

[jobs.sub]
parameters = { n = "0" }
[[jobs.sub.tasks]]
key = "inner"
component = "probe"
params = { got = "{{ job.parameters.n }}" }
"#;

/// Every task of the run, for_each iterations included, and what each must end as.
const TASKS: [&str; 11] =
    ["first", "second", "value", "side", "child", "each", "each[0]", "each[1]", "each[2]", "flaky", "last"];

/// The swept run's id: run 1 of the template warmed the component cache.
const RUN: u64 = 2;

/// A state directory every iteration starts from (a copy): scope `db` with secret `pw`,
/// and the components compiled by a first run.
fn template() -> (Sluice, PathBuf) {
    let s = Sluice::new();
    let dir = s.bundle("sweep", BUNDLE);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    s.run_with(&["secrets", "scopes", "create", "db"], &[PRINCIPAL], None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &[PRINCIPAL], Some(b"hunter2")).assert_exit(0);
    s.run_with(&["run", dir.to_str().unwrap(), "--job", "sub", "--json"], &[PRINCIPAL], None).assert_exit(0);
    (s, dir)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The keys the plain progress lines (`  ✓ key success …`) report finished: what the
/// process had flushed (its observer sees nothing else).
fn acknowledged(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('✓'))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn show(s: &Sluice, run: u64) -> Option<Value> {
    let out = s.run_with(&["runs", "show", &run.to_string(), "--json"], &[PRINCIPAL], None);
    (out.code == 0).then(|| out.json())
}

/// The tasks of a `--json` answer (a run or a list of runs) that did not succeed, and why.
fn not_succeeded(stdout: &str) -> String {
    let json: Value = serde_json::from_str(stdout).unwrap_or(Value::Null);
    let runs = json.as_array().cloned().unwrap_or_else(|| vec![json]);
    let tasks = runs.iter().flat_map(|r| r["tasks"].as_array().cloned().unwrap_or_default());
    let failed = tasks.filter(|t| t["result"] != "success");
    failed.map(|t| format!("{} {} {:?}", t["key"], t["result"], attempts_errors(&t))).collect::<Vec<_>>().join("; ")
}

fn attempts_errors(task: &Value) -> Vec<String> {
    let attempts = task["attempts"].as_array().cloned().unwrap_or_default();
    attempts.iter().map(|a| format!("{}: {}", a["result"], a["error"])).collect()
}

fn attempts(run: &Value, key: &str) -> Vec<Value> {
    task_of(run, key)["attempts"].as_array().cloned().unwrap_or_default()
}

/// One iteration: crash the run at `point:n`. `false` when the run never got there (it
/// finished: the sweep of this point is complete).
fn crash_and_recover(template: &Sluice, bundle: &Path, point: &str, n: u64) -> bool {
    let s = Sluice::new();
    copy_dir(&template.dir.path().join("state"), &s.state());
    let dir = s.dir.path().join("sweep");
    copy_dir(bundle, &dir);
    let work = dir.join("work");
    let failpoint = format!("{point}:{n}");
    let crashed = s.run_with(
        &["run", dir.to_str().unwrap(), "--job", "main", "--json"],
        &[PRINCIPAL, ("SLUICE_FAILPOINT", &failpoint)],
        None,
    );
    if !crashed.stderr.contains(&format!("failpoint {failpoint}")) {
        crashed.assert_exit(0);
        return false;
    }
    assert_eq!(crashed.code, -1, "{failpoint}: the process aborted\n{}", crashed.stderr);
    let context = |what: &str| format!("{failpoint}: {what}\n--- stderr of the crashed run\n{}", crashed.stderr);
    let acked: BTreeSet<String> =
        acknowledged(&crashed.stderr).into_iter().filter(|k| TASKS.contains(&k.as_str())).collect();

    // the store opens and holds every acknowledged result
    let check = s.run_with(&["store", "check", "--json"], &[PRINCIPAL], None);
    assert_eq!(check.code, 0, "{}", context(&format!("store check after the crash\n{}{}", check.stdout, check.stderr)));
    let at_crash = show(&s, RUN);
    match &at_crash {
        None => assert!(acked.is_empty(), "{}", context("tasks were reported finished, yet the run is lost")),
        Some(run) => {
            for key in &acked {
                assert_eq!(task_of(run, key)["result"], "success", "{}", context(&format!("`{key}` was reported")));
            }
        }
    }

    // the next command completes the run (or, if its creation never became durable, a new one)
    let next = match &at_crash {
        Some(_) => s.run_with(&["runs", "resume", "--json"], &[PRINCIPAL], None),
        None => s.run_with(&["run", dir.to_str().unwrap(), "--job", "main", "--json"], &[PRINCIPAL], None),
    };
    assert_eq!(
        next.code,
        0,
        "{}",
        context(&format!("after the crash: {}\n{}", not_succeeded(&next.stdout), next.stderr))
    );
    let run = match &at_crash {
        Some(_) => RUN,
        None => next.json()["run_id"].as_u64().unwrap_or_else(|| panic!("{}", context(&next.stdout))),
    };
    let fin = show(&s, run).unwrap_or_else(|| panic!("{}", context(&format!("run {run} is missing"))));
    assert_eq!(fin["result"], "success", "{}", context(&format!("{fin:#}")));
    for key in TASKS {
        assert_eq!(task_of(&fin, key)["result"], "success", "{}", context(&format!("{key} in {fin:#}")));
    }
    if let Some(run) = &at_crash {
        for key in &acked {
            assert_eq!(attempts(run, key), attempts(&fin, key), "{}", context(&format!("`{key}` ran again")));
        }
    }
    let last: Value =
        serde_json::from_str(sluice_tests::last_attempt(&fin, "last")["output"].as_str().unwrap()).unwrap();
    assert_eq!(last["read"], 7, "{}", context("the value `value` published reached `last`"));
    let second: Value =
        serde_json::from_str(sluice_tests::last_attempt(&fin, "second")["output"].as_str().unwrap()).unwrap();
    assert_eq!(second["read"]["ok"], "from first", "{}", context("`first`'s /out file reached `second`"));

    // every execution of the side-effecting task is an attempt of the log, none silent (an
    // attempt whose start was durable may never have run: it ends interrupted)
    let touched: BTreeSet<String> =
        std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let results = attempt_results(&fin, "side");
    let recorded: BTreeSet<String> = (0..results.len()).map(|a| format!("side-{a}")).collect();
    let silent: Vec<&String> = touched.difference(&recorded).collect();
    assert!(silent.is_empty(), "{}", context(&format!("executions with no attempt: {silent:?}, attempts {results:?}")));
    assert!(touched.contains(&format!("side-{}", results.len() - 1)), "{}", context("the last attempt ran"));
    for (a, result) in results.iter().enumerate() {
        let ran = touched.contains(&format!("side-{a}"));
        assert!(ran || result == "interrupted", "{}", context(&format!("attempt {a} ({result}) never ran")));
    }
    let check = s.run_with(&["store", "check", "--json"], &[PRINCIPAL], None);
    assert_eq!(check.code, 0, "{}", context(&format!("store check at the end\n{}{}", check.stdout, check.stderr)));
    true
}

/// Sweeps `point` over the whole run; returns how many hits the run has.
fn sweep(point: &str) -> u64 {
    let (template, bundle) = template();
    let mut n = 1;
    while crash_and_recover(&template, &bundle, point, n) {
        n += 1;
    }
    assert!(
        n > 1,
        "the run never reached failpoint `{point}:1`: is {} built with the `failpoints` feature \
         (`cargo build --release --workspace` turns it on)?",
        sluice_tests::sluice_bin().display()
    );
    n - 1
}

#[test]
fn a_run_crashed_at_every_journal_append_resumes_with_every_result() {
    sweep("append");
}

#[test]
fn a_run_crashed_at_every_flush_resumes_with_every_result() {
    sweep("flush");
}

#[test]
fn a_run_crashed_at_every_blob_write_resumes_with_every_result() {
    sweep("blob");
}

#[test]
fn a_run_crashed_at_every_secret_write_resumes_with_every_result() {
    sweep("secret");
}

/// `secrets put` crashed at each of its writes: what it acknowledged is there, the store
/// opens, and a put again succeeds.
#[test]
fn secrets_put_crashed_at_every_write_leaves_a_store_that_opens() {
    let (template, _) = template();
    for n in 1.. {
        let s = Sluice::new();
        copy_dir(&template.dir.path().join("state"), &s.state());
        let failpoint = format!("secret:{n}");
        let put: Out =
            s.run_with(&["secrets", "put", "db", "pw"], &[PRINCIPAL, ("SLUICE_FAILPOINT", &failpoint)], Some(b"v2"));
        let crashed = put.stderr.contains(&format!("failpoint {failpoint}"));
        let versions = s.run_with(&["secrets", "list", "db", "--json"], &[PRINCIPAL], None);
        assert_eq!(versions.code, 0, "{failpoint}: {}{}", versions.stdout, versions.stderr);
        s.run_with(&["store", "check", "--json"], &[PRINCIPAL], None).assert_exit(0);
        if !crashed {
            put.assert_exit(0);
            assert!(n > 1, "secrets put never reached a failpoint: is the binary built with `failpoints`?");
            return;
        }
        s.run_with(&["secrets", "put", "db", "pw"], &[PRINCIPAL], Some(b"v3")).assert_exit(0);
    }
}

/// A checkpoint is durable by the time the guest is told it is saved: the process aborts
/// right then (before any group commit could flush it), and the resumed attempt starts
/// from it. (A reopen in the same process would pass without the flush: sled flushes when
/// the store is dropped.)
#[test]
fn a_checkpoint_is_durable_when_the_guest_is_told_it_is_saved() {
    let s = Sluice::new();
    let dir = s.bundle(
        "cp",
        "[bundle]\nname = \"cp\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { checkpoint = \"step-{{ task.attempt }}\" }\n",
    );
    let crashed = s.run_with(&["run", dir.to_str().unwrap()], &[("SLUICE_FAILPOINT", "checkpoint:1")], None);
    assert!(crashed.stderr.contains("failpoint checkpoint:1"), "the binary has failpoints: {}", crashed.stderr);
    s.run(&["runs", "resume", "--json"]).assert_exit(0);
    let run = s.run(&["runs", "show", "1", "--json"]).json();
    assert_eq!(attempt_results(&run, "t"), ["interrupted", "success"], "{run:#}");
    let out: Value = serde_json::from_str(sluice_tests::last_attempt(&run, "t")["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["checkpoint_before"], "step-0", "the second attempt starts from the first's checkpoint: {out:#}");
}
