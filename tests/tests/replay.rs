//! `sluice test --from-run N`: a recorded production run's inputs (job parameters,
//! upstream values and `/out` files, mounted data by content) replayed against the
//! current bundle as a regression test; `--task` runs one task on its recorded upstream;
//! `--save` writes a test `sluice test` re-runs without the production state. The
//! datasets are written and read by the real SQL task; the failure is a production
//! expectation (`quality_failed`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_tests::{Out, Sluice, task, task_of};

/// Production data: with `max` raised to 1000, the `XX` row reaches `clean`.
const ROWS: &str = "id,country,amount\n1,NL,10\n2,BE,20\n3,XX,300\n";
const BUGGY: &str = "SELECT * FROM rows ORDER BY id";
const FIXED: &str = "SELECT * FROM rows WHERE country IN ('NL', 'BE') ORDER BY id";

/// The bundle text: `load` reads the mounted CSV (rows up to job parameter `max`),
/// `clean` runs `query` over `load`'s `/out` and expects only NL and BE.
fn text(name: &str, query: &str, clean_extra: &str) -> String {
    format!(
        "[bundle]\nname = \"{name}\"\n[components]\nsql = \"{{task:sql}}\"\n[jobs.etl]\nparameters = {{ max = \"100\" }}\n\
         [[jobs.etl.tasks]]\nkey = \"load\"\ncomponent = \"sql\"\nmounts = [{{ host = \"data\", guest = \"/data\" }}]\n\
         params = {{ query = \"SELECT * FROM orders WHERE amount <= {{{{ job.parameters.max }}}} ORDER BY id\", \
         inputs = '{{\"orders\": \"/data/orders.csv\"}}', output = \"rows.csv\" }}\n\
         [[jobs.etl.tasks]]\nkey = \"clean\"\ncomponent = \"sql\"\ndepends_on = [\"load\"]\n{clean_extra}\
         params = {{ query = \"{query}\", inputs = '{{\"rows\": \"/in/load/rows.csv\"}}', output = \"clean.csv\" }}\n\
         expectations = [{{ dataset = \"clean.csv\", expect = \"expect_column_values_to_be_in_set\", column = \"country\", \
         value_set = [\"NL\", \"BE\"] }}]\n"
    )
}

/// A bundle `name` with the buggy query, its data, and the production run of it that
/// failed (`max = 1000`): the bundle directory and the run's id.
fn production(s: &Sluice, name: &str) -> (PathBuf, u64) {
    task("sql");
    let dir = s.bundle(name, &text(name, BUGGY, ""));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/orders.csv"), ROWS).unwrap();
    let (code, run) = s.run_json(&dir, &["--param", "max=1000"]);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(task_of(&run, "clean")["result"], "quality_failed", "{run:#}");
    (dir, run["run_id"].as_u64().unwrap())
}

/// Rewrites bundle `name` (at `dir`) with `query` in `clean` (and `extra` lines in its table).
fn edit(s: &Sluice, dir: &Path, name: &str, query: &str, extra: &str) {
    assert_eq!(s.bundle(name, &text(name, query, extra)), dir);
}

/// `sluice test DIR --from-run RUN --json EXTRA…`.
fn replay(s: &Sluice, dir: &Path, run: u64, extra: &[&str]) -> Out {
    let run = run.to_string();
    let mut args = vec!["test", dir.to_str().unwrap(), "--from-run", &run, "--json"];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn only_test(out: &Out) -> Value {
    let json = out.json();
    let tests = json["report"]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{json:#}");
    tests[0].clone()
}

#[test]
fn a_replay_fails_as_production_did_and_passes_once_the_task_is_fixed() {
    let s = Sluice::new();
    let (dir, run) = production(&s, "fix");
    // a plain run with the default parameters passes: the replay must use the run's `max`
    let (code, plain) = s.run_json(&dir, &[]);
    assert_eq!(code, 0, "{plain:#}");
    let out = replay(&s, &dir, run, &[]);
    out.assert_exit(1);
    let test = only_test(&out);
    assert_eq!(test["name"], format!("replay-run-{run}"));
    assert_eq!(test["status"], "failed");
    assert_eq!(test["run_result"], "failed");
    assert!(test["failures"][0]["message"].as_str().unwrap().contains("failed"), "{test:#}");
    edit(&s, &dir, "fix", FIXED, "");
    let out = replay(&s, &dir, run, &[]);
    out.assert_exit(0);
    assert_eq!(only_test(&out)["status"], "passed", "{}", out.stdout);
    // JUnit and the human summary, as for any test
    let junit = dir.join("replay.xml");
    let human =
        s.run(&["test", dir.to_str().unwrap(), "--from-run", &run.to_string(), "--junit", junit.to_str().unwrap()]);
    human.assert_exit(0);
    assert!(human.stdout.contains("1 passed, 0 failed"), "{}", human.stdout);
    assert!(std::fs::read_to_string(&junit).unwrap().contains(&format!("replay-run-{run}")));
}

#[test]
fn with_a_task_only_it_runs_on_the_recorded_upstream_output() {
    let s = Sluice::new();
    let (dir, run) = production(&s, "iso");
    // the mounted data changes afterwards: `load` run again would no longer pass `XX` on
    std::fs::write(dir.join("data/orders.csv"), "id,country,amount\n1,NL,10\n").unwrap();
    let whole = replay(&s, &dir, run, &[]);
    whole.assert_exit(2);
    assert!(whole.stderr.contains("mount /data (") && whole.stderr.contains("changed since run"), "{}", whole.stderr);
    // `clean` alone still sees what `load` wrote in production, and fails on it
    let out = replay(&s, &dir, run, &["--task", "clean"]);
    out.assert_exit(1);
    let test = only_test(&out);
    assert_eq!(test["name"], format!("replay-run-{run}-clean"));
    let message = test["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("clean") && message.contains("quality_failed"), "{message}");
    edit(&s, &dir, "iso", FIXED, "");
    replay(&s, &dir, run, &["--task", "clean"]).assert_exit(0);
}

#[test]
fn a_saved_replay_runs_with_plain_sluice_test_without_the_production_state() {
    let s = Sluice::new();
    let (dir, run) = production(&s, "saved");
    edit(&s, &dir, "saved", FIXED, "");
    let save = dir.join("tests");
    for extra in [&["--task", "clean"][..], &[]] {
        let mut args = vec!["--save", save.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = replay(&s, &dir, run, &args);
        out.assert_exit(0);
        assert!(out.stderr.contains("does not include the saved file"), "{}", out.stderr);
    }
    let file = save.join(format!("replay-run-{run}-clean.toml"));
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("parameters = { \"max\" = \"1000\" }"), "{saved}");
    assert!(saved.contains(&format!("tests/replay-run-{run}-clean/stubs/load.json")), "{saved}");
    assert!(save.join(format!("replay-run-{run}-clean/stubs/load/rows.csv")).is_file());
    // production state and data gone; the bundle includes the saved tests
    std::fs::remove_dir_all(s.state()).unwrap();
    std::fs::write(dir.join("data/orders.csv"), "id,country,amount\n").unwrap();
    let bundle = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    std::fs::write(dir.join("sluice.toml"), format!("include = [\"tests/*.toml\"]\n{bundle}")).unwrap();
    let out = s.run(&["test", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let json = out.json();
    let names: Vec<&str> =
        json["report"]["tests"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{json:#}");
    // the buggy task fails the saved regression test again
    let buggy = std::fs::read_to_string(dir.join("sluice.toml")).unwrap().replace(FIXED, BUGGY);
    std::fs::write(dir.join("sluice.toml"), buggy).unwrap();
    s.run(&["test", dir.to_str().unwrap(), "--json"]).assert_exit(1);
}

#[test]
fn replays_that_cannot_be_made_are_bad_input() {
    let s = Sluice::new();
    let (dir, run) = production(&s, "bad");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["--from-run".into(), "999".into()], "run 999 does not exist".into()),
        (vec!["--from-run".into(), run.to_string(), "--task".into(), "nope".into()], "has no task `nope`".into()),
        (
            vec!["--from-run".into(), run.to_string(), "--job".into(), "other".into()],
            "is a run of job `etl`, not of `other`".into(),
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["test", dir.to_str().unwrap()];
        all.extend(args.iter().map(String::as_str));
        let out = s.run(&all);
        out.assert_exit(2);
        assert!(out.stderr.contains(&expected), "{expected}: {}", out.stderr);
    }
    // a run of another bundle in the same state directory
    let other = s.bundle("other", &text("other", BUGGY, ""));
    std::fs::create_dir_all(other.join("data")).unwrap();
    let out = replay(&s, &other, run, &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("is a run of bundle `bad`, not of `other`"), "{}", out.stderr);
    // a replayed task that reads secrets needs test-only values
    edit(&s, &dir, "bad", FIXED, "secrets = [\"db/password\"]\n");
    let out = replay(&s, &dir, run, &["--task", "clean"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("never copies production secrets: pass --secrets-file"), "{}", out.stderr);
    let secrets = dir.join("secrets.toml");
    std::fs::write(&secrets, "[db]\npassword = \"test-only\"\n").unwrap();
    replay(&s, &dir, run, &["--task", "clean", "--secrets-file", secrets.to_str().unwrap()]).assert_exit(0);
    // the run's /out files garbage-collected
    std::fs::remove_dir_all(s.state().join("blobs")).unwrap();
    let out = replay(&s, &dir, run, &["--task", "clean", "--secrets-file", secrets.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("are no longer stored") && out.stderr.contains("garbage-collected"), "{}", out.stderr);
}
