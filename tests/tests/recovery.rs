//! Cancellation from another process, repair, and resuming after SIGKILL.

use serde_json::Value;
use sluice_tests::{Sluice, task_of};

const HEAD: &str = "[bundle]\nname = \"r\"\n[components]\nprobe = \"{guest:probe}\"\nspin = \"{guest:spin}\"\n";

fn attempts(run: &Value, key: &str) -> Vec<Value> {
    task_of(run, key)["attempts"].as_array().cloned().unwrap_or_default()
}

fn show(s: &Sluice, id: u64) -> Value {
    let out = s.run(&["runs", "show", &id.to_string(), "--json"]);
    out.assert_exit(0);
    out.json()
}

#[test]
fn a_run_is_canceled_from_another_terminal() {
    let s = Sluice::new();
    let dir = s.bundle(
        "cancel",
        &format!(
            "{HEAD}[jobs.j]\n\
             [[jobs.j.tasks]]\nkey = \"stuck\"\ncomponent = \"spin\"\ntimeout = \"5m\"\n\
             [[jobs.j.tasks]]\nkey = \"after\"\ncomponent = \"probe\"\ndepends_on = [\"stuck\"]\n\
             [[jobs.j.tasks]]\nkey = \"quick\"\ncomponent = \"probe\"\n"
        ),
    );
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for("✓ quick"); // the run is under way and holds the store
    let started = std::time::Instant::now();
    let cancel = s.run(&["runs", "cancel", "1"]);
    cancel.assert_exit(0);
    assert!(cancel.stdout.contains("cancel requested"), "{}", cancel.stdout);
    assert_eq!(bg.wait(), 1, "a canceled run is not a success");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the spinning sandbox was stopped promptly");
    let run = show(&s, 1);
    assert_eq!(run["result"], "canceled");
    assert_eq!(task_of(&run, "stuck")["result"], "canceled");
    assert_eq!(task_of(&run, "after")["result"], "upstream_canceled");
    assert_eq!(task_of(&run, "quick")["result"], "success");
    assert_eq!(run["cancel_requested"], true);
}

#[test]
fn repair_reruns_failed_tasks_and_keeps_successful_results() {
    let s = Sluice::new();
    let dir = s.bundle(
        "repair",
        &format!(
            "{HEAD}[jobs.j]\nparameters = {{ fail = \"permanent\" }}\n\
             [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\nparams = {{ checkpoint = \"a-{{{{ task.attempt }}}}\" }}\n\
             [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\nparams = {{ fail = \"{{{{ job.parameters.fail }}}}\", checkpoint = \"b-{{{{ task.attempt }}}}\" }}\n\
             [[jobs.j.tasks]]\nkey = \"c\"\ncomponent = \"probe\"\ndepends_on = [\"b\"]\n"
        ),
    );
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    assert_eq!(task_of(&out.json(), "c")["result"], "upstream_failed");

    // a wrong override is refused before anything changes
    let bad = s.run(&["runs", "repair", "1", "--param", "nope=1"]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("no parameter `nope`"), "{}", bad.stderr);

    let repaired = s.run(&["runs", "repair", "1", "--param", "fail=", "--json"]);
    repaired.assert_exit(0);
    let run = repaired.json();
    assert_eq!(run["result"], "success");
    assert_eq!(attempts(&run, "a").len(), 1, "the successful task kept its result");
    let b = attempts(&run, "b");
    assert_eq!(b.len(), 2);
    assert_eq!(b[1]["result"], "success");
    let out: Value = serde_json::from_str(b[1]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["checkpoint_before"], "b-0", "the checkpoint of the failed attempt survived into the repair");
    assert_eq!(task_of(&run, "c")["result"], "success");
    assert_eq!(run["repairs"][0]["tasks"], serde_json::json!(["b", "c"]));

    // a named task with its dependents
    let again = s.run(&["runs", "repair", "1", "--task", "a", "--with-dependents", "--json"]);
    again.assert_exit(0);
    let run = again.json();
    assert_eq!(attempts(&run, "a").len(), 2);
    assert_eq!(attempts(&run, "b").len(), 3);
    assert_eq!(attempts(&run, "c").len(), 2);
    assert_eq!(run["repairs"].as_array().unwrap().len(), 2);

    // only the named task
    let only = s.run(&["runs", "repair", "1", "--task", "c", "--json"]).json();
    assert_eq!((attempts(&only, "a").len(), attempts(&only, "b").len(), attempts(&only, "c").len()), (2, 3, 3));
}

/// A chain of slow tasks, killed with SIGKILL after `after` progress lines.
fn kill_then_resume(after: &str) {
    let s = Sluice::new();
    let mut toml = format!("{HEAD}[jobs.chain]\n");
    for i in 0..5 {
        let dep = if i == 0 { String::new() } else { format!("depends_on = [\"t{}\"]\n", i - 1) };
        toml += &format!(
            "[[jobs.chain.tasks]]\nkey = \"t{i}\"\ncomponent = \"probe\"\n{dep}params = {{ sleep_ms = 300 }}\nretries = {{ max = 2, initial = \"10ms\" }}\n"
        );
    }
    let dir = s.bundle("chain", &toml);
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for(after);
    std::thread::sleep(std::time::Duration::from_millis(100)); // land inside the next task
    bg.kill();

    let at_crash = show(&s, 1);
    assert_eq!(at_crash["result"], Value::Null, "the run was in flight");
    let resumed = s.run(&["runs", "resume", "--json"]);
    resumed.assert_exit(0);
    let fin = show(&s, 1);
    assert_eq!(fin["result"], "success", "{fin:#}");
    assert_eq!(fin["resumed"], 1);
    for i in 0..5 {
        let key = format!("t{i}");
        assert_eq!(task_of(&fin, &key)["result"], "success");
        let before = attempts(&at_crash, &key);
        let after = attempts(&fin, &key);
        if before.iter().any(|a| a["result"] == "success") {
            assert_eq!(before, after, "{key} had completed durably and must not run again");
        }
        if before.last().is_some_and(|a| a["finished_at"].is_null()) {
            assert!(
                after.iter().any(|a| a["error"].as_str().is_some_and(|e| e.contains("runtime restarted"))),
                "{key}: {after:?}"
            );
            assert_eq!(after.last().unwrap()["result"], "success");
        }
    }
}

#[test]
fn resume_after_sigkill_before_any_task_finished() {
    kill_then_resume("run 1 ·");
}

#[test]
fn resume_after_sigkill_mid_chain() {
    kill_then_resume("✓ t1");
}

#[test]
fn resume_after_sigkill_near_the_end() {
    kill_then_resume("✓ t3");
}

#[test]
fn a_later_run_resumes_what_a_killed_process_left() {
    let s = Sluice::new();
    let dir = s.bundle(
        "later",
        &format!("{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"slow\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = 2000 }}\nretries = {{ max = 1, initial = \"10ms\" }}\n"),
    );
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for("run 1 ·");
    bg.kill();
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(0);
    assert!(out.stderr.contains("resuming run 1"), "progress goes to stderr: {}", out.stderr);
    assert_eq!(show(&s, 1)["result"], "success");
    assert_eq!(show(&s, 2)["result"], "success");
}

#[test]
fn a_run_left_by_a_killed_process_can_be_canceled() {
    let s = Sluice::new();
    let dir = s.bundle(
        "orphan",
        &format!(
            "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"slow\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = 3000 }}\n\
             [[jobs.j.tasks]]\nkey = \"next\"\ncomponent = \"probe\"\ndepends_on = [\"slow\"]\n"
        ),
    );
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for("run 1 ·");
    bg.kill();
    let out = s.run(&["runs", "cancel", "1"]);
    out.assert_exit(0);
    let run = show(&s, 1);
    assert_eq!(run["result"], "canceled");
    assert_eq!(task_of(&run, "next")["result"], "upstream_canceled");
    // nothing is left to resume
    let resumed = s.run(&["runs", "resume"]);
    resumed.assert_exit(0);
    assert!(resumed.stdout.contains("no unfinished runs"), "{}", resumed.stdout);
}
