//! The Databricks Jobs API 2.2 subset (also served under `/api/2.1/`): jobs/list,
//! jobs/get, jobs/run-now, jobs/runs/list, jobs/runs/get, jobs/runs/get-output,
//! jobs/runs/cancel and jobs/runs/repair, with Databricks' request fields, paging
//! (`next_page_token` only when there is more), and error shapes. Under `/api/2.2/`, a
//! run's or job's tasks are paged by `MAX_TASKS_PAGE` (2.1 answers them all at once).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Extension, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Authed;
use super::error::{ApiError, ApiJson, Params};
use super::jobs_json::{job_json, run_json};
use crate::scheduler::RepairRequest;
use crate::service::{CancelOutcome, RunFilter, RunRecord, Source, Submission, TaskRunRef};

/// `jobs/list`: at most this many jobs per page (Databricks' bound), 20 by default.
const MAX_JOBS_PAGE: usize = 100;
const DEFAULT_JOBS_PAGE: usize = 20;
/// `runs/list`: at most this many runs per page (Databricks' bound), 20 by default.
const MAX_RUNS_PAGE: usize = 25;
const DEFAULT_RUNS_PAGE: usize = 20;
/// Jobs API 2.2: `runs/get` and `jobs/get` answer at most this many tasks per page
/// (Databricks' bound), with `next_page_token` for the rest.
const MAX_TASKS_PAGE: usize = 100;

/// The Jobs API version a route is served under: 2.2 pages long task arrays, 2.1 does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2_1,
    V2_2,
}

/// The routes, mounted under `/api/2.1` and `/api/2.2`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs/list", get(list_jobs))
        .route("/jobs/get", get(get_job))
        .route("/jobs/run-now", post(run_now))
        .route("/jobs/runs/list", get(list_runs))
        .route("/jobs/runs/get", get(get_run))
        .route("/jobs/runs/get-output", get(get_output))
        .route("/jobs/runs/cancel", post(cancel))
        .route("/jobs/runs/repair", post(repair))
}

/// `limit`, `offset` and `page_token` (our tokens are offsets) of a list request.
fn page(p: &Params, default: usize, max: usize) -> Result<(usize, usize), ApiError> {
    let limit = match p.int("limit")? {
        None => default,
        Some(0) => max,
        Some(n) if n as usize <= max => n as usize,
        Some(n) => return Err(ApiError::invalid(format!("Invalid value for limit: {n} (from 0 to {max})."))),
    };
    let offset = match p.str("page_token").filter(|t| !t.is_empty()) {
        Some(t) => t.parse::<usize>().map_err(|_| ApiError::invalid(format!("Invalid page_token `{t}`.")))?,
        None => p.int("offset")?.unwrap_or(0) as usize,
    };
    Ok((offset, limit))
}

/// A page of `items` with `has_more` and, only when there is more, `next_page_token`.
fn paged(key: &str, items: Vec<Value>, offset: usize, limit: usize, total_more: bool) -> Value {
    let mut out = json!({ key: items, "has_more": total_more });
    if total_more {
        out["next_page_token"] = json!((offset + limit).to_string());
    }
    if offset > 0 {
        out["prev_page_token"] = json!(offset.saturating_sub(limit).to_string());
    }
    out
}

async fn list_jobs(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> Result<Json<Value>, ApiError> {
    let (offset, limit) = page(&p, DEFAULT_JOBS_PAGE, MAX_JOBS_PAGE)?;
    let expand = p.bool("expand_tasks")?;
    let name = p.str("name").map(str::to_lowercase);
    let jobs: Vec<_> = st
        .service
        .jobs(&caller)?
        .into_iter()
        .filter(|j| name.as_deref().is_none_or(|n| j.spec.name.to_lowercase() == n))
        .collect();
    let more = jobs.len() > offset + limit;
    let items = jobs.iter().skip(offset).take(limit).map(|j| job_json(j, expand)).collect();
    Ok(Json(paged("jobs", items, offset, limit, more)))
}

/// Where a 2.2 page of tasks starts (`page_token`; our tokens are offsets).
fn task_page(p: &Params, version: Version) -> Result<Option<usize>, ApiError> {
    if version == Version::V2_1 {
        return Ok(None);
    }
    match p.str("page_token").filter(|t| !t.is_empty()) {
        Some(t) => t.parse().map(Some).map_err(|_| ApiError::invalid(format!("Invalid page_token `{t}`."))),
        None => Ok(Some(0)),
    }
}

/// Keep one page of the array at `pointer` (from `offset`); say where the next page starts
/// only if there is one (never an empty token: the SDK would ask again forever). Later
/// pages carry none of the `once` arrays, which the SDK appends page after page.
fn page_tasks(out: &mut Value, pointer: &str, offset: usize, once: &[&str]) {
    let Some(Value::Array(tasks)) = out.pointer_mut(pointer) else {
        return;
    };
    let total = tasks.len();
    let page: Vec<Value> = tasks.drain(..).skip(offset).take(MAX_TASKS_PAGE).collect();
    *tasks = page;
    if offset + MAX_TASKS_PAGE < total {
        out["next_page_token"] = json!((offset + MAX_TASKS_PAGE).to_string());
    }
    if offset > 0 {
        for field in once {
            if let Some(v) = out.pointer_mut(field) {
                *v = json!([]);
            }
        }
    }
}

async fn get_job(
    State(st): State<AppState>,
    Extension(version): Extension<Version>,
    Authed(caller): Authed,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let id = p.required_int("job_id")?;
    let offset = task_page(&p, version)?;
    let (job, _) = st.service.job(&caller, id)?;
    let mut out = job_json(&job, true);
    if let Some(offset) = offset {
        page_tasks(&mut out, "/settings/tasks", offset, &["/settings/parameters"]);
    }
    Ok(Json(out))
}

/// `run-now`'s body: what sluice runs; the legacy task-type parameters are refused.
#[derive(Deserialize)]
struct RunNow {
    job_id: Option<u64>,
    #[serde(default)]
    job_parameters: BTreeMap<String, String>,
    idempotency_token: Option<String>,
    queue: Option<QueueSetting>,
    #[serde(default)]
    only: Vec<String>,
    notebook_params: Option<Value>,
    python_params: Option<Value>,
    jar_params: Option<Value>,
    spark_submit_params: Option<Value>,
    python_named_params: Option<Value>,
    sql_params: Option<Value>,
    dbt_commands: Option<Value>,
    pipeline_params: Option<Value>,
}

#[derive(Deserialize)]
struct QueueSetting {
    enabled: bool,
}

impl RunNow {
    fn legacy(&self) -> Option<&'static str> {
        [
            ("notebook_params", &self.notebook_params),
            ("python_params", &self.python_params),
            ("jar_params", &self.jar_params),
            ("spark_submit_params", &self.spark_submit_params),
            ("python_named_params", &self.python_named_params),
            ("sql_params", &self.sql_params),
            ("dbt_commands", &self.dbt_commands),
            ("pipeline_params", &self.pipeline_params),
        ]
        .into_iter()
        .find(|(_, v)| v.as_ref().is_some_and(|v| !v.is_null()))
        .map(|(name, _)| name)
    }
}

async fn run_now(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<RunNow>,
) -> Result<Json<Value>, ApiError> {
    let job_id = body.job_id.ok_or_else(|| ApiError::invalid("Missing required field: job_id"))?;
    if let Some(field) = body.legacy() {
        return Err(ApiError::invalid(format!("{field} is not supported: sluice jobs take job_parameters")));
    }
    if !body.only.is_empty() {
        return Err(ApiError::invalid("only is not supported: sluice runs every task of the job"));
    }
    st.service.require_run_job(&caller, job_id)?;
    let sub = Submission {
        overrides: body.job_parameters,
        idempotency_token: body.idempotency_token,
        queue: body.queue.map(|q| q.enabled),
        ..Submission::new(Source::Job(job_id))
    };
    let submitted = st.service.submit(&caller, sub).await?;
    Ok(Json(json!({ "run_id": submitted.run_id, "number_in_job": submitted.run_id })))
}

async fn list_runs(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> Result<Json<Value>, ApiError> {
    let (offset, limit) = page(&p, DEFAULT_RUNS_PAGE, MAX_RUNS_PAGE)?;
    let expand = p.bool("expand_tasks")?;
    let (from, to) = (p.int("start_time_from")?, p.int("start_time_to")?);
    let filter = RunFilter {
        job_id: p.int("job_id")?,
        active_only: p.bool("active_only")?,
        completed_only: p.bool("completed_only")?,
        offset: 0,
        limit: usize::MAX,
    };
    let (items, more) = super::blocking(&st, move |svc| {
        let runs: Vec<_> = svc
            .list_runs(&caller, &filter)?
            .into_iter()
            .filter(|r| from.is_none_or(|f| r.created_at >= f) && to.is_none_or(|t| r.created_at <= t))
            .collect();
        let more = runs.len() > offset + limit;
        let mut items = Vec::new();
        for summary in runs.iter().skip(offset).take(limit) {
            let (rec, _) = svc.record(&caller, summary.run_id)?;
            items.push(run_json(&rec, expand, false));
        }
        Ok((items, more))
    })
    .await?;
    Ok(Json(paged("runs", items, offset, limit, more)))
}

/// A task run as a run of its own: `run_id` its id, `job_run_id` the run holding it.
fn task_run_json(rec: &RunRecord, task: &TaskRunRef, id: u64) -> Value {
    let mut run = run_json(rec, false, false);
    let entry = super::jobs_json::task_entries(rec)
        .into_iter()
        .find(|e| e["run_id"] == json!(id))
        .unwrap_or_else(|| json!({ "task_key": task.task, "run_id": id }));
    run["job_run_id"] = json!(rec.run_id());
    run["run_id"] = json!(id);
    run["original_attempt_run_id"] = json!(id);
    run["run_name"] = json!(task.task);
    run["attempt_number"] = entry["attempt_number"].clone();
    for field in ["state", "status", "start_time", "end_time"] {
        if let Some(v) = entry.get(field) {
            run[field] = v.clone();
        }
    }
    run["tasks"] = json!([entry]);
    run
}

async fn get_run(
    State(st): State<AppState>,
    Extension(version): Extension<Version>,
    Authed(caller): Authed,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let id = p.required_int("run_id")?;
    let history = p.bool("include_history")?;
    let offset = task_page(&p, version)?;
    let (rec, task) = super::blocking(&st, move |svc| svc.record(&caller, id)).await?;
    Ok(Json(match task {
        Some(task) => task_run_json(&rec, &task, id),
        None => {
            let mut out = run_json(&rec, true, history);
            if let Some(offset) = offset {
                page_tasks(&mut out, "/tasks", offset, &["/job_parameters", "/repair_history"]);
            }
            out
        }
    }))
}

async fn get_output(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> Result<Json<Value>, ApiError> {
    let id = p.required_int("run_id")?;
    let (rec, task) = super::blocking(&st, move |svc| svc.record(&caller, id)).await?;
    let (task, id) = match task {
        Some(task) => (task, id),
        None => {
            let top: Vec<_> = rec.view.tasks.iter().filter(|t| t.parent.is_none()).collect();
            let [only] = top.as_slice() else {
                return Err(ApiError::invalid(
                    "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output \
                     of each individual task run instead.",
                ));
            };
            let attempt = only.attempts.last().map(|a| a.attempt);
            let id = rec.task_run_id(&only.key, attempt).unwrap_or(id);
            (TaskRunRef { task: only.key.clone(), attempt }, id)
        }
    };
    let metadata = task_run_json(&rec, &task, id);
    let attempt =
        task.attempt.and_then(|n| rec.view.task(&task.task).and_then(|t| t.attempts.iter().find(|a| a.attempt == n)));
    let mut out = json!({ "metadata": metadata });
    if let Some(a) = attempt {
        out["logs"] = json!(a.log);
        out["logs_truncated"] = json!(a.log_truncated);
        if let Some(result) = &a.output {
            out["notebook_output"] = json!({ "result": result, "truncated": false });
        }
        if let Some(error) = &a.error {
            out["error"] = json!(error);
            out["error_trace"] = json!(a.log);
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct RunIdBody {
    run_id: Option<u64>,
}

async fn cancel(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<RunIdBody>,
) -> Result<Json<Value>, ApiError> {
    let id = body.run_id.ok_or_else(|| ApiError::invalid("Missing required field: run_id"))?;
    if crate::service::decode_task_run_id(id).is_some() {
        return Err(ApiError::invalid(format!("Run {id} is a task run; cancel the job run it belongs to.")));
    }
    match st.service.cancel(&caller, id).await? {
        CancelOutcome::Requested | CancelOutcome::AlreadyFinished => Ok(Json(json!({}))),
    }
}

#[derive(Deserialize)]
struct RepairBody {
    run_id: Option<u64>,
    rerun_tasks: Option<Vec<String>>,
    #[serde(default)]
    rerun_all_failed_tasks: bool,
    #[serde(default)]
    rerun_dependent_tasks: bool,
    latest_repair_id: Option<u64>,
    #[serde(default)]
    job_parameters: BTreeMap<String, String>,
}

async fn repair(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<RepairBody>,
) -> Result<Json<Value>, ApiError> {
    let run = body.run_id.ok_or_else(|| ApiError::invalid("Missing required field: run_id"))?;
    let tasks = body.rerun_tasks.unwrap_or_default();
    if body.rerun_all_failed_tasks && !tasks.is_empty() {
        return Err(ApiError::invalid("Use only one of rerun_tasks and rerun_all_failed_tasks."));
    }
    if !body.rerun_all_failed_tasks && tasks.is_empty() {
        return Err(ApiError::invalid("Name the tasks to rerun (rerun_tasks) or set rerun_all_failed_tasks."));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = tasks.iter().find(|t| !seen.insert(t.as_str())) {
        return Err(ApiError::invalid(format!("rerun_tasks cannot contain duplicate task keys ({dup}).")));
    }
    let (rec, task) = st.service.record(&caller, run)?;
    if task.is_some() {
        return Err(ApiError::invalid(format!("Run {run} is a task run; repair the job run it belongs to.")));
    }
    let latest = rec.repair_id(rec.repairs.len());
    if let (Some(given), Some(latest)) = (body.latest_repair_id, latest)
        && given != latest
    {
        return Err(crate::service::ServiceError::InvalidState(format!(
            "latest_repair_id {given} is not the latest repair of run {run} ({latest})"
        ))
        .into());
    }
    // as Databricks repairs: with the job's settings as they are now
    let req = RepairRequest {
        tasks,
        with_dependents: body.rerun_dependent_tasks,
        overrides: body.job_parameters,
        ..RepairRequest::default()
    };
    let repaired = st.service.repair(&caller, run, req, false).await?;
    let (rec, _) = st.service.record(&caller, run)?;
    let id = rec.repair_id(repaired.repair as usize);
    Ok(Json(json!({ "repair_id": id })))
}
