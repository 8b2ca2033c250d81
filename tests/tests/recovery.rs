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
fn a_cancel_stops_a_task_that_waits_inside_the_host() {
    // the guest sleeps in a host call, where no epoch check reaches it
    let s = Sluice::new();
    let dir = s.bundle(
        "nap",
        &format!(
            "{HEAD}[jobs.j]\n\
             [[jobs.j.tasks]]\nkey = \"nap\"\ncomponent = \"probe\"\ntimeout = \"1h\"\nparams = {{ sleep_ms = \"600000\" }}\n\
             [[jobs.j.tasks]]\nkey = \"quick\"\ncomponent = \"probe\"\n"
        ),
    );
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for("✓ quick"); // side by side with the nap: it is asleep by now
    let started = std::time::Instant::now();
    s.run(&["runs", "cancel", "1"]).assert_exit(0);
    assert_eq!(bg.wait(), 1, "a canceled run is not a success");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the ten-minute sleep was cut short by the cancel, not waited out"
    );
    let run = show(&s, 1);
    assert_eq!(run["result"], "canceled");
    assert_eq!(task_of(&run, "nap")["result"], "canceled");
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

/// A bundle whose tasks may write `work/` (a read-write mount: side effects), and that dir.
fn side_effect_bundle(s: &Sluice, name: &str, jobs: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = s.bundle(name, &format!("{HEAD}{jobs}"));
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    (dir, work)
}

/// A probe task `key` that touches `work/KEY-ATTEMPT` as it starts (a side effect), and
/// spins forever on attempt 0 if `hang`.
fn touching(job: &str, key: &str, deps: &[&str], hang: bool, extra: &str) -> String {
    let deps = deps.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ");
    let hang = if hang { ", hang_below_attempt = 1" } else { "" };
    format!(
        "[[jobs.{job}.tasks]]\nkey = \"{key}\"\ncomponent = \"probe\"\ndepends_on = [{deps}]\n\
         mounts = [{{ host = \"work\", guest = \"/work\", mode = \"rw\" }}]\n\
         params = {{ touch = \"/work/{key}-{{{{ task.attempt }}}}\"{hang} }}\n{extra}"
    )
}

/// A chain t0..t4 of tasks with side effects, SIGKILLed while t`k` runs (deterministically:
/// it has started, and spins until killed), then resumed.
fn kill_then_resume(k: usize) {
    let s = Sluice::new();
    let mut toml = "[jobs.chain]\n".to_string();
    for i in 0..5 {
        let up = format!("t{}", i.max(1) - 1);
        let deps: &[&str] = if i == 0 { &[] } else { &[&up] };
        toml += &touching("chain", &format!("t{i}"), deps, i == k, "");
    }
    let (dir, work) = side_effect_bundle(&s, "chain", &toml);
    let bg = s.spawn(&["run", dir.to_str().unwrap()]);
    sluice_tests::wait_for_file(&work.join(format!("t{k}-0")));
    bg.kill();

    let at_crash = show(&s, 1);
    assert_eq!(at_crash["result"], Value::Null, "the run was in flight");
    for i in 0..k {
        assert_eq!(sluice_tests::attempt_results(&at_crash, &format!("t{i}")), ["success"], "t{i} ended before");
    }
    let running = attempts(&at_crash, &format!("t{k}"));
    assert_eq!(running.len(), 1, "a task with side effects has its start durable before it runs: {at_crash:#}");
    assert!(running[0]["finished_at"].is_null());

    let list = s.run(&["runs", "list", "--json"]);
    list.assert_exit(0);
    assert_eq!(list.json()[0]["status"], "interrupted", "{}", list.stdout);
    let human = s.run(&["runs", "list"]);
    assert!(human.stdout.lines().any(|l| l.contains("chain") && l.contains("interrupted")), "{}", human.stdout);

    s.run(&["runs", "resume", "--json"]).assert_exit(0);
    let fin = show(&s, 1);
    assert_eq!(fin["result"], "success", "no retries configured, and none needed: {fin:#}");
    assert_eq!(fin["resumed"], 1);
    for i in 0..5 {
        let key = format!("t{i}");
        let want: &[&str] = if i == k { &["interrupted", "success"] } else { &["success"] };
        assert_eq!(sluice_tests::attempt_results(&fin, &key), want, "{key}");
    }
    let cut = &attempts(&fin, &format!("t{k}"))[0];
    assert_eq!(cut["error_code"], "interrupted");
    assert!(cut["error"].as_str().unwrap().contains("the process running this attempt died"), "{cut}");
    for i in 0..k {
        assert_eq!(attempts(&at_crash, &format!("t{i}")), attempts(&fin, &format!("t{i}")), "t{i} did not run again");
    }
}

#[test]
fn resume_after_sigkill_before_any_task_finished() {
    kill_then_resume(0);
}

#[test]
fn resume_after_sigkill_mid_chain() {
    kill_then_resume(2);
}

#[test]
fn resume_after_sigkill_near_the_end() {
    kill_then_resume(4);
}

#[test]
fn a_task_that_must_not_run_twice_waits_for_a_repair_after_a_crash() {
    let s = Sluice::new();
    let jobs = format!(
        "[jobs.j]\n{}{}",
        touching("j", "pay", &[], true, "rerun_on_resume = false\n"),
        touching("j", "receipt", &["pay"], false, "")
    );
    let (dir, work) = side_effect_bundle(&s, "once", &jobs);
    let bg = s.spawn(&["run", dir.to_str().unwrap()]);
    sluice_tests::wait_for_file(&work.join("pay-0"));
    bg.kill();
    s.run(&["runs", "resume"]).assert_exit(1);
    let run = show(&s, 1);
    assert_eq!(run["result"], "failed");
    assert_eq!(sluice_tests::attempt_results(&run, "pay"), ["interrupted"], "not run again by itself");
    assert!(!work.join("pay-1").exists());
    assert_eq!(task_of(&run, "pay")["result"], "interrupted");
    assert_eq!(task_of(&run, "receipt")["result"], "upstream_failed");
    let repaired = s.run(&["runs", "repair", "1", "--json"]);
    repaired.assert_exit(0);
    let run = repaired.json();
    assert_eq!(sluice_tests::attempt_results(&run, "pay"), ["interrupted", "success"]);
    assert!(work.join("pay-1").exists());
    assert_eq!(task_of(&run, "receipt")["result"], "success");
}

#[test]
fn a_later_run_does_not_wait_for_what_a_killed_process_left() {
    let s = Sluice::new();
    // the left-over run's task takes 3 s however often it runs; the new run takes milliseconds
    let slow = touching("slow", "slow", &[], true, "")
        .replace("hang_below_attempt = 1", "hang_below_attempt = 1, sleep_ms = 3000");
    let jobs = format!("[jobs.slow]\n{slow}[jobs.quick]\n[[jobs.quick.tasks]]\nkey = \"q\"\ncomponent = \"probe\"\n");
    let (dir, work) = side_effect_bundle(&s, "later", &jobs);
    let bg = s.spawn(&["run", dir.to_str().unwrap(), "--job", "slow"]);
    sluice_tests::wait_for_file(&work.join("slow-0"));
    bg.kill();
    let out = s.run(&["run", dir.to_str().unwrap(), "--job", "quick"]);
    out.assert_exit(0);
    assert!(out.stderr.contains("resuming run 1"), "progress goes to stderr: {}", out.stderr);
    let (left, new) = (show(&s, 1), show(&s, 2));
    assert_eq!((left["result"].as_str(), new["result"].as_str()), (Some("success"), Some("success")));
    let ended = |run: &Value| run["finished_at"].as_u64().unwrap();
    assert!(
        ended(&new) < ended(&left),
        "the new run did not wait for the resumed one: run 2 ended at {}, run 1 at {}",
        ended(&new),
        ended(&left)
    );
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
    // a canceled run can be repaired: its repair is not canceled by the cancel before it
    let repaired = s.run(&["runs", "repair", "1", "--json"]);
    repaired.assert_exit(0);
    let run = repaired.json();
    assert_eq!(run["result"], "success", "{run:#}");
    assert_eq!(task_of(&run, "next")["result"], "success");
}

#[test]
fn failure_handlers_still_run_after_a_cancel_and_a_second_cancel_stops_them() {
    let s = Sluice::new();
    let jobs = format!(
        "[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"stuck\"\ncomponent = \"spin\"\ntimeout = \"5m\"\n\
         [[jobs.j.tasks]]\nkey = \"next\"\ncomponent = \"probe\"\ndepends_on = [\"stuck\"]\n\
         [[jobs.j.tasks]]\nkey = \"quick\"\ncomponent = \"probe\"\n\
         [[jobs.j.tasks]]\nkey = \"alert\"\ncomponent = \"probe\"\ndepends_on = [\"stuck\"]\nrun_if = \"at_least_one_failed\"\n\
         {}",
        // after `alert` too: when `tidy` has started, `alert` has ended
        touching("j", "tidy", &["next", "alert"], true, "run_if = \"all_done\"\n")
    );
    let (dir, work) = side_effect_bundle(&s, "cleanup", &jobs);
    let mut bg = s.spawn(&["run", dir.to_str().unwrap()]);
    bg.wait_for("✓ quick"); // under way, `stuck` spinning
    s.run(&["runs", "cancel", "1"]).assert_exit(0);
    // the cleanup task starts after the cancel (and spins until stopped)
    sluice_tests::wait_for_file(&work.join("tidy-0"));
    let again = s.run(&["runs", "cancel", "1"]);
    again.assert_exit(0);
    assert_eq!(bg.wait(), 1);
    let run = show(&s, 1);
    assert_eq!(run["result"], "canceled");
    assert_eq!(task_of(&run, "stuck")["result"], "canceled");
    assert_eq!(task_of(&run, "next")["result"], "upstream_canceled", "a cancel propagates downstream");
    assert_eq!(task_of(&run, "alert")["result"], "success", "a failure handler runs after a cancel");
    assert_eq!(
        sluice_tests::attempt_results(&run, "tidy"),
        ["canceled"],
        "cleanup ran, and the second cancel stopped it"
    );
}

#[test]
fn cleanup_after_a_job_timeout_is_bounded_by_cleanup_timeout() {
    let s = Sluice::new();
    let jobs = format!(
        "[jobs.j]\ntimeout = \"1s\"\ncleanup_timeout = \"1s\"\n\
         [[jobs.j.tasks]]\nkey = \"stuck\"\ncomponent = \"spin\"\n{}",
        // its own timeout is long: only cleanup_timeout can stop it in time
        touching("j", "tidy", &["stuck"], true, "run_if = \"all_done\"\ntimeout = \"5m\"\n")
    );
    let (dir, work) = side_effect_bundle(&s, "timeout", &jobs);
    let started = std::time::Instant::now();
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "cleanup_timeout (1 s) stopped the cleanup");
    let run = out.json();
    assert_eq!(run["result"], "timed_out");
    assert_eq!(task_of(&run, "stuck")["result"], "timed_out");
    assert!(work.join("tidy-0").exists(), "the cleanup task ran after the timeout");
    let tidy = &attempts(&run, "tidy")[0];
    assert_ne!(tidy["result"], "success", "it spins: cleanup_timeout stopped it");
    let stopped: Vec<&str> =
        run["tasks"].as_array().unwrap().iter().filter_map(|t| t["skipped_reason"].as_str()).collect();
    assert!(stopped.is_empty(), "nothing was skipped: {stopped:?}");
}

#[test]
fn repair_picks_up_a_fixed_parameter_and_a_rebuilt_component_as_a_new_plan_version() {
    let s = Sluice::new();
    let dir = s.dir.path().join("fix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(sluice_tests::guest("trap"), dir.join("c.wasm")).unwrap();
    let bundle = |fail: &str| {
        format!(
            "[bundle]\nname = \"fix\"\n[components]\nprobe = \"{}\"\nc = \"c.wasm\"\n[jobs.j]\nparameters = {{ day = \"mon\" }}\n\
             [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
             [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\nparams = {{ fail = \"{fail}\" }}\n\
             [[jobs.j.tasks]]\nkey = \"c\"\ncomponent = \"c\"\ndepends_on = [\"a\"]\n",
            sluice_tests::guest("probe").display()
        )
    };
    std::fs::write(dir.join("sluice.toml"), bundle("permanent")).unwrap();
    let env = [("SLUICE_PRINCIPAL", "ann")];
    s.run_with(&["run", dir.to_str().unwrap()], &env, None).assert_exit(1);
    let first = show(&s, 1);
    assert_eq!(
        (task_of(&first, "b")["result"].as_str(), task_of(&first, "c")["result"].as_str()),
        (Some("failed"), Some("failed"))
    );

    // the fix: the parameter corrected, the component rebuilt
    std::fs::write(dir.join("sluice.toml"), bundle("")).unwrap();
    std::fs::copy(sluice_tests::guest("probe"), dir.join("c.wasm")).unwrap();
    // --pinned runs exactly the plan the run has: the old parameter, the old code
    let pinned = s.run_with(&["runs", "repair", "1", "--pinned", "--json"], &env, None);
    pinned.assert_exit(1);
    let run = pinned.json();
    assert_eq!(sluice_tests::attempt_results(&run, "c"), ["failed", "failed"], "the pinned component ran again");
    assert_eq!(sluice_tests::attempt_results(&run, "b"), ["failed", "failed"]);
    assert_eq!(
        (run["repairs"][0]["pinned"].as_bool(), run["repairs"][0]["plan_version"].as_u64()),
        (Some(true), Some(1))
    );
    // without the pinned code compiled anywhere (an empty compiled-component cache), --pinned cannot run it
    let empty = s.dir.path().join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    let _ = std::fs::remove_dir_all(s.state().join("components"));
    let env_gone = [("SLUICE_PRINCIPAL", "ann"), ("SLUICE_CACHE_DIR", empty.to_str().unwrap())];
    let gone = s.run_with(&["runs", "repair", "1", "--pinned"], &env_gone, None);
    gone.assert_exit(2);
    assert!(
        gone.stderr.contains("component `c`") && gone.stderr.contains("changed since the run pinned it"),
        "{}",
        gone.stderr
    );

    let out =
        s.run_with(&["runs", "repair", "1", "--param", "day=tue", "--json"], &[("SLUICE_PRINCIPAL", "bob")], None);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(run["result"], "success", "{run:#}");
    assert_eq!(sluice_tests::attempt_results(&run, "a"), ["success"], "kept");
    assert_eq!(sluice_tests::attempt_results(&run, "b"), ["failed", "failed", "success"]);
    assert_eq!(sluice_tests::attempt_results(&run, "c"), ["failed", "failed", "success"]);
    let plans = run["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2, "{plans:#?}");
    assert_ne!(plans[0]["hash"], plans[1]["hash"]);
    let changes: Vec<&str> = plans[1]["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(changes.iter().any(|c| c.starts_with("component `c`: blake3 ")), "{changes:?}");
    assert!(changes.contains(&"task `b`: param `fail` \"permanent\" → \"\""), "{changes:?}");
    let repair = &run["repairs"][1];
    assert_eq!((repair["plan_version"].as_u64(), repair["by"].as_str()), (Some(2), Some("bob")));
    assert_eq!(repair["parameters"]["day"], "tue");
    assert_eq!(run["repairs"][0]["by"], "ann", "each repair says who started it");
    assert_eq!(run["parameters"]["day"], "mon", "the run's own parameters are not rewritten");

    let human = s.run(&["runs", "show", "1"]);
    human.assert_exit(0);
    assert!(human.stdout.contains("plan 2"), "{}", human.stdout);
    assert!(
        human.stdout.contains("repair 1") && human.stdout.contains("by bob") && human.stdout.contains("day=tue"),
        "{}",
        human.stdout
    );

    // nothing changed since: --pinned repairs with the plan in force
    let again = s.run(&["runs", "repair", "1", "--task", "a", "--pinned", "--json"]);
    again.assert_exit(0);
    let run = again.json();
    assert_eq!(run["repairs"][2]["plan_version"], 2);
    assert_eq!(run["repairs"][2]["pinned"], true);
    assert_eq!(run["repairs"][2]["parameters"]["day"], "tue", "the parameters in force carry over");
}

#[test]
fn repairing_a_for_each_reruns_exactly_the_failed_iteration_and_keeps_every_attempt() {
    let s = Sluice::new();
    let dir = s.bundle(
        "each",
        &format!(
            "{HEAD}[jobs.j]\nparameters = {{ day = \"mon\" }}\n\
             [[jobs.j.tasks]]\nkey = \"each\"\n\
             for_each = {{ inputs = \"[0, 0, 1, 0]\", concurrency = 4, task = {{ component = \"probe\", params = {{ fail_below_attempt = \"{{{{ input }}}}\", day = \"{{{{ job.parameters.day }}}}\" }} }} }}\n"
        ),
    );
    s.run(&["run", dir.to_str().unwrap()]).assert_exit(1);
    let repaired = s.run(&["runs", "repair", "1", "--param", "day=tue", "--json"]);
    repaired.assert_exit(0);
    let run = repaired.json();
    for i in [0, 1, 3] {
        assert_eq!(
            sluice_tests::attempt_results(&run, &format!("each[{i}]")),
            ["success"],
            "each[{i}] kept its result"
        );
    }
    assert_eq!(
        sluice_tests::attempt_results(&run, "each[2]"),
        ["failed", "success"],
        "its failed attempt stays visible"
    );
    assert_eq!(run["parameters"]["day"], "mon");
    assert_eq!(run["repairs"][0]["parameters"]["day"], "tue");
    let human = s.run(&["runs", "show", "1"]).stdout;
    assert!(human.contains("each[2]") && human.contains("attempt 0 · failed"), "{human}");

    // again, naming one iteration: no repair id, nothing else reruns
    let again = s.run(&["runs", "repair", "1", "--task", "each[0]", "--json"]);
    again.assert_exit(0);
    let run = again.json();
    assert_eq!(sluice_tests::attempt_results(&run, "each[0]"), ["success", "success"]);
    assert_eq!(sluice_tests::attempt_results(&run, "each[1]"), ["success"]);
    assert_eq!(run["repairs"].as_array().unwrap().len(), 2);
}

#[test]
fn resume_keeps_the_pinned_plan_whatever_the_bundle_holds_now() {
    let s = Sluice::new();
    let dir = s.dir.path().join("pinned");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    std::fs::copy(sluice_tests::guest("probe"), dir.join("p.wasm")).unwrap();
    let bundle = |note: &str| {
        format!(
            "[bundle]\nname = \"pinned\"\n[components]\np = \"p.wasm\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"side\"\ncomponent = \"p\"\n\
             mounts = [{{ host = \"work\", guest = \"/work\", mode = \"rw\" }}]\n\
             params = {{ touch = \"/work/side-{{{{ task.attempt }}}}\", hang_below_attempt = 1, note = \"{note}\" }}\n"
        )
    };
    std::fs::write(dir.join("sluice.toml"), bundle("before")).unwrap();
    let bg = s.spawn(&["run", dir.to_str().unwrap()]);
    sluice_tests::wait_for_file(&dir.join("work/side-0"));
    bg.kill();
    // the bundle changes while nothing runs: a new parameter, a rebuilt component
    std::fs::write(dir.join("sluice.toml"), bundle("after")).unwrap();
    std::fs::copy(sluice_tests::guest("trap"), dir.join("p.wasm")).unwrap();
    s.run(&["runs", "resume"]).assert_exit(0);
    let run = show(&s, 1);
    assert_eq!(sluice_tests::attempt_results(&run, "side"), ["interrupted", "success"]);
    let out: Value =
        serde_json::from_str(sluice_tests::last_attempt(&run, "side")["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["params"]["note"], "before", "the run goes on with the plan it pinned");
    assert_eq!(run["plans"].as_array().unwrap().len(), 1, "resuming records no new plan");
}

#[test]
fn a_run_of_one_component_is_repaired_with_its_pinned_plan() {
    let s = Sluice::new();
    let probe = sluice_tests::guest("probe");
    s.run(&["task", "run", probe.to_str().unwrap(), "--param", "fail_below_attempt=1"]).assert_exit(1);
    let out = s.run(&["runs", "repair", "1", "--json"]);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(sluice_tests::attempt_results(&run, "probe"), ["failed", "success"]);
    assert_eq!(run["repairs"][0]["pinned"], true, "no bundle to read again");
}
