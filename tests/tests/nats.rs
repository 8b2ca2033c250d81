//! Scale-out through NATS JetStream, end to end: a real `nats-server -js` on a free loopback
//! port, `sluice serve --nats` owning the store, and `sluice worker` processes running the
//! attempts. A killed worker's attempt runs again elsewhere and is recorded once; a worker
//! without a task's labels never gets it; secrets are revealed through the server and
//! audited as the worker, and only to the worker the attempt was delivered to; a killed
//! server loses nothing (the restarted one adopts the attempts workers kept running);
//! `/out` moves between workers by content; a NATS server requiring a password refuses a
//! worker without it, one requiring TLS a worker that does not trust its certificate.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{Background, Sluice, attempt_results, last_attempt, task_of};

#[path = "nats/medallion.rs"]
mod medallion;
#[path = "nats/models.rs"]
mod models;
#[path = "nats/security.rs"]
mod security;
#[path = "nats/upgrade.rs"]
mod upgrade;

/// A `nats-server -js` of this test, stopped when dropped.
struct Nats {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        Nats::start_with(&[])
    }

    /// `nats-server -js` with `extra` arguments (e.g. `--user`, `--pass`).
    fn start_with(extra: &[&str]) -> Nats {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let store = tempfile::tempdir().expect("tempdir");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server (scripts/setup installs it: apt-get install nats-server)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server never listened on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats { child, url: format!("nats://127.0.0.1:{port}"), _store: store }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice worker --nats … --name NAME` with its own directory; it logs each attempt.
/// `own_cache`: compile components into a cache of its own (so it fetches them by hash).
fn worker(s: &Sluice, nats: &Nats, name: &str, extra: &[&str], own_cache: bool) -> Background {
    let dir = s.dir.path().join(format!("worker-{name}"));
    let cache = s.dir.path().join(format!("cache-{name}"));
    let mut args = vec!["worker", "--nats", &nats.url, "--name", name, "--dir", dir.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let mut env = vec![("SLUICE_LOG", "sluice::scaleout=info")];
    if own_cache {
        env.push(("SLUICE_CACHE_DIR", cache.to_str().expect("utf-8")));
    }
    let mut w = s.spawn_env(&args, &env);
    w.wait_for("pulling from");
    w
}

/// Whether worker `w` has logged starting an attempt of task `task`.
fn ran(w: &mut Background, task: &str) -> bool {
    let needle = format!("task={task} ");
    w.drain().iter().any(|l| l.contains("attempt started") && l.contains(&needle))
}

/// How many of `workers` have logged starting any attempt.
fn busy(workers: &mut [Background]) -> usize {
    workers.iter_mut().map(|w| w.drain().iter().any(|l| l.contains("attempt started"))).filter(|b| *b).count()
}

fn repo_example(name: &str) -> PathBuf {
    sluice_tests::repo().join("examples").join(name)
}

#[test]
fn a_job_runs_on_workers_with_values_checkpoints_and_files() {
    let nats = Nats::start();
    let s = Sluice::new();
    let pipeline = repo_example("pipeline");
    let server = s.serve(&["--nats", &nats.url, pipeline.to_str().unwrap()]);
    assert!(server.seen.iter().any(|l| l.contains("through NATS JetStream")), "{:?}", server.seen);
    let mut workers: Vec<Background> =
        ["w1", "w2", "w3"].iter().map(|n| worker(&s, &nats, n, &["--slots", "2"], false)).collect();
    let (code, run) = s.run_json(&pipeline, &["--job", "nightly"]);
    assert_eq!(code, 0, "{run:#}");
    // flaky `download` failed twice (transient) and resumed from its checkpoints: the
    // checkpoints a worker saved came back to the server and went out with the next attempt
    assert_eq!(attempt_results(&run, "download"), ["failed", "failed", "success"], "{run:#}");
    assert_eq!(task_of(&run, "extract")["result"], "success");
    // every component attempt ran on a worker, none in the server
    for task in ["download", "extract"] {
        assert!(workers.iter_mut().any(|w| ran(w, task)), "no worker ran `{task}`");
    }
    let busy = busy(&mut workers);
    assert!(busy >= 2, "the attempts should spread over the workers, {busy} of 3 ran any");
    for w in workers {
        w.kill();
    }
    server.kill();
}

#[test]
fn a_killed_workers_attempt_is_retried_elsewhere_and_recorded_once() {
    let nats = Nats::start();
    let s = Sluice::new();
    let bundle = s.bundle("slow", SLOW_BUNDLE);
    let server = s.serve(&["--nats", &nats.url, "--lease", "1s", bundle.to_str().unwrap()]);
    assert!(server.seen.iter().any(|l| l.contains("through NATS JetStream")), "{:?}", server.seen);
    let mut first = worker(&s, &nats, "first", &["--slots", "1"], false);
    std::thread::scope(|scope| {
        let running = scope.spawn(|| s.run_json(&bundle, &[]));
        first.wait_for("task=slow ");
        first.kill(); // SIGKILL, mid-attempt: no outcome, no more heartbeats
        let mut second = worker(&s, &nats, "second", &["--slots", "1"], false);
        let (code, run) = running.join().expect("the run");
        assert_eq!(code, 0, "{run:#}");
        // the attempt went to the other worker once the lease ran out: one attempt,
        // recorded once, not failed (no retry policy was needed)
        assert_eq!(attempt_results(&run, "slow"), ["success"], "{run:#}");
        assert!(ran(&mut second, "slow"), "the second worker never ran `slow`");
        // its value reached the downstream task
        let after = &task_of(&run, "after")["attempts"][0]["output"];
        let output: serde_json::Value = serde_json::from_str(after.as_str().expect("output")).expect("json");
        assert_eq!(output["read"], 1, "{output:#}");
        second.kill();
    });
    server.kill();
}

#[test]
fn a_worker_without_the_labels_never_gets_the_task() {
    let nats = Nats::start();
    let s = Sluice::new();
    let bundle = s.bundle(
        "labels",
        r#"
[bundle]
name = "labels"
[components]
probe = { path = "{guest:probe}" }
[jobs.mixed]
[[jobs.mixed.tasks]]
key = "anywhere"
component = "probe"
[[jobs.mixed.tasks]]
key = "on_gpu"
component = "probe"
worker = { labels = { pool = "gpu" } }
"#,
    );
    let server = s.serve(&["--nats", &nats.url, bundle.to_str().unwrap()]);
    assert!(server.seen.iter().any(|l| l.contains("through NATS JetStream")), "{:?}", server.seen);
    // its own compiled-component cache: it fetches the component by hash and compiles it
    let mut cpu = worker(&s, &nats, "cpu", &["--labels", "pool=cpu"], true);
    std::thread::scope(|scope| {
        let running = scope.spawn(|| s.run_json(&bundle, &[]));
        cpu.wait_for("task=anywhere ");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!ran(&mut cpu, "on_gpu"), "the cpu worker got the gpu task:\n{}", cpu.seen.join("\n"));
        let mut gpu = worker(&s, &nats, "gpu", &["--labels", "pool=gpu", "--labels", "zone=a"], true);
        let (code, run) = running.join().expect("the run");
        assert_eq!(code, 0, "{run:#}");
        assert_eq!(task_of(&run, "on_gpu")["result"], "success");
        assert!(ran(&mut gpu, "on_gpu"));
        assert!(!ran(&mut cpu, "on_gpu"));
        gpu.kill();
    });
    cpu.kill();
    server.kill();
}

#[test]
fn bad_worker_arguments_are_refused() {
    let s = Sluice::new();
    let out = s.run(&["worker", "--nats", "nats://127.0.0.1:1", "--labels", "pool"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("name=value"), "{}", out.stderr);
    let out = s.run(&["worker", "--nats", "nats://127.0.0.1:1", "--slots", "0"]);
    out.assert_exit(2);
    let out = s.run(&["worker", "--nats", "nats://127.0.0.1:1"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("connecting to NATS at nats://127.0.0.1:1"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "the error, once:\n{}", out.stderr);
}

/// The JSON output of task `key`'s last attempt.
fn output_of(run: &serde_json::Value, key: &str) -> serde_json::Value {
    let text = last_attempt(run, key)["output"].as_str().unwrap_or_else(|| panic!("{key}: no output in {run:#}"));
    serde_json::from_str(text).expect("output is JSON")
}

const SECRET: &str = "w0rker-s3cret+value";

#[test]
fn a_task_on_a_worker_reveals_its_secrets_through_the_server_audited_as_the_worker() {
    let nats = Nats::start();
    let s = Sluice::new();
    let alice = [("SLUICE_PRINCIPAL", "alice")];
    s.run_with(&["secrets", "scopes", "create", "db"], &alice, None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &alice, Some(SECRET.as_bytes())).assert_exit(0);
    let bundle = s.bundle(
        "sec",
        r#"
[bundle]
name = "sec"
[components]
probe = { path = "{guest:probe}" }
[jobs.sec]
[[jobs.sec.tasks]]
key = "granted"
component = "probe"
secrets = ["db/pw"]
params = { secret = "db/pw", echo_secret = "1" }
[[jobs.sec.tasks]]
key = "ungranted"
component = "probe"
params = { secret = "db/pw" }
"#,
    );
    let server = s.serve(&["--nats", &nats.url, bundle.to_str().unwrap()]);
    let mut w = worker(&s, &nats, "w1", &["--slots", "2"], false);
    let out = s.run_with(&["run", bundle.to_str().unwrap(), "--json"], &alice, None);
    out.assert_exit(0);
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET), "the value leaked: {}", out.stdout);
    let run = out.json();
    assert!(ran(&mut w, "granted") && ran(&mut w, "ungranted"), "both ran on the worker");
    let granted = output_of(&run, "granted");
    assert_eq!(granted["secret_result"]["ok"], "[REDACTED]", "revealed on the worker, redacted there: {granted:#}");
    assert_eq!(granted["secret_len"], SECRET.len(), "{granted:#}");
    assert_eq!(granted["echo"]["raw"], "[REDACTED]", "{granted:#}");
    let denied = output_of(&run, "ungranted");
    let err = denied["secret_result"]["err"].as_str().unwrap_or_default();
    assert!(err.contains("not granted to task `ungranted`"), "{denied:#}");
    // the server's vault audited both, as alice's run, asked by worker w1
    let trail = s.run_with(&["audit", "--json", "--run", &run["run_id"].to_string()], &alice, None);
    trail.assert_exit(0);
    let trail = trail.json();
    let records = trail.as_array().expect("records");
    assert_eq!(records.len(), 2, "{trail:#}");
    for r in records {
        assert_eq!((r["principal"].as_str(), r["via"].as_str()), (Some("alice"), Some("worker:w1")), "{r:#}");
        assert_eq!(r["granted"], r["task"] == "granted", "{r:#}");
    }
    let human = s.run_with(&["audit", "--run", &run["run_id"].to_string()], &alice, None);
    assert!(human.stdout.contains("by alice via worker:w1"), "{}", human.stdout);
    assert!(w.drain().iter().all(|l| !l.contains(SECRET)), "the worker logged the value");
    w.kill();
    server.kill();
}

const SLOW_BUNDLE: &str = r#"
[bundle]
name = "slow"
[components]
probe = { path = "{guest:probe}" }
[jobs.slow]
[[jobs.slow.tasks]]
key = "slow"
component = "probe"
params = { sleep_ms = "3000", set_done = "1" }
[[jobs.slow.tasks]]
key = "after"
component = "probe"
depends_on = ["slow"]
params = { read_value = "slow.done" }
"#;

#[test]
fn a_killed_server_loses_nothing_and_records_nothing_twice() {
    // the worker ends the attempt while the server is down: its outcome waits in JetStream
    server_killed_mid_attempt(false);
}

#[test]
fn a_restarted_server_adopts_an_attempt_still_running_on_a_worker() {
    // the server is back before the worker ends: it finds the attempt in the work stream
    server_killed_mid_attempt(true);
}

/// Kill -9 the server while a worker runs `slow`, restart it (before the attempt ends, or
/// once the worker has published its outcome): the resumed run adopts the attempt — it is
/// recorded once, a success, never interrupted nor run again — and the run completes.
fn server_killed_mid_attempt(back_before_it_ends: bool) {
    let nats = Nats::start();
    let s = Sluice::new();
    let bundle = s.bundle("slow", SLOW_BUNDLE);
    let args = ["--nats", &nats.url, "--lease", "1s", bundle.to_str().unwrap()];
    let server = s.serve(&args);
    let mut w = worker(&s, &nats, "keeper", &["--slots", "1"], false);
    let client = s.spawn(&["run", bundle.to_str().unwrap(), "--json"]);
    w.wait_for("task=slow ");
    server.kill(); // SIGKILL mid-attempt: the worker keeps running it and publishes its outcome
    client.kill();
    if !back_before_it_ends {
        w.wait_for("attempt ended");
    }
    let server = s.serve(&args);
    let deadline = Instant::now() + Duration::from_secs(90);
    let run = loop {
        let shown = s.run(&["runs", "show", "1", "--json"]);
        if shown.code == 0 {
            let run = shown.json();
            if run["result"].is_string() {
                break run;
            }
        }
        assert!(Instant::now() < deadline, "the run never ended after the restart");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["result"], "success", "{run:#}");
    // one attempt, the one the worker ran while the server was away: not interrupted, not
    // run again; the downstream task ran once with its value
    assert_eq!(attempt_results(&run, "slow"), ["success"], "{run:#}");
    let started = w.drain().iter().filter(|l| l.contains("attempt started") && l.contains("task=slow ")).count();
    assert_eq!(started, 1, "`slow` ran once:\n{}", w.seen.join("\n"));
    assert_eq!(attempt_results(&run, "after"), ["success"], "{run:#}");
    assert_eq!(output_of(&run, "after")["read"], 1, "{run:#}");
    w.kill();
    server.kill();
}

#[test]
fn a_downstream_task_on_another_worker_reads_its_upstreams_out_by_content() {
    let nats = Nats::start();
    let s = Sluice::new();
    let bundle = s.bundle(
        "files",
        r#"
[bundle]
name = "files"
[components]
fs = { path = "{guest:fsprobe}" }
[jobs.files]
[[jobs.files.tasks]]
key = "up"
component = "fs"
worker = { labels = { pool = "a" } }
params = { write = "/out/data.txt", data = "written on worker a" }
[[jobs.files.tasks]]
key = "down"
component = "fs"
depends_on = ["up"]
worker = { labels = { pool = "b" } }
params = { read = "/in/up/data.txt" }
"#,
    );
    let server = s.serve(&["--nats", &nats.url, bundle.to_str().unwrap()]);
    // each worker has its own directory (blob store): the file moves by its blake3
    let mut a = worker(&s, &nats, "a", &["--labels", "pool=a"], false);
    let mut b = worker(&s, &nats, "b", &["--labels", "pool=b"], false);
    let (code, run) = s.run_json(&bundle, &[]);
    assert_eq!(code, 0, "{run:#}");
    assert!(ran(&mut a, "up") && ran(&mut b, "down"), "up on a, down on b");
    assert_eq!(output_of(&run, "down")["read"]["ok"], "written on worker a", "{run:#}");
    a.kill();
    b.kill();
    server.kill();
}

#[test]
fn a_nats_server_requiring_a_password_refuses_a_worker_without_it() {
    let nats = Nats::start_with(&["--user", "sluice", "--pass", "n4ts-pw"]);
    let s = Sluice::new();
    let out = s.run(&["worker", "--nats", &nats.url]);
    out.assert_exit(2);
    assert!(out.stderr.contains(&format!("connecting to NATS at {}", nats.url)), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("authorization"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "the error, once (not async-nats' log too):\n{}", out.stderr);
    let out = s.run(&["worker", "--nats", &nats.url, "--nats-user", "sluice", "--nats-password", "wrong"]);
    out.assert_exit(2);
    assert!(out.stderr.to_lowercase().contains("authorization"), "{}", out.stderr);
    let out = s.run(&["worker", "--nats", &nats.url, "--nats-user", "sluice"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("--nats-user and --nats-password go together"), "{}", out.stderr);
    // with them (the server through the environment), a job runs on the worker
    let bundle = s.bundle(
        "auth",
        "[bundle]\nname = \"auth\"\n[components]\nprobe = { path = \"{guest:probe}\" }\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\n",
    );
    let env = [("SLUICE_NATS_USER", "sluice"), ("SLUICE_NATS_PASSWORD", "n4ts-pw")];
    let server = s.serve_env(&["--nats", &nats.url, bundle.to_str().unwrap()], &env);
    let mut w = worker(&s, &nats, "authed", &["--nats-user", "sluice", "--nats-password", "n4ts-pw"], false);
    let (code, run) = s.run_json(&bundle, &[]);
    assert_eq!(code, 0, "{run:#}");
    assert!(ran(&mut w, "t"));
    w.kill();
    server.kill();
}

#[test]
fn a_worker_bound_to_a_tenants_stream_never_sees_another_tenants_attempts() {
    let nats = Nats::start();
    let s = Sluice::new();
    let config = s.dir.path().join("server.toml");
    let streams =
        "[workspaces.acme]\nnats_stream = \"TENANT_ACME\"\n[workspaces.globex]\nnats_stream = \"TENANT_GLOBEX\"\n";
    std::fs::write(&config, streams).expect("config");
    let bundle = s.bundle(
        "tenants",
        "[bundle]\nname = \"tenants\"\n[components]\nprobe = { path = \"{guest:probe}\" }\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\n",
    );
    let args =
        ["--nats", &nats.url, "--config", config.to_str().unwrap(), "--workspace", "acme", "--workspace", "globex"];
    let server = s.serve(&[&args[..], &[bundle.to_str().unwrap()]].concat());
    let mut acme = worker(&s, &nats, "acme", &["--stream", "TENANT_ACME"], false);
    let mut globex = worker(&s, &nats, "globex", &["--stream", "TENANT_GLOBEX"], false);
    let mut shared = worker(&s, &nats, "shared", &[], false);
    let started = |w: &mut Background| w.drain().iter().filter(|l| l.contains("attempt started")).count();
    for workspace in ["acme", "globex"] {
        let (code, run) = s.run_json(&bundle, &["--workspace", workspace, "--no-cache"]);
        assert_eq!(code, 0, "{run:#}");
    }
    assert_eq!(started(&mut acme), 1, "acme's worker ran acme's run only:\n{}", acme.seen.join("\n"));
    assert_eq!(started(&mut globex), 1, "globex's worker ran globex's run only:\n{}", globex.seen.join("\n"));
    assert_eq!(started(&mut shared), 0, "the shared stream's worker saw no tenant's attempt");
    let bad = s.run(&["worker", "--nats", &nats.url, "--stream", "a.b"]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("work stream"), "{}", bad.stderr);
    for w in [acme, globex, shared] {
        w.kill();
    }
    server.kill();
}
