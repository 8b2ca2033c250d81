//! The JSON the dashboard needs that the rest of the API does not give in one cheap call:
//! who the caller is, a run in compact form (no logs or outputs: a 10,000-task run is a
//! few hundred kilobytes), one task with every attempt in full, and a job's runs matrix
//! (one string of state letters per run). Mounted under `/api/sluice/v1/dashboard`,
//! authenticated as every API route; it reads through the service and never writes.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Authed;
use super::super::error::{ApiError, Params};
use crate::model::{RunId, RunView, TaskResult, TaskState, TaskView};
use crate::spec::PermissionLevel;

/// The matrix shows at most this many runs (the "last 100"): columns beyond it
/// would not fit a screen and each costs a fold of its run.
pub const MAX_MATRIX_RUNS: usize = 100;
/// The matrix's default number of runs.
const DEFAULT_MATRIX_RUNS: usize = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sluice/v1/dashboard/me", get(me))
        .route("/api/sluice/v1/dashboard/jobs", get(jobs))
        .route("/api/sluice/v1/dashboard/runs/{run}", get(run))
        .route("/api/sluice/v1/dashboard/runs/{run}/tasks/{task}", get(task))
        .route("/api/sluice/v1/dashboard/jobs/{job}/matrix", get(matrix))
        .route("/api/sluice/v1/dashboard/search", get(super::search::search))
}

type ApiResult = Result<Json<Value>, ApiError>;

async fn me(Authed(caller): Authed) -> ApiResult {
    Ok(Json(json!({ "principal": caller.principal, "workspace": caller.workspace })))
}

/// The caller's permission level on each job it sees, so the jobs page offers "Run now"
/// only where the API would accept it.
async fn jobs(State(st): State<AppState>, Authed(caller): Authed) -> ApiResult {
    let mut out = Vec::new();
    for job in st.service.jobs(&caller)? {
        let level = st.service.job_level(&caller, job.job_id)?;
        let can_manage_run = level.allows(PermissionLevel::CanManageRun);
        out.push(json!({ "job_id": job.job_id, "level": level.as_str(), "can_manage_run": can_manage_run }));
    }
    Ok(Json(json!({ "jobs": out })))
}

/// One letter per task state, as the matrix and the DAG colour it: `s` success, `c`
/// reused from the cache, `f` failed or timed out, `k` canceled, `x` excluded, `u` skipped
/// (upstream failed or canceled), `i` interrupted, `r` running, `w` waiting to retry, `q`
/// queued, pending or blocked; `-` (matrix only) not in that run.
pub fn state_letter(task: &TaskView) -> char {
    match (task.state, task.result) {
        (_, Some(TaskResult::Success)) if task.reused_from.is_some() => 'c',
        (_, Some(TaskResult::Success)) => 's',
        (_, Some(TaskResult::Failed | TaskResult::TimedOut)) => 'f',
        (_, Some(TaskResult::Canceled)) => 'k',
        (_, Some(TaskResult::Excluded)) => 'x',
        (_, Some(TaskResult::UpstreamFailed | TaskResult::UpstreamCanceled)) => 'u',
        (_, Some(TaskResult::Interrupted)) => 'i',
        (TaskState::Running, None) => 'r',
        (TaskState::WaitingForRetry, None) => 'w',
        _ => 'q',
    }
}

fn result_letter(result: Option<TaskResult>) -> char {
    match result {
        None => 'r',
        Some(TaskResult::Success) => 's',
        Some(TaskResult::Failed | TaskResult::TimedOut) => 'f',
        Some(TaskResult::Canceled) => 'k',
        Some(_) => 'i',
    }
}

/// The compact run: tasks in plan order, dependencies as indices (with a condition
/// edge's branch), attempts as `[start, end, letter]`.
fn compact(view: &RunView, branches: &HashMap<(&str, &str), bool>, level: PermissionLevel) -> Value {
    let index: HashMap<&str, usize> = view.tasks.iter().enumerate().map(|(i, t)| (t.key.as_str(), i)).collect();
    let tasks: Vec<Value> = view
        .tasks
        .iter()
        .map(|t| {
            let deps: Vec<Value> = t
                .depends_on
                .iter()
                .filter_map(|d| {
                    let i = *index.get(d.as_str())?;
                    Some(match branches.get(&(t.key.as_str(), d.as_str())) {
                        Some(b) => json!([i, b]),
                        None => json!(i),
                    })
                })
                .collect();
            let attempts: Vec<Value> = t
                .attempts
                .iter()
                .map(|a| json!([a.started_at, a.finished_at, result_letter(a.result).to_string()]))
                .collect();
            let mut out = json!({ "k": t.key, "s": state_letter(t).to_string(), "d": deps, "a": attempts });
            if let Some(p) = &t.parent {
                out["p"] = json!(p);
            }
            if let Some(o) = t.outcome {
                out["o"] = json!(o);
            }
            if let Some(n) = t.retry_not_before {
                out["rn"] = json!(n);
            }
            out
        })
        .collect();
    json!({
        "run_id": view.run_id,
        "job": view.job,
        "job_id": view.job_id,
        "target": view.target,
        "parameters": view.parameters,
        "created_at": view.created_at,
        "finished_at": view.finished_at,
        "result": view.result.map(|r| r.as_str()),
        "status": view.status.map(|s| s.as_str()),
        "cancel_requested": view.cancel_requested,
        "repairs": view.repairs.len(),
        "level": level.as_str(),
        "can_manage_run": level.allows(PermissionLevel::CanManageRun),
        "tasks": tasks,
    })
}

async fn run(State(st): State<AppState>, Authed(caller): Authed, Path(run): Path<RunId>) -> ApiResult {
    super::super::blocking(&st, move |svc| {
        let view = svc.visible(&caller, run)?;
        let (record, _) = svc.record(&caller, run)?;
        let level = svc.run_level(&caller, run)?;
        let mut branches = HashMap::new();
        if let Some(plan) = &record.plan {
            for task in &plan.job.tasks {
                for dep in &task.depends_on {
                    if let Some(b) = dep.outcome {
                        branches.insert((task.key.as_str(), dep.task.as_str()), b);
                    }
                }
            }
        }
        Ok(Json(compact(&view, &branches, level)))
    })
    .await
}

/// One task with every attempt in full (`spec`: what the plan runs, params among it; output, error,
/// log as recorded — already redacted — and cache key and reuse).
async fn task(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path((run, key)): Path<(RunId, String)>,
) -> ApiResult {
    super::super::blocking(&st, move |svc| {
        let (record, _) = svc.record(&caller, run)?;
        let Some(task) = record.view.task(&key) else {
            return Err(crate::service::ServiceError::NotFound(format!("run {run} has no task `{key}`")));
        };
        let params = record
            .plan
            .as_ref()
            .and_then(|p| p.job.tasks.iter().find(|t| t.key == key || task.parent.as_deref() == Some(&t.key)))
            .map(|t| serde_json::to_value(t).unwrap_or_default());
        let mut out = serde_json::to_value(task).map_err(|e| crate::service::ServiceError::Internal(e.to_string()))?;
        out["spec"] = params.unwrap_or(Value::Null);
        Ok(Json(out))
    })
    .await
}

/// A job's last runs (newest first) × its tasks: `tasks` (keys, the newest run's order
/// first), `runs` (id, result, start) and `cells` (per run a string, one letter per task
/// of `tasks`, see [`state_letter`]).
async fn matrix(State(st): State<AppState>, Authed(caller): Authed, Path(job): Path<u64>, p: Params) -> ApiResult {
    let limit = p.int("limit")?.map_or(DEFAULT_MATRIX_RUNS, |n| (n as usize).clamp(1, MAX_MATRIX_RUNS));
    super::super::blocking(&st, move |svc| {
        let filter = crate::service::RunFilter { job_id: Some(job), limit, ..Default::default() };
        let summaries = svc.list_runs(&caller, &filter)?;
        let mut keys: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut columns: Vec<Vec<(usize, char)>> = Vec::new();
        let mut runs = Vec::new();
        for s in &summaries {
            let Ok((record, _)) = svc.record(&caller, s.run_id) else { continue };
            let mut column = Vec::with_capacity(record.view.tasks.len());
            for t in &record.view.tasks {
                let i = *index.entry(t.key.clone()).or_insert_with(|| {
                    keys.push(t.key.clone());
                    keys.len() - 1
                });
                column.push((i, state_letter(t)));
            }
            columns.push(column);
            let result = record.view.result.map(|r| r.as_str());
            runs.push(json!({ "run_id": s.run_id, "result": result, "created_at": s.created_at }));
        }
        let cells: Vec<String> = columns
            .into_iter()
            .map(|column| {
                let mut row = vec!['-'; keys.len()];
                for (i, c) in column {
                    row[i] = c;
                }
                row.into_iter().collect()
            })
            .collect();
        let name = summaries.first().map(|s| s.job.clone());
        Ok(Json(json!({ "job_id": job, "job": name, "tasks": keys, "runs": runs, "cells": cells })))
    })
    .await
}
