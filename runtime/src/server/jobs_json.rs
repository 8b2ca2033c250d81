//! sluice's runs and jobs in the Databricks Jobs API 2.2 vocabulary: a run's
//! `state.life_cycle_state`/`result_state` (exact upper-case strings, `TIMEDOUT`,
//! `CANCELED`) and its `status`, one task entry per attempt with its task run id, repair
//! history, job parameters, and jobs' settings. Pure mapping: no I/O.

use serde_json::{Value, json};

use crate::model::{AttemptView, RunResult, TaskResult, TaskState, TaskView};
use crate::service::{JobInfo, RunRecord};

/// The `state` and `status` objects of a finished thing.
fn ended(result_state: &str, code: &str, kind: &str, message: &str, life: &str, canceled: bool) -> (Value, Value) {
    let state = json!({
        "life_cycle_state": life,
        "result_state": result_state,
        "state_message": message,
        "user_cancelled_or_timedout": canceled,
    });
    let status = json!({
        "state": "TERMINATED",
        "termination_details": { "code": code, "type": kind, "message": message },
    });
    (state, status)
}

/// The `state` and `status` of something still going on.
fn going(life: &str, v2: &str, message: &str) -> (Value, Value) {
    (json!({ "life_cycle_state": life, "state_message": message }), json!({ "state": v2 }))
}

/// A task run's `state`/`status` from how it ended.
fn task_result(result: TaskResult, message: &str) -> (Value, Value) {
    let canceled = matches!(result, TaskResult::Canceled | TaskResult::TimedOut);
    match result {
        TaskResult::Success => ended("SUCCESS", "SUCCESS", "SUCCESS", message, "TERMINATED", false),
        TaskResult::Failed => ended("FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR", message, "TERMINATED", false),
        // a data-quality failure: the user's data, not the platform
        TaskResult::QualityFailed => {
            ended("FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR", message, "TERMINATED", false)
        }
        TaskResult::TimedOut => ended("TIMEDOUT", "CANCELED", "CLIENT_ERROR", message, "TERMINATED", canceled),
        TaskResult::Canceled => ended("CANCELED", "USER_CANCELED", "SUCCESS", message, "TERMINATED", canceled),
        TaskResult::Excluded => ended("EXCLUDED", "SKIPPED", "SUCCESS", message, "SKIPPED", false),
        TaskResult::UpstreamFailed => ended("UPSTREAM_FAILED", "SKIPPED", "SUCCESS", message, "SKIPPED", false),
        TaskResult::UpstreamCanceled => ended("UPSTREAM_CANCELED", "SKIPPED", "SUCCESS", message, "SKIPPED", false),
        // its process died mid-attempt and the task must not run twice: a repair reruns it
        TaskResult::Interrupted => {
            ended("FAILED", "INTERNAL_ERROR", "INTERNAL_ERROR", message, "INTERNAL_ERROR", false)
        }
    }
}

/// A run's `state`/`status` from how it ended.
fn run_result(result: RunResult, message: &str) -> (Value, Value) {
    match result {
        RunResult::Success => ended("SUCCESS", "SUCCESS", "SUCCESS", message, "TERMINATED", false),
        RunResult::SuccessWithFailures => {
            ended("SUCCESS_WITH_FAILURES", "SUCCESS_WITH_FAILURES", "SUCCESS", message, "TERMINATED", false)
        }
        RunResult::Failed => ended("FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR", message, "TERMINATED", false),
        RunResult::TimedOut => ended("TIMEDOUT", "CANCELED", "CLIENT_ERROR", message, "TERMINATED", true),
        RunResult::Canceled => ended("CANCELED", "USER_CANCELED", "SUCCESS", message, "TERMINATED", true),
        RunResult::Skipped => ended(
            "MAXIMUM_CONCURRENT_RUNS_REACHED",
            "MAX_CONCURRENT_RUNS_EXCEEDED",
            "CLIENT_ERROR",
            message,
            "SKIPPED",
            false,
        ),
    }
}

/// The run's `state` and `status` now.
pub fn run_state(rec: &RunRecord) -> (Value, Value) {
    let v = &rec.view;
    if let Some(result) = v.result {
        return run_result(result, &run_message(rec));
    }
    if let Some(reason) = &v.queued {
        let (mut state, mut status) = going("QUEUED", "QUEUED", reason);
        state["queue_reason"] = json!(reason);
        status["queue_details"] = json!({ "code": "MAX_CONCURRENT_RUNS_REACHED", "message": reason });
        return (state, status);
    }
    if v.cancel_requested {
        return going("TERMINATING", "TERMINATING", "The run is being canceled.");
    }
    if v.tasks.iter().any(|t| !t.attempts.is_empty() || t.state == TaskState::Terminated) {
        going("RUNNING", "RUNNING", "")
    } else {
        going("PENDING", "PENDING", "")
    }
}

/// Why a run ended as it did: the first failed task's error, a stop's reason, a skip's.
fn run_message(rec: &RunRecord) -> String {
    let v = &rec.view;
    let failed = v
        .tasks
        .iter()
        .find(|t| matches!(t.result, Some(TaskResult::Failed | TaskResult::TimedOut | TaskResult::QualityFailed)));
    if let Some(t) = failed {
        let error = t.attempts.last().and_then(|a| a.error.as_deref()).unwrap_or("");
        return format!("Task {} failed with message: {}", t.key, first_line(error));
    }
    match v.result {
        Some(RunResult::Skipped | RunResult::Canceled) => {
            v.tasks.iter().find_map(|t| t.skipped_reason.clone()).unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// One entry of a run's `tasks`: an attempt (or the task before it started).
fn task_entry(rec: &RunRecord, t: &TaskView, attempt: Option<&AttemptView>) -> Value {
    let id = rec.task_run_id(&t.key, attempt.map(|a| a.attempt));
    let (state, status) = match attempt {
        Some(a) => match a.result {
            Some(r) => task_result(r, first_line(a.error.as_deref().unwrap_or(""))),
            None => going("RUNNING", "RUNNING", ""),
        },
        None => match (t.state, t.result) {
            (_, Some(r)) => task_result(r, t.skipped_reason.as_deref().unwrap_or("")),
            (TaskState::Blocked, _) => going("BLOCKED", "BLOCKED", ""),
            (TaskState::Queued, _) => going("QUEUED", "QUEUED", ""),
            (TaskState::WaitingForRetry, _) => going("WAITING_FOR_RETRY", "WAITING", ""),
            (TaskState::Running, _) => going("RUNNING", "RUNNING", ""),
            _ => going("PENDING", "PENDING", ""),
        },
    };
    let depends_on: Vec<Value> = t.depends_on.iter().map(|d| json!({ "task_key": d })).collect();
    let spec = rec.plan.as_ref().and_then(|p| p.job.task(&t.key));
    let run_if = spec.map_or("all_success", |s| s.run_if.as_str()).to_uppercase();
    let start = attempt.map_or(0, |a| a.started_at);
    let end = attempt.and_then(|a| a.finished_at).unwrap_or(0);
    json!({
        "task_key": t.key,
        "run_id": id,
        "attempt_number": attempt.map_or(0, |a| a.attempt),
        "depends_on": depends_on,
        "run_if": run_if,
        "state": state,
        "status": status,
        "start_time": start,
        "end_time": end,
        "execution_duration": if end > 0 { end.saturating_sub(start) } else { 0 },
        "setup_duration": 0,
        "cleanup_duration": 0,
    })
}

/// The task entries of a run: one per attempt of each top-level task, plus one for a task
/// that has not started (or waits to retry).
pub fn task_entries(rec: &RunRecord) -> Vec<Value> {
    let mut out = Vec::new();
    for t in rec.view.tasks.iter().filter(|t| t.parent.is_none()) {
        for a in &t.attempts {
            out.push(task_entry(rec, t, Some(a)));
        }
        let waiting = matches!(t.state, TaskState::Pending | TaskState::Blocked | TaskState::Queued)
            || t.state == TaskState::WaitingForRetry;
        if t.attempts.is_empty() || waiting {
            out.push(task_entry(rec, t, None));
        }
    }
    out
}

/// A run as `runs/get` (with tasks) and `runs/list` show it.
pub fn run_json(rec: &RunRecord, with_tasks: bool, with_history: bool) -> Value {
    let v = &rec.view;
    let (state, status) = run_state(rec);
    let start = v.created_at;
    let end = v.finished_at.unwrap_or(0);
    let plan = rec.plan.as_deref();
    let defaults = plan.map(|p| &p.job.parameters);
    let parameters: Vec<Value> = v
        .parameters
        .iter()
        .map(|(k, value)| {
            let default = defaults.and_then(|d| d.get(k)).cloned().unwrap_or_default();
            json!({ "name": k, "default": default, "value": value })
        })
        .collect();
    let mut run = json!({
        "run_id": v.run_id,
        "number_in_job": v.run_id,
        "original_attempt_run_id": v.run_id,
        "run_name": v.job,
        "creator_user_name": plan.map_or("", |p| p.principal.as_str()),
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "attempt_number": 0,
        "state": state,
        "status": status,
        "start_time": start,
        "end_time": end,
        "run_duration": if end > 0 { end.saturating_sub(start) } else { 0 },
        "setup_duration": 0,
        "execution_duration": if end > 0 { end.saturating_sub(v.dequeued_at.unwrap_or(start)) } else { 0 },
        "cleanup_duration": 0,
        "job_parameters": parameters,
        "has_more": false,
    });
    if let Some(job) = v.job_id {
        run["job_id"] = json!(job);
    }
    if with_tasks {
        run["tasks"] = json!(task_entries(rec));
    }
    if with_history {
        run["repair_history"] = json!(repair_history(rec));
    }
    run
}

/// The ORIGINAL item and one REPAIR item per repair, each with its task runs.
fn repair_history(rec: &RunRecord) -> Vec<Value> {
    let v = &rec.view;
    let mut bounds: Vec<u64> = vec![0];
    bounds.extend(&rec.repairs);
    let mut out = Vec::new();
    for (i, &from) in bounds.iter().enumerate() {
        let to = bounds.get(i + 1).copied().unwrap_or(u64::MAX);
        let mut ids: Vec<(u64, u64)> = rec
            .attempts
            .iter()
            .filter(|(_, p)| **p >= from && **p < to)
            .filter_map(|((task, attempt), p)| Some((*p, rec.task_run_id(task, Some(*attempt))?)))
            .collect();
        ids.sort_unstable();
        let finished = rec.finishes.iter().find(|f| f.0 > from && f.0 < to);
        let (state, status) = match finished {
            Some(&(_, result, _)) => run_result(result, ""),
            None => going("RUNNING", "RUNNING", ""),
        };
        let start = if i == 0 { v.created_at } else { v.repairs.get(i - 1).map_or(0, |r| r.at) };
        let mut item = json!({
            "type": if i == 0 { "ORIGINAL" } else { "REPAIR" },
            "start_time": start,
            "end_time": finished.map_or(0, |f| f.2),
            "state": state,
            "status": status,
            "task_run_ids": ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
        });
        if i > 0 {
            item["id"] = json!(rec.repair_id(i));
        }
        out.push(item);
    }
    out
}

/// A job as `jobs/list` and `jobs/get` show it (`with_tasks`: its tasks and parameters).
pub fn job_json(job: &JobInfo, with_tasks: bool) -> Value {
    let spec = &job.spec;
    let mut settings = json!({
        "name": spec.name,
        "max_concurrent_runs": spec.max_concurrent_runs,
        "format": "MULTI_TASK",
        "timeout_seconds": spec.timeout.map_or(0, |t| t.as_secs()),
        "queue": { "enabled": spec.queue },
        "tags": { "bundle": job.bundle },
    });
    if with_tasks {
        let tasks: Vec<Value> = spec
            .tasks
            .iter()
            .map(|t| {
                let deps: Vec<Value> = t.upstream_keys().map(|k| json!({ "task_key": k })).collect();
                json!({ "task_key": t.key, "depends_on": deps, "run_if": t.run_if.as_str().to_uppercase() })
            })
            .collect();
        let parameters: Vec<Value> = spec.parameters.iter().map(|(k, d)| json!({ "name": k, "default": d })).collect();
        settings["tasks"] = json!(tasks);
        settings["parameters"] = json!(parameters);
    }
    json!({ "job_id": job.job_id, "creator_user_name": "sluice", "settings": settings, "has_more": false })
}
