//! A job from a bundle and a single component, end to end through the binary.

use sluice_tests::{Sluice, last_attempt, repo, task, task_of};

fn hello(s: &Sluice, extra: &[&str]) -> sluice_tests::Out {
    task("ingest"); // make sure the example's components are built
    let bundle = repo().join("examples/hello");
    let mut args = vec!["run", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    s.run(&args)
}

#[test]
fn hello_example_runs_its_tasks_and_passes_values() {
    let s = Sluice::new();
    let out = hello(&s, &["--json"]);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(run["result"], "success");
    for key in ["extract", "fib", "report"] {
        assert_eq!(task_of(&run, key)["result"], "success", "{key}: {run:#}");
    }
    let report: serde_json::Value =
        serde_json::from_str(last_attempt(&run, "report")["output"].as_str().unwrap()).unwrap();
    let message = report["message"].as_str().unwrap();
    assert!(message.contains("hello world"), "{message}");
    assert!(
        message.contains("extract.rows=4") && message.contains("extract.valid=2") && message.contains("fib.value=6765"),
        "{message}"
    );
    // the report task's stdout is its log
    assert!(!last_attempt(&run, "report")["log"].as_str().unwrap().is_empty());
}

#[test]
fn job_parameters_can_be_overridden_and_unknown_ones_are_refused() {
    let s = Sluice::new();
    let run = hello(&s, &["--json", "--param", "n=10", "--param", "who=sluice"]).json();
    let fib: serde_json::Value = serde_json::from_str(last_attempt(&run, "fib")["output"].as_str().unwrap()).unwrap();
    assert_eq!(fib["value"], 55);
    assert_eq!(run["parameters"]["who"], "sluice");

    let out = hello(&s, &["--param", "nope=1"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("no parameter `nope`"), "{}", out.stderr);
}

#[test]
fn runs_are_listed_and_shown_from_the_durable_store() {
    let s = Sluice::new();
    let out = hello(&s, &[]);
    out.assert_exit(0);
    // progress on stderr, the result on stdout
    assert!(out.stderr.contains("✓ extract") && out.stderr.contains("success"), "{}", out.stderr);
    assert!(!out.stdout.contains("✓ extract") && out.stdout.contains("run 1 success"), "{}", out.stdout);

    let list = s.run(&["runs", "list", "--json"]);
    list.assert_exit(0);
    let runs = list.json();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["job"], "hello");
    assert_eq!(runs[0]["result"], "success");
    let id = runs[0]["run_id"].to_string();

    let show = s.run(&["runs", "show", &id]);
    show.assert_exit(0);
    for needle in ["extract", "fib", "report", "success", "output:", "log:"] {
        assert!(show.stdout.contains(needle), "`{needle}` missing from:\n{}", show.stdout);
    }
    let shown = s.run(&["runs", "show", &id, "--json"]).json();
    assert_eq!(shown["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(task_of(&shown, "report")["depends_on"], serde_json::json!(["extract", "fib"]));

    let missing = s.run(&["runs", "show", "999"]);
    missing.assert_exit(2);
    assert!(missing.stderr.contains("no run 999"), "{}", missing.stderr);
}

#[test]
fn a_single_component_runs_without_a_bundle() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&task("fib"), &["--param", "n=10"]);
    out.assert_exit(0);
    assert_eq!(run["result"], "success");
    let output: serde_json::Value =
        serde_json::from_str(last_attempt(&run, "fib")["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["value"], 55);

    let (out, run) = s.task_run(&task("fib"), &["--param", "n=94"]);
    out.assert_exit(1);
    assert!(last_attempt(&run, "fib")["error"].as_str().unwrap().contains("permanent"), "{run:#}");
}

#[test]
fn a_second_process_loads_the_precompiled_artifact_from_the_users_cache_whatever_its_state_dir() {
    let (s, other) = (Sluice::new(), Sluice::new());
    let cache = s.dir.path().join("user-cache");
    let fib = task("fib");
    let run = |who: &Sluice, expect: &str| {
        let out = who.run_with(
            &["task", "run", fib.to_str().unwrap(), "--param", "n=5"],
            &[("SLUICE_LOG", "sluice=debug"), ("SLUICE_CACHE_DIR", cache.to_str().unwrap())],
            None,
        );
        let stderr = &out.stderr;
        assert_eq!(out.code, 0, "{stderr}");
        assert!(stderr.contains(&format!("origin={expect}")), "expected origin={expect} in:\n{stderr}");
    };
    run(&s, "Compiled");
    let artifacts: Vec<_> = std::fs::read_dir(cache.join("components")).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "one precompiled artifact is cached");
    assert!(!s.state().join("components").exists(), "not in the state directory");
    run(&s, "Disk");
    run(&other, "Disk");
    // `cache gc --older-than` prunes compiled components unused for that long
    let gc = s.run_with(&["cache", "gc", "--older-than", "0s"], &[("SLUICE_CACHE_DIR", cache.to_str().unwrap())], None);
    gc.assert_exit(0);
    assert!(gc.stdout.contains("compiled components") && gc.stdout.contains("1 removed"), "{}", gc.stdout);
    assert_eq!(std::fs::read_dir(cache.join("components")).unwrap().count(), 0);
}

#[test]
fn state_defaults_to_dot_sluice_next_to_the_bundle() {
    let s = Sluice::new();
    let bundle = s.bundle("b", "[bundle]\nname = \"b\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"f\"\ncomponent = \"fib\"\nparams = { n = 3 }\n");
    let out = s.run_in(s.dir.path(), &["run", bundle.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(bundle.join(".sluice/store").exists());
}
