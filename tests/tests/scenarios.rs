//! The seed's production scenarios in examples/ run end to end as their READMEs say.
//! Medallion: examples/medallion on its committed small landing zone (fixtures/landing).
//! ML deploy: examples/ml-deploy — train, gate, register, stage per target, score — and its
//! ci.sh against a `sluice serve`.
//! File-triggered: examples/file-triggered under `sluice serve` on an injected clock, its
//! bucket (s3s-fs) behind a fault-injecting proxy: 5 batches, 5 runs, each scoring its own files.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{Out, Sluice, http_server_recording, last_attempt, output_within, repo, sluice_bin, task, task_of};

fn medallion() -> String {
    task("sql");
    repo().join("examples/medallion").to_str().unwrap().to_string()
}

/// The `rows` the SQL task reports in its output.
fn rows(run: &Value, key: &str) -> u64 {
    let output: Value = serde_json::from_str(last_attempt(run, key)["output"].as_str().unwrap_or("null")).unwrap();
    output["rows"].as_u64().unwrap_or_else(|| panic!("{key}: no rows in {output}"))
}

#[test]
fn medallion_cleans_joins_aggregates_and_publishes() {
    let s = Sluice::new();
    let bundle = medallion();
    let out = s.run(&["run", &bundle, "--json"]);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(run["result"], "success");
    assert_eq!(run["tasks"].as_array().unwrap().len(), 10);
    // bronze keeps what landed, defects included; silver drops them
    assert_eq!(rows(&run, "bronze_orders"), 2010, "2,000 orders + 10 sent twice");
    assert_eq!(rows(&run, "silver_orders"), 1994, "duplicates, 4 without a customer, 2 with quantity 0 dropped");
    assert_eq!(rows(&run, "silver_customers"), 100, "each customer once");
    assert_eq!(rows(&run, "gold_revenue_by_country"), 8, "one row per country");
    assert_eq!(task_of(&run, "publish")["result"], "success");
    let expectations = last_attempt(&run, "silver_orders")["quality"].as_array().cloned().unwrap_or_default();
    assert_eq!(expectations.len(), 5, "{expectations:?}");
    assert!(expectations.iter().all(|e| e["success"] == true), "{expectations:?}");
    // the gold datasets are named, with the run that produced them
    let out = s.run(&["datasets", "list", "--json"]);
    out.assert_exit(0);
    let listed = out.stdout.clone();
    for name in ["gold.revenue_by_country", "gold.daily_revenue", "gold.category_mix", "gold.summary"] {
        assert!(listed.contains(name), "{name} missing from {listed}");
    }
}

#[test]
fn a_thin_landing_is_held_back_by_the_quality_gate() {
    let s = Sluice::new();
    let out = s.run(&["run", &medallion(), "--var", "landing=fixtures/thin", "--json"]);
    out.assert_exit(1);
    let run = out.json();
    assert_eq!(rows(&run, "silver_orders"), 99);
    assert_eq!(task_of(&run, "gold_category_mix")["result"], "success", "gold is still computed");
    let publish = task_of(&run, "publish");
    assert_eq!(publish["result"], "upstream_failed");
    let why = publish["skipped_reason"].as_str().unwrap();
    assert!(why.contains("blocked by a failed expectation") && why.contains("99 rows"), "{why}");
}

#[test]
fn medallion_tests_pass() {
    let s = Sluice::new();
    let out = s.run(&["test", &medallion(), "--json"]);
    out.assert_exit(0);
    let report = out.json();
    let tests = report["report"]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2, "{report:#}");
    assert!(tests.iter().all(|t| t["status"] == "passed"), "{report:#}");
}

#[test]
fn a_failing_medallion_run_alerts_the_ops_webhook() {
    let s = Sluice::new();
    let (port, _, heads) = http_server_recording("ok");
    let alert = format!("alert_url=http://127.0.0.1:{port}/alerts");
    // a landing zone without the sources: bronze fails (after its retries), the run fails
    let out = s.run(&["run", &medallion(), "--var", "landing=fixtures", "--var", &alert, "--json"]);
    out.assert_exit(1);
    let run = out.json();
    assert_eq!(task_of(&run, "bronze_orders")["result"], "failed");
    assert_eq!(task_of(&run, "publish")["result"], "upstream_failed");
    let id = run["run_id"].as_u64().unwrap();
    let started = Instant::now();
    loop {
        let shown = s.show(id);
        if shown["notifications"].as_array().is_some_and(|n| n.iter().any(|n| n["state"] == "delivered")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no alert delivered: {}", shown["notifications"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = heads.lock().unwrap().clone();
    assert!(got.iter().any(|h| h.starts_with("POST /alerts")), "{got:?}");
}

fn ml_deploy() -> String {
    task("churn");
    repo().join("examples/ml-deploy").to_str().unwrap().to_string()
}

/// `sluice run examples/ml-deploy --job JOB --json EXTRA…`.
fn ml_run(s: &Sluice, job: &str, extra: &[&str]) -> Out {
    let bundle = ml_deploy();
    s.run(&[&["run", &bundle, "--job", job, "--json"][..], extra].concat())
}

/// `sluice models show NAME --json` (which must succeed): the model's record.
fn model(s: &Sluice, name: &str) -> Value {
    let out = s.run(&["models", "show", name, "--json"]);
    out.assert_exit(0);
    out.json()[0].clone()
}

fn output_of(run: &Value, key: &str) -> Value {
    serde_json::from_str(last_attempt(run, key)["output"].as_str().unwrap_or("null")).unwrap()
}

#[test]
fn ml_training_registers_a_model_with_its_metrics_run_and_commit() {
    let s = Sluice::new();
    let out = ml_run(&s, "train", &[]);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(task_of(&run, "register")["result"], "success", "{run:#}");
    let m = model(&s, "churn");
    let versions = m["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{m:#}");
    let v = &versions[0];
    assert_eq!(v["version"], 1);
    assert_eq!(v["run"], run["run_id"]);
    assert_eq!(
        (v["task"].as_str(), v["target"].as_str(), v["file"].as_str()),
        (Some("register"), Some("dev"), Some("model.json"))
    );
    assert_eq!(v["hash"].as_str().unwrap().len(), 64, "{v}");
    let accuracy = v["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.78 && v["metrics"]["auc"].as_f64().unwrap() >= 0.8, "{v}");
    assert_eq!(v["metrics"]["accuracy"], output_of(&run, "evaluate")["accuracy"]);
    let head = std::process::Command::new("git").arg("-C").arg(repo()).args(["rev-parse", "HEAD"]).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(v["commit"].as_str(), Some(head.as_str()), "the commit the bundle was at");
    // the same model again adds no version; another one is version 2
    ml_run(&s, "train", &[]).assert_exit(0);
    assert_eq!(model(&s, "churn")["versions"].as_array().unwrap().len(), 1);
    ml_run(&s, "train", &["--param", "seed=8"]).assert_exit(0);
    let m = model(&s, "churn");
    assert_eq!(m["versions"][1]["version"], 2, "{m:#}");
    assert_ne!(m["versions"][1]["hash"], m["versions"][0]["hash"]);
    let listed = s.run(&["models", "list"]);
    listed.assert_exit(0);
    assert!(listed.stdout.contains("churn") && listed.stdout.contains("v2"), "{}", listed.stdout);
}

#[test]
fn a_model_below_the_accuracy_gate_is_not_registered() {
    let s = Sluice::new();
    let out = ml_run(&s, "train", &["--param", "label_noise=0.5"]);
    out.assert_exit(0);
    let run = out.json();
    assert!(output_of(&run, "evaluate")["accuracy"].as_f64().unwrap() < 0.7, "{run:#}");
    assert_eq!(task_of(&run, "register")["result"], "excluded", "{run:#}");
    let listed = s.run(&["models", "list", "--json"]);
    listed.assert_exit(0);
    assert_eq!(listed.json(), serde_json::json!([]));
    let unknown = s.run(&["models", "show", "churn"]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no model `churn`"), "{}", unknown.stderr);
}

#[test]
fn scoring_loads_the_model_staged_for_its_target() {
    let s = Sluice::new();
    ml_run(&s, "train", &[]).assert_exit(0);
    ml_run(&s, "train", &["--param", "seed=8"]).assert_exit(0);
    // nothing staged for dev: the task fails before it runs, saying how to stage one
    let out = ml_run(&s, "score", &[]);
    out.assert_exit(1);
    let error = last_attempt(&out.json(), "score")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("no version is staged for target `dev`"), "{error}");
    assert!(error.contains("sluice models stage churn VERSION --target dev"), "{error}");
    s.run(&["models", "stage", "churn", "1", "--target", "dev"]).assert_exit(0);
    let staged = s.run(&["models", "stage", "churn", "2", "--target", "test", "--json"]);
    staged.assert_exit(0);
    assert_eq!(staged.json()["stages"].as_array().unwrap().len(), 2, "{}", staged.stdout);
    let seed_of = |target: &str| {
        let out = ml_run(&s, "score", &["--target", target]);
        out.assert_exit(0);
        output_of(&out.json(), "score")["model_seed"].clone()
    };
    assert_eq!(seed_of("dev"), 7, "dev loads v1");
    assert_eq!(seed_of("test"), 8, "test loads v2");
    // restaged: the model is part of the cache key, so the score runs again with v2
    s.run(&["models", "stage", "churn", "2", "--target", "dev"]).assert_exit(0);
    assert_eq!(seed_of("dev"), 8, "dev now loads v2");
    // bad input: clear errors, non-zero exits
    for (args, says) in [
        (&["models", "show", "churn", "9"][..], "model `churn` has no version 9 (versions: 1, 2)"),
        (&["models", "stage", "churn", "9", "--target", "prod"][..], "no version 9"),
        (&["models", "stage", "chrun", "1", "--target", "prod"][..], "no model `chrun`"),
        (&["models", "show", "nope"][..], "no model `nope`"),
    ] {
        let out = s.run(args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn ml_deploy_ci_script_validates_tests_deploys_and_promotes_against_serve() {
    let s = Sluice::new();
    let script = repo().join("examples/ml-deploy/ci.sh");
    ml_deploy();
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script).env("SLUICE", sluice_bin()).env("SLUICE_STATE", s.state());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SLUICE_") && k != "SLUICE_STATE") {
        cmd.env_remove(k);
    }
    let started = Instant::now();
    let out = output_within(&mut cmd, None, Duration::from_secs(600));
    assert_eq!(out.code, 0, "ci.sh failed:\n{}\n{}", out.stdout, out.stderr);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(120), "ci.sh took {took:?}");
    for target in ["dev", "test", "prod"] {
        assert!(out.stdout.contains(&format!("{target}: run ")), "{}", out.stdout);
    }
    let m = model(&s, "churn");
    let mut stages: Vec<&str> = m["stages"].as_array().unwrap().iter().filter_map(|x| x["target"].as_str()).collect();
    stages.sort();
    assert_eq!(stages, ["dev", "prod", "test"], "{m:#}");
}

#[test]
fn bad_model_keys_in_a_bundle_are_refused_at_their_place() {
    let s = Sluice::new();
    let head =
        "[bundle]\nname = \"b\"\n[components]\nchurn = \"{task:churn}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\n";
    for (n, (keys, says)) in [
        ("component = \"churn\"\nmounts = [{ host = \".\", guest = \"/model\" }]\nmodels = [{ name = \"churn\", guest = \"/model/x\" }]", "overlaps `/model`"),
        ("component = \"churn\"\nmodels = [{ name = \"churn\", guest = \"/in/m\" }]", "reserved"),
        ("component = \"churn\"\nregister_model = { name = \"churn\", file = \"../m.json\" }", "not a file inside the task's /out"),
        ("condition = { op = \"equal_to\", left = \"1\", right = \"1\" }\nregister_model = { name = \"churn\", file = \"m.json\" }", "register_model"),
        ("component = \"churn\"\nregister_model = { name = \"churn\", path = \"m.json\" }", "path"),
    ]
    .into_iter()
    .enumerate()
    {
        task("churn");
        let dir = s.bundle(&format!("bad{n}"), &format!("{head}{keys}\n"));
        let out = s.run(&["validate", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains("sluice.toml:") && out.stderr.contains(says), "{keys}: {}", out.stderr);
    }
}

// ---- file-triggered: examples/file-triggered against s3s-fs behind a fault-injecting proxy ----

/// 2026-03-28T12:00:00Z: the trigger engine's clock (`SLUICE_TEST_CLOCK`), moved by the test.
const FT_T0: u64 = 1_774_699_200_000;

/// The example's 20 landing files, as committed: `(batch, name, text)`.
fn landing_files() -> Vec<(usize, String, String)> {
    let data = repo().join("examples/file-triggered/data");
    let mut out = Vec::new();
    for batch in 1..=5 {
        let dir = data.join(format!("batch-{batch}"));
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            out.push((batch, name.to_string_lossy().into_owned(), text));
        }
    }
    out
}

fn set_clock(path: &std::path::Path, at: u64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, at.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The job's runs, oldest first.
fn ft_runs(server: &sluice_tests::Server, token: &str, job: u64) -> Vec<u64> {
    let (status, v) = server.get(Some(token), &format!("/api/2.2/jobs/runs/list?job_id={job}&limit=25"));
    assert_eq!(status, 200, "{v}");
    let mut ids: Vec<u64> =
        v["runs"].as_array().map(|r| r.iter().filter_map(|x| x["run_id"].as_u64()).collect()).unwrap_or_default();
    ids.sort();
    ids
}

/// An object store client straight to s3s-fs (the test's own writes and reads bypass the proxy).
fn ft_store(server: &sluice_tests::objstores::ObjectServer, prefix: &str) -> sluice::objstore::Store {
    sluice::objstore::Store::open(&server.url("landing", prefix), &server.credentials(false)).expect("open the store")
}

#[test]
fn file_triggered_batches_score_once_each_through_storage_faults() {
    use sluice_tests::faultproxy::FaultProxy;
    use sluice_tests::objstores::{Kind, ObjectServer};
    let started = Instant::now();
    let s3 = ObjectServer::start(Kind::S3, "landing");
    let proxy = FaultProxy::start(s3.port);
    let s = Sluice::new();
    // the model of scenario 2, registered and staged for dev
    ml_run(&s, "train", &[]).assert_exit(0);
    s.run(&["models", "stage", "churn", "1", "--target", "dev"]).assert_exit(0);
    // the bucket's credentials, pointing at the proxy: every request of sluice's may fail
    let ops = [("SLUICE_PRINCIPAL", "ops")];
    s.run_with(&["secrets", "scopes", "create", "landing"], &ops, None).assert_exit(0);
    let creds = s3.credentials(false).replace(&format!(":{}", s3.port), &format!(":{}", proxy.port));
    s.run_with(&["secrets", "put", "landing", "s3"], &ops, Some(creds.as_bytes())).assert_exit(0);

    let clock = s.dir.path().join("clock");
    set_clock(&clock, FT_T0);
    let bundle = repo().join("examples/file-triggered");
    let env = [("SLUICE_TEST_CLOCK", clock.to_str().unwrap()), ops[0]];
    let server = s.serve_env(&[bundle.to_str().unwrap()], &env);
    let token = s.token("alice", "default", None);
    let job = server.job_id(&token, "score_new_files");
    let files = landing_files();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let incoming = ft_store(&s3, "incoming/");
    let mut now = FT_T0;
    let mut runs = Vec::new();
    for batch in 1..=5 {
        for (_, name, text) in files.iter().filter(|f| f.0 == batch) {
            rt.block_on(incoming.put(name, text.clone().into_bytes().into())).unwrap();
        }
        // move the engine's clock (5 s a step) until the batch has started its run
        let deadline = Instant::now() + Duration::from_secs(60);
        let run = loop {
            now += 5_000;
            set_clock(&clock, now);
            std::thread::sleep(Duration::from_millis(200));
            let listed = ft_runs(&server, &token, job);
            if listed.len() >= batch {
                assert_eq!(listed.len(), batch, "one run per batch: {listed:?}");
                break listed[batch - 1];
            }
            assert!(Instant::now() < deadline, "batch {batch} started no run (faults so far {})", proxy.faults());
        };
        let done = server.wait_terminal(&token, run);
        assert_eq!(done["state"]["result_state"], "SUCCESS", "batch {batch}: {done:#}");
        runs.push(run);
    }
    // nothing new: no more runs however long the bucket stays quiet
    for _ in 0..6 {
        now += 30_000;
        set_clock(&clock, now);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ft_runs(&server, &token, job), runs, "no run lost, none doubled");

    let mut consumed = Vec::new();
    let scores = ft_store(&s3, "scores/");
    for (i, run) in runs.iter().enumerate() {
        let shown = s.show(*run);
        let mut expected: Vec<&str> = files.iter().filter(|f| f.0 == i + 1).map(|f| f.1.as_str()).collect::<Vec<_>>();
        expected.sort();
        let ingest = output_of(&shown, "ingest");
        let score = output_of(&shown, "score");
        assert_eq!(ingest["files"], serde_json::json!(expected), "run {run} ingests exactly its batch");
        assert_eq!(score["files"], serde_json::json!(expected), "run {run} scores exactly its batch");
        assert_eq!(ingest["rejected"].as_array().map(Vec::len), Some(1), "one bad row per batch: {ingest}");
        assert_eq!(score["rows"], ingest["rows"], "{shown:#}");
        assert_eq!(score["model_seed"], 7, "the staged model v1");
        consumed.extend(expected.iter().map(|f| f.to_string()));
        // each input file's scores are in the bucket, a line per valid customer
        for name in &expected {
            let key = format!("{}.scores.csv", name.trim_end_matches(".csv"));
            let got = rt.block_on(scores.get(&key)).unwrap_or_else(|e| panic!("scores/{key}: {e}"));
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("customer,churn_probability,at_risk\n"), "{key}: {text}");
            let raw = &files.iter().find(|f| f.1 == *name).unwrap().2;
            let valid = raw.lines().count() - 1 - usize::from(raw.contains(",,") || raw.contains("weekly"));
            assert_eq!(text.lines().count() - 1, valid, "{key}");
        }
    }
    consumed.sort();
    let mut all: Vec<String> = files.iter().map(|f| f.1.clone()).collect();
    all.sort();
    assert_eq!(consumed, all, "every file scored exactly once");
    // the faults happened and were absorbed
    let retried = runs
        .iter()
        .map(|r| s.show(*r))
        .flat_map(|shown| shown["tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t["attempts"].as_array().map_or(0, Vec::len).saturating_sub(1))
        .sum::<usize>();
    assert!(proxy.faults() >= 10, "{} faults in {} requests", proxy.faults(), proxy.requests());
    // a burst of ten 503s outlasts the storage client's and staging's own tries: the task's
    // retry policy takes over (a transient staging or upload failure is retryable)
    assert!(retried >= 1, "no task attempt was retried: the burst never reached a task");
    #[allow(clippy::print_stderr)] // the figures of the scenario are its report
    {
        eprintln!(
            "file-triggered: 5 batches, {} storage requests, {} failed by the proxy, {retried} task retries, {:?}",
            proxy.requests(),
            proxy.faults(),
            started.elapsed()
        );
    }
    assert_eq!(server.terminate(), 0);
}
