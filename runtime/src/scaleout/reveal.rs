//! Secrets of attempts that run on workers: each `secrets.reveal` (and each secret a
//! command task's env references) is a NATS request from the worker to the server that
//! dispatched the attempt, answered by the server's own resolver.
//!
//! Owns both ends of that request. The server answers only for attempts it is waiting
//! for, and only to the worker the attempt was delivered to (it shows the token the
//! server put in the order), decides the grant itself from the attempt it dispatched
//! (never from what the worker claims), and audits every reveal and denial with the
//! worker's identity (`via = worker:NAME`). A worker never holds a scope, the sealed store or the master
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
    /// The attempt's delivery token, from its order.
    #[serde(default)]
    token: String,
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
    /// The token in the attempt's order: a reveal without it is refused (and audited).
    pub(crate) token: String,
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
        Grant { base, names, resolver, asked: 0, token: String::new() }
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
    let (request, resolver, refused) = {
        let mut grants = grants.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(grant) = grants.get_mut(&ask.id) else {
            return Err(format!("attempt {} is not running for this server: no secret is revealed for it", ask.id));
        };
        let mut request = grant.base.clone();
        request.name = ask.name.clone();
        if same_token(&grant.token, &ask.token) {
            if grant.asked >= MAX_REVEALS_PER_ATTEMPT {
                return Err(format!("a task may ask for at most {MAX_REVEALS_PER_ATTEMPT} secrets per attempt"));
            }
            grant.asked += 1;
            request.granted = grant.names.contains(&ask.name);
            request.via = Some(format!("worker:{}", ask.worker));
            (request, grant.resolver.clone(), false)
        } else {
            // not the worker the attempt was delivered to: refused, and audited as such
            request.via = Some(format!("worker:{} without the attempt's delivery token", ask.worker));
            (request, grant.resolver.clone(), true)
        }
    };
    if refused {
        tracing::warn!(task = %request.task, run = request.run, worker = %ask.worker, "a secret reveal without the attempt's delivery token: refused");
        if let Some(resolver) = resolver {
            // granted is false: the vault refuses and audits it
            let _ = tokio::task::spawn_blocking(move || resolver.reveal(&request)).await;
        }
        return Err(format!(
            "attempt {} was not delivered to worker {}: no secret is revealed for it",
            ask.id, ask.worker
        ));
    }
    let Some(resolver) = resolver else {
        return Err(format!("secret `{}` cannot be revealed: the server has no secret store", ask.name));
    };
    tracing::info!(task = %request.task, run = request.run, worker = %ask.worker, "secret reveal for a worker");
    tokio::task::spawn_blocking(move || resolver.reveal(&request))
        .await
        .unwrap_or_else(|e| Err(format!("the secret store failed: {e}")))
}

/// Whether `shown` is `token` (never an empty one), compared in constant time (blake3's
/// hashes compare so).
fn same_token(token: &str, shown: &str) -> bool {
    !token.is_empty() && blake3::hash(token.as_bytes()) == blake3::hash(shown.as_bytes())
}

/// A worker's resolver for one attempt: asks the server that dispatched it.
pub(crate) struct RemoteResolver {
    pub(crate) client: async_nats::Client,
    /// The server's reveal subject (from the work order).
    pub(crate) subject: String,
    pub(crate) id: String,
    /// The attempt's delivery token (from its order).
    pub(crate) token: String,
    pub(crate) worker: String,
    pub(crate) handle: tokio::runtime::Handle,
}

impl RemoteResolver {
    async fn ask(&self, name: &str) -> Result<SecretString, String> {
        let ask =
            Ask { id: self.id.clone(), token: self.token.clone(), worker: self.worker.clone(), name: name.to_string() };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every granted reveal with "v"; keeps what it was asked.
    #[derive(Default)]
    struct Vault(Mutex<Vec<RevealRequest>>);

    impl Resolver for Vault {
        fn reveal(&self, req: &RevealRequest) -> Result<SecretString, String> {
            self.0.lock().unwrap().push(req.clone());
            if req.granted { Ok(SecretString::from("v".to_string())) } else { Err("not granted".into()) }
        }
    }

    fn ask(token: &str, worker: &str) -> Ask {
        Ask { id: "a1".into(), token: token.into(), worker: worker.into(), name: "db/pw".into() }
    }

    #[tokio::test]
    async fn only_the_worker_holding_the_orders_token_gets_a_secret_and_forgers_are_audited() {
        let vault = Arc::new(Vault::default());
        let base = RevealRequest {
            run: 1,
            task: "t".into(),
            attempt: 1,
            principal: "alice".into(),
            workspace: "w".into(),
            target: "dev".into(),
            name: String::new(),
            granted: false,
            via: None,
        };
        let names = BTreeSet::from(["db/pw".to_string()]);
        let grant = Grant { base, names, resolver: Some(vault.clone()), asked: 0, token: "right".into() };
        let grants: Grants = Mutex::new(HashMap::from([("a1".to_string(), grant)]));
        for forged in [ask("wrong", "mallory"), ask("", "mallory")] {
            let Err(err) = answer(&grants, forged).await else { panic!("revealed to a forger") };
            assert!(err.contains("was not delivered to worker mallory"), "{err}");
        }
        assert_eq!(answer(&grants, ask("right", "w1")).await.expect("revealed").expose_secret(), "v");
        assert!(answer(&grants, Ask { id: "other".into(), ..ask("right", "w1") }).await.is_err());
        let asked = vault.0.lock().unwrap();
        assert_eq!(asked.len(), 3, "every refusal is audited too");
        assert!(asked[..2].iter().all(|r| !r.granted && r.via.as_deref().is_some_and(|v| v.contains("without"))));
        assert!(asked[2].granted && asked[2].via.as_deref() == Some("worker:w1"));
    }
}
