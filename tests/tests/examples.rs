//! The bundles in examples/ run as their comments say (so they stay runnable).

use sluice_tests::{Sluice, repo, run_example, task, task_of};

fn example(s: &Sluice, name: &str, extra: &[&str]) -> serde_json::Value {
    task("fib"); // the examples use the tasks/ components
    run_example(s, name, extra)
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

#[test]
fn the_polyglot_example_runs_a_c_program_next_to_a_rust_task() {
    let s = Sluice::new();
    let wasm = repo().join("examples/polyglot/wordcount.wasm");
    assert!(wasm.is_file(), "{} is missing: scripts/setup builds it with clang for wasm32-wasi", wasm.display());
    let run = example(&s, "polyglot", &[]);
    assert_eq!(run["result"], "success");
    let count: serde_json::Value =
        serde_json::from_str(sluice_tests::last_attempt(&run, "count")["output"].as_str().unwrap()).unwrap();
    assert_eq!(count, serde_json::json!({ "lines": 4, "words": 23, "bytes": 121, "label": "poem" }));
    assert!(
        sluice_tests::last_attempt(&run, "count")["log"].as_str().unwrap().contains("wordcount: counted 121 bytes")
    );

    // a failing program fails its task with its own exit code (preview1 `proc_exit(2)`)
    let empty = s.dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out =
        s.run(&["task", "run", wasm.to_str().unwrap(), "--command", "--stdin-file", empty.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    let a = sluice_tests::last_attempt(&out.json(), "wordcount").clone();
    assert!(a["error"].as_str().unwrap().contains("exited with code 2"), "{a:#}");
    assert!(a["log"].as_str().unwrap().contains("nothing on stdin"));
}

#[test]
fn the_pipeline_example_verifies_checkpointed_task_included() {
    let s = Sluice::new();
    let run = example(&s, "pipeline", &["--job", "nightly"]);
    let out = s.run(&["verify", &run["run_id"].to_string()]);
    out.assert_exit(0);
    assert!(out.stdout.contains("reproduced") && !out.stdout.contains("NOT reproduced"), "{}", out.stdout);
    let json = s.run(&["verify", &run["run_id"].to_string(), "--json"]).json();
    let verdict = |task: &str| {
        json.as_array().unwrap().iter().find(|v| v["task"] == task).map(|v| v["verdict"].as_str().unwrap().to_string())
    };
    for task in ["download", "extract", "fan_out[0]", "fan_out[2]", "summary"] {
        assert_eq!(verdict(task).as_deref(), Some("identical"), "{task}: {json:#}");
    }
}
