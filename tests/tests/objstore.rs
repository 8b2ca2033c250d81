//! File arrival in object stores, against real servers started here on 127.0.0.1: S3
//! (`s3s-fs`), Azure Blob (Azurite) and GCS (`fake-gcs-server`), with `sluice serve` on a
//! clock the test moves (`SLUICE_TEST_CLOCK`). For each store: new files start one run that
//! sees exactly them, only after the quiet period; nothing new starts nothing; a rewrite
//! fires again; a crash between listing and the run's creation (`SLUICE_FAILPOINT`) neither
//! loses nor doubles the batch; bad credentials and an unreachable endpoint are a visible
//! error and a metric, never a run. And `sluice validate` refuses bad URLs by file:line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::objstores::{Kind, ObjectServer, free_port};
use sluice_tests::{Server, Sluice};

/// 2026-03-28T12:00:00Z
const T0: u64 = 1_774_699_200_000;
const WAIT: Duration = Duration::from_secs(60);
const OPS: (&str, &str) = ("SLUICE_PRINCIPAL", "ops");

struct Clock(PathBuf);

impl Clock {
    fn set(&self, at: u64) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, at.to_string()).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

fn list(s: &Sluice) -> Vec<Value> {
    let out = s.run(&["triggers", "list", "--json"]);
    if out.code != 0 {
        return vec![];
    }
    out.json()["triggers"].as_array().cloned().unwrap_or_default()
}

fn status(s: &Sluice, job: &str) -> Option<Value> {
    list(s).into_iter().find(|t| t["job"].as_str().is_some_and(|j| j.ends_with(job)))
}

fn start(s: &Sluice, bundle: &Path, clock: &Clock, failpoint: Option<&str>) -> Server {
    let mut env = vec![("SLUICE_TEST_CLOCK", clock.0.to_str().unwrap()), OPS];
    if let Some(f) = failpoint {
        env.push(("SLUICE_FAILPOINT", f));
    }
    let server = s.serve_env(&[bundle.to_str().unwrap()], &env);
    let deadline = Instant::now() + WAIT;
    while status(s, "landing").is_none() {
        assert!(Instant::now() < deadline, "the trigger never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn runs(server: &Server, token: &str, job_id: u64) -> Vec<u64> {
    let (status, v) = server.get(Some(token), &format!("/api/2.2/jobs/runs/list?job_id={job_id}&limit=25"));
    assert_eq!(status, 200, "{v}");
    v["runs"].as_array().map(|r| r.iter().filter_map(|x| x["run_id"].as_u64()).collect()).unwrap_or_default()
}

fn wait_runs(s: &Sluice, server: &Server, token: &str, job_id: u64, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = runs(server, token, job_id);
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "job {job_id} has {} runs, never {n}: {:#?}", r.len(), list(s));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `(path, size)` of `{{ trigger.files }}` as the probe task of `run` saw them.
fn files(server: &Server, token: &str, run: u64) -> Vec<(String, u64)> {
    let done = server.wait_terminal(token, run);
    assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
    let task = done["tasks"][0]["run_id"].as_u64().unwrap();
    let (_, out) = server.get(Some(token), &format!("/api/2.2/jobs/runs/get-output?run_id={task}"));
    let value: Value = serde_json::from_str(out["notebook_output"]["result"].as_str().unwrap()).unwrap();
    let files: Value = serde_json::from_str(value["params"]["files"].as_str().unwrap()).unwrap();
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().into(), f["size"].as_u64().unwrap()))
        .collect()
}

/// Write `prefix/path` into bucket `landing`: through `objstore::Store::put` — except on
/// fake-gcs-server, which has no XML-API upload (object_store's GCS put): its JSON upload.
fn put(server: &ObjectServer, prefix: &str, path: &str, data: &str) {
    if server.kind == Kind::Gcs {
        let url = format!(
            "http://127.0.0.1:{}/upload/storage/v1/b/landing/o?uploadType=media&name={prefix}/{path}",
            server.port
        );
        let resp = ureq::post(&url).header("Content-Type", "text/csv").send(data.as_bytes());
        assert!(resp.is_ok(), "put {path}: {resp:?}");
        return;
    }
    let store = sluice::objstore::Store::open(&server.url("landing", prefix), &server.credentials(false))
        .expect("open the store");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.put(path, data.as_bytes().to_vec().into())).unwrap_or_else(|e| panic!("put {path}: {e}"));
}

/// Move the server's clock and give its listing (a task of its own) time to answer.
fn advance(clock: &Clock, at: u64) {
    clock.set(at);
    std::thread::sleep(Duration::from_millis(1000));
}

fn secret(s: &Sluice, key: &str, value: &str) {
    s.run_with(&["secrets", "put", "store", key], &[OPS], Some(value.as_bytes())).assert_exit(0);
}

fn bundle(url: &str, bad_url: &str, gone_url: &str) -> String {
    let job = |name: &str, url: &str, creds: &str| {
        format!(
            "[jobs.{name}]\ntrigger = {{ file_arrival = {{ url = \"{url}\", credentials = \"store/{creds}\", \
             wait_after_last_change = \"30s\", min_time_between_triggers = \"60s\" }} }}\n\
             [[jobs.{name}.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = {{ files = \"{{{{ trigger.files }}}}\" }}\n"
        )
    };
    format!(
        "[bundle]\nname = \"obj\"\n[components]\nprobe = \"{{guest:probe}}\"\n{}{}{}",
        job("landing", url, "good"),
        job("broken", bad_url, "bad"),
        job("gone", gone_url, "gone")
    )
}

/// The whole story on one kind of store.
fn file_arrival_on(kind: Kind) {
    let store_server = ObjectServer::start(kind, "landing");
    let s = Sluice::new();
    s.run_with(&["secrets", "scopes", "create", "store"], &[OPS], None).assert_exit(0);
    secret(&s, "good", &store_server.credentials(false));
    secret(&s, "bad", &store_server.credentials(true));
    // an endpoint nothing listens on
    let gone =
        store_server.credentials(false).replace(&format!(":{}", store_server.port), &format!(":{}", free_port()));
    secret(&s, "gone", &gone);
    let url = store_server.url("landing", "in/");
    let dir = s.bundle("obj", &bundle(&url, &url, &url));
    let clock = Clock(s.dir.path().join("clock"));
    clock.set(T0);

    let server = start(&s, &dir, &clock, None);
    let token = s.token("alice", "default", None);
    let job = server.job_id(&token, "landing");
    let w = &store_server;
    std::thread::sleep(Duration::from_millis(1000));
    put(w, "in", "a.csv", "1,2\n");
    put(w, "in", "day/b.csv", "3\n");
    put(w, "out", "x.csv", "not watched\n");
    advance(&clock, T0 + 10_000);
    advance(&clock, T0 + 25_000);
    assert!(runs(&server, &token, job).is_empty(), "not quiet for 30 s yet");
    clock.set(T0 + 45_000);
    let first = wait_runs(&s, &server, &token, job, 1);
    assert_eq!(files(&server, &token, first[0]), [("a.csv".into(), 4), ("day/b.csv".into(), 2)]);

    // nothing new: nothing more
    clock.set(T0 + 200_000);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&server, &token, job).len(), 1, "consumed files never start a run again");

    // a rewrite is a new version: it fires again, alone
    put(w, "in", "a.csv", "1,2,3,4\n");
    advance(&clock, T0 + 210_000);
    clock.set(T0 + 250_000);
    let second = wait_runs(&s, &server, &token, job, 2);
    assert_eq!(files(&server, &token, second[0]), [("a.csv".into(), 8)]);

    // bad credentials and an unreachable endpoint: a visible error and a metric, no run
    for name in ["broken", "gone"] {
        let st = status(&s, name).expect("listed");
        let error = st["error"].as_str().unwrap_or_default();
        assert!(error.contains("listing") && error.contains(&url), "{name}: {st}");
        assert_eq!(runs(&server, &token, server.job_id(&token, name)).len(), 0, "{name} started nothing");
    }
    let (_, metrics) = server.get(None, "/metrics");
    let text = metrics["raw"].as_str().unwrap_or_default();
    assert!(text.contains("kind=\"file_arrival\",outcome=\"listing_failed\""), "{text}");
    assert_eq!(server.terminate(), 0);

    // the server dies after listing, before the run's creation is durable (its first
    // journal append): the batch comes again, whole, after a restart — once
    put(w, "in", "c.csv", "5\n");
    let mut doomed = start(&s, &dir, &clock, Some("append:1"));
    std::thread::sleep(Duration::from_millis(1000));
    advance(&clock, T0 + 300_000);
    clock.set(T0 + 340_000);
    doomed.wait_for("failpoint append:1");
    let deadline = Instant::now() + WAIT;
    while doomed.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the failpoint did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = start(&s, &dir, &clock, None);
    std::thread::sleep(Duration::from_millis(1000));
    advance(&clock, T0 + 350_000);
    clock.set(T0 + 380_000);
    let third = wait_runs(&s, &server, &token, job, 3);
    assert_eq!(files(&server, &token, third[0]), [("c.csv".into(), 2)]);
    clock.set(T0 + 500_000);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&server, &token, job).len(), 3, "the batch started exactly one run");
}

#[test]
fn file_arrival_on_s3() {
    file_arrival_on(Kind::S3);
}

#[test]
fn file_arrival_on_azure_blob() {
    file_arrival_on(Kind::Azure);
}

#[test]
fn file_arrival_on_gcs() {
    file_arrival_on(Kind::Gcs);
}

#[test]
fn bad_object_store_urls_are_refused_by_file_and_line() {
    let s = Sluice::new();
    for (url, creds, needle) in [
        ("ftp://landing/in/", ", credentials = \"store/good\"", "unsupported URL scheme `ftp://`"),
        ("s3://landing/in/", "", "needs `credentials = \"scope/key\"`"),
        ("gs://Bad_Bucket/in/", ", credentials = \"store/good\"", "bad bucket name"),
        ("az://landing/in/", ", credentials = \"store\"", "scope/key"),
    ] {
        let text = format!(
            "[bundle]\nname = \"bad\"\n[components]\nprobe = \"{{guest:probe}}\"\n[jobs.landing]\n\
             trigger = {{ file_arrival = {{ url = \"{url}\"{creds} }} }}\n\
             [[jobs.landing.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\n"
        );
        let dir = s.bundle("bad", &text);
        let out = s.run(&["validate", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(needle), "{url}: {}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:6:"), "{url}: file:line: {}", out.stderr);
    }
}
