//! How tasks hang together: `max_parallel_tasks`, `run_if`, `retries`, `depends_on` tables.

use std::time::Duration;

use super::*;
use crate::spec::{Dependency, RetryPolicy, RunIf};

fn task_a(extra: &str) -> String {
    task(&format!("key = \"a\"\ncomponent = \"ingest\"\n{extra}"))
}

/// Task `a` (component), a condition task `check` after it, and `extra_task` lines.
fn with_check(extra_task: &str) -> String {
    with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"check\"\ndepends_on = [\"a\"]\n\
         condition = {{ op = \"equal_to\", left = \"x\", right = \"x\" }}\n\n\
         [[jobs.hello.tasks]]\n{extra_task}\n"
    ))
}

#[test]
fn max_parallel_tasks_is_read() {
    let text = with_job(&format!("[jobs.hello]\nmax_parallel_tasks = 4\n\n{TASK_A}"));
    assert_eq!(bundle_of(&text).jobs["hello"].max_parallel_tasks, Some(4));
    assert_eq!(bundle_of(&task_a("")).jobs["hello"].max_parallel_tasks, None);
}

#[test]
fn max_parallel_tasks_must_be_at_least_one() {
    for bad in ["0", "-2"] {
        let text = with_job(&format!("[jobs.hello]\nmax_parallel_tasks = {bad}\n\n{TASK_A}"));
        assert_error(
            &text,
            line_of(&text, "max_parallel_tasks"),
            "jobs.hello.max_parallel_tasks",
            &format!("must be a whole number from 1 to 4294967295, found {bad}"),
        );
    }
    let text = with_job(&format!("[jobs.hello]\nmax_parallel_tasks = \"4\"\n\n{TASK_A}"));
    assert_error(
        &text,
        line_of(&text, "max_parallel_tasks"),
        "jobs.hello.max_parallel_tasks",
        "expected an integer, found a string",
    );
}

#[test]
fn max_concurrent_runs_and_queue_are_read_with_databricks_defaults() {
    let text = with_job(&format!("[jobs.hello]\nmax_concurrent_runs = 3\nqueue = false\n\n{TASK_A}"));
    let job = &bundle_of(&text).jobs["hello"];
    assert_eq!((job.max_concurrent_runs, job.queue), (3, false));
    let job = &bundle_of(&task_a("")).jobs["hello"];
    assert_eq!((job.max_concurrent_runs, job.queue), (1, true), "one active run, the rest queued");
    let text = with_job(&format!("[jobs.hello]\nmax_concurrent_runs = 0\n\n{TASK_A}"));
    assert_eq!(bundle_of(&text).jobs["hello"].max_concurrent_runs, 0, "0 skips every run");
    for bad in ["-1", "1001"] {
        let text = with_job(&format!("[jobs.hello]\nmax_concurrent_runs = {bad}\n\n{TASK_A}"));
        assert_error(
            &text,
            line_of(&text, "max_concurrent_runs"),
            "jobs.hello.max_concurrent_runs",
            &format!("must be a whole number from 0 (skip every run) to 1000, found {bad}"),
        );
    }
    let text = with_job(&format!("[jobs.hello]\nqueue = \"yes\"\n\n{TASK_A}"));
    assert_error(
        &text,
        line_of(&text, "queue"),
        "jobs.hello.queue",
        "expected a boolean (true or false), found a string",
    );
}

#[test]
fn run_if_defaults_to_all_success_and_reads_every_value() {
    assert_eq!(task_of(&task_a(""), "a").run_if, RunIf::AllSuccess);
    assert_eq!(RunIf::default(), RunIf::AllSuccess);
    let names = ["all_success", "at_least_one_success", "none_failed", "all_done", "at_least_one_failed", "all_failed"];
    for (run_if, name) in RunIf::ALL.into_iter().zip(names) {
        let text = format!(
            "{}[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"ingest\"\ndepends_on = [\"a\"]\nrun_if = \"{name}\"\n",
            task_a("")
        );
        assert_eq!(task_of(&text, "b").run_if, run_if);
        assert_eq!(run_if.as_str(), name);
        assert_eq!(serde_json::to_string(&run_if).ok(), Some(format!("\"{name}\"")));
    }
}

#[test]
fn unknown_run_if_suggests_and_lists() {
    let text = task_a("run_if = \"all_sucess\"");
    let shown = assert_error(
        &text,
        line_of(&text, "run_if"),
        "jobs.hello.tasks[0].run_if",
        "unknown run_if `all_sucess` (did you mean `all_success`?)",
    );
    assert!(
        shown.contains(
            "expected one of `all_success`, `at_least_one_success`, `none_failed`, `all_done`, \
             `at_least_one_failed`, `all_failed`"
        ),
        "{shown}"
    );
}

#[test]
fn retries_default_everything_but_max() {
    let retries = task_of(&task_a("retries = { max = 3 }"), "a").retries;
    let expected = RetryPolicy {
        max: Some(3),
        initial: Duration::from_secs(1),
        backoff: 2.0,
        max_interval: Duration::from_secs(60),
        jitter: 0.1,
        on_timeout: false,
    };
    assert_eq!(retries, Some(expected));
    assert_eq!(task_of(&task_a(""), "a").retries, None, "no retries by default");
}

#[test]
fn retries_full_form() {
    let text = task_a(
        "retries = { max = 5, initial = \"500ms\", backoff = 1.5, max_interval = \"2m\", jitter = 0, on_timeout = true }",
    );
    let expected = RetryPolicy {
        max: Some(5),
        initial: Duration::from_millis(500),
        backoff: 1.5,
        max_interval: Duration::from_secs(120),
        jitter: 0.0,
        on_timeout: true,
    };
    assert_eq!(task_of(&text, "a").retries, Some(expected));
}

#[test]
fn retries_minus_one_is_unlimited_and_zero_is_none() {
    let unlimited = task_of(&task_a("retries = { max = -1 }"), "a").retries;
    assert_eq!(unlimited.map(|r| r.max), Some(None));
    let zero = task_of(&task_a("retries = { max = 0 }"), "a").retries;
    assert_eq!(zero.map(|r| r.max), Some(Some(0)));
}

#[test]
fn unwritten_max_interval_never_undercuts_initial() {
    let text = task_a("retries = { max = 1, initial = \"5m\" }");
    let retries = task_of(&text, "a").retries.expect("retries");
    assert_eq!(retries.max_interval, Duration::from_secs(300));
}

/// Asserts the error of `retries = <retries>` on task `a`.
fn assert_retries_error(retries: &str, key: &str, needle: &str) {
    let text = task_a(&format!("retries = {retries}"));
    assert_error(&text, line_of(&text, "retries"), &format!("jobs.hello.tasks[0].retries{key}"), needle);
}

#[test]
fn retries_errors() {
    assert_retries_error("{ max = 3, backof = 2.0 }", ".backof", "unknown key (did you mean `backoff`?)");
    assert_retries_error("{ initial = \"1s\" }", ".max", "missing required key `max`");
    assert_retries_error("{ max = 3, backoff = 0.5 }", ".backoff", "backoff must be at least 1.0");
    assert_retries_error("{ max = 3, jitter = 1.5 }", ".jitter", "jitter is a fraction of the wait from 0.0 to 1.0");
    assert_retries_error(
        "{ max = -2 }",
        ".max",
        "max must be -1 (retry without limit) or a number of retries (0 or more), found -2",
    );
    assert_retries_error(
        "{ max = 3, initial = \"10s\", max_interval = \"5s\" }",
        ".max_interval",
        "max_interval (5s) is shorter than initial (10s)",
    );
    assert_retries_error("3", "", "expected a table such as `{ max = 3 }`");
    assert_retries_error("{ max = 1, on_timeout = \"yes\" }", ".on_timeout", "expected a boolean");
}

#[test]
fn depends_on_takes_strings_and_tables() {
    let text = with_check(
        "key = \"b\"\ncomponent = \"clean\"\n\
         depends_on = [{ task = \"check\", outcome = \"true\" }, { task = \"a\" }]",
    );
    let b = task_of(&text, "b");
    let expected = [Dependency { task: "check".into(), outcome: Some(true) }, Dependency::on("a")];
    assert_eq!(b.depends_on, expected);
    assert!(b.upstream_keys().eq(["check", "a"]));
    let check = task_of(&text, "check");
    assert_eq!(check.depends_on, [Dependency::on("a")]);
}

#[test]
fn outcome_may_be_a_toml_boolean_or_left_out() {
    for (written, outcome) in [
        ("outcome = false", Some(false)),
        ("outcome = \"false\"", Some(false)),
        ("outcome = true", Some(true)),
        ("", None),
    ] {
        let sep = if written.is_empty() { "" } else { ", " };
        let text = with_check(&format!(
            "key = \"b\"\ncomponent = \"clean\"\ndepends_on = [{{ task = \"check\"{sep}{written} }}]"
        ));
        assert_eq!(task_of(&text, "b").depends_on[0].outcome, outcome, "{written}");
    }
}

#[test]
fn outcome_needs_a_condition_upstream() {
    let text = with_check(
        "key = \"b\"\ncomponent = \"clean\"\ndepends_on = [\"check\", { task = \"a\", outcome = \"true\" }]",
    );
    let shown = assert_error(
        &text,
        line_of(&text, "outcome = \"true\""),
        "jobs.hello.tasks[2].depends_on[1].outcome",
        "`outcome` applies only to a condition task, and `a` is a component task",
    );
    assert!(shown.contains("depend on `a` without it"), "{shown}");
}

#[test]
fn depends_on_table_errors() {
    let text = with_check("key = \"b\"\ncomponent = \"clean\"\ndepends_on = [{ task = \"check\", outcome = \"yes\" }]");
    assert_error(
        &text,
        line_of(&text, "\"yes\""),
        "jobs.hello.tasks[2].depends_on[0].outcome",
        "\"true\" or \"false\"",
    );
    let text = with_check("key = \"b\"\ncomponent = \"clean\"\ndepends_on = [{ task = \"check\", outcom = true }]");
    assert_error(
        &text,
        line_of(&text, "outcom ="),
        "jobs.hello.tasks[2].depends_on[0].outcom",
        "did you mean `outcome`?",
    );
    let text = with_check("key = \"b\"\ncomponent = \"clean\"\ndepends_on = [{ task = \"chek\" }]");
    assert_error(
        &text,
        line_of(&text, "\"chek\""),
        "jobs.hello.tasks[2].depends_on[0].task",
        "unknown task `chek` (did you mean `check`?)",
    );
    let text = with_check("key = \"b\"\ncomponent = \"clean\"\ndepends_on = [{ outcome = true }]");
    assert_error(
        &text,
        line_of(&text, "[{ outcome"),
        "jobs.hello.tasks[2].depends_on[0].task",
        "missing required key `task`",
    );
    let text = task_a("depends_on = [1]");
    assert_error(
        &text,
        line_of(&text, "depends_on"),
        "jobs.hello.tasks[0].depends_on[0]",
        "expected a task key or a table such as `{ task = \"check\", outcome = \"true\" }`",
    );
}

#[test]
fn run_if_on_a_task_without_dependencies_is_refused() {
    let text = task_a("run_if = \"all_done\"");
    assert_error(
        &text,
        line_of(&text, "run_if"),
        "jobs.hello.tasks[0].run_if",
        "task `a` has `run_if` but no `depends_on`",
    );
}

#[test]
fn cleanup_timeout_is_a_job_duration() {
    let text = with_job(&format!("[jobs.hello]\ncleanup_timeout = \"30s\"\n\n{TASK_A}"));
    assert_eq!(bundle_of(&text).jobs["hello"].cleanup_timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(bundle_of(&task_a("")).jobs["hello"].cleanup_timeout, None);
}

#[test]
fn targets_name_a_default_and_only_declared_ones_exist() {
    let targets = "[targets.dev]\n[targets.prod]\ndefault = true\n";
    let bundle = bundle_of(&format!("{targets}{}", task_a("")));
    assert_eq!(bundle.target(None).unwrap(), "prod", "the default");
    assert_eq!(bundle.target(Some("dev")).unwrap(), "dev");
    let err = bundle.target(Some("prdo")).unwrap_err().to_string();
    assert!(err.contains("no target named `prdo`") && err.contains("dev, prod") && err.contains("`prod`?"), "{err}");
    let undeclared = bundle_of(&task_a(""));
    assert_eq!(undeclared.target(None).unwrap(), "dev", "no [targets]: dev, and any name");
    assert_eq!(undeclared.target(Some("anything")).unwrap(), "anything");
    let no_default = bundle_of(&format!("[targets.a]\n[targets.b]\n{}", task_a("")));
    assert!(no_default.target(None).unwrap_err().to_string().contains("--target"));
    let text = format!("[targets.a]\ndefault = true\n[targets.b]\ndefault = true\n{}", task_a(""));
    assert_error(&text, 4, "targets.b.default", "target `a` is already the default");
}
