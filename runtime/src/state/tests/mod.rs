//! The scheduler's semantics on the pure state, without a runtime: `run_if`, retries,
//! for_each release, cancel and timeout, repair, the job's bound, an interrupted run, and
//! logs that cannot be.

mod run_if;

use std::collections::BTreeMap;

use super::*;
use crate::model::{RunResult, TaskResult};

/// A run of job `j` whose tasks are `tasks` (TOML `[[jobs.j.tasks]]` tables), created at 0.
fn run(tasks: &str) -> Sim {
    let text = format!("[bundle]\nname = \"t\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\n{tasks}");
    let bundle = crate::spec::parse(&text, std::path::Path::new("sluice.toml"), std::path::Path::new("/b")).unwrap();
    let job = bundle.jobs["j"].clone();
    let plan = RunPlan {
        bundle_root: "/b".into(),
        bundle: "t".into(),
        job,
        jobs: BTreeMap::new(),
        components: BTreeMap::new(),
        parent: None,
        principal: "p".into(),
        workspace: "default".into(),
        target_limits: Default::default(),
        job_id: None,
        trigger: None,
    };
    let created = Event::RunCreated {
        run_id: 1,
        job: "j".into(),
        source: "s".into(),
        target: "dev".into(),
        parameters: BTreeMap::new(),
        tasks: planned_tasks(&plan),
        at: 0,
        plan: Some(Box::new(plan)),
    };
    let mut sim =
        Sim { state: RunState::from_events(std::slice::from_ref(&created)).unwrap(), log: vec![created], now: 0 };
    sim.settle();
    sim
}

/// Plays the coordinator: records what the state decides, starts what it may start.
struct Sim {
    state: RunState,
    log: Vec<Event>,
    now: Millis,
}

impl Sim {
    fn record(&mut self, event: Event) {
        self.state.apply(&event).unwrap();
        self.log.push(event);
    }

    fn settle(&mut self) {
        loop {
            let events = self.state.decide(self.now);
            if events.is_empty() {
                return;
            }
            events.into_iter().for_each(|e| self.record(e));
        }
    }

    /// Start every startable task; their keys.
    fn start(&mut self) -> Vec<String> {
        let ids = self.state.startable(usize::MAX);
        let mut keys = Vec::new();
        for id in ids {
            let (task, attempt) = (self.state.task(id).key.clone(), self.state.next_attempt(id));
            self.record(Event::AttemptStarted { task: task.clone(), attempt, at: self.now });
            keys.push(task);
        }
        keys
    }

    /// Attempt of `key` ended with `result` (`retryable` failures go to the retry policy).
    fn end(&mut self, key: &str, result: TaskResult, retryable: bool) {
        let id = self.state.id_of(key).unwrap();
        let attempt = self.state.next_attempt(id) - 1;
        let error = (result != TaskResult::Success).then(|| "boom".to_string());
        let output = (result == TaskResult::Success).then(|| "1".to_string());
        self.record(self.state.finished_in_place(
            id,
            attempt,
            InPlace { result, output, error, outcome: None },
            self.now,
        ));
        if let Some(retry) = self.state.retry(id, attempt, retryable, self.now) {
            self.record(retry);
        }
        self.settle();
    }

    fn state_of(&self, key: &str) -> (TaskState, Option<TaskResult>) {
        let t = self.state.task(self.state.id_of(key).unwrap());
        (t.state, t.result)
    }
}

const DIAMOND: &str = "[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
    [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\ndepends_on = [\"a\"]\n\
    [[jobs.j.tasks]]\nkey = \"ok\"\ncomponent = \"c\"\ndepends_on = [\"a\", \"b\"]\n\
    [[jobs.j.tasks]]\nkey = \"done\"\ncomponent = \"c\"\ndepends_on = [\"b\"]\nrun_if = \"all_done\"\n\
    [[jobs.j.tasks]]\nkey = \"alarm\"\ncomponent = \"c\"\ndepends_on = [\"b\"]\nrun_if = \"at_least_one_failed\"\n\
    [[jobs.j.tasks]]\nkey = \"after\"\ncomponent = \"c\"\ndepends_on = [\"ok\"]\n";

#[test]
fn run_if_decides_each_task_once_its_upstreams_have_ended() {
    let mut sim = run(DIAMOND);
    assert_eq!(sim.start(), ["a"], "only the task without upstreams is queued");
    sim.end("a", TaskResult::Success, false);
    assert_eq!(sim.start(), ["b"]);
    sim.end("b", TaskResult::Failed, false);
    assert_eq!(sim.state_of("ok"), (TaskState::Terminated, Some(TaskResult::UpstreamFailed)));
    assert_eq!(sim.state_of("after"), (TaskState::Terminated, Some(TaskResult::UpstreamFailed)), "skips flow down");
    assert_eq!(sim.start(), ["done", "alarm"], "all_done and at_least_one_failed run, in plan order");
    sim.end("done", TaskResult::Success, false);
    assert!(!sim.state.finished(), "alarm is still running");
    sim.end("alarm", TaskResult::Success, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Failed), "leaf `ok` did not succeed");
    assert!(matches!(sim.log.last(), Some(Event::RunFinished { .. })));
}

#[test]
fn a_retryable_failure_waits_out_its_backoff_then_runs_again_until_the_policy_says_no() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
        retries = { max = 2, initial = \"1s\", backoff = 2.0, jitter = 0.0 }\n\
        [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\ndepends_on = [\"a\"]\n");
    sim.start();
    sim.end("a", TaskResult::Failed, true);
    assert_eq!(sim.state_of("a").0, TaskState::WaitingForRetry);
    assert_eq!(sim.state.next_retry(), Some(1_000));
    assert_eq!(sim.state_of("b").0, TaskState::Blocked, "a retried task has not ended");
    sim.now = 999;
    sim.settle();
    assert!(sim.start().is_empty(), "not before its time");
    sim.now = 1_000;
    sim.settle();
    assert_eq!(sim.start(), ["a"]);
    sim.end("a", TaskResult::Failed, true);
    assert_eq!(sim.state.next_retry(), Some(3_000), "the backoff doubles");
    sim.now = 3_000;
    sim.settle();
    sim.start();
    sim.end("a", TaskResult::Failed, true);
    let attempts: Vec<u32> = sim.state.task(0).attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(attempts, [0, 1, 2], "max = 2 retries");
    assert_eq!(sim.state_of("b").1, Some(TaskResult::UpstreamFailed));
    assert_eq!(sim.state.view().result, Some(RunResult::Failed));

    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\nretries = { max = 5 }\n");
    sim.start();
    sim.end("a", TaskResult::Failed, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Failed), "a permanent failure is not retried");
}

#[test]
fn for_each_releases_iterations_up_to_its_concurrency_and_ends_when_they_all_have() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"each\"\n\
        for_each = { inputs = \"[1, 2, 3, 4, 5]\", concurrency = 2, task = { component = \"c\" } }\n");
    assert_eq!(sim.start(), ["each"]);
    let inputs: Vec<String> = (1..=5).map(|n| n.to_string()).collect();
    sim.record(Event::IterationsPlanned { task: "each".into(), inputs, at: 0 });
    sim.settle();
    assert_eq!(sim.start(), ["each[0]", "each[1]"], "two at a time");
    assert_eq!(sim.state.input(sim.state.id_of("each[1]").unwrap()), Some("2"));
    sim.end("each[0]", TaskResult::Success, false);
    assert_eq!(sim.start(), ["each[2]"], "one ended, one more released");
    for (key, result) in [("each[1]", TaskResult::Success), ("each[2]", TaskResult::Failed)] {
        sim.end(key, result, false);
    }
    assert_eq!(sim.start(), ["each[3]", "each[4]"]);
    sim.end("each[3]", TaskResult::Success, false);
    assert_eq!(sim.state_of("each"), (TaskState::Running, None));
    sim.end("each[4]", TaskResult::Success, false);
    let parent = sim.state.task(0);
    assert_eq!(parent.result, Some(TaskResult::Failed));
    let last = parent.attempts.last().unwrap();
    assert_eq!(last.output.as_deref(), Some(r#"{"failed":1,"iterations":5,"succeeded":4}"#));
    assert_eq!(last.error.as_deref(), Some("1 of 5 iterations did not succeed"));

    let mut sim =
        run("[[jobs.j.tasks]]\nkey = \"none\"\nfor_each = { inputs = \"[]\", task = { component = \"c\" } }\n");
    sim.start();
    sim.record(Event::IterationsPlanned { task: "none".into(), inputs: vec![], at: 0 });
    sim.settle();
    assert_eq!(sim.state.view().result, Some(RunResult::Success), "no inputs: done at once");
}

#[test]
fn a_cancel_ends_what_never_started_and_no_failure_is_retried_while_stopping() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\nretries = { max = 3 }\n\
        [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"c\"\ncomponent = \"c\"\ndepends_on = [\"a\"]\n");
    assert_eq!(sim.start(), ["a", "b"]);
    sim.end("b", TaskResult::Success, false);
    sim.record(Event::CancelRequested { reason: "Ctrl-C".into(), timed_out: false, at: 5, stop_cleanup: false });
    sim.settle();
    assert_eq!(sim.state_of("c"), (TaskState::Terminated, Some(TaskResult::UpstreamCanceled)));
    assert_eq!(sim.state.task(2).skipped_reason.as_deref(), Some("Ctrl-C"));
    assert_eq!(sim.state.retry(0, 0, true, 5), None, "no retries while stopping");
    sim.end("a", TaskResult::Canceled, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Canceled));

    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n");
    sim.start();
    sim.record(Event::CancelRequested {
        reason: "the job timed out after 1s".into(),
        timed_out: true,
        at: 5,
        stop_cleanup: false,
    });
    sim.end("a", TaskResult::TimedOut, false);
    assert_eq!(sim.state.view().result, Some(RunResult::TimedOut), "a timeout is not a cancel");
}

fn repair(sim: &mut Sim, tasks: &[&str], parameters: BTreeMap<String, String>) {
    let repair = sim.state.view().repairs.len() as u32 + 1;
    let tasks = tasks.iter().map(|t| t.to_string()).collect();
    let at = sim.now;
    sim.record(Event::RepairStarted {
        repair,
        tasks,
        parameters,
        at,
        by: "ann".into(),
        plan_version: 1,
        pinned: false,
    });
    sim.settle();
}

/// A run of `a` then a for_each over `inputs` whose iterations end with `results`.
fn for_each_run(inputs: &[&str], results: &[TaskResult]) -> Sim {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"each\"\ndepends_on = [\"a\"]\n\
        for_each = { inputs = \"[]\", concurrency = 100, task = { component = \"c\" } }\n");
    sim.start();
    sim.end("a", TaskResult::Success, false);
    sim.start();
    plan(&mut sim, inputs);
    sim.start();
    for (n, r) in results.iter().enumerate() {
        sim.end(&format!("each[{n}]"), *r, false);
    }
    sim
}

fn plan(sim: &mut Sim, inputs: &[&str]) {
    let inputs = inputs.iter().map(|i| i.to_string()).collect();
    sim.record(Event::IterationsPlanned { task: "each".into(), inputs, at: sim.now });
    sim.settle();
}

#[test]
fn a_repair_reruns_only_the_iterations_that_did_not_succeed_and_keeps_every_attempt() {
    use TaskResult::*;
    let mut sim = for_each_run(&["1", "2", "3"], &[Success, Failed, Success]);
    assert_eq!(sim.state.view().result, Some(RunResult::Failed));
    let each = sim.state.id_of("each").unwrap();

    let parameters = BTreeMap::from([("day".to_string(), "2".to_string())]);
    repair(&mut sim, &["each"], parameters.clone());
    let view = sim.state.view();
    assert_eq!(view.result, None);
    assert!(view.parameters.is_empty(), "the run's own parameters are never overwritten");
    assert_eq!(sim.state.parameters(), &parameters, "the repair's are in force");
    assert_eq!(view.repairs[0].parameters, parameters);
    assert_eq!(view.repairs[0].by, "ann");
    assert_eq!(sim.state_of("a"), (TaskState::Terminated, Some(Success)), "kept");
    assert_eq!(sim.state.task(each).attempts.len(), 1, "attempts are kept");
    assert!(sim.state.current_attempts(each).is_empty(), "a new life");
    assert_eq!(sim.start(), ["each"], "its upstream succeeded, so it runs again");
    assert_eq!(sim.state.task(each).attempts.last().unwrap().attempt, 1, "attempt numbers go on");
    plan(&mut sim, &["1", "2", "3"]);
    assert_eq!(sim.start(), ["each[1]"], "exactly the failed iteration");
    assert_eq!(sim.state_of("each[0]"), (TaskState::Terminated, Some(Success)));
    sim.end("each[1]", Success, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Success));
    let failed_first: Vec<_> =
        sim.state.task(sim.state.id_of("each[1]").unwrap()).attempts.iter().map(|a| a.result).collect();
    assert_eq!(failed_first, [Some(Failed), Some(Success)], "the failed attempt is still there");
    assert_eq!(sim.state.task(sim.state.id_of("each[0]").unwrap()).attempts.len(), 1);

    // a second repair needs nothing but the names; a named iteration reruns even though it succeeded
    repair(&mut sim, &["each[2]"], BTreeMap::new());
    assert_eq!(sim.start(), ["each"]);
    plan(&mut sim, &["1", "2", "3"]);
    assert_eq!(sim.start(), ["each[2]"]);
    sim.end("each[2]", Success, false);
    assert_eq!(sim.state.view().repairs.len(), 2);
    assert_eq!(sim.state.view().result, Some(RunResult::Success));

    // an input that changed reruns its iteration; a new one joins
    repair(&mut sim, &["each"], BTreeMap::new());
    sim.start();
    plan(&mut sim, &["1", "20", "3", "4"]);
    assert_eq!(sim.start(), ["each[1]", "each[3]"]);
}

#[test]
fn a_new_plan_version_changes_specs_adds_tasks_and_is_listed() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\nparams = { fail = \"yes\" }\n");
    sim.start();
    sim.end("a", TaskResult::Failed, false);
    let mut plan = sim.state.plan().unwrap().as_ref().clone();
    let text = "[bundle]\nname = \"t\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\n\
        [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\ndepends_on = [\"a\"]\n";
    plan.job =
        crate::spec::parse(text, std::path::Path::new("s.toml"), std::path::Path::new("/b")).unwrap().jobs["j"].clone();
    let hash = plan_hash(&plan);
    assert_ne!(hash, sim.state.view().plans[0].hash);
    let changes = vec!["task `a`: param `fail` removed".to_string()];
    sim.record(Event::PlanRecorded {
        version: 2,
        hash: hash.clone(),
        changes: changes.clone(),
        plan: Box::new(plan),
        at: 5,
    });
    assert_eq!(sim.state.plan_version(), 2);
    assert!(sim.state.spec(0).unwrap().exec.params.is_empty(), "the spec in force is the new one");
    assert_eq!(sim.state.view().plans[1].changes, changes);
    let b = sim.state.id_of("b").expect("the task the job gained joined the run");
    assert_eq!(sim.state.task(b).depends_on, ["a"]);
    let tasks = vec!["a".to_string(), "b".to_string()];
    let at = sim.now;
    sim.record(Event::RepairStarted {
        repair: 1,
        tasks,
        parameters: BTreeMap::new(),
        at,
        by: "ann".into(),
        plan_version: 2,
        pinned: false,
    });
    sim.settle();
    assert_eq!(sim.start(), ["a"]);
    sim.end("a", TaskResult::Success, false);
    assert_eq!(sim.start(), ["b"], "the new task depends on the old one");
    sim.end("b", TaskResult::Success, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Success));
    assert_eq!(sim.state.view().repairs[0].plan_version, 2);
}

#[test]
fn the_jobs_bound_holds_sandboxed_tasks_and_everything_queued_after_them() {
    let mut sim = run("max_parallel_tasks = 1\n\
        [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"check\"\ncondition = { op = \"equal_to\", left = \"1\", right = \"1\" }\n");
    assert_eq!(sim.start(), ["a"], "b waits for a slot, and the condition queued after it waits too");
    sim.end("a", TaskResult::Success, false);
    assert_eq!(sim.start(), ["b", "check"], "a condition takes no slot");
}

#[test]
fn what_a_dead_process_left_running_is_settled_by_kind() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
        [[jobs.j.tasks]]\nkey = \"once\"\ncomponent = \"c\"\nrerun_on_resume = false\n\
        [[jobs.j.tasks]]\nkey = \"check\"\ncondition = { op = \"equal_to\", left = \"1\", right = \"1\" }\n");
    sim.start();
    sim.record(Event::RunResumed { at: 10 });
    let settled = sim.state.settle_interrupted(10);
    let events: Vec<Event> = settled
        .into_iter()
        .map(|s| match s {
            Settle::Record(e) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(matches!(&events[0], Event::AttemptFinished { task, result: TaskResult::Interrupted, error: Some(e), .. }
        if task == "a" && e == INTERRUPTED));
    assert!(matches!(&events[1], Event::TaskQueued { task, .. } if task == "a"), "runs again, no retry policy needed");
    assert!(matches!(&events[2], Event::AttemptFinished { task, result: TaskResult::Interrupted, error: Some(e), .. }
        if task == "once" && e == NOT_RERUN));
    assert!(matches!(&events[3], Event::AttemptFinished { task, .. } if task == "check"));
    assert!(matches!(&events[4], Event::TaskQueued { task, .. } if task == "check"), "evaluated again");
    assert_eq!(events.len(), 5, "{events:#?}");
    events.into_iter().for_each(|e| sim.record(e));
    sim.settle();
    assert_eq!(sim.state_of("once"), (TaskState::Terminated, Some(TaskResult::Interrupted)), "waits for a repair");
    assert_eq!(sim.start(), ["a", "check"]);
    sim.end("a", TaskResult::Success, false);
    sim.end("check", TaskResult::Success, false);
    assert_eq!(sim.state.view().result, Some(RunResult::Failed), "an interrupted task is not a success");
    let a = sim.state.task(0);
    let results: Vec<_> = a.attempts.iter().map(|x| (x.attempt, x.result)).collect();
    assert_eq!(results, [(0, Some(TaskResult::Interrupted)), (1, Some(TaskResult::Success))], "both attempts kept");
    assert_eq!(a.attempts[0].error_code.as_deref(), Some("interrupted"));

    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n");
    sim.start();
    sim.record(Event::CancelRequested { reason: "x".into(), timed_out: false, at: 11, stop_cleanup: false });
    let settled = sim.state.settle_interrupted(11);
    assert!(
        settled
            .iter()
            .all(|s| matches!(s, Settle::Record(Event::AttemptFinished { result: TaskResult::Canceled, .. }))),
        "a stopping run's attempts end canceled: {settled:?}"
    );
}

#[test]
fn an_interrupted_attempt_does_not_count_against_the_retry_policy() {
    let mut sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\nretries = { max = 1, jitter = 0.0 }\n");
    sim.start();
    for e in sim.state.settle_interrupted(1).into_iter().filter_map(|s| match s {
        Settle::Record(e) => Some(e),
        Settle::ResumeChild { .. } => None,
    }) {
        sim.record(e);
    }
    assert_eq!(sim.start(), ["a"]);
    sim.end("a", TaskResult::Failed, true);
    assert_eq!(sim.state_of("a").0, TaskState::WaitingForRetry, "its one retry is still there");
    sim.now = 10_000;
    sim.settle();
    sim.start();
    sim.end("a", TaskResult::Failed, true);
    assert_eq!(sim.state_of("a"), (TaskState::Terminated, Some(TaskResult::Failed)), "now it is used up");
    assert_eq!(sim.state.task(0).attempts.len(), 3);
}

#[test]
fn histories_that_cannot_happen_are_corrupt() {
    let sim = run("[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n");
    let created = sim.log[0].clone();
    assert!(RunState::from_events(&[]).is_err());
    assert!(RunState::from_events(&[Event::RunResumed { at: 0 }]).is_err());
    let finished =
        RunState::from_events(std::slice::from_ref(&created)).unwrap().finished_in_place(0, 0, InPlace::failed("x"), 1);
    assert!(RunState::from_events(&[created.clone(), finished]).is_err(), "finished but never started");
    assert!(RunState::from_events(&[created.clone(), Event::TaskQueued { task: "zz".into(), at: 0 }]).is_err());
    assert!(RunState::from_events(&[created.clone(), created]).is_err());
}
