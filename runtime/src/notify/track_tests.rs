//! What a run's events imply, on plain events and times (no clock, no I/O).

use super::*;
use crate::model::{PlannedTask, RunPlan};
use crate::spec::{Destination, WebhookFormat};

fn notify(job: Notifications, task: Option<Notifications>) -> JobNotify {
    let hook = Destination::Webhook { url: "http://h/x".into(), secret: None, format: WebhookFormat::Generic };
    JobNotify {
        job,
        tasks: task.into_iter().map(|n| ("t".to_string(), n)).collect(),
        destinations: [("ops".to_string(), hook)].into(),
    }
}

fn all() -> Notifications {
    let ops = vec!["ops".to_string()];
    Notifications {
        on_start: ops.clone(),
        on_success: ops.clone(),
        on_failure: ops.clone(),
        on_duration_warning_threshold_exceeded: ops,
        duration_warning_secs: Some(60),
        ..Notifications::default()
    }
}

fn created(n: JobNotify) -> Event {
    let spec = crate::spec::parse(
        "[bundle]\nname = \"b\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n",
        std::path::Path::new("sluice.toml"),
        std::path::Path::new("/b"),
    )
    .unwrap();
    let mut job = spec.jobs["j"].clone();
    job.notify = n;
    let plan = RunPlan {
        bundle_root: "/b".into(),
        bundle: "b".into(),
        job,
        jobs: Default::default(),
        components: Default::default(),
        parent: None,
        principal: "alice".into(),
        workspace: "default".into(),
        trigger: None,
        target_limits: Default::default(),
        job_id: None,
    };
    let task = PlannedTask { key: "t".into(), component: "c".into(), component_hash: "h".into(), depends_on: vec![] };
    Event::RunCreated {
        run_id: 1,
        job: "j".into(),
        source: "s".into(),
        target: "dev".into(),
        parameters: Default::default(),
        tasks: vec![task],
        at: 1_000,
        plan: Some(Box::new(plan)),
    }
}

fn finished_attempt(result: TaskResult, error: Option<&str>) -> Event {
    Event::AttemptFinished {
        task: "t".into(),
        attempt: 1,
        at: 3_000,
        result,
        output: None,
        error: error.map(str::to_string),
        log: String::new(),
        log_truncated: false,
        elapsed_us: 0,
        outcome: None,
        cache: None,
        error_code: None,
    }
}

fn ids(notices: &[Notice]) -> Vec<&str> {
    notices.iter().map(|n| n.id.as_str()).collect()
}

#[test]
fn a_failed_run_notifies_its_start_once_and_its_failure_with_the_task_error() {
    let mut track = Track::new(1, &created(notify(all(), None))).expect("has notifications");
    assert_eq!(ids(&track.apply(&Event::TaskQueued { task: "t".into(), at: 1_100 })), ["on_start/run/ops"]);
    assert!(track.apply(&Event::AttemptStarted { task: "t".into(), attempt: 1, at: 1_200 }).is_empty(), "once");
    assert!(track.apply(&finished_attempt(TaskResult::Failed, Some("boom [REDACTED]"))).is_empty());
    let end = track.apply(&Event::RunFinished { result: RunResult::Failed, at: 4_000 });
    assert_eq!(ids(&end), ["on_failure/run/ops"]);
    let payload = &end[0].payload;
    assert_eq!(
        (payload["job"].as_str(), payload["run_id"].as_u64(), payload["state"].as_str()),
        (Some("j"), Some(1), Some("failed"))
    );
    assert_eq!(payload["duration_seconds"], 3.0);
    assert_eq!(payload["failed_tasks"][0]["error"], "boom [REDACTED]");
    assert_eq!(end[0].principal, "alice", "secrets are revealed as who started the run");
}

#[test]
fn canceled_and_skipped_runs_are_quiet_when_the_settings_say_so() {
    let quiet = Notifications { no_alert_for_canceled_runs: true, no_alert_for_skipped_runs: true, ..all() };
    for result in [RunResult::Canceled, RunResult::Skipped] {
        let mut track = Track::new(1, &created(notify(quiet.clone(), None))).unwrap();
        assert!(track.apply(&Event::RunFinished { result, at: 2_000 }).is_empty(), "{result:?}");
        let mut loud = Track::new(1, &created(notify(all(), None))).unwrap();
        assert_eq!(ids(&loud.apply(&Event::RunFinished { result, at: 2_000 })), ["on_failure/run/ops"]);
    }
}

#[test]
fn a_queued_run_starts_when_it_leaves_its_queue_and_its_duration_counts_from_there() {
    let mut track = Track::new(1, &created(notify(all(), None))).unwrap();
    track.apply(&Event::RunQueued { reason: "busy".into(), at: 1_000 });
    assert_eq!(track.next_deadline(), None, "a queued run does not run");
    assert!(track.apply(&Event::TaskQueued { task: "t".into(), at: 1_000 }).is_empty());
    assert!(track.apply(&Event::RunDequeued { at: 5_000 }).is_empty());
    assert_eq!(track.next_deadline(), Some(65_000));
    assert_eq!(ids(&track.apply(&Event::TaskQueued { task: "t".into(), at: 5_001 })), ["on_start/run/ops"]);
}

#[test]
fn the_duration_warning_fires_once_when_the_clock_passes_the_threshold() {
    let mut track = Track::new(1, &created(notify(all(), None))).unwrap();
    assert!(track.due(60_999).is_empty(), "1s + 60s is not yet");
    let warned = track.due(61_000);
    assert_eq!(ids(&warned), ["on_duration_warning_threshold_exceeded/run/ops"]);
    assert!(warned[0].payload["message"].as_str().unwrap().contains("longer than its health rule"));
    assert!(track.due(120_000).is_empty(), "once per run");
    assert_eq!(track.next_deadline(), None);
    let mut ended = Track::new(1, &created(notify(all(), None))).unwrap();
    ended.apply(&Event::RunFinished { result: RunResult::Success, at: 2_000 });
    assert!(ended.due(100_000).is_empty(), "a finished run is not warned about");
}

#[test]
fn task_notifications_are_about_its_attempts() {
    let mut track = Track::new(1, &created(notify(Notifications::default(), Some(all())))).unwrap();
    let start = track.apply(&Event::AttemptStarted { task: "t".into(), attempt: 1, at: 1_000 });
    assert_eq!(ids(&start), ["on_start/task:t:1/ops"]);
    assert_eq!(track.next_deadline(), Some(61_000));
    assert_eq!(ids(&track.due(61_000)), ["on_duration_warning_threshold_exceeded/task:t:1/ops"]);
    let failed = track.apply(&finished_attempt(TaskResult::Failed, Some("nope")));
    assert_eq!(ids(&failed), ["on_failure/task:t:1/ops"]);
    assert_eq!(failed[0].payload["task"], "t");
    assert!(
        track.apply(&Event::RunFinished { result: RunResult::Failed, at: 4_000 }).is_empty(),
        "the job says nothing"
    );
}

#[test]
fn a_job_without_notifications_is_not_tracked() {
    assert!(Track::new(1, &created(JobNotify::default())).is_none());
}

#[test]
fn alert_on_last_attempt_holds_back_retried_starts_and_failures() {
    let task = Notifications { alert_on_last_attempt: true, ..all() };
    let mut track = Track::new(1, &created(notify(Notifications::default(), Some(task)))).unwrap();
    let started = |attempt| Event::AttemptStarted { task: "t".into(), attempt, at: 1_200 };
    let failed = |n: u32| match finished_attempt(TaskResult::Failed, Some("boom")) {
        Event::AttemptFinished {
            task,
            at,
            result,
            output,
            error,
            log,
            log_truncated,
            elapsed_us,
            outcome,
            cache,
            ..
        } => Event::AttemptFinished {
            task,
            attempt: n,
            at,
            result,
            output,
            error,
            log,
            log_truncated,
            elapsed_us,
            outcome,
            cache,
            error_code: None,
        },
        other => other,
    };
    let retry = Event::RetryScheduled { task: "t".into(), next_attempt: 1, not_before: 2_000, at: 1_300 };
    assert_eq!(ids(&track.apply(&started(0))), ["on_start/task:t:0/ops"]);
    assert!(track.apply(&failed(0)).is_empty(), "held until it is known whether a retry follows");
    assert!(track.apply(&retry).is_empty(), "a retry follows: no failure notice");
    assert!(track.apply(&started(1)).is_empty(), "a retry's start is not announced");
    assert!(track.apply(&failed(1)).is_empty());
    let end = track.apply(&Event::RunFinished { result: RunResult::Failed, at: 4_000 });
    assert_eq!(ids(&end), ["on_failure/task:t:1/ops"], "the last attempt's failure is sent");
    // without the flag every attempt is announced
    let mut plain = Track::new(1, &created(notify(Notifications::default(), Some(all())))).unwrap();
    assert_eq!(ids(&plain.apply(&failed(0))), ["on_failure/task:t:0/ops"]);
    assert_eq!(ids(&plain.apply(&started(1))), ["on_start/task:t:1/ops"]);
}
