//! Secrets of attempts that run on workers: each `secrets.reveal` (and each secret a
//! command task's env references) is a NATS request from the worker to the server that
//! dispatched the attempt, answered by the server's own resolver.
//!
//! Owns both ends of that request. The server answers only for attempts it is waiting
//! for, decides the grant itself from the attempt it dispatched (never from what the
//! worker claims), and audits every reveal and denial with the worker's identity
//! (`via = worker:NAME`). A worker never holds a scope, the sealed store or the master
//! key; it sees exactly the values its attempts were granted, one reveal at a time, and
//! forgets them with the attempt. Values cross NATS: use TLS (`--nats-tls-ca`) where the
//! network is not trusted.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::sandbox::secrets::MAX_REVEALS_PER_ATTEMPT;
use crate::secrets::{ExposeSecret as _, Resolver, RevealRequest, SecretString};
use crate::spec::template::Part;

/// How long a worker waits for the server to answer a reveal.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A worker's question: the value of `name` for attempt `id`.
#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    id: String,
    worker: String,
    name: String,
}

/// The server's answer: the value, or why not (never a value).
#[derive(Serialize, Deserialize)]
struct Answer {
    value: Result<String, String>,
}

/// What the server lets one dispatched attempt reveal.
pub(crate) struct Grant {
    /// The request every reveal of the attempt starts from (its name and grant left blank).
    pub(crate) base: RevealRequest,
    /// Names its spec grants (its `secrets` and the references in a command's env).
    pub(crate) names: BTreeSet<String>,
    pub(crate) resolver: Option<Arc<dyn Resolver>>,
    /// Reveals answered so far (capped like the sandbox caps them).
    pub(crate) asked: usize,
}

impl Grant {
    /// The grant of `attempt`, revealing through `resolver`.
    pub(crate) fn of(attempt: &crate::scheduler::PreparedAttempt, resolver: Option<Arc<dyn Resolver>>) -> Grant {
        let mut names: BTreeSet<String> = attempt.exec.secrets.iter().cloned().collect();
        for (_, parts) in attempt.command.iter().flat_map(|c| c.secret_env.iter()) {
            for part in parts {
                if let Part::Secret { scope, key } = part {
                    names.insert(format!("{scope}/{key}"));
                }
            }
        }
        let base = RevealRequest {
            run: attempt.run,
            task: attempt.task.task_key.clone(),
            attempt: attempt.task.attempt,
            principal: attempt.principal.clone(),
            workspace: attempt.workspace.clone(),
            target: attempt.task.target.clone(),
            name: String::new(),
            granted: false,
            via: None,
        };
        Grant { base, names, resolver, asked: 0 }
    }
}

/// The attempts waiting on workers, by id, and what each may reveal.
pub(crate) type Grants = Mutex<HashMap<String, Grant>>;

/// Answer workers' reveals on `requests` until the subscription ends.
pub(crate) async fn serve(client: async_nats::Client, grants: Arc<Grants>, mut requests: async_nats::Subscriber) {
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply.clone() else { continue };
        let (client, grants) = (client.clone(), grants.clone());
        tokio::spawn(async move {
            let value = match serde_json::from_slice::<Ask>(&message.payload) {
                Ok(ask) => answer(&grants, ask).await.map(|v| v.expose_secret().to_string()),
                Err(e) => Err(format!("a reveal request that is not one: {e}")),
            };
            let payload = serde_json::to_vec(&Answer { value }).unwrap_or_default();
            if let Err(e) = client.publish(reply, payload.into()).await {
                tracing::warn!(error = %e, "answering a worker's secret reveal");
            }
        });
    }
}

/// Resolve `ask` for the attempt it names, as the server would for a local attempt.
async fn answer(grants: &Grants, ask: Ask) -> Result<SecretString, String> {
    let (request, resolver) = {
        let mut grants = grants.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(grant) = grants.get_mut(&ask.id) else {
            return Err(format!("attempt {} is not running for this server: no secret is revealed for it", ask.id));
        };
        if grant.asked >= MAX_REVEALS_PER_ATTEMPT {
            return Err(format!("a task may ask for at most {MAX_REVEALS_PER_ATTEMPT} secrets per attempt"));
        }
        grant.asked += 1;
        let mut request = grant.base.clone();
        request.granted = grant.names.contains(&ask.name);
        request.name = ask.name.clone();
        request.via = Some(format!("worker:{}", ask.worker));
        (request, grant.resolver.clone())
    };
    let Some(resolver) = resolver else {
        return Err(format!("secret `{}` cannot be revealed: the server has no secret store", ask.name));
    };
    tracing::info!(task = %request.task, run = request.run, worker = %ask.worker, "secret reveal for a worker");
    tokio::task::spawn_blocking(move || resolver.reveal(&request))
        .await
        .unwrap_or_else(|e| Err(format!("the secret store failed: {e}")))
}

/// A worker's resolver for one attempt: asks the server that dispatched it.
pub(crate) struct RemoteResolver {
    pub(crate) client: async_nats::Client,
    /// The server's reveal subject (from the work order).
    pub(crate) subject: String,
    pub(crate) id: String,
    pub(crate) worker: String,
    pub(crate) handle: tokio::runtime::Handle,
}

impl RemoteResolver {
    async fn ask(&self, name: &str) -> Result<SecretString, String> {
        let ask = Ask { id: self.id.clone(), worker: self.worker.clone(), name: name.to_string() };
        let payload = serde_json::to_vec(&ask).map_err(|e| e.to_string())?;
        let request = self.client.request(self.subject.clone(), payload.into());
        let reply = tokio::time::timeout(ANSWER_WAIT, request)
            .await
            .map_err(|_| format!("secret `{name}`: the server did not answer within {}s", ANSWER_WAIT.as_secs()))?
            .map_err(|e| format!("secret `{name}`: asking the server: {e}"))?;
        let answer: Answer =
            serde_json::from_slice(&reply.payload).map_err(|e| format!("secret `{name}`: a bad answer: {e}"))?;
        answer.value.map(SecretString::from)
    }
}

impl Resolver for RemoteResolver {
    /// Called off the async threads (the sandbox reveals in `spawn_blocking`).
    fn reveal(&self, req: &RevealRequest) -> Result<SecretString, String> {
        self.handle.block_on(self.ask(&req.name))
    }
}
