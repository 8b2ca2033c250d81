//! Production expectations: a task's `expectations = [...]` checked on its `/out` after
//! every successful attempt — `warn` records and continues, `fail` ends the task
//! `quality_failed` (no retry, downstream skipped), `block` skips only the named
//! downstream tasks — recorded with the attempt and shown by `runs show` (human and
//! `--json`). The datasets are written by the real SQL task (CSV, and Parquet through
//! the `parquet` crate inside the component).

use std::path::PathBuf;

use serde_json::Value;
use sluice_tests::{Sluice, last_attempt, task, task_of};

const ROWS: &str = "id,country,amount\n1,NL,10\n2,BE,20\n3,NL,\n4,XX,4000\n5,NL,30\n";

/// A job: `data` (the sql task writing `rows.EXT`, with `expectations`), then `publish`
/// and `audit` (fib) downstream of it.
fn bundle(s: &Sluice, name: &str, ext: &str, expectations: &str) -> PathBuf {
    let text = format!(
        "[bundle]\nname = \"{name}\"\n[components]\nsql = \"{{task:sql}}\"\nfib = \"{{task:fib}}\"\n[jobs.q]\n\
         [[jobs.q.tasks]]\nkey = \"data\"\ncomponent = \"sql\"\nmounts = [{{ host = \"data\", guest = \"/data\" }}]\n\
         retries = {{ max = 2, initial = \"1ms\" }}\n\
         params = {{ query = \"SELECT * FROM orders ORDER BY id\", inputs = '{{\"orders\": \"/data/orders.csv\"}}', output = \"rows.{ext}\" }}\n\
         expectations = [\n{expectations}]\n\
         [[jobs.q.tasks]]\nkey = \"publish\"\ncomponent = \"fib\"\nparams = {{ n = 3 }}\ndepends_on = [\"data\"]\n\
         [[jobs.q.tasks]]\nkey = \"audit\"\ncomponent = \"fib\"\nparams = {{ n = 3 }}\ndepends_on = [\"data\"]\n"
    );
    let dir = s.bundle(name, &text);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/orders.csv"), ROWS).unwrap();
    dir
}

fn expectation(ext: &str, rest: &str) -> String {
    format!(
        "  {{ dataset = \"rows.{ext}\", expect = \"expect_column_values_to_be_in_set\", column = \"country\", \
         value_set = [\"NL\", \"BE\"]{rest} }},\n  {{ dataset = \"rows.{ext}\", expect = \"expect_column_values_to_be_unique\", column = \"id\" }},\n"
    )
}

fn quality(run: &Value, task: &str) -> Vec<Value> {
    last_attempt(run, task)["quality"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_warning_expectation_records_its_failure_and_the_run_succeeds() {
    task("sql");
    let s = Sluice::new();
    for ext in ["csv", "parquet"] {
        let dir = bundle(&s, &format!("warn_{ext}"), ext, &expectation(ext, ", on_failure = \"warn\""));
        let (code, run) = s.run_json(&dir, &[]);
        assert_eq!(code, 0, "{run:#}");
        assert_eq!(task_of(&run, "publish")["result"], "success");
        let results = quality(&run, "data");
        assert_eq!(results.len(), 2, "{run:#}");
        assert_eq!(results[0]["success"], false);
        assert_eq!(results[0]["on_failure"], "warn");
        assert_eq!(results[0]["observed"], "1 of 5 values unexpected");
        assert_eq!(results[0]["rows"], serde_json::json!(["row 3: \"XX\""]));
        assert_eq!(results[1]["success"], true);
        // recorded with the attempt: `runs show` says so
        let id = run["run_id"].to_string();
        let shown = s.run(&["runs", "show", &id]);
        shown.assert_exit(0);
        assert!(shown.stdout.contains("expectations: 1 passed, 1 failed"), "{}", shown.stdout);
        let line = format!(
            "[warn] expect_column_values_to_be_in_set on rows.{ext} column `country`: 1 of 5 values unexpected"
        );
        assert!(shown.stdout.contains(&line), "{}", shown.stdout);
        assert!(shown.stdout.contains("row 3: \"XX\""), "{}", shown.stdout);
    }
}

#[test]
fn a_failing_expectation_fails_the_task_as_quality_failed_without_retrying() {
    task("sql");
    let s = Sluice::new();
    let dir = bundle(&s, "fail", "parquet", &expectation("parquet", ", on_failure = \"fail\""));
    let (code, run) = s.run_json(&dir, &[]);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(run["result"], "failed");
    let data = task_of(&run, "data");
    assert_eq!(data["result"], "quality_failed", "{run:#}");
    assert_eq!(data["attempts"].as_array().unwrap().len(), 1, "a data-quality failure is not retried: {run:#}");
    let attempt = last_attempt(&run, "data");
    assert_eq!(attempt["error_code"], "quality_failed");
    assert_eq!(
        attempt["error"],
        "data quality: expectation failed: expect_column_values_to_be_in_set on rows.parquet column `country`: 1 of 5 values unexpected"
    );
    for downstream in ["publish", "audit"] {
        assert_eq!(task_of(&run, downstream)["result"], "upstream_failed", "{run:#}");
    }
    let shown = s.run(&["runs", "show", &run["run_id"].to_string()]);
    assert!(shown.stdout.contains("quality_failed"), "{}", shown.stdout);
}

#[test]
fn a_blocking_expectation_skips_only_the_tasks_it_names() {
    task("sql");
    let s = Sluice::new();
    let dir = bundle(&s, "block", "csv", &expectation("csv", ", blocks = [\"publish\"]"));
    let (code, run) = s.run_json(&dir, &[]);
    assert_eq!(code, 1, "publish is a leaf that did not run: {run:#}");
    assert_eq!(task_of(&run, "data")["result"], "success");
    assert_eq!(task_of(&run, "audit")["result"], "success");
    let publish = task_of(&run, "publish");
    assert_eq!(publish["result"], "upstream_failed", "{run:#}");
    let reason = publish["skipped_reason"].as_str().unwrap();
    assert!(
        reason.contains("blocked by a failed expectation (task `data`: expect_column_values_to_be_in_set"),
        "{reason}"
    );
    assert_eq!(quality(&run, "data")[0]["blocks"], serde_json::json!(["publish"]));
}

#[test]
fn expectations_that_cannot_apply_are_bad_input_naming_the_line() {
    let s = Sluice::new();
    for (rest, expected) in [
        (", blocks = [\"nope\"]", "blocks `nope`, which is not a task of the job"),
        (", on_failure = \"block\"", "`on_failure = \"block\"` needs `blocks"),
        (", on_failure = \"explode\"", "unknown on_failure `explode`"),
    ] {
        let dir = bundle(&s, "bad", "csv", &expectation("csv", rest));
        let out = s.run(&["validate", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:"), "file:line: {}", out.stderr);
    }
}
