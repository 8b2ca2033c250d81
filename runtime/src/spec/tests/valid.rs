//! Valid bundles: what the file says is what the structs hold.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::spec::*;

const HELLO: &str = r#"
[bundle]
name = "hello"

[components]
ingest = { path = "../tasks/ingest.wasm" }
clean = "clean.wasm"

[jobs.hello]
parameters = { who = "world", n = 10, ratio = 0.5, on = true, day = "{{ job.start_time.iso_date }}", tags = ["a", 1], opts = { deep = { x = 1 } } }
timeout = "1h"

[[jobs.hello.tasks]]
key = "report"
component = "clean"
depends_on = ["load", "extract"]
params = { rows = "{{ tasks.extract.values.rows }}", who = "{{job.parameters.who}}" }

[[jobs.hello.tasks]]
key = "extract"
component = "ingest"
params = { csv = "a,b\n1,2", n = 10, big = 1_000, hex = 0x1F, neg = -3, f = 2.0, when = 1979-05-27T07:32:00Z, list = [1, "two", false] }
timeout = "1m30s"
limits = { memory = "64MiB", max_log = "1MiB", max_output = 65536 }
secrets = ["storage/access_key", "db.main/pass-word"]

[[jobs.hello.tasks]]
key = "load"
component = "ingest"
depends_on = ["extract"]
params = { at = "{{ task.key }}#{{task.attempt}} in {{ job.name }}/{{ job.run_id }} {{ job.start_time.iso_datetime }}" }
timeout = "500ms"
"#;

fn hello() -> Bundle {
    match parse(HELLO, Path::new("examples/hello/sluice.toml"), Path::new("/srv/bundles/hello")) {
        Ok(bundle) => bundle,
        Err(error) => panic!("valid bundle refused: {error}"),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn bundle_name_root_and_file() {
    let bundle = hello();
    assert_eq!(bundle.name, "hello");
    assert_eq!(bundle.root, PathBuf::from("/srv/bundles/hello"));
    assert_eq!(bundle.file, PathBuf::from("examples/hello/sluice.toml"));
}

#[test]
fn components_resolve_against_root_in_both_forms() {
    let bundle = hello();
    let ingest = &bundle.components["ingest"];
    assert_eq!(ingest.name, "ingest");
    assert_eq!(ingest.path, PathBuf::from("/srv/bundles/hello/../tasks/ingest.wasm"));
    assert_eq!(bundle.components["clean"].path, PathBuf::from("/srv/bundles/hello/clean.wasm"));
}

#[test]
fn job_parameters_become_strings_and_json() {
    let bundle = hello();
    let job = bundle.job(None).expect("the only job");
    assert_eq!(job.name, "hello");
    assert_eq!(job.timeout, Some(Duration::from_secs(3600)));
    let expected = map(&[
        ("day", "{{ job.start_time.iso_date }}"),
        ("n", "10"),
        ("on", "true"),
        ("opts", r#"{"deep":{"x":1}}"#),
        ("ratio", "0.5"),
        ("tags", r#"["a",1]"#),
        ("who", "world"),
    ]);
    assert_eq!(job.parameters, expected);
}

#[test]
fn tasks_come_back_in_topological_order() {
    let bundle = hello();
    let keys: Vec<&str> = bundle.jobs["hello"].tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["extract", "load", "report"]);
}

#[test]
fn topological_order_keeps_file_order_when_it_can() {
    let text = r#"
[bundle]
name = "order"
[components]
c = "c.wasm"
[jobs.j]
tasks = [
  { key = "z", component = "c" },
  { key = "b", component = "c", depends_on = ["d"] },
  { key = "a", component = "c" },
  { key = "d", component = "c" },
  { key = "y", component = "c", depends_on = ["z"] },
]
"#;
    let bundle = parse(text, Path::new("sluice.toml"), Path::new("/b")).expect("valid");
    let keys: Vec<&str> = bundle.jobs["j"].tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["z", "a", "d", "b", "y"]);
}

#[test]
fn task_fields_round_trip() {
    let bundle = hello();
    let job = &bundle.jobs["hello"];
    let extract = job.task("extract").expect("extract");
    assert_eq!(extract.component(), Some("ingest"));
    assert_eq!(extract.run_if, RunIf::AllSuccess);
    assert_eq!(extract.retries, None);
    assert!(extract.depends_on.is_empty());
    assert_eq!(extract.timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        extract.exec.limits,
        Limits { memory: Some(64 << 20), max_log: Some(1 << 20), max_output: Some(65536), ..Limits::default() }
    );
    assert_eq!(extract.exec.secrets, ["storage/access_key", "db.main/pass-word"]);
    let report = job.task("report").expect("report");
    assert_eq!(report.depends_on, [Dependency::on("load"), Dependency::on("extract")]);
    assert!(report.upstream_keys().eq(["load", "extract"]));
    assert_eq!(report.exec.limits, Limits::default());
    assert_eq!(report.timeout, None);
    assert_eq!(job.task("load").and_then(|t| t.timeout), Some(Duration::from_millis(500)));
}

#[test]
fn task_params_convert_like_job_parameters() {
    let bundle = hello();
    let extract = bundle.jobs["hello"].task("extract").expect("extract");
    let expected = map(&[
        ("big", "1000"),
        ("csv", "a,b\n1,2"),
        ("f", "2.0"),
        ("hex", "31"),
        ("list", r#"[1,"two",false]"#),
        ("n", "10"),
        ("neg", "-3"),
        ("when", "1979-05-27T07:32:00Z"),
    ]);
    assert_eq!(extract.exec.params, expected);
}

#[test]
fn references_are_kept_verbatim_for_the_runtime() {
    let bundle = hello();
    let report = bundle.jobs["hello"].task("report").expect("report");
    assert_eq!(report.exec.params["rows"], "{{ tasks.extract.values.rows }}");
    let refs = template::references(&report.exec.params["rows"]).expect("valid");
    assert_eq!(refs, [Reference::TaskValue { task: "extract".into(), name: "rows".into() }]);
}

#[test]
fn transitive_upstream_values_are_allowed() {
    let text = r#"
[bundle]
name = "t"
[components]
c = "c.wasm"
[[jobs.j.tasks]]
key = "a"
component = "c"
[[jobs.j.tasks]]
key = "b"
component = "c"
depends_on = ["a"]
[[jobs.j.tasks]]
key = "c"
component = "c"
depends_on = ["b"]
params = { x = "{{ tasks.a.values.out }}" }
"#;
    assert!(parse(text, Path::new("t.toml"), Path::new("/t")).is_ok());
}

#[test]
fn load_reads_a_directory_or_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(BUNDLE_FILE);
    std::fs::write(&file, HELLO).expect("write");
    let from_dir = load(dir.path()).expect("load dir");
    let from_file = load(&file).expect("load file");
    assert_eq!(from_dir, from_file);
    assert_eq!(from_dir.file, file);
    assert_eq!(from_dir.root, dir.path());
    assert_eq!(from_dir.components["clean"].path, dir.path().join("clean.wasm"));
}

#[test]
fn relative_root_is_made_absolute() {
    let bundle = parse(HELLO, Path::new("sluice.toml"), Path::new("bundles/hello")).expect("valid");
    assert!(bundle.root.is_absolute(), "{}", bundle.root.display());
    assert!(bundle.root.ends_with("bundles/hello"));
    assert_eq!(bundle.file, PathBuf::from("sluice.toml"), "file is kept as given");
}

#[test]
fn a_bundle_without_jobs_is_valid_but_has_no_default_job() {
    let text = "[bundle]\nname = \"empty\"\n";
    let bundle = parse(text, Path::new("b/sluice.toml"), Path::new("/b")).expect("valid");
    assert!(bundle.jobs.is_empty() && bundle.components.is_empty());
    let error = bundle.job(None).expect_err("no jobs").to_string();
    assert_eq!(error, "b/sluice.toml: the bundle defines no jobs");
}

#[test]
fn job_selection_by_name_and_by_default() {
    let text = r#"
[bundle]
name = "two"
[components]
c = "c.wasm"
[[jobs.nightly.tasks]]
key = "a"
component = "c"
[[jobs.hourly.tasks]]
key = "a"
component = "c"
"#;
    let bundle = parse(text, Path::new("two.toml"), Path::new("/b")).expect("valid");
    assert_eq!(bundle.job(Some("hourly")).map(|j| j.name.as_str()), Ok("hourly"));
    let several = bundle.job(None).expect_err("two jobs").to_string();
    assert!(several.contains("several jobs") && several.contains("hourly, nightly"), "{several}");
    let missing = bundle.job(Some("nightl")).expect_err("missing").to_string();
    assert_eq!(missing, "two.toml: no job named `nightl`; jobs: hourly, nightly (did you mean `nightly`?)");
}

/// The TOML example in the module's docs.
fn docs_example() -> String {
    let mut text = String::new();
    let mut inside = false;
    for line in include_str!("../mod.rs").lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match (inside, doc.trim()) {
            (false, "```toml") => inside = true,
            (true, "```") => break,
            (true, _) => {
                text.push_str(doc);
                text.push('\n');
            }
            _ => {}
        }
    }
    text
}

#[test]
fn the_module_docs_example_is_valid() {
    let text = docs_example();
    let (_dir, root) = super::docs_root();
    let bundle = match parse(&text, Path::new("sluice.toml"), &root) {
        Ok(bundle) => bundle,
        Err(error) => panic!("docs example refused: {error}\n{text}"),
    };
    let job = &bundle.jobs["hello"];
    assert_eq!(job.max_parallel_tasks, Some(4));
    let kinds: Vec<(&str, &str)> = job.tasks.iter().map(|t| (t.key.as_str(), t.kind.name())).collect();
    assert_eq!(
        kinds,
        [
            ("extract", "component"),
            ("hello_c", "command"),
            ("big_enough", "condition"),
            ("count_each", "for_each"),
            ("report", "run_job")
        ]
    );
    let report = job.task("report").expect("report");
    assert_eq!(report.run_if, RunIf::AtLeastOneSuccess);
    assert_eq!(report.depends_on[1].outcome, Some(false));
}

#[test]
fn bundles_round_trip_through_serde() {
    let text = docs_example();
    let (_dir, root) = super::docs_root();
    let bundle = parse(&text, Path::new("sluice.toml"), &root).expect("valid");
    let json = serde_json::to_string(&bundle).expect("serialize");
    assert!(json.contains(r#""kind":"for_each""#), "{json}");
    assert!(json.contains(r#""op":"greater_than""#), "{json}");
    assert!(json.contains(r#""run_if":"at_least_one_success""#), "{json}");
    let back: Bundle = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, bundle);
}
