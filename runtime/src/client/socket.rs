//! The socket client: another process owns the store; every call is one HTTP/1 request
//! over a new connection to its Unix socket (sluice's own API), carrying the command's
//! principal and workspace. Events come as server-sent events.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::UnixStream;

use super::{
    BoxFuture, Client, ClientError, ClientResult, EventStream, SecretsAnswer, SecretsOp, TokensAnswer, TokensOp,
};
use crate::model::{Event, Millis, RunId, RunSummary, RunView};
use crate::scheduler::{Explanation, GcSummary, RepairRequest, Verification};
use crate::secrets::{AuditFilter, AuditRecord, ScopeId};
use crate::server::auth::{PRINCIPAL_HEADER, WORKSPACE_HEADER};
use crate::service::{CancelOutcome, Repaired, RunFilter, ServiceError, StreamItem, Submission, Submitted};

const API: &str = "/api/sluice/v1";

/// Calls on the owner over its socket at `path`, as `principal` in `workspace`.
#[derive(Debug, Clone)]
pub struct SocketClient {
    pub path: PathBuf,
    pub principal: String,
    pub workspace: String,
}

fn disconnected(e: impl std::fmt::Display) -> ClientError {
    ClientError::Disconnected(e.to_string())
}

/// The service error an error response carries.
pub(crate) fn error_of(status: StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|v| v["error_code"].as_str()).unwrap_or("");
    let message =
        parsed.as_ref().and_then(|v| v["message"].as_str()).map_or_else(|| format!("{status}"), str::to_string);
    ClientError::Service(match code {
        "INVALID_PARAMETER_VALUE" => ServiceError::Invalid(message),
        "RESOURCE_DOES_NOT_EXIST" => ServiceError::NotFound(message),
        "INVALID_STATE" => ServiceError::InvalidState(message),
        "UNAUTHENTICATED" => ServiceError::Unauthenticated(message),
        "PERMISSION_DENIED" => ServiceError::PermissionDenied(message),
        "TEMPORARILY_UNAVAILABLE" => ServiceError::Stopping(message),
        _ => ServiceError::Internal(message),
    })
}

impl SocketClient {
    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> ClientResult<Response<Incoming>> {
        let stream = UnixStream::connect(&self.path).await.map_err(disconnected)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(disconnected)?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "sluice")
            .header(PRINCIPAL_HEADER, &self.principal)
            .header(WORKSPACE_HEADER, &self.workspace);
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        sender.send_request(req).await.map_err(disconnected)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> ClientResult<T> {
        let body = body.map(|b| serde_json::to_vec(b)).transpose().map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(disconnected)?.to_bytes();
        if !status.is_success() {
            return Err(error_of(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &(impl Serialize + Sync)) -> ClientResult<T> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Server-sent events from a response body, one [`StreamItem`] per `data:` block.
struct SseStream {
    body: Incoming,
    buf: BytesMut,
    root: RunId,
    finished: bool,
}

impl SseStream {
    /// The next complete event block in the buffer, parsed.
    fn take_block(&mut self) -> ClientResult<Option<Option<StreamItem>>> {
        let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") else { return Ok(None) };
        let block = self.buf.split_to(end + 2);
        let text = String::from_utf8_lossy(&block);
        let data: String = text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
        if data.is_empty() {
            return Ok(Some(None)); // a keep-alive comment
        }
        let item: StreamItem = serde_json::from_str(&data).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if item.run_id == self.root && !item.history && matches!(item.event, Event::RunFinished { .. }) {
            self.finished = true;
        }
        Ok(Some(Some(item)))
    }
}

impl EventStream for SseStream {
    fn next(&mut self) -> BoxFuture<'_, ClientResult<Option<StreamItem>>> {
        Box::pin(async move {
            loop {
                match self.take_block()? {
                    Some(Some(item)) => return Ok(Some(item)),
                    Some(None) => continue,
                    None => {}
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            self.buf.extend_from_slice(data);
                        }
                    }
                    Some(Err(e)) => return Err(disconnected(e)),
                    None if self.finished => return Ok(None),
                    None => return Err(disconnected("the events stream ended before the run did")),
                }
            }
        })
    }
}

impl Client for SocketClient {
    fn submit(&self, sub: Submission) -> BoxFuture<'_, ClientResult<Submitted>> {
        Box::pin(async move { self.post(&format!("{API}/runs"), &sub).await })
    }

    fn view(&self, run: RunId) -> BoxFuture<'_, ClientResult<RunView>> {
        Box::pin(async move { self.get(&format!("{API}/runs/{run}")).await })
    }

    fn list(&self, f: RunFilter) -> BoxFuture<'_, ClientResult<Vec<RunSummary>>> {
        Box::pin(async move {
            let mut q = format!("limit={}&offset={}", f.limit, f.offset);
            if let Some(j) = f.job_id {
                q.push_str(&format!("&job_id={j}"));
            }
            if f.active_only {
                q.push_str("&active_only=true");
            }
            if f.completed_only {
                q.push_str("&completed_only=true");
            }
            self.get(&format!("{API}/runs?{q}")).await
        })
    }

    fn events(&self, run: RunId, from: u64) -> BoxFuture<'_, ClientResult<Box<dyn EventStream>>> {
        Box::pin(async move {
            let response = self.send(Method::GET, &format!("{API}/runs/{run}/events?from={from}"), None).await?;
            let status = response.status();
            if !status.is_success() {
                let bytes = response.into_body().collect().await.map_err(disconnected)?.to_bytes();
                return Err(error_of(status, &bytes));
            }
            let stream = SseStream { body: response.into_body(), buf: BytesMut::new(), root: run, finished: false };
            Ok(Box::new(stream) as Box<dyn EventStream>)
        })
    }

    fn cancel(&self, run: RunId) -> BoxFuture<'_, ClientResult<CancelOutcome>> {
        Box::pin(async move {
            let v: Value = self.post(&format!("{API}/runs/{run}/cancel"), &json!({})).await?;
            serde_json::from_value(v["outcome"].clone()).map_err(|e| ClientError::Protocol(e.to_string()))
        })
    }

    fn repair(&self, run: RunId, req: RepairRequest, no_cache: bool) -> BoxFuture<'_, ClientResult<Repaired>> {
        Box::pin(async move {
            let body = json!({
                "tasks": req.tasks, "with_dependents": req.with_dependents,
                "overrides": req.overrides, "no_cache": no_cache, "pinned": req.pinned,
            });
            self.post(&format!("{API}/runs/{run}/repair"), &body).await
        })
    }

    fn resume(&self, run: Option<RunId>) -> BoxFuture<'_, ClientResult<Vec<(RunId, u64)>>> {
        Box::pin(async move {
            let v: Vec<Value> = self.post(&format!("{API}/runs/resume"), &json!({ "run_id": run })).await?;
            Ok(v.iter().filter_map(|r| Some((r["run_id"].as_u64()?, r["from"].as_u64()?))).collect())
        })
    }

    fn take_over(&self) -> BoxFuture<'_, ClientResult<Vec<(RunId, String)>>> {
        Box::pin(async move {
            let v: Vec<Value> = self.post(&format!("{API}/takeover"), &json!({})).await?;
            Ok(v.iter().filter_map(|r| Some((r["run_id"].as_u64()?, r["workspace"].as_str()?.to_string()))).collect())
        })
    }

    fn backup(&self, dest: std::path::PathBuf) -> BoxFuture<'_, ClientResult<crate::store::backup::DirBackupReport>> {
        Box::pin(async move { self.post(&format!("{API}/store/backup"), &json!({ "dest": dest })).await })
    }

    fn deployments(&self, op: crate::service::DeployOp) -> BoxFuture<'_, ClientResult<crate::service::DeployAnswer>> {
        Box::pin(async move { self.post(&format!("{API}/deployments/op"), &op).await })
    }

    fn triggers(
        &self,
        action: crate::service::TriggerAction,
    ) -> BoxFuture<'_, ClientResult<crate::service::TriggerAnswer>> {
        Box::pin(async move { self.post(&format!("{API}/triggers"), &action).await })
    }

    fn audit(&self, filter: AuditFilter) -> BoxFuture<'_, ClientResult<Vec<AuditRecord>>> {
        Box::pin(async move { self.post(&format!("{API}/audit"), &filter).await })
    }

    fn explain(&self, run: RunId, task: String) -> BoxFuture<'_, ClientResult<Explanation>> {
        Box::pin(async move {
            let task: String = url_escape(&task);
            self.get(&format!("{API}/runs/{run}/tasks/{task}/cache")).await
        })
    }

    fn gc(&self, keep: Option<usize>, before: Option<Millis>) -> BoxFuture<'_, ClientResult<GcSummary>> {
        Box::pin(async move { self.post(&format!("{API}/cache/gc"), &json!({ "keep": keep, "before": before })).await })
    }

    fn verify(&self, run: RunId, task: Option<String>) -> BoxFuture<'_, ClientResult<Vec<Verification>>> {
        Box::pin(async move { self.post(&format!("{API}/runs/{run}/verify"), &json!({ "task": task })).await })
    }

    fn secrets(&self, op: SecretsOp) -> BoxFuture<'_, ClientResult<SecretsAnswer>> {
        Box::pin(async move {
            let place = |id: &ScopeId| json!({ "workspace": id.workspace, "target": id.target, "scope": id.name });
            let with = |id: &ScopeId, extra: Value| {
                let mut v = place(id);
                if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                    v.extend(extra);
                }
                v
            };
            let path = |p: &str| format!("{API}/secrets/{p}");
            let protocol = |e: serde_json::Error| ClientError::Protocol(e.to_string());
            Ok(match op {
                SecretsOp::CreateScope(id) => {
                    SecretsAnswer::Scope(self.post(&path("scopes/create"), &place(&id)).await?)
                }
                SecretsOp::Scopes { workspace, target } => {
                    let rows: Vec<Value> =
                        self.post(&path("scopes"), &json!({ "workspace": workspace, "target": target })).await?;
                    let mut out = Vec::new();
                    for r in rows {
                        let scope = serde_json::from_value(r["scope"].clone()).map_err(protocol)?;
                        let permission = serde_json::from_value(r["permission"].clone()).map_err(protocol)?;
                        out.push((scope, permission));
                    }
                    SecretsAnswer::Scopes(out)
                }
                SecretsOp::DeleteScope(id) => {
                    self.post::<Value>(&path("scopes/delete"), &place(&id)).await?;
                    SecretsAnswer::Done
                }
                SecretsOp::Put { scope, key, value } => {
                    let v: Value =
                        self.post(&path("put"), &with(&scope, json!({ "key": key, "value": value }))).await?;
                    SecretsAnswer::Version(v["version"].as_u64().unwrap_or_default() as u32)
                }
                SecretsOp::List(id) => SecretsAnswer::Secrets(self.post(&path("list"), &place(&id)).await?),
                SecretsOp::Delete { scope, key } => {
                    self.post::<Value>(&path("delete"), &with(&scope, json!({ "key": key }))).await?;
                    SecretsAnswer::Done
                }
                SecretsOp::AclPut { scope, principal, permission } => {
                    let body = with(&scope, json!({ "principal": principal, "permission": permission }));
                    self.post::<Value>(&path("acls/put"), &body).await?;
                    SecretsAnswer::Done
                }
                SecretsOp::AclList(id) => SecretsAnswer::Acl(self.post(&path("acls/list"), &place(&id)).await?),
                SecretsOp::AclDelete { scope, principal } => {
                    self.post::<Value>(&path("acls/delete"), &with(&scope, json!({ "principal": principal }))).await?;
                    SecretsAnswer::Done
                }
            })
        })
    }

    fn tokens(&self, op: TokensOp) -> BoxFuture<'_, ClientResult<TokensAnswer>> {
        Box::pin(async move {
            Ok(match op {
                TokensOp::Create { principal, workspace, expires_in_secs } => {
                    let body =
                        json!({ "principal": principal, "workspace": workspace, "expires_in_secs": expires_in_secs });
                    TokensAnswer::Created(Box::new(self.post(&format!("{API}/tokens/create"), &body).await?))
                }
                TokensOp::List => TokensAnswer::Listed(self.get(&format!("{API}/tokens")).await?),
                TokensOp::Revoke(id) => {
                    self.post::<Value>(&format!("{API}/tokens/revoke"), &json!({ "id": id })).await?;
                    TokensAnswer::Revoked
                }
                TokensOp::Group { name, add, remove } => {
                    let body = json!({ "name": name, "add": add, "remove": remove });
                    TokensAnswer::Group(self.post(&format!("{API}/groups/update"), &body).await?)
                }
                TokensOp::Groups => TokensAnswer::Groups(self.get(&format!("{API}/groups")).await?),
            })
        })
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
