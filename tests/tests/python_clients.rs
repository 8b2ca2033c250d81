//! HTTP clients written in another language than the server, against `sluice serve`: the
//! official Databricks SDK for Python (pinned by scripts/setup) and Python's standard
//! library alone.

use std::process::Command;

use sluice_tests::{Server, Sluice, repo};

/// The jobs the clients drive: `etl` (a `date` parameter), `flaky` (fails until repaired
/// with `fail = ""`) and `long` (runs until canceled).
const BUNDLE: &str = "[bundle]\nname = \"py\"\n[components]\nprobe = \"{guest:probe}\"\nspin = \"{guest:spin}\"\n\
[jobs.etl]\nparameters = { date = \"2024-01-01\" }\n\
[[jobs.etl.tasks]]\nkey = \"extract\"\ncomponent = \"probe\"\nparams = { day = \"{{ job.parameters.date }}\" }\n\
[[jobs.etl.tasks]]\nkey = \"load\"\ncomponent = \"probe\"\ndepends_on = [\"extract\"]\n\
[jobs.flaky]\nparameters = { fail = \"permanent\" }\n\
[[jobs.flaky.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
[[jobs.flaky.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\nparams = { fail = \"{{ job.parameters.fail }}\" }\n\
[jobs.long]\n[[jobs.long.tasks]]\nkey = \"spin\"\ncomponent = \"spin\"\ntimeout = \"10m\"\n";

fn start(s: &Sluice) -> (Server, String) {
    let dir = s.bundle("py", BUNDLE);
    let server = s.serve(&[dir.to_str().unwrap()]);
    let token = s.token("alice", "default", None);
    (server, token)
}

/// The Python scripts/setup prepared (its venv, `PYENV` or target/pyenv).
fn python_bin() -> std::path::PathBuf {
    let env = std::env::var_os("PYENV").map(|p| repo().join(p));
    env.unwrap_or_else(|| repo().join("target/pyenv")).join("bin/python")
}

/// Run `python SCRIPT` with `env`; panics with its output unless it exits 0 and prints `ok`.
fn python(script: &str, env: &[(&str, String)], ok: &str) {
    let out = Command::new(python_bin())
        .arg(repo().join("tests/python").join(script))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .output()
        .expect("running Python (scripts/setup makes the venv the tests use)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains(ok), "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
}

#[test]
fn the_databricks_sdk_lists_runs_waits_reads_repairs_and_cancels() {
    let probe = Command::new(python_bin()).args(["-c", "import databricks.sdk"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "the Databricks SDK for Python is not installed: run scripts/setup (pip install databricks-sdk)"
    );
    let s = Sluice::new();
    let (server, token) = start(&s);
    let env = [
        ("DATABRICKS_HOST", server.base.clone()),
        ("DATABRICKS_TOKEN", token),
        ("PROBE_JOB", "etl".into()),
        ("PROBE_PARAMS", r#"{"date": "2024-05-01"}"#.into()),
        ("PROBE_FAILING_JOB", "flaky".into()),
        ("PROBE_REPAIR_PARAMS", r#"{"fail": ""}"#.into()),
        ("PROBE_LONG_JOB", "long".into()),
    ];
    python("dbsdk_probe.py", &env, "PROBE OK");
}

#[test]
fn python_s_standard_library_runs_repairs_and_cancels() {
    let s = Sluice::new();
    let (server, token) = start(&s);
    let env = [
        ("SLUICE_URL", server.base.clone()),
        ("ETL_JOB", server.job_id(&token, "etl").to_string()),
        ("FLAKY_JOB", server.job_id(&token, "flaky").to_string()),
        ("LONG_JOB", server.job_id(&token, "long").to_string()),
        ("SLUICE_TOKEN", token),
    ];
    python("stdlib_client.py", &env, "STDLIB OK");
}

/// How many tasks the wide job has: more than two of Jobs API 2.2's pages of 100.
const WIDE_TASKS: usize = 250;

#[test]
fn the_databricks_sdk_reads_every_task_of_a_run_of_more_than_one_page() {
    let mut bundle = String::from("[bundle]\nname = \"wide\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.wide]\n");
    for i in 0..WIDE_TASKS {
        bundle.push_str(&format!("[[jobs.wide.tasks]]\nkey = \"t{i:03}\"\ncomponent = \"probe\"\n"));
    }
    let s = Sluice::new();
    let dir = s.bundle("wide", &bundle);
    let server = s.serve(&[dir.to_str().unwrap()]);
    let token = s.token("alice", "default", None);
    let env = [
        ("DATABRICKS_HOST", server.base.clone()),
        ("DATABRICKS_TOKEN", token),
        ("WIDE_JOB", "wide".into()),
        ("WIDE_TASKS", WIDE_TASKS.to_string()),
    ];
    python("dbsdk_wide.py", &env, "WIDE OK");
}
