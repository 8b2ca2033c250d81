//! The DAG scheduler end to end: run_if, conditions, for_each, run_job,
//! retries, timeouts, parallelism. (Cancellation, repair and crash recovery:
//! `recovery.rs`.)

use serde_json::Value;
use sluice_tests::{Sluice, last_attempt, task_of};

fn run_bundle(s: &Sluice, name: &str, toml: &str, extra: &[&str]) -> (i32, Value) {
    s.run_json(&s.bundle(name, toml), extra)
}

fn result_of(run: &Value, key: &str) -> String {
    task_of(run, key)["result"].as_str().unwrap_or("none").to_string()
}

fn attempts(run: &Value, key: &str) -> Vec<Value> {
    task_of(run, key)["attempts"].as_array().cloned().unwrap_or_default()
}

const HEAD: &str =
    "[bundle]\nname = \"s\"\n[components]\nprobe = \"{guest:probe}\"\nfib = \"{task:fib}\"\nflaky = \"{task:flaky}\"\n";

#[test]
fn every_run_if_rule_on_diamonds() {
    let rules = ["all_success", "at_least_one_success", "none_failed", "all_done", "at_least_one_failed", "all_failed"];
    let mut toml = format!("{HEAD}[jobs.d]\n");
    for (name, fail) in [("ok", ""), ("bad", "permanent")] {
        toml +=
            &format!("[[jobs.d.tasks]]\nkey = \"{name}1\"\ncomponent = \"probe\"\nparams = {{ fail = \"{fail}\" }}\n");
        toml +=
            &format!("[[jobs.d.tasks]]\nkey = \"{name}2\"\ncomponent = \"probe\"\nparams = {{ fail = \"{fail}\" }}\n");
    }
    let pairs = [("okok", "ok1", "ok2"), ("okbad", "ok1", "bad1"), ("badbad", "bad1", "bad2")];
    for (p, a, b) in pairs {
        for r in rules {
            toml += &format!(
                "[[jobs.d.tasks]]\nkey = \"{p}_{r}\"\ncomponent = \"probe\"\ndepends_on = [\"{a}\", \"{b}\"]\nrun_if = \"{r}\"\n"
            );
        }
    }
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "diamonds", &toml, &[]);
    assert_eq!(code, 1, "some leaves end upstream_failed");
    assert_eq!(run["result"], "failed");
    let expect = [
        ("okok", ["success", "success", "success", "success", "excluded", "excluded"]),
        ("okbad", ["upstream_failed", "success", "upstream_failed", "success", "success", "excluded"]),
        ("badbad", ["upstream_failed", "upstream_failed", "upstream_failed", "success", "success", "success"]),
    ];
    for (p, results) in expect {
        for (r, want) in rules.iter().zip(results) {
            assert_eq!(result_of(&run, &format!("{p}_{r}")), want, "{p} with run_if {r}");
        }
    }
    // a task that never ran has no attempt
    assert!(attempts(&run, "okbad_all_success").is_empty());
    assert!(attempts(&run, "okok_all_failed").is_empty());
}

#[test]
fn the_leaves_decide_the_job_result_and_excluded_counts_as_success() {
    let s = Sluice::new();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"work\"\ncomponent = \"probe\"\nparams = {{ fail = \"permanent\" }}\n\
         [[jobs.j.tasks]]\nkey = \"on_failure\"\ncomponent = \"probe\"\ndepends_on = [\"work\"]\nrun_if = \"at_least_one_failed\"\n"
    );
    let (code, run) = run_bundle(&s, "handler", &toml, &[]);
    assert_eq!((code, run["result"].as_str()), (0, Some("success_with_failures")));

    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"work\"\ncomponent = \"probe\"\n\
         [[jobs.j.tasks]]\nkey = \"on_failure\"\ncomponent = \"probe\"\ndepends_on = [\"work\"]\nrun_if = \"at_least_one_failed\"\n"
    );
    let (code, run) = run_bundle(&s, "handler-ok", &toml, &[]);
    assert_eq!((code, run["result"].as_str()), (0, Some("success")));
    assert_eq!(result_of(&run, "on_failure"), "excluded");
}

#[test]
fn condition_tasks_choose_a_branch() {
    let toml = format!(
        "{HEAD}[jobs.j]\nparameters = {{ mode = \"full\" }}\n\
         [[jobs.j.tasks]]\nkey = \"check\"\ncondition = {{ op = \"equal_to\", left = \"{{{{ job.parameters.mode }}}}\", right = \"full\" }}\n\
         [[jobs.j.tasks]]\nkey = \"full_load\"\ncomponent = \"probe\"\ndepends_on = [{{ task = \"check\", outcome = \"true\" }}]\n\
         [[jobs.j.tasks]]\nkey = \"after_full\"\ncomponent = \"probe\"\ndepends_on = [\"full_load\"]\n\
         [[jobs.j.tasks]]\nkey = \"quick_load\"\ncomponent = \"probe\"\ndepends_on = [{{ task = \"check\", outcome = \"false\" }}]\n\
         [[jobs.j.tasks]]\nkey = \"fib\"\ncomponent = \"fib\"\nparams = {{ n = 12 }}\n\
         [[jobs.j.tasks]]\nkey = \"big\"\ncondition = {{ op = \"greater_than\", left = \"{{{{ tasks.fib.values.value }}}}\", right = 100 }}\ndepends_on = [\"fib\"]\n\
         [[jobs.j.tasks]]\nkey = \"when_big\"\ncomponent = \"probe\"\ndepends_on = [{{ task = \"big\", outcome = \"true\" }}]\n"
    );
    let s = Sluice::new();
    let (code, run1) = run_bundle(&s, "cond", &toml, &[]);
    assert_eq!(code, 0, "{run1:#}");
    assert_eq!(task_of(&run1, "check")["outcome"], true);
    assert_eq!(result_of(&run1, "full_load"), "success");
    assert_eq!(result_of(&run1, "after_full"), "success");
    assert_eq!(result_of(&run1, "quick_load"), "excluded");
    assert_eq!(task_of(&run1, "big")["outcome"], true, "fib(12) = 144 > 100");
    assert_eq!(result_of(&run1, "when_big"), "success");

    let (code, run2) = run_bundle(&s, "cond", &toml, &["--param", "mode=lite"]);
    assert_eq!(code, 0);
    assert_eq!(task_of(&run2, "check")["outcome"], false);
    assert_eq!(result_of(&run2, "full_load"), "excluded");
    assert_eq!(result_of(&run2, "after_full"), "excluded", "exclusion flows down the branch not taken");
    assert_eq!(result_of(&run2, "quick_load"), "success");
    assert_eq!(run2["result"], "success");
}

#[test]
fn for_each_runs_every_iteration_as_its_own_attempt() {
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"fibs\"\nfor_each = {{ inputs = \"[5, 6, 7, 8, 9]\", concurrency = 2, task = {{ component = \"fib\", params = {{ n = \"{{{{ input }}}}\" }} }} }}\n\
         [[jobs.j.tasks]]\nkey = \"after\"\ncomponent = \"probe\"\ndepends_on = [\"fibs\"]\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "loop", &toml, &[]);
    assert_eq!(code, 0, "{run:#}");
    let fibs = [5, 8, 13, 21, 34];
    for (i, want) in fibs.iter().enumerate() {
        let key = format!("fibs[{i}]");
        assert_eq!(task_of(&run, &key)["parent"], "fibs");
        let out: Value = serde_json::from_str(last_attempt(&run, &key)["output"].as_str().unwrap()).unwrap();
        assert_eq!(out["value"], *want, "{key}");
    }
    let parent: Value = serde_json::from_str(last_attempt(&run, "fibs")["output"].as_str().unwrap()).unwrap();
    assert_eq!(parent["succeeded"], 5);
    assert_eq!(result_of(&run, "after"), "success");
    // never more than 2 iterations at once
    let spans: Vec<(u64, u64)> = (0..5)
        .map(|i| {
            let a = last_attempt(&run, &format!("fibs[{i}]"));
            (a["started_at"].as_u64().unwrap(), a["finished_at"].as_u64().unwrap())
        })
        .collect();
    for (i, (start, _)) in spans.iter().enumerate() {
        let overlapping = spans.iter().filter(|(s, e)| s <= start && e > start).count();
        assert!(overlapping <= 2, "iteration {i} started while {overlapping} were running: {spans:?}");
    }
}

#[test]
fn run_job_starts_another_job_and_waits_for_it() {
    let toml = format!(
        "{HEAD}[jobs.parent]\n\
         [[jobs.parent.tasks]]\nkey = \"call\"\nrun_job = {{ job = \"child\", parameters = {{ n = \"10\" }} }}\n\
         [jobs.child]\nparameters = {{ n = \"1\" }}\n\
         [[jobs.child.tasks]]\nkey = \"fib\"\ncomponent = \"fib\"\nparams = {{ n = \"{{{{ job.parameters.n }}}}\" }}\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "nested", &toml, &["--job", "parent"]);
    assert_eq!(code, 0, "{run:#}");
    let child = task_of(&run, "call")["child_run"].as_u64().expect("child run id");
    let shown = s.run(&["runs", "show", &child.to_string(), "--json"]);
    shown.assert_exit(0);
    let child_run = shown.json();
    assert_eq!(child_run["job"], "child");
    assert_eq!(child_run["parameters"]["n"], "10");
    let out: Value = serde_json::from_str(last_attempt(&child_run, "fib")["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["value"], 55);
}

#[test]
fn transient_failures_are_retried_with_backoff_and_resume_from_their_checkpoint() {
    let toml = format!(
        "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"flaky\"\ncomponent = \"flaky\"\nparams = {{ fail_times = 3, steps = 5 }}\n\
         retries = {{ max = 5, initial = \"100ms\", backoff = 2.0, max_interval = \"1s\", jitter = 0 }}\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "retry", &toml, &[]);
    assert_eq!(code, 0, "{run:#}");
    let a = attempts(&run, "flaky");
    let results: Vec<&str> = a.iter().map(|x| x["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["failed", "failed", "failed", "success"]);
    assert!(a[0]["error"].as_str().unwrap().starts_with("transient error: transient failure on attempt 0"));
    // waits of 100, 200, 400 ms between attempts, in that order
    let gaps: Vec<u64> =
        a.windows(2).map(|w| w[1]["started_at"].as_u64().unwrap() - w[0]["finished_at"].as_u64().unwrap()).collect();
    for (gap, want) in gaps.iter().zip([100, 200, 400]) {
        assert!(*gap >= want, "backoff gaps {gaps:?}");
    }
    assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "backoff grows: {gaps:?}");
    let out: Value = serde_json::from_str(a[3]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["attempts"], 4);
    assert_eq!(out["resumed_from"], 3, "the last attempt resumed from the checkpoint its predecessors saved");
}

#[test]
fn permanent_failures_are_not_retried() {
    let toml = format!(
        "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"p\"\ncomponent = \"probe\"\nparams = {{ fail = \"permanent\" }}\nretries = {{ max = 3, initial = \"10ms\" }}\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "perm", &toml, &[]);
    assert_eq!(code, 1);
    assert_eq!(attempts(&run, "p").len(), 1);
}

#[test]
fn a_timed_out_attempt_is_retried_only_when_on_timeout_is_set() {
    let task = |on_timeout: bool| {
        format!(
            "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"slow\"\ncomponent = \"probe\"\ntimeout = \"500ms\"\nparams = {{ hang_below_attempt = 1 }}\n\
             retries = {{ max = 2, initial = \"10ms\", on_timeout = {on_timeout} }}\n"
        )
    };
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "t1", &task(true), &[]);
    assert_eq!(code, 0, "{run:#}");
    let a = attempts(&run, "slow");
    assert_eq!(a[0]["result"], "timed_out");
    assert_eq!(a[1]["result"], "success");

    // the same task again: without --no-cache its earlier success would simply be reused
    let (code, run) = run_bundle(&s, "t2", &task(false), &["--no-cache"]);
    assert_eq!(code, 1);
    assert_eq!(run["result"], "timed_out");
    assert_eq!(attempts(&run, "slow").len(), 1);
}

#[test]
fn independent_tasks_run_in_parallel_up_to_max_parallel_tasks() {
    let job = |bound: &str| {
        let mut t = format!("{HEAD}[jobs.j]\n{bound}\n");
        for i in 0..4 {
            t += &format!("[[jobs.j.tasks]]\nkey = \"t{i}\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = 300 }}\n");
        }
        t
    };
    let max_overlap = |run: &Value| {
        let spans: Vec<(u64, u64)> = (0..4)
            .map(|i| {
                let a = last_attempt(run, &format!("t{i}"));
                (a["started_at"].as_u64().unwrap(), a["finished_at"].as_u64().unwrap())
            })
            .collect();
        spans.iter().map(|(s0, _)| spans.iter().filter(|(s, e)| s <= s0 && e > s0).count()).max().unwrap()
    };
    let s = Sluice::new();
    let (_, free) = run_bundle(&s, "free", &job(""), &[]);
    assert_eq!(max_overlap(&free), 4, "{free:#}");
    let (_, bounded) = run_bundle(&s, "bounded", &job("max_parallel_tasks = 2"), &["--no-cache"]);
    assert_eq!(max_overlap(&bounded), 2, "{bounded:#}");
}

#[test]
fn references_to_task_values_and_attempts_resolve_before_start() {
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"fib\"\ncomponent = \"fib\"\nparams = {{ n = 10 }}\n\
         [[jobs.j.tasks]]\nkey = \"use\"\ncomponent = \"probe\"\ndepends_on = [\"fib\"]\n\
         params = {{ v = \"{{{{ tasks.fib.values.value }}}}\", a = \"{{{{ task.attempt }}}}\", r = \"{{{{ job.run_id }}}}\" }}\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "refs", &toml, &[]);
    assert_eq!(code, 0, "{run:#}");
    let out: Value = serde_json::from_str(last_attempt(&run, "use")["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["params"]["v"], "55");
    assert_eq!(out["params"]["a"], "0");
    assert_eq!(out["params"]["r"], run["run_id"].to_string());
}

#[test]
fn a_job_timeout_stops_the_run_as_timed_out() {
    let toml = format!(
        "{HEAD}[jobs.j]\ntimeout = \"1s\"\n\
         [[jobs.j.tasks]]\nkey = \"slow\"\ncomponent = \"probe\"\ntimeout = \"1m\"\nparams = {{ hang_below_attempt = 99 }}\n\
         [[jobs.j.tasks]]\nkey = \"next\"\ncomponent = \"probe\"\ndepends_on = [\"slow\"]\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "jobtimeout", &toml, &[]);
    assert_eq!(code, 1);
    assert_eq!(run["result"], "timed_out", "{run:#}");
    assert_eq!(result_of(&run, "slow"), "timed_out");
    assert_eq!(result_of(&run, "next"), "upstream_canceled");
    // read off the run's own log: it ended at its job's timeout, long before its task's
    let (created, finished) = (run["created_at"].as_u64().unwrap(), run["finished_at"].as_u64().unwrap());
    let slow = &attempts(&run, "slow")[0];
    let slow_ended = slow["finished_at"].as_u64().unwrap();
    assert!(slow_ended >= created + 1_000, "stopped at the job's timeout, not before: {run:#}");
    assert!(slow_ended < created + 60_000, "stopped by the job's timeout, not the task's own minute: {run:#}");
    assert!(finished >= slow_ended, "the run ends after its task: {run:#}");
}

#[test]
fn unlimited_retries_keep_going_until_success() {
    let toml = format!(
        "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"f\"\ncomponent = \"probe\"\nparams = {{ fail_below_attempt = 6 }}\n\
         retries = {{ max = -1, initial = \"1ms\", backoff = 1.0, jitter = 0 }}\n"
    );
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "unlimited", &toml, &[]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(attempts(&run, "f").len(), 7);
}

#[test]
fn a_global_bound_caps_sandboxes_across_the_process() {
    let mut t = format!("{HEAD}[jobs.j]\n");
    for i in 0..4 {
        t += &format!("[[jobs.j.tasks]]\nkey = \"t{i}\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = 300 }}\n");
    }
    let s = Sluice::new();
    let (code, run) = run_bundle(&s, "global", &t, &["--max-parallel", "1"]);
    assert_eq!(code, 0);
    let spans: Vec<(u64, u64)> = (0..4)
        .map(|i| {
            let a = last_attempt(&run, &format!("t{i}"));
            (a["started_at"].as_u64().unwrap(), a["finished_at"].as_u64().unwrap())
        })
        .collect();
    for (s0, _) in &spans {
        assert_eq!(spans.iter().filter(|(s, e)| s <= s0 && e > s0).count(), 1, "one at a time: {spans:?}");
    }
    let bad = s.run(&["run", s.dir.path().join("global").to_str().unwrap(), "--max-parallel", "0"]);
    bad.assert_exit(2);
}
