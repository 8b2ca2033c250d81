//! The seed's production scenarios in examples/ run end to end as their READMEs say.
//! Medallion: examples/medallion on its committed small landing zone (fixtures/landing).

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{Sluice, http_server_recording, last_attempt, repo, task, task_of};

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
