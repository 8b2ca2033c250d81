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

// ---- object-storage mounts (`mounts = [{ url = "s3://…", … }]`), against s3s-fs ----

/// Jobs reading `s3://${var.bucket}/bronze/` read-only and writing `…/silver/`
/// read-write (one of them failing after its write), with credentials `store/<creds>`.
fn mount_bundle(creds: &str) -> String {
    let mount = |prefix: &str, guest: &str, mode: &str| {
        format!(
            "mounts = [{{ url = \"s3://${{var.bucket}}/{prefix}/\", guest = \"{guest}\", mode = \"{mode}\", \
             credentials = \"store/{creds}\" }}]\n"
        )
    };
    let task = |job: &str, mount: &str, params: &str| {
        format!("[jobs.{job}]\n[[jobs.{job}.tasks]]\nkey = \"t\"\ncomponent = \"fs\"\n{mount}params = {{ {params} }}\n")
    };
    format!(
        "[bundle]\nname = \"mnt\"\n[variables.bucket]\ndefault = \"landing\"\n[components]\nfs = \"{{guest:fsprobe}}\"\n{}{}{}",
        task("read", &mount("bronze", "/bronze", "ro"), "read = \"/bronze/day/orders.csv\", list = \"/bronze\""),
        task(
            "write",
            &mount("silver", "/silver", "rw"),
            "write = \"/silver/gold.csv\", data = \"g\", list = \"/silver\""
        ),
        task("broken", &mount("silver", "/silver", "rw"), "write = \"/silver/never.csv\", data = \"x\", fail = \"1\""),
    )
}

fn run_job(s: &Sluice, dir: &Path, job: &str, principal: &str) -> (i32, Value) {
    let out =
        s.run_with(&["run", dir.to_str().unwrap(), "--job", job, "--json"], &[("SLUICE_PRINCIPAL", principal)], None);
    (out.code, out.json())
}

fn objects_indexed(s: &Sluice) -> usize {
    std::fs::read_dir(s.state().join("objects")).map(|d| d.count()).unwrap_or(0)
}

fn get(server: &ObjectServer, prefix: &str, path: &str) -> Option<String> {
    let store = sluice::objstore::Store::open(&server.url("landing", prefix), &server.credentials(false)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.get(path)).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn object_mounts_stage_by_content_and_upload_only_after_success() {
    let server = ObjectServer::start(Kind::S3, "landing");
    let s = Sluice::new();
    s.run_with(&["secrets", "scopes", "create", "store"], &[OPS], None).assert_exit(0);
    secret(&s, "good", &server.credentials(false));
    put(&server, "bronze", "day/orders.csv", "1,2\n");
    put(&server, "bronze", "customers.csv", "c\n");
    put(&server, "silver", "old.csv", "o\n");
    let dir = s.bundle("mnt", &mount_bundle("good"));

    // ro: the task reads the staged objects
    let (code, first) = run_job(&s, &dir, "read", "ops");
    assert_eq!(code, 0, "{first:#}");
    let attempt = sluice_tests::last_attempt(&first, "t");
    let seen: Value = serde_json::from_str(attempt["output"].as_str().unwrap()).unwrap();
    assert_eq!(seen["read"]["ok"], "1,2\n", "{seen}");
    assert_eq!(seen["list"]["ok"], serde_json::json!(["customers.csv", "day"]), "{seen}");
    assert_eq!(objects_indexed(&s), 2);

    // an unchanged bucket: the result is reused and nothing is downloaded again
    let (_, second) = run_job(&s, &dir, "read", "ops");
    let reused = &sluice_tests::last_attempt(&second, "t")["cache"]["reused_from"];
    assert_eq!(reused, &Value::String(format!("{}/t", first["run_id"])), "{second:#}");
    assert_eq!(objects_indexed(&s), 2, "no object was fetched again");

    // a changed object changes the key: the task runs and reads the new bytes
    put(&server, "bronze", "day/orders.csv", "1,2,3\n");
    let (_, third) = run_job(&s, &dir, "read", "ops");
    let attempt = sluice_tests::last_attempt(&third, "t");
    assert!(attempt["cache"]["reused_from"].is_null(), "{third:#}");
    assert_ne!(attempt["cache"]["key"], sluice_tests::last_attempt(&first, "t")["cache"]["key"]);
    assert!(attempt["output"].as_str().unwrap().contains("1,2,3"), "{attempt}");
    assert_eq!(objects_indexed(&s), 3, "only the changed object was fetched");

    // rw: the written file is uploaded after success; the staged ones stay as they were
    let (code, wrote) = run_job(&s, &dir, "write", "ops");
    assert_eq!(code, 0, "{wrote:#}");
    assert!(sluice_tests::last_attempt(&wrote, "t")["output"].as_str().unwrap().contains("old.csv"));
    assert_eq!(get(&server, "silver", "gold.csv").as_deref(), Some("g"));
    assert_eq!(get(&server, "silver", "old.csv").as_deref(), Some("o\n"));

    // a failing task uploads nothing
    let (code, failed) = run_job(&s, &dir, "broken", "ops");
    assert_ne!(code, 0, "{failed:#}");
    let error = sluice_tests::last_attempt(&failed, "t")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("asked to fail") && error.contains("\"write\":{\"ok\":true}"), "{error}");
    assert_eq!(get(&server, "silver", "never.csv"), None, "a failed attempt must upload nothing");
}

#[test]
fn object_mounts_need_readable_credentials() {
    let server = ObjectServer::start(Kind::S3, "landing");
    let s = Sluice::new();
    s.run_with(&["secrets", "scopes", "create", "store"], &[OPS], None).assert_exit(0);
    secret(&s, "good", &server.credentials(false));
    secret(&s, "bad", &server.credentials(true));
    put(&server, "bronze", "day/orders.csv", "1,2\n");
    let error_of = |creds: &str, principal: &str| {
        let dir = s.bundle(&format!("m-{creds}-{principal}"), &mount_bundle(creds));
        let (code, run) = run_job(&s, &dir, "read", principal);
        assert_ne!(code, 0, "{run:#}");
        let error = sluice_tests::last_attempt(&run, "t")["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains("task `t`") && error.contains("s3://landing/bronze/"), "{error}");
        error
    };
    let wrong = error_of("bad", "ops");
    assert!(wrong.contains("staging"), "{wrong}");
    assert!(!wrong.contains("wrong-secret"), "a credential never shows: {wrong}");
    let missing = error_of("nope", "ops");
    assert!(missing.contains("credentials `store/nope`") && missing.contains("no secret `nope`"), "{missing}");
    let denied = error_of("good", "mallory");
    assert!(
        denied.contains("principal `mallory`") && denied.contains("no read permission on scope `store`"),
        "{denied}"
    );
}

#[test]
fn bad_object_mounts_are_refused_by_file_line_and_key() {
    let s = Sluice::new();
    for (mount, needle) in [
        ("{ url = \"s3://landing/x/\", host = \".\", guest = \"/x\", credentials = \"store/k\" }", "not both"),
        ("{ url = \"s3://landing/x/\", guest = \"/x\" }", "needs `credentials = \"scope/key\"`"),
        ("{ url = \"s3://landing/x/\", guest = \"/x\", credential = \"store/k\" }", "credential"),
        ("{ url = \"ftp://landing/x/\", guest = \"/x\", credentials = \"store/k\" }", "not an object-storage URL"),
        ("{ url = \"s3://Bad/x/\", guest = \"/x\", credentials = \"store/k\" }", "bad bucket name"),
        ("{ host = \".\", guest = \"/x\", credentials = \"store/k\" }", "not to `host`"),
        ("{ guest = \"/x\" }", "needs `host"),
    ] {
        let text = format!(
            "[bundle]\nname = \"bad\"\n[components]\nfs = \"{{guest:fsprobe}}\"\n[jobs.j]\n\
             [[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"fs\"\nmounts = [{mount}]\n"
        );
        let dir = s.bundle("bad", &text);
        let out = s.run(&["validate", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(needle), "{mount}: {}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:9:"), "{mount}: file:line: {}", out.stderr);
    }
}

// ---- examples/medallion per target: dev on its committed fixtures, test on a bucket ----

/// examples/medallion copied into `s`'s directory (fixtures and the dev gold directory
/// with it), its SQL component named by absolute path.
fn medallion_copy(s: &Sluice) -> PathBuf {
    let example = sluice_tests::repo().join("examples/medallion");
    let text = std::fs::read_to_string(example.join("sluice.toml")).unwrap();
    let text = text.replace("\"../../tasks/target/wasm32-wasip2/release/sql.wasm\"", "\"{task:sql}\"");
    let dir = s.bundle("medallion", &text);
    for sub in ["fixtures/landing", "fixtures/thin", "fixtures/golden"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for file in std::fs::read_dir(example.join(sub)).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, dir.join(sub).join(file.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("gold")).unwrap();
    dir
}

fn medallion_run(s: &Sluice, dir: &Path, target: &str, principal: &str) -> (i32, Value) {
    let args = ["run", dir.to_str().unwrap(), "--target", target, "--json"];
    let out = s.run_with(&args, &[("SLUICE_PRINCIPAL", principal)], None);
    (out.code, out.json())
}

#[test]
fn medallion_reads_its_bucket_in_test_and_its_fixtures_in_dev() {
    let server = ObjectServer::start(Kind::S3, "medallion-test");
    let s = Sluice::new();
    let dir = medallion_copy(&s);
    let golden = std::fs::read_to_string(dir.join("fixtures/golden/summary.csv")).unwrap();
    let bucket = |prefix: &str| {
        let store = sluice::objstore::Store::open(&server.url("medallion-test", prefix), &server.credentials(false));
        store.expect("open the test bucket")
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for file in ["orders.csv", "customers.jsonl", "products.csv"] {
        let data = std::fs::read(dir.join("fixtures/landing").join(file)).unwrap();
        rt.block_on(bucket("landing").put(file, data.into())).unwrap();
    }
    // the storage secret, in the test target's own scope, through the vault
    let ops = [OPS];
    s.run_with(&["secrets", "scopes", "create", "storage-test", "--target", "test"], &ops, None).assert_exit(0);
    let creds = server.credentials(false);
    let put = ["secrets", "put", "storage-test", "lake", "--target", "test"];
    s.run_with(&put, &ops, Some(creds.as_bytes())).assert_exit(0);

    // validate: every target's locations are well formed; a bad one is named by file:line
    let all = s.run(&["validate", dir.to_str().unwrap(), "--all-targets", "--json"]);
    assert_eq!(all.code, 0, "{}\n{}", all.stdout, all.stderr);
    let targets: Vec<Value> = all.json()["targets"].as_array().unwrap().iter().map(|r| r["target"].clone()).collect();
    assert_eq!(targets, ["dev", "prod", "test"], "{}", all.stdout);
    let bad = s.run(&["validate", dir.to_str().unwrap(), "--target", "test", "--var", "landing=s3://Bad_Bucket/x/"]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("sluice.toml:") && bad.stderr.contains("mounts[0]"), "{}", bad.stderr);
    assert!(bad.stderr.contains("bad bucket name") && bad.stderr.contains("(target `test`)"), "{}", bad.stderr);
    let bad = s.run(&["validate", dir.to_str().unwrap(), "--all-targets", "--var", "storage=storage-x/lake"]);
    bad.assert_exit(2);
    assert!(
        bad.stderr.contains("target dev: ") && bad.stderr.contains("`location` is the directory"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("target test: "), "test and prod take the credentials: {}", bad.stderr);

    // test: the landing sources come from the bucket, gold goes back to it
    let (code, run) = medallion_run(&s, &dir, "test", "ops");
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["target"], "test", "{run:#}");
    let output: Value =
        serde_json::from_str(sluice_tests::last_attempt(&run, "bronze_orders")["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["rows"], 2010, "{output}");
    let summary = rt.block_on(bucket("gold").get("summary.csv")).expect("gold/summary.csv in the bucket");
    assert_eq!(String::from_utf8_lossy(&summary), golden);
    for table in ["revenue_by_country.parquet", "daily_revenue.parquet", "category_mix.parquet"] {
        let bytes = rt.block_on(bucket("gold").get(table)).unwrap_or_else(|e| panic!("gold/{table}: {e}"));
        assert!(bytes.starts_with(b"PAR1"), "gold/{table} is Parquet");
    }
    assert!(!dir.join("gold/summary.csv").exists(), "target test publishes to the bucket, not ./gold");

    // a principal the scope does not grant, and a target with no storage secret: refused
    let refused = |target: &str, principal: &str| {
        let (code, run) = medallion_run(&s, &dir, target, principal);
        assert_ne!(code, 0, "{run:#}");
        let error = sluice_tests::last_attempt(&run, "bronze_orders")["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains("task `bronze_orders`") && error.contains("mount /landing"), "{error}");
        assert!(!error.contains("sluice-test-secret"), "a credential never shows: {error}");
        error
    };
    let denied = refused("test", "mallory");
    assert!(
        denied.contains("credentials `storage-test/lake` cannot be read")
            && denied.contains("no read permission on scope `storage-test`"),
        "{denied}"
    );
    let prod = refused("prod", "ops");
    assert!(prod.contains("credentials `storage-prod/lake` cannot be read"), "{prod}");

    // dev: the committed fixtures, gold published into the bundle's ./gold
    let (code, run) = medallion_run(&s, &dir, "dev", "ops");
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(std::fs::read_to_string(dir.join("gold/summary.csv")).unwrap(), golden);
    assert!(dir.join("gold/category_mix.parquet").exists());
}

#[test]
fn verify_and_replays_read_what_an_object_mount_staged() {
    let server = ObjectServer::start(Kind::S3, "landing");
    let s = Sluice::new();
    s.run_with(&["secrets", "scopes", "create", "store"], &[OPS], None).assert_exit(0);
    secret(&s, "good", &server.credentials(false));
    put(&server, "bronze", "day/orders.csv", "1,2\n");
    let dir = s.bundle("mnt", &mount_bundle("good"));
    let (code, run) = run_job(&s, &dir, "read", "ops");
    assert_eq!(code, 0, "{run:#}");
    let id = run["run_id"].to_string();
    // the bucket changes after the run: a rerun must still read what the run read
    put(&server, "bronze", "day/orders.csv", "changed\n");
    let verify = s.run(&["verify", &id, "--json"]);
    verify.assert_exit(0);
    let verdicts = verify.json();
    assert_eq!(verdicts[0]["task"], "t", "{verdicts:#}");
    assert_eq!(verdicts[0]["verdict"], "identical", "{verdicts:#}");
    let replay = s.run_with(&["test", dir.to_str().unwrap(), "--from-run", &id, "--json"], &[OPS], None);
    assert_eq!(replay.code, 0, "{}\n{}", replay.stdout, replay.stderr);
    let report = replay.json();
    assert_eq!(report["report"]["tests"][0]["status"], "passed", "{report:#}");
}
