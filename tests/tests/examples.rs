//! The bundles in examples/ run as their comments say (so they stay runnable).

use sluice_tests::{Sluice, repo, task, task_of};

fn example(s: &Sluice, name: &str, extra: &[&str]) -> serde_json::Value {
    task("fib"); // the examples use the tasks/ components
    let dir = repo().join("examples").join(name);
    let mut args = vec!["run", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    out.assert_exit(0);
    out.json()
}

#[test]
fn the_pipeline_example_takes_the_full_branch_by_default() {
    let s = Sluice::new();
    let run = example(&s, "pipeline", &["--job", "nightly"]);
    assert_eq!(run["result"], "success");
    let download = task_of(&run, "download")["attempts"].as_array().unwrap().clone();
    assert_eq!(download.len(), 3, "two transient failures, then success");
    let out: serde_json::Value = serde_json::from_str(download[2]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["resumed_from"], 2, "resumed from its checkpoint");
    assert_eq!(task_of(&run, "quick_path")["result"], "excluded");
    assert_eq!(task_of(&run, "fan_out[2]")["result"], "success");
    assert_eq!(task_of(&run, "on_failure")["result"], "excluded");
    assert!(task_of(&run, "archive")["child_run"].is_u64());
}

#[test]
fn the_pipeline_example_takes_the_quick_branch_when_asked() {
    let s = Sluice::new();
    let run = example(&s, "pipeline", &["--job", "nightly", "--param", "mode=quick"]);
    assert_eq!(run["result"], "success");
    assert_eq!(task_of(&run, "fan_out")["result"], "excluded");
    assert_eq!(task_of(&run, "quick_path")["result"], "success");
}
