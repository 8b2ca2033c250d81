//! One owner, many clients: while one `sluice` process runs a job, other commands on the
//! same state directory talk to it over its socket instead of failing; runs of a job wait
//! their turn (max_concurrent_runs) or are skipped; a client carries on when the owner dies.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;
use sluice_tests::{Background, Sluice, task_of};

const HEAD: &str = "[bundle]\nname = \"o\"\n[components]\nprobe = \"{guest:probe}\"\n";

/// `slow` (one task sleeping `ms`), `quick` (one task) and `solo` (like slow, but a run
/// beyond the one active is skipped).
fn bundle(s: &Sluice, ms: u64) -> std::path::PathBuf {
    s.bundle(
        "o",
        &format!(
            "{HEAD}[jobs.slow]\n[[jobs.slow.tasks]]\nkey = \"nap\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = {ms} }}\n\
             retries = {{ max = 1, initial = \"10ms\" }}\n\
             [jobs.quick]\n[[jobs.quick.tasks]]\nkey = \"go\"\ncomponent = \"probe\"\n\
             [jobs.solo]\nqueue = false\n[[jobs.solo.tasks]]\nkey = \"nap\"\ncomponent = \"probe\"\nparams = {{ sleep_ms = {ms} }}\n"
        ),
    )
}

fn show(s: &Sluice, id: u64) -> Value {
    let out = s.run(&["runs", "show", &id.to_string(), "--json"]);
    out.assert_exit(0);
    out.json()
}

#[test]
fn other_commands_work_while_a_run_is_in_progress() {
    let s = Sluice::new();
    let dir = bundle(&s, 3_000);
    let d = dir.to_str().unwrap();
    let mut owner = s.spawn(&["run", d, "--job", "slow"]);
    owner.wait_for("run 1 ·");
    let socket = s.state().join("sluice.sock");
    let mode = std::fs::metadata(&socket).expect("the owner serves a socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the owner's user may connect");

    let list = s.run(&["runs", "list", "--json"]);
    list.assert_exit(0);
    assert_eq!(list.json()[0]["result"], Value::Null, "run 1 is in flight");
    // its start is durable (and so shown) within the journal's group-commit window
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut shown = show(&s, 1);
    while task_of(&shown, "nap")["state"] != "running" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        shown = show(&s, 1);
    }
    assert_eq!(task_of(&shown, "nap")["state"], "running");
    assert_eq!(shown["status"], "running", "the owner runs it");
    s.run(&["audit"]).assert_exit(0);
    let second = s.run(&["run", d, "--job", "quick", "--json"]);
    second.assert_exit(0);
    assert_eq!(second.json()["result"], "success", "a second run, of another job, ran meanwhile");
    assert!(show(&s, 1)["result"].is_null(), "…while the first was still going");
    for out in [&list, &second] {
        assert!(!out.stderr.contains("in use"), "{}", out.stderr);
    }
    assert_eq!(owner.wait(), 0);
    assert_eq!(show(&s, 1)["result"], "success");
    assert!(!socket.exists(), "the owner removed its socket when it ended");
}

/// Run 1 of job `slow` in progress and run 2 of it queued behind it (max_concurrent_runs 1).
fn one_running_one_queued(s: &Sluice) -> (std::path::PathBuf, Background, Background) {
    let dir = bundle(s, 1_500);
    let d = dir.to_str().unwrap();
    let mut first = s.spawn(&["run", d, "--job", "slow"]);
    first.wait_for("run 1 ·");
    let mut waiting = s.spawn(&["run", d, "--job", "slow"]);
    waiting.wait_for("run 2 · queued");
    (dir, first, waiting)
}

#[test]
fn a_second_run_of_a_job_waits_its_turn_or_is_skipped() {
    let s = Sluice::new();
    let (dir, first, waiting) = one_running_one_queued(&s);
    let d = dir.to_str().unwrap();
    let queued = show(&s, 2);
    assert!(queued["queued"].as_str().unwrap().contains("max_concurrent_runs = 1"), "{queued:#}");
    assert!(task_of(&queued, "nap")["attempts"].as_array().unwrap().is_empty(), "nothing of it started");

    // without a queue, the run is skipped at once
    let mut solo = s.spawn(&["run", d, "--job", "solo"]);
    solo.wait_for("run 3 ·");
    let skipped = s.run(&["run", d, "--job", "solo", "--json"]);
    skipped.assert_exit(1);
    let skipped = skipped.json();
    assert_eq!(skipped["result"], "skipped", "{skipped:#}");
    assert_eq!(task_of(&skipped, "nap")["result"], "canceled");

    assert_eq!(first.wait(), 0);
    assert_eq!(waiting.wait(), 0, "the queued run ran once the first had ended");
    assert_eq!(solo.wait(), 0);
    let (one, two) = (show(&s, 1), show(&s, 2));
    assert!(two["dequeued_at"].as_u64().unwrap() >= one["finished_at"].as_u64().unwrap(), "in turn: {two:#}");
    assert_eq!(two["result"], "success");
}

#[test]
fn a_queued_run_can_be_canceled_and_never_starts() {
    let s = Sluice::new();
    let (_dir, first, waiting) = one_running_one_queued(&s);
    let cancel = s.run(&["runs", "cancel", "2"]);
    cancel.assert_exit(0);
    assert_eq!(waiting.wait(), 1, "a canceled run is not a success");
    let two = show(&s, 2);
    assert_eq!(two["result"], "canceled");
    assert!(task_of(&two, "nap")["attempts"].as_array().unwrap().is_empty());
    assert_eq!(first.wait(), 0);
}

#[test]
fn a_client_carries_on_when_the_owner_is_killed() {
    let s = Sluice::new();
    let dir = bundle(&s, 2_000);
    let d = dir.to_str().unwrap();
    let owner = {
        let mut owner = s.spawn(&["run", d, "--job", "slow"]);
        owner.wait_for("run 1 ·");
        owner
    };
    // this one is a client of the first: its run waits in the owner's queue
    let mut client = s.spawn(&["run", d, "--job", "slow"]);
    client.wait_for("run 2 · queued");
    owner.kill();
    // the client elects itself, resumes run 1, then runs its own
    assert_eq!(client.wait(), 0, "the client's run ended well after its owner died");
    let (one, two) = (show(&s, 1), show(&s, 2));
    assert_eq!((one["result"].as_str(), two["result"].as_str()), (Some("success"), Some("success")));
    assert_eq!(one["resumed"], 1, "{one:#}");
}

#[test]
fn a_backup_taken_while_a_run_is_in_progress_restores_into_a_fresh_state_directory() {
    let s = Sluice::new();
    let dir = bundle(&s, 3_000);
    let mut owner = s.spawn(&["run", dir.to_str().unwrap(), "--job", "slow"]);
    owner.wait_for("run 1 ·");
    let backup = s.state().with_file_name("backup");
    let out = s.run(&["store", "backup", backup.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    assert!(!out.stderr.contains("in use"), "{}", out.stderr);
    assert!(out.json()["store"]["records"].as_u64().unwrap() > 0, "{}", out.stdout);
    assert!(show(&s, 1)["result"].is_null(), "the run went on while the copy was taken");
    assert_eq!(owner.wait(), 0, "the run ended well after the backup");

    let fresh = Sluice::new();
    fresh.run(&["store", "restore", backup.to_str().unwrap()]).assert_exit(0);
    let restored = show(&fresh, 1);
    assert_eq!(restored["job"], "slow", "{restored}");
    assert!(restored["result"].is_null(), "the copy is of the run in progress: {restored}");
    assert_eq!(restored["status"], "interrupted", "nothing drives it in the fresh directory: {restored}");
}
