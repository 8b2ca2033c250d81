//! `run_if` on the pure state, the whole matrix of rules × how upstreams ended (a branch
//! not taken among them), and failure handlers running as cleanup after a cancel.

use super::*;

/// How the downstream task of a run whose upstreams end with `ups` is decided under
/// `rule`: `None` when it runs. `NotTaken` is a condition's branch not taken.
fn decided(rule: &str, ups: &[Up]) -> Option<TaskResult> {
    let cond = "[[jobs.j.tasks]]\nkey = \"cond\"\ncondition = { op = \"equal_to\", left = \"1\", right = \"2\" }\n";
    let mut text = String::from(cond);
    let mut deps = Vec::new();
    for (n, up) in ups.iter().enumerate() {
        if *up == Up::NotTaken {
            deps.push("{ task = \"cond\", outcome = \"true\" }".to_string());
        } else {
            text += &format!("[[jobs.j.tasks]]\nkey = \"u{n}\"\ncomponent = \"c\"\n");
            deps.push(format!("\"u{n}\""));
        }
    }
    text += &format!(
        "[[jobs.j.tasks]]\nkey = \"down\"\ncomponent = \"c\"\ndepends_on = [{}]\nrun_if = \"{rule}\"\n",
        deps.join(", ")
    );
    let mut sim = run(&text);
    sim.start();
    let cond = sim.state.id_of("cond").unwrap();
    let end = InPlace { result: TaskResult::Success, output: None, error: None, outcome: Some(false) };
    sim.record(sim.state.finished_in_place(cond, 0, end, 0));
    sim.settle();
    for (n, up) in ups.iter().enumerate() {
        let key = format!("u{n}");
        match up {
            Up::NotTaken => {}
            Up::Ran(r) => sim.end(&key, *r, false),
            Up::Skipped(r) => {
                // a task that never ran, as readiness or a cancel records it
                sim.record(Event::TaskSkipped { task: key, result: *r, reason: "x".into(), at: 0 });
                sim.settle();
            }
        }
    }
    let down = sim.state.task(sim.state.id_of("down").unwrap());
    match down.state {
        TaskState::Queued => None,
        TaskState::Terminated => down.result,
        other => panic!("down is {other:?}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Up {
    Ran(TaskResult),
    Skipped(TaskResult),
    NotTaken,
}

#[test]
fn the_whole_run_if_matrix_on_one_upstream_and_with_a_failed_one() {
    use TaskResult::*;
    use Up::*;
    let ups = [
        Ran(Success),
        Ran(Failed),
        Ran(TimedOut),
        Ran(Canceled),
        Skipped(Excluded),
        Skipped(UpstreamFailed),
        Skipped(UpstreamCanceled),
        Ran(Interrupted),
        NotTaken,
    ];
    // R: the task runs. Columns follow `ups`.
    const R: Option<TaskResult> = None;
    let (uf, uc, ex) = (Some(UpstreamFailed), Some(UpstreamCanceled), Some(Excluded));
    let alone = [
        ("all_success", [R, uf, uf, uc, ex, uf, uc, uf, ex]),
        ("at_least_one_success", [R, uf, uf, uc, ex, uf, uc, uf, ex]),
        ("none_failed", [R, uf, uf, uc, ex, uf, uc, uf, ex]),
        ("all_done", [R, R, R, R, ex, R, R, R, ex]),
        ("at_least_one_failed", [ex, R, R, R, ex, R, R, R, ex]),
        ("all_failed", [ex, R, R, R, ex, R, R, R, ex]),
    ];
    let beside_a_failure = [
        ("all_success", [uf, uf, uf, uf, uf, uf, uf, uf, uf]),
        ("at_least_one_success", [R, uf, uf, uf, R, uf, uf, uf, R]),
        ("none_failed", [uf, uf, uf, uf, uf, uf, uf, uf, uf]),
        ("all_done", [R, R, R, R, R, R, R, R, R]),
        ("at_least_one_failed", [R, R, R, R, R, R, R, R, R]),
        ("all_failed", [ex, R, R, R, ex, R, R, R, ex]),
    ];
    for (before, table) in [(None, alone), (Some(Ran(Failed)), beside_a_failure)] {
        for (rule, want) in table {
            for (up, want) in ups.iter().zip(want) {
                let given: Vec<Up> = before.into_iter().chain([*up]).collect();
                assert_eq!(decided(rule, &given), want, "{rule} after {given:?}");
            }
        }
    }
}

#[test]
fn after_a_cancel_failure_handlers_run_as_cleanup_until_cleanup_is_stopped() {
    let tasks = "cleanup_timeout = \"1s\"\n\
        [[jobs.j.tasks]]\nkey = \"work\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"next\"\ncomponent = \"c\"\ndepends_on = [\"work\"]\n\
        [[jobs.j.tasks]]\nkey = \"tidy\"\ncomponent = \"c\"\ndepends_on = [\"next\"]\nrun_if = \"all_done\"\n\
        [[jobs.j.tasks]]\nkey = \"alert\"\ncomponent = \"c\"\ndepends_on = [\"work\"]\nrun_if = \"at_least_one_failed\"\n\
        [[jobs.j.tasks]]\nkey = \"after_tidy\"\ncomponent = \"c\"\ndepends_on = [\"tidy\"]\n";
    let mut sim = run(tasks);
    assert_eq!(sim.start(), ["work"]);
    sim.now = 100;
    sim.record(Event::CancelRequested { reason: "Ctrl-C".into(), timed_out: false, at: 100, stop_cleanup: false });
    sim.settle();
    assert_eq!(sim.state_of("next"), (TaskState::Terminated, Some(TaskResult::UpstreamCanceled)));
    assert_eq!(sim.state_of("after_tidy").1, Some(TaskResult::UpstreamCanceled), "not a failure handler");
    assert_eq!(sim.state.cleanup_deadline(), Some(1_100));
    sim.end("work", TaskResult::Canceled, false);
    assert_eq!(sim.start(), ["tidy", "alert"], "cleanup runs after the cancel");
    sim.end("tidy", TaskResult::Success, false);
    assert!(!sim.state.finished(), "alert still runs");
    sim.record(Event::CancelRequested { reason: "again".into(), timed_out: false, at: 200, stop_cleanup: true });
    sim.settle();
    assert_eq!(sim.state.cleanup_deadline(), None);
    sim.end("alert", TaskResult::Canceled, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Canceled), "a canceled run stays canceled");

    // a second cancel before cleanup started: it never starts
    let mut sim = run(tasks);
    sim.start();
    sim.record(Event::CancelRequested { reason: "x".into(), timed_out: true, at: 0, stop_cleanup: false });
    sim.record(Event::CancelRequested { reason: "y".into(), timed_out: false, at: 0, stop_cleanup: true });
    sim.settle();
    sim.end("work", TaskResult::TimedOut, false);
    assert!(sim.start().is_empty());
    assert_eq!(sim.state_of("tidy").1, Some(TaskResult::UpstreamCanceled));
    assert_eq!(sim.state.view().result, Some(RunResult::TimedOut));
}
