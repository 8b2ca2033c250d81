//! Invalid bundles: each error names the place (file, line, key path) and says what helps.

use super::*;
use crate::spec::load;

#[test]
fn error_display_is_file_line_col_key_message() {
    let text =
        with_job(&format!("{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\ntimout = \"1s\"\n"));
    let line = line_of(&text, "timout");
    let shown = assert_error(&text, line, "jobs.hello.tasks[1].timout", "did you mean `timeout`?");
    assert_eq!(shown, format!("{FILE}:{line}:1: jobs.hello.tasks[1].timout: unknown key (did you mean `timeout`?)"));
}

#[test]
fn unknown_key_at_top_level() {
    let text = format!("{HEAD}\n[variabels]\nlake = 1\n");
    assert_error(&text, line_of(&text, "variabels"), "variabels", "did you mean `variables`?");
    let text = format!("{HEAD}\n[settings]\nlake = 1\n");
    assert_error(&text, line_of(&text, "settings"), "settings", "unknown key; expected one of `bundle`");
    let text = format!("{HEAD}\n[[job.x.tasks]]\n");
    assert_error(&text, line_of(&text, "job."), "job", "did you mean `jobs`?");
}

#[test]
fn unknown_key_in_bundle() {
    let text = HEAD.replace("name = \"hello\"", "name = \"hello\"\nnmae = \"x\"");
    assert_error(&text, 3, "bundle.nmae", "did you mean `name`?");
}

#[test]
fn unknown_key_in_component() {
    let text = HEAD.replace("{ path = ", "{ pth = ");
    assert_error(&text, 5, "components.ingest.pth", "did you mean `path`?");
}

#[test]
fn unknown_key_in_job() {
    let text = with_job(&format!("[jobs.hello]\nparams = {{ a = 1 }}\n\n{TASK_A}"));
    assert_error(&text, line_of(&text, "params"), "jobs.hello.params", "unknown key");
}

#[test]
fn unknown_key_in_task_suggests_closest() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ndependson = []");
    assert_error(&text, line_of(&text, "dependson"), "jobs.hello.tasks[0].dependson", "did you mean `depends_on`?");
}

#[test]
fn unknown_key_in_limits() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nlimits = { memory = \"1MiB\", max_logs = \"1KiB\" }");
    let line = line_of(&text, "max_logs");
    assert_error(&text, line, "jobs.hello.tasks[0].limits.max_logs", "did you mean `max_log`?");
}

#[test]
fn wrong_types_name_expected_and_found() {
    let text = task("key = 5\ncomponent = \"ingest\"");
    assert_error(&text, line_of(&text, "key = 5"), "jobs.hello.tasks[0].key", "expected a string, found an integer");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ndepends_on = \"b\"");
    assert_error(&text, line_of(&text, "depends_on"), "jobs.hello.tasks[0].depends_on", "expected an array");
    let text = with_job("[jobs.hello]\ntasks = \"a\"\n");
    assert_error(&text, line_of(&text, "tasks ="), "jobs.hello.tasks", "expected an array, found a string");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nsecrets = [\"a/b\", 3]");
    assert_error(&text, line_of(&text, "secrets"), "jobs.hello.tasks[0].secrets[1]", "expected a string");
    let text = HEAD.replace("clean = \"clean.wasm\"", "clean = 3");
    assert_error(&text, 6, "components.clean", "expected a path string");
}

#[test]
fn missing_required_keys() {
    let text = HEAD.replace("name = \"hello\"\n", "");
    assert_error(&text, 1, "bundle.name", "missing required key `name`");
    let text = HEAD.replace("[bundle]\nname = \"hello\"\n", "");
    assert_error(&text, 1, "bundle", "missing required table `[bundle]`");
    let text = task("component = \"ingest\"");
    assert_error(&text, line_of(&text, "[[jobs"), "jobs.hello.tasks[0].key", "missing required key `key`");
}

#[test]
fn durations_must_have_units_and_parse() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ntimeout = 10");
    assert_error(&text, line_of(&text, "timeout"), "jobs.hello.tasks[0].timeout", "add a unit");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ntimeout = \"10\"");
    assert_error(&text, line_of(&text, "timeout"), "jobs.hello.tasks[0].timeout", "has no unit");
    let text = with_job(&format!("[jobs.hello]\ntimeout = \"2 hours\"\n\n{TASK_A}"));
    assert_error(&text, line_of(&text, "timeout"), "jobs.hello.timeout", "unknown unit `hours`");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ntimeout = \"0s\"");
    assert_error(&text, line_of(&text, "timeout"), "jobs.hello.tasks[0].timeout", "greater than zero");
}

#[test]
fn sizes_must_parse() {
    let text = task(
        "key = \"a\"\ncomponent = \"ingest\"\n\n[jobs.hello.tasks.limits]\nmemory = \"64MB\"\nmax_output = \"1 lot\"",
    );
    assert_error(&text, line_of(&text, "max_output"), "jobs.hello.tasks[0].limits.max_output", "unknown unit `lot`");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nlimits = { memory = -1 }");
    assert_error(&text, line_of(&text, "limits"), "jobs.hello.tasks[0].limits.memory", "non-negative");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nlimits = { memory = \"0B\" }");
    assert_error(&text, line_of(&text, "limits"), "jobs.hello.tasks[0].limits.memory", "greater than zero");
}

#[test]
fn unknown_component_lists_known_ones() {
    let text = task("key = \"a\"\ncomponent = \"ingset\"");
    let shown =
        assert_error(&text, line_of(&text, "ingset"), "jobs.hello.tasks[0].component", "unknown component `ingset`");
    assert!(shown.contains("components: `clean`, `ingest`"), "{shown}");
    assert!(shown.contains("did you mean `ingest`?"), "{shown}");
}

#[test]
fn depends_on_unknown_task() {
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\ndepends_on = [\"a\", \"x\"]\n"
    ));
    let shown =
        assert_error(&text, line_of(&text, "depends_on"), "jobs.hello.tasks[1].depends_on[1]", "unknown task `x`");
    assert!(shown.contains("tasks in job `hello`: `a`, `b`"), "{shown}");
}

#[test]
fn depends_on_listed_twice() {
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\ndepends_on = [\"a\", \"a\"]\n"
    ));
    assert_error(&text, line_of(&text, "depends_on"), "jobs.hello.tasks[1].depends_on[1]", "`a` is listed twice");
}

#[test]
fn task_depending_on_itself() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\ndepends_on = [\"a\"]");
    assert_error(
        &text,
        line_of(&text, "depends_on"),
        "jobs.hello.tasks[0].depends_on[0]",
        "task `a` depends on itself",
    );
}

#[test]
fn duplicate_task_keys_point_at_both() {
    let text = with_job(&format!("{TASK_A}\n{TASK_A}"));
    let first = line_of(&text, "key = \"a\"");
    let second = text.rfind("key = \"a\"").map(|at| text[..at].matches('\n').count() + 1).expect("second");
    let needle = format!("duplicate task key `a` (first defined on line {first})");
    assert_error(&text, second, "jobs.hello.tasks[1].key", &needle);
}

#[test]
fn dependency_cycle_is_named() {
    let text = with_job(
        r#"[jobs.hello]
tasks = [
  { key = "start", component = "ingest" },
  { key = "a", component = "ingest", depends_on = ["start", "b"] },
  { key = "b", component = "ingest", depends_on = ["c"] },
  { key = "c", component = "ingest", depends_on = ["a"] },
  { key = "after", component = "ingest", depends_on = ["c"] },
]
"#,
    );
    let line = line_of(&text, "key = \"a\"");
    assert_error(&text, line, "jobs.hello.tasks[1].depends_on[1]", "dependency cycle: a -> b -> c -> a");
}

#[test]
fn job_without_tasks() {
    let text = with_job("[jobs.hello]\ntimeout = \"1h\"\n");
    assert_error(&text, line_of(&text, "[jobs.hello]"), "jobs.hello.tasks", "job `hello` has no tasks");
    let text = with_job("[jobs.hello]\ntasks = []\n");
    assert_error(&text, line_of(&text, "tasks"), "jobs.hello.tasks", "has no tasks");
}

#[test]
fn names_must_be_plain() {
    let text = task("key = \"a b\"\ncomponent = \"ingest\"");
    assert_error(&text, line_of(&text, "a b"), "jobs.hello.tasks[0].key", "use only letters, digits");
    let text = format!("{HEAD}\n[[jobs.\"my job\".tasks]]\nkey = \"a\"\ncomponent = \"ingest\"\n");
    assert_error(&text, line_of(&text, "my job"), "jobs.\"my job\"", "bad job name");
    let long = "c".repeat(101);
    let text = HEAD.replace("clean = ", &format!("{long} = "));
    assert_error(&text, 6, &format!("components.{long}"), "at most 100");
    let text = with_job(&format!("[jobs.hello]\nparameters = {{ \"a.b\" = 1 }}\n\n{TASK_A}"));
    assert_error(&text, line_of(&text, "parameters"), "jobs.hello.parameters.\"a.b\"", "bad parameter name");
}

#[test]
fn secrets_must_be_scope_slash_key() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nsecrets = [\"storage/key\", \"access_key\"]");
    assert_error(&text, line_of(&text, "secrets"), "jobs.hello.tasks[0].secrets[1]", "not a `scope/key` name");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nsecrets = [\"s/k\", \"s/k\"]");
    assert_error(&text, line_of(&text, "secrets"), "jobs.hello.tasks[0].secrets[1]", "listed twice");
}

#[test]
fn toml_syntax_errors_are_located() {
    let text = format!("{HEAD}\n[jobs.hello\nkey = 1\n");
    let error = error_of(&text);
    let shown = error.to_string();
    assert_eq!(error.line(), Some(line_of(&text, "[jobs.hello")), "{shown}");
    assert!(shown.starts_with(&format!("{FILE}:8:")) && shown.contains("TOML syntax error"), "{shown}");
}

#[test]
fn missing_file_says_it_does_not_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.toml");
    let shown = load(&path).expect_err("missing").to_string();
    assert_eq!(shown, format!("{}: does not exist", path.display()));
}

#[test]
fn directory_without_bundle_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shown = load(dir.path()).expect_err("empty dir").to_string();
    assert!(shown.starts_with(&format!("{}: no sluice.toml", dir.path().display())), "{shown}");
}

#[test]
fn fuel_and_max_out_are_checked() {
    let limits = |l: &str| task(&format!("key = \"a\"\ncomponent = \"ingest\"\nlimits = {{ {l} }}"));
    let key = |k: &str| format!("jobs.hello.tasks[0].limits.{k}");
    let cases = [
        ("fuel = 0", "fuel", "fuel must be at least 1; fuel is a whole number of wasmtime fuel units"),
        ("fuel = -5", "fuel", "fuel must be at least 1"),
        ("fuel = \"100M\"", "fuel", "expected an integer; fuel is a whole number"),
        ("fuel = 1.5", "fuel", "expected an integer"),
        ("max_out = \"10 parsecs\"", "max_out", "bad size"),
        ("max_out = -1", "max_out", "size must be a non-negative number of bytes"),
        ("fule = 1", "fule", "did you mean `fuel`?"),
        ("max_outs = 1", "max_outs", "did you mean"),
    ];
    for (written, at, needle) in cases {
        let text = limits(written);
        assert_error(&text, line_of(&text, "limits"), &key(at), needle);
    }
    let a = task_of(&limits("fuel = 1, max_out = 0"), "a");
    assert_eq!((a.exec.limits.fuel, a.exec.limits.max_out), (Some(1), Some(0)));
}
