//! What a Databricks or Temporal user expects of a run, end to end: run_if on branches not
//! taken, the references they use, for_each over objects with command and run_job
//! templates, targets, parameters, reuse shown as reuse, and a command line that behaves
//! in a pipe and from any directory of a bundle.

use serde_json::Value;
use sluice_tests::{Sluice, attempt_results, last_attempt, task_of};

const HEAD: &str = "[bundle]\nname = \"sem\"\n[components]\nprobe = \"{guest:probe}\"\ncmd = \"{guest:cmd}\"\n";

fn result_of(run: &Value, key: &str) -> String {
    task_of(run, key)["result"].as_str().unwrap_or("none").to_string()
}

fn output(run: &Value, key: &str) -> Value {
    serde_json::from_str(last_attempt(run, key)["output"].as_str().expect("an output")).expect("JSON output")
}

#[test]
fn a_branch_not_taken_counts_exactly_like_an_excluded_upstream() {
    let s = Sluice::new();
    let mut toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"bad\"\ncomponent = \"probe\"\nparams = {{ fail = \"permanent\" }}\n\
         [[jobs.j.tasks]]\nkey = \"no\"\ncondition = {{ op = \"equal_to\", left = \"1\", right = \"2\" }}\n\
         [[jobs.j.tasks]]\nkey = \"skipped\"\ncomponent = \"probe\"\ndepends_on = [{{ task = \"no\", outcome = \"true\" }}]\n"
    );
    for rule in ["at_least_one_success", "all_failed"] {
        for (name, other) in [("edge", "{ task = \"no\", outcome = \"true\" }"), ("excluded", "\"skipped\"")] {
            toml += &format!(
                "[[jobs.j.tasks]]\nkey = \"{rule}_{name}\"\ncomponent = \"probe\"\ndepends_on = [\"bad\", {other}]\nrun_if = \"{rule}\"\n"
            );
        }
    }
    let dir = s.bundle("branch", &toml);
    let (_, run) = s.run_json(&dir, &[]);
    assert_eq!(result_of(&run, "skipped"), "excluded");
    for rule in ["at_least_one_success", "all_failed"] {
        assert_eq!(
            result_of(&run, &format!("{rule}_edge")),
            result_of(&run, &format!("{rule}_excluded")),
            "{rule}: [failed + branch not taken] and [failed + excluded task] must agree: {run:#}"
        );
    }
    assert_eq!(result_of(&run, "at_least_one_success_edge"), "success", "excluded counts as success");
    assert_eq!(result_of(&run, "all_failed_edge"), "excluded", "not every upstream failed");
}

#[test]
fn references_databricks_users_use_resolve() {
    let s = Sluice::new();
    let dir = s.bundle(
        "refs",
        &format!(
            "{HEAD}[jobs.nightly]\n\
             [[jobs.nightly.tasks]]\nkey = \"bad\"\ncomponent = \"probe\"\nparams = {{ fail = \"permanent\" }}\n\
             [[jobs.nightly.tasks]]\nkey = \"ok\"\ncomponent = \"probe\"\n\
             [[jobs.nightly.tasks]]\nkey = \"report\"\ncomponent = \"probe\"\ndepends_on = [\"bad\", \"ok\"]\nrun_if = \"all_done\"\n\
             params = {{ id = \"{{{{ job.id }}}}\", name = \"{{{{ job.name }}}}\", repairs = \"{{{{ job.repair_count }}}}\", \
             start = \"{{{{ job.start_time.year }}}}-{{{{ job.start_time.month }}}}-{{{{ job.start_time.day }}}}T{{{{ job.start_time.hour }}}}:{{{{ job.start_time.minute }}}}:{{{{ job.start_time.second }}}}\", \
             ms = \"{{{{ job.start_time.timestamp_ms }}}}\", bad_state = \"{{{{ tasks.bad.result_state }}}}\", \
             bad_code = \"{{{{ tasks.bad.error_code }}}}\", ok_state = \"{{{{ tasks.ok.result_state }}}}\", \
             ok_code = \"{{{{ tasks.ok.error_code }}}}\" }}\n"
        ),
    );
    let (_, run) = s.run_json(&dir, &[]);
    let p = &output(&run, "report")["params"];
    assert_eq!(
        (p["id"].as_str(), p["name"].as_str(), p["repairs"].as_str()),
        (Some("sem.nightly"), Some("nightly"), Some("0"))
    );
    assert_eq!((p["bad_state"].as_str(), p["bad_code"].as_str()), (Some("failed"), Some("permanent")));
    assert_eq!((p["ok_state"].as_str(), p["ok_code"].as_str()), (Some("success"), Some("")));
    let ms: u64 = p["ms"].as_str().unwrap().parse().unwrap();
    assert_eq!(ms, run["created_at"].as_u64().unwrap(), "the run's logical start, to the millisecond");
    let stamp = humantime_of(ms);
    assert_eq!(p["start"].as_str().unwrap(), stamp);
    let repaired = s.run(&["runs", "repair", "1", "--task", "report", "--json"]);
    repaired.assert_exit(0); // success_with_failures: `bad` is not a leaf
    assert_eq!(output(&repaired.json(), "report")["params"]["repairs"], "1");

    // checked at load like the others
    let bad = s.bundle(
        "refs-bad",
        &format!(
            "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
             [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\nparams = {{ s = \"{{{{ tasks.a.result_state }}}}\" }}\n"
        ),
    );
    let out = s.run(&["run", bad.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("sluice.toml:") && out.stderr.contains("is not upstream of `b`"), "{}", out.stderr);
}

/// `Y-M-DTh:m:s` of a time in milliseconds, in UTC, without zero padding.
fn humantime_of(ms: u64) -> String {
    let days = ms / 86_400_000;
    let secs = (ms / 1000) % 86_400;
    // civil-from-days (Howard Hinnant), for a date after 1970
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year}-{month}-{day}T{}:{}:{}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[test]
fn for_each_reads_fields_of_objects_and_runs_commands_and_jobs() {
    let s = Sluice::new();
    let dir = s.bundle(
        "each",
        &format!(
            "{HEAD}[jobs.j]\n\
             [[jobs.j.tasks]]\nkey = \"fields\"\n\
             for_each = {{ inputs = '[{{\"name\": \"orders\", \"at\": {{\"day\": 3}}}}, {{\"name\": \"users\", \"at\": {{\"day\": 4}}}}]', \
             task = {{ component = \"probe\", params = {{ table = \"{{{{ input.name }}}}\", day = \"{{{{ input.at.day }}}}\" }} }} }}\n\
             [[jobs.j.tasks]]\nkey = \"commands\"\n\
             for_each = {{ inputs = '[\"a\", \"b\"]', task = {{ kind = \"command\", component = \"cmd\", args = [\"item {{{{ input }}}}\"], stdout = \"output\" }} }}\n\
             [[jobs.j.tasks]]\nkey = \"jobs\"\n\
             for_each = {{ inputs = '[{{\"who\": \"ann\"}}, {{\"who\": \"bob\"}}]', task = {{ run_job = {{ job = \"greet\", parameters = {{ who = \"{{{{ input.who }}}}\" }} }} }} }}\n\
             [jobs.greet]\nparameters = {{ who = \"nobody\" }}\n\
             [[jobs.greet.tasks]]\nkey = \"hi\"\ncomponent = \"probe\"\nparams = {{ to = \"{{{{ job.parameters.who }}}}\" }}\n"
        ),
    );
    let (code, run) = s.run_json(&dir, &["--job", "j"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(output(&run, "fields[0]")["params"]["table"], "orders");
    assert_eq!(output(&run, "fields[1]")["params"]["day"], "4");
    assert_eq!(output(&run, "commands[1]")["args"][1], "item b", "argv[0] is the task key");
    for (i, who) in ["ann", "bob"].iter().enumerate() {
        let child = task_of(&run, &format!("jobs[{i}]"))["child_run"].as_u64().expect("a child run");
        let child = s.show(child);
        assert_eq!(child["parameters"]["who"], *who);
        assert_eq!(output(&child, "hi")["params"]["to"], *who);
    }
}

#[test]
fn targets_are_the_declared_ones_and_one_may_be_the_default() {
    let s = Sluice::new();
    let dir = s.bundle(
        "targets",
        &format!("{HEAD}[targets.dev]\n[targets.prod]\ndefault = true\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n"),
    );
    let typo = s.run(&["run", dir.to_str().unwrap(), "--target", "prdo"]);
    typo.assert_exit(2);
    assert!(typo.stderr.contains("no target named `prdo`") && typo.stderr.contains("dev, prod"), "{}", typo.stderr);
    let (_, run) = s.run_json(&dir, &[]);
    assert_eq!(run["run_id"], 1, "the refused run took no run id");
    assert_eq!(run["target"], "prod", "the default target");
    let env = s.run_with(&["run", dir.to_str().unwrap(), "--json"], &[("SLUICE_TARGET", "dev")], None);
    env.assert_exit(0);
    assert_eq!(env.json()["target"], "dev");
    assert_eq!(output(&env.json(), "a")["ctx"]["target"], "dev");
}

#[test]
fn an_unknown_param_takes_no_run_id_and_several_jobs_name_the_flag() {
    let s = Sluice::new();
    let dir = s.bundle(
        "params",
        &format!(
            "{HEAD}[jobs.j]\nparameters = {{ day = \"mon\" }}\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
             [jobs.k]\n[[jobs.k.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n"
        ),
    );
    let several = s.run(&["run", dir.to_str().unwrap()]);
    several.assert_exit(2);
    assert!(several.stderr.contains("--job"), "{}", several.stderr);
    let bad = s.run(&["run", dir.to_str().unwrap(), "--job", "j", "--param", "nope=1"]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("no parameter `nope`"), "{}", bad.stderr);
    let (_, run) = s.run_json(&dir, &["--job", "j"]);
    assert_eq!(run["run_id"], 1, "the refused run did not consume run id 1");
}

#[test]
fn run_if_without_dependencies_is_refused_where_it_is_written() {
    let s = Sluice::new();
    let dir = s.bundle(
        "lonely",
        &format!("{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\nrun_if = \"all_done\"\n"),
    );
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(2);
    let line = HEAD.lines().count() + 5;
    assert!(out.stderr.contains(&format!("sluice.toml:{line}:10: jobs.j.tasks[0].run_if:")), "{}", out.stderr);
    assert!(out.stderr.contains("no `depends_on`"), "{}", out.stderr);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let s = Sluice::new();
    let dir = s.bundle("pipe", &format!("{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n"));
    for args in [vec!["run", dir.to_str().unwrap(), "--json"], vec!["runs", "show", "1"], vec!["runs", "list"]] {
        let mut child =
            s.command(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // `| head` that has read enough: the pipe is closed
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: the command's own exit code: {stderr}");
    }
}

#[test]
fn runs_list_finds_the_bundles_state_from_any_directory_below_it() {
    let s = Sluice::new();
    let dir = s.bundle("walk", &format!("{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n"));
    let deep = dir.join("src/deeper");
    std::fs::create_dir_all(&deep).unwrap();
    s.run_in(&dir, &["run", "."], &[]).assert_exit(0);
    let listed = s.run_in(&deep, &["runs", "list", "--json"], &[]);
    listed.assert_exit(0);
    assert_eq!(listed.json()[0]["run_id"], 1, "{}", listed.stdout);
    let shown = s.run_in(&deep, &["runs", "show", "1", "--json"], &[]);
    shown.assert_exit(0);
    let nowhere = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&nowhere).unwrap();
    let none = s.run_in(&nowhere, &["runs", "list"], &[]);
    none.assert_exit(2);
    assert!(none.stderr.contains(&nowhere.display().to_string()), "says where it looked: {}", none.stderr);
    assert!(none.stderr.contains("sluice.toml"), "{}", none.stderr);
}

#[test]
fn reused_results_show_as_reused_with_where_they_came_from() {
    let s = Sluice::new();
    let dir = s.bundle(
        "reuse",
        &format!(
            "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
             [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\n\
             [[jobs.j.tasks]]\nkey = \"fresh\"\ncomponent = \"probe\"\ncache = false\n"
        ),
    );
    s.run(&["run", dir.to_str().unwrap()]).assert_exit(0);
    let second = s.run(&["run", dir.to_str().unwrap()]);
    second.assert_exit(0);
    assert!(second.stdout.contains("1 executed, 2 reused"), "the summary counts reuse: {}", second.stdout);
    assert!(second.stderr.lines().any(|l| l.contains("a") && l.contains("reused from run 1")), "{}", second.stderr);
    let run = s.show(2);
    assert_eq!(task_of(&run, "a")["reused_from"], serde_json::json!({ "run": 1, "task": "a", "attempt": 0 }));
    assert_eq!(task_of(&run, "fresh")["reused_from"], Value::Null);
    assert_eq!(attempt_results(&run, "a"), ["success"]);
    let human = s.run(&["runs", "show", "2"]).stdout;
    assert!(human.contains("reused from run 1"), "{human}");
}
