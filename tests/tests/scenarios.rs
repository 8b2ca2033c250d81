//! The seed's production scenarios in examples/ run end to end as their READMEs say.
//! Medallion: examples/medallion on its committed small landing zone (fixtures/landing).
//! ML deploy: examples/ml-deploy — train, gate, register, stage per target, score — and its
//! ci.sh against a `sluice serve`.

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
