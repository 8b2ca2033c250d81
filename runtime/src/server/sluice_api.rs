//! `/api/sluice/v1/…`: what sluice has beyond the Jobs API, and what the CLI uses over
//! the owner's socket — submit (a bundle or component by path, local callers only), runs
//! as sluice records them, the events stream (server-sent events of flushed events),
//! cancel, repair, resume and takeover, the audit trail, secrets (names, never values
//! out), cache explain and gc, verify, and API tokens and groups (local callers only).

use std::convert::Infallible;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Authed;
use super::error::{ApiError, ApiJson, Params};
use crate::model::RunId;
use crate::scheduler::RepairRequest;
use crate::secrets::{AuditFilter, Permission, ScopeId, SecretString};
use crate::service::{RunFilter, Submission};

/// How often an idle events stream sends a comment, so proxies and clients see it alive.
const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// `GET runs`: at most this many runs, 20 by default.
const MAX_RUNS_LISTED: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", post(submit).get(list_runs))
        .route("/runs/resume", post(resume))
        .route("/runs/{run}", get(get_run))
        .route("/runs/{run}/events", get(events))
        .route("/runs/{run}/cancel", post(cancel))
        .route("/runs/{run}/repair", post(repair))
        .route("/runs/{run}/verify", post(verify))
        .route("/runs/{run}/tasks/{task}/cache", get(explain))
        .route("/takeover", post(takeover))
        .route("/triggers", post(triggers))
        .route("/hooks/{job}", post(hook))
        .route("/audit", post(audit))
        .route("/cache/gc", post(gc))
        .route("/store/backup", post(backup))
        .route("/secrets/scopes", post(scopes_list))
        .route("/secrets/scopes/create", post(scope_create))
        .route("/secrets/scopes/delete", post(scope_delete))
        .route("/secrets/put", post(secret_put))
        .route("/secrets/list", post(secret_list))
        .route("/secrets/delete", post(secret_delete))
        .route("/secrets/acls/put", post(acl_put))
        .route("/secrets/acls/list", post(acl_list))
        .route("/secrets/acls/delete", post(acl_delete))
        .route("/tokens", get(tokens_list))
        .route("/tokens/create", post(token_create))
        .route("/tokens/revoke", post(token_revoke))
        .route("/groups", get(groups_list))
        .route("/groups/update", post(group_update))
}

type ApiResult = Result<Json<Value>, ApiError>;

fn to_json(value: impl serde::Serialize) -> ApiResult {
    serde_json::to_value(value).map(Json).map_err(|e| ApiError::internal(e.to_string()))
}

async fn submit(State(st): State<AppState>, Authed(caller): Authed, ApiJson(sub): ApiJson<Submission>) -> ApiResult {
    to_json(st.service.submit(&caller, sub).await?)
}

async fn list_runs(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> ApiResult {
    let limit = p.int("limit")?.map_or(20, |n| (n as usize).min(MAX_RUNS_LISTED));
    let filter = RunFilter {
        job_id: p.int("job_id")?,
        active_only: p.bool("active_only")?,
        completed_only: p.bool("completed_only")?,
        offset: p.int("offset")?.unwrap_or(0) as usize,
        limit,
    };
    to_json(st.service.list_runs(&caller, &filter)?)
}

async fn get_run(State(st): State<AppState>, Authed(caller): Authed, Path(run): Path<RunId>) -> ApiResult {
    to_json(super::blocking(&st, move |svc| svc.visible(&caller, run)).await?)
}

/// Server-sent events: one `data:` line per flushed event (`{"run_id", "seq", "event",
/// "history"?}`, `id:` its position), ending after the run's `run_finished`.
async fn events(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path(run): Path<RunId>,
    p: Params,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let from = p.int("from")?.unwrap_or(0);
    let sub = st.service.subscribe(&caller, run, from)?;
    let stream = futures_util::stream::unfold(sub, |mut sub| async move {
        let item = sub.next().await?;
        let event = SseEvent::default().id(item.seq.to_string()).json_data(&item).unwrap_or_default();
        Some((Ok(event), sub))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)))
}

async fn cancel(State(st): State<AppState>, Authed(caller): Authed, Path(run): Path<RunId>) -> ApiResult {
    to_json(json!({ "outcome": st.service.cancel(&caller, run).await? }))
}

#[derive(Deserialize)]
struct RepairBody {
    #[serde(default)]
    tasks: Vec<String>,
    #[serde(default)]
    with_dependents: bool,
    #[serde(default)]
    overrides: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    no_cache: bool,
    /// Repair with the plan in force (the bundle is not read again).
    #[serde(default)]
    pinned: bool,
}

async fn repair(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path(run): Path<RunId>,
    ApiJson(b): ApiJson<RepairBody>,
) -> ApiResult {
    let req = RepairRequest {
        tasks: b.tasks,
        with_dependents: b.with_dependents,
        overrides: b.overrides,
        pinned: b.pinned,
        bundle: None,
    };
    to_json(st.service.repair(&caller, run, req, b.no_cache).await?)
}

#[derive(Deserialize)]
struct ResumeBody {
    run_id: Option<RunId>,
}

async fn resume(State(st): State<AppState>, Authed(caller): Authed, ApiJson(b): ApiJson<ResumeBody>) -> ApiResult {
    let resumed = st.service.resume(&caller, b.run_id).await?;
    to_json(resumed.into_iter().map(|(run_id, from)| json!({ "run_id": run_id, "from": from })).collect::<Vec<_>>())
}

async fn triggers(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(action): ApiJson<crate::service::TriggerAction>,
) -> ApiResult {
    to_json(st.service.triggers_do(&caller, action).await?)
}

/// A webhook trigger: authenticated by its HMAC signature, not a token (see
/// `triggers::webhook`); the body is read as bytes (it is what was signed).
async fn hook(
    State(st): State<AppState>,
    Path(job): Path<u64>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    use crate::triggers::webhook::{IDEMPOTENCY_HEADER, MAX_WEBHOOK_BODY, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(ApiError::for_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let req = crate::service::HookRequest {
        timestamp: header(TIMESTAMP_HEADER),
        signature: header(SIGNATURE_HEADER),
        idempotency_key: header(IDEMPOTENCY_HEADER),
        body: &body,
    };
    let launched = st.service.webhook(job, req).await?;
    let status = if launched.existing { axum::http::StatusCode::OK } else { axum::http::StatusCode::CREATED };
    Ok((status, Json(json!({ "run_id": launched.run, "existing": launched.existing }))))
}

async fn takeover(State(st): State<AppState>, Authed(caller): Authed) -> ApiResult {
    st.service.local_only(&caller, "take over")?;
    let resumed = st.service.take_over().await?;
    to_json(resumed.into_iter().map(|(run_id, ws)| json!({ "run_id": run_id, "workspace": ws })).collect::<Vec<_>>())
}

#[derive(Deserialize)]
struct VerifyBody {
    task: Option<String>,
}

async fn verify(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path(run): Path<RunId>,
    ApiJson(b): ApiJson<VerifyBody>,
) -> ApiResult {
    to_json(st.service.verify(&caller, run, b.task.as_deref()).await?)
}

async fn explain(
    State(st): State<AppState>,
    Authed(caller): Authed,
    Path((run, task)): Path<(RunId, String)>,
) -> ApiResult {
    to_json(st.service.explain(&caller, run, &task)?)
}

#[derive(serde::Deserialize)]
struct BackupBody {
    dest: std::path::PathBuf,
}

/// A consistent copy of the store while runs go on (local callers only).
async fn backup(State(st): State<AppState>, Authed(caller): Authed, ApiJson(b): ApiJson<BackupBody>) -> ApiResult {
    to_json(super::blocking(&st, move |svc| svc.backup(&caller, &b.dest)).await?)
}

async fn audit(State(st): State<AppState>, Authed(caller): Authed, ApiJson(f): ApiJson<AuditFilter>) -> ApiResult {
    to_json(st.service.audit(&caller, &f)?)
}

#[derive(Deserialize)]
struct GcBody {
    keep: Option<usize>,
    /// Forget entries made before this time (ms since the epoch).
    before: Option<u64>,
}

async fn gc(State(st): State<AppState>, Authed(caller): Authed, ApiJson(b): ApiJson<GcBody>) -> ApiResult {
    if b.keep.is_none() && b.before.is_none() {
        return Err(ApiError::invalid("say what to forget: keep and/or before"));
    }
    to_json(st.service.gc(&caller, b.keep, b.before)?)
}

/// A scope named in a request: its workspace (default: the caller's), target and name.
#[derive(Deserialize)]
struct ScopeBody {
    workspace: Option<String>,
    #[serde(default = "dev")]
    target: String,
    scope: String,
    key: Option<String>,
    principal: Option<String>,
    permission: Option<Permission>,
    value: Option<String>,
}

fn dev() -> String {
    "dev".into()
}

impl ScopeBody {
    fn id(&self, caller: &crate::service::Caller) -> Result<ScopeId, ApiError> {
        let workspace = self.workspace.as_deref().unwrap_or(&caller.workspace);
        ScopeId::new(workspace, &self.target, &self.scope).map_err(|e| ApiError::invalid(e.to_string()))
    }

    fn key(&self) -> Result<&str, ApiError> {
        self.key.as_deref().ok_or_else(|| ApiError::invalid("Missing required field: key"))
    }

    fn principal(&self) -> Result<&str, ApiError> {
        self.principal.as_deref().ok_or_else(|| ApiError::invalid("Missing required field: principal"))
    }
}

#[derive(Deserialize)]
struct ScopesQuery {
    workspace: Option<String>,
    target: Option<String>,
}

async fn scopes_list(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(q): ApiJson<ScopesQuery>,
) -> ApiResult {
    let listed = st.service.scopes(&caller, q.workspace.as_deref(), q.target.as_deref())?;
    to_json(listed.into_iter().map(|(s, p)| json!({ "scope": s, "permission": p })).collect::<Vec<_>>())
}

async fn scope_create(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    to_json(st.service.create_scope(&c, &b.id(&c)?)?)
}

async fn scope_delete(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    st.service.delete_scope(&c, &b.id(&c)?)?;
    to_json(json!({}))
}

async fn secret_put(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    let value = b.value.as_deref().ok_or_else(|| ApiError::invalid("Missing required field: value"))?;
    let version = st.service.put_secret(&c, &b.id(&c)?, b.key()?, &SecretString::from(value.to_owned()))?;
    to_json(json!({ "version": version }))
}

async fn secret_list(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    to_json(st.service.secrets(&c, &b.id(&c)?)?)
}

async fn secret_delete(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    st.service.delete_secret(&c, &b.id(&c)?, b.key()?)?;
    to_json(json!({}))
}

async fn acl_put(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    let permission = b.permission.ok_or_else(|| ApiError::invalid("Missing required field: permission"))?;
    st.service.acl_put(&c, &b.id(&c)?, b.principal()?, permission)?;
    to_json(json!({}))
}

async fn acl_list(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    to_json(st.service.acl_list(&c, &b.id(&c)?)?)
}

async fn acl_delete(State(st): State<AppState>, Authed(c): Authed, ApiJson(b): ApiJson<ScopeBody>) -> ApiResult {
    st.service.acl_delete(&c, &b.id(&c)?, b.principal()?)?;
    to_json(json!({}))
}

async fn groups_list(State(st): State<AppState>, Authed(caller): Authed) -> ApiResult {
    to_json(st.service.groups(&caller)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

async fn group_update(State(st): State<AppState>, Authed(caller): Authed, ApiJson(b): ApiJson<GroupBody>) -> ApiResult {
    to_json(st.service.update_group(&caller, &b.name, &b.add, &b.remove)?)
}

async fn tokens_list(State(st): State<AppState>, Authed(caller): Authed) -> ApiResult {
    to_json(st.service.tokens(&caller)?)
}

#[derive(Deserialize)]
struct TokenBody {
    principal: String,
    #[serde(default = "default_workspace")]
    workspace: String,
    /// Lifetime in seconds; none: never expires.
    expires_in_secs: Option<u64>,
}

fn default_workspace() -> String {
    crate::secrets::DEFAULT_WORKSPACE.into()
}

async fn token_create(State(st): State<AppState>, Authed(caller): Authed, ApiJson(b): ApiJson<TokenBody>) -> ApiResult {
    let expires = b.expires_in_secs.map(std::time::Duration::from_secs);
    to_json(st.service.create_token(&caller, &b.principal, &b.workspace, expires)?)
}

#[derive(Deserialize)]
struct RevokeBody {
    id: String,
}

async fn token_revoke(
    State(st): State<AppState>,
    Authed(caller): Authed,
    ApiJson(b): ApiJson<RevokeBody>,
) -> ApiResult {
    st.service.revoke_token(&caller, &b.id)?;
    to_json(json!({}))
}
