//! Tasks not written in Rust, with the current binary: the SQL engine component (tasks/sql),
//! Python task components built with the Python SDK (examples/python), and a plain Python script
//! run by the Python interpreter component (examples/python-script). scripts/setup builds the
//! Python components (componentize-py); the tests say so when they are missing.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sluice_tests::{Sluice, last_attempt, repo, run_example, task, task_of};

fn built(rel: &str) -> PathBuf {
    let path = repo().join(rel);
    assert!(path.is_file(), "{} is missing: scripts/setup builds it (componentize-py)", path.display());
    path
}

fn output(run: &Value, key: &str) -> Value {
    serde_json::from_str(last_attempt(run, key)["output"].as_str().expect("an output")).expect("JSON output")
}

#[test]
fn sql_joins_and_aggregates_two_parquet_files_with_a_bound_parameter() {
    task("sql");
    let s = Sluice::new();
    let run = run_example(&s, "sql", &[]);
    assert_eq!(run["result"], "success");
    assert_eq!(output(&run, "orders")["rows"], 8);
    let by_country = output(&run, "by_country");
    assert_eq!(by_country["rows"], 3);
    let columns: Vec<&str> =
        by_country["schema"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["country", "orders", "customers", "total"]);
    assert_eq!(by_country["schema"][3]["type"], "Float64");
    // the job parameter reaches the query as a bound value: a higher bar keeps one country
    let run = run_example(&s, "sql", &["--param", "min_total=300"]);
    assert_eq!(output(&run, "by_country")["rows"], 1);
}

#[test]
fn sql_reports_bad_sql_with_its_line_and_column() {
    let s = Sluice::new();
    let query = "query=SELECT country,\n  SUM(amount) AS total\nFRM orders";
    let (out, run) = s.task_run(&task("sql"), &["--param", query]);
    out.assert_exit(1);
    let error = last_attempt(&run, "sql")["error"].as_str().unwrap().to_string();
    assert!(error.contains("SQL error at line 3, column 1: near \"FRM\": syntax error"), "{error}");
    assert_eq!(task_of(&run, "sql")["attempts"].as_array().unwrap().len(), 1, "bad SQL is not retried");
}

#[test]
fn python_pipeline_runs_three_sdk_components() {
    for t in ["extract", "stats", "report"] {
        built(&format!("examples/python/build/{t}.wasm"));
    }
    let s = Sluice::new();
    let run = run_example(&s, "python", &["--param", "unit=F"]);
    assert_eq!(run["result"], "success");
    let extract = output(&run, "extract");
    assert_eq!(extract["rows"], 8);
    assert_eq!(extract["rejected"][0], json!({"line": 6, "reason": "no temperature"}));
    // `stats` imports `statistics` inside a function: present at run time because the build preloads it
    assert_eq!(output(&run, "stats")["ams"]["median_c"], 9.5);
    let report = output(&run, "report");
    assert_eq!(
        (report["warmest"].as_str(), report["wettest"].as_str(), report["unit"].as_str()),
        (Some("rtm"), Some("utr"), Some("F"))
    );
}

#[test]
fn a_python_exception_is_a_permanent_error_with_type_message_and_line_not_a_trap() {
    let wasm = built("examples/python/build/extract.wasm");
    let s = Sluice::new();
    let (out, run) = s.task_run(&wasm, &["--param", "path=/nowhere.csv"]);
    out.assert_exit(1);
    let a = last_attempt(&run, "extract");
    let error = a["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "permanent error: FileNotFoundError: [Errno 44] No such file or directory: '/nowhere.csv' (at task.py:"
        ),
        "{error}"
    );
    assert!(!error.contains("trap"), "{error}");
    assert!(a["log"].as_str().unwrap().contains("Traceback (most recent call last)"), "the traceback is in the log");
}

fn script_bundle(s: &Sluice, min_mm: &str) -> PathBuf {
    let example = repo().join("examples/python-script");
    let text = std::fs::read_to_string(example.join("sluice.toml")).unwrap();
    let python = built("examples/python-script/build/python.wasm");
    let text = text
        .replace("path = \"build/python.wasm\"", &format!("path = {:?}", python.to_str().unwrap()))
        .replace("\"--min-mm\", \"5\"", &format!("\"--min-mm\", \"{min_mm}\""));
    let dir = s.bundle(&format!("script-{min_mm}"), &text);
    for sub in ["scripts", "data"] {
        copy_dir(&example.join(sub), &dir.join(sub));
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_plain_python_script_runs_from_a_read_only_mount_with_its_own_exit_code() {
    let s = Sluice::new();
    let dir = script_bundle(&s, "5");
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    assert_eq!(output(&out.json(), "rain"), json!({"stations": {"ams": 7.5, "utr": 11.0}}));

    let dir = script_bundle(&s, "100");
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    let a = last_attempt(&out.json(), "rain").clone();
    assert!(a["error"].as_str().unwrap().contains("exited with code 3"), "sys.exit(3) is the task's code: {a:#}");
    assert!(a["log"].as_str().unwrap().contains("no station has 100.0 mm of rain"));
}
