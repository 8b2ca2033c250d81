//! Capability: secrets (`sluice:task/secrets`).
//!
//! Owns the grant check and what follows a reveal. A task resolves only the
//! `scope/key` names its spec lists; every name it asks for, granted or not,
//! goes to the run's [`Resolver`] (which checks the run's principal and target
//! and audits the call durably) so that denials are audited too. Every value
//! handed to the guest is remembered ([`Revealed`]) so that the attempt's log,
//! output, error and published values are redacted before the [`Outcome`]
//! leaves the sandbox ([`redact_outcome`]), and so that a checkpoint holding a
//! value is refused (checkpoints are stored as the task gave them).
//! A command task's `env` may hold `{{ secrets/scope/key }}` references: they
//! are revealed here too, through the same resolver, just before the program
//! starts ([`resolve_env`]), and redacted the same way.
//! Without a resolver (a library user who configured none), granted names fail
//! with "no secret store is configured". It must never log, store or return a
//! value it was not granted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::component::{HasSelf, Linker};

use super::bindings::sluice::task::secrets;
use super::{AttemptContext, Capability, HostState, Prepare};
use crate::model::RunId;
use crate::secrets::{ExposeSecret as _, Redactor, Resolver, RevealRequest, SecretString};
use crate::spec::template::Part;

/// Reveals one attempt may ask for: each is a durable audit record and an entry in the
/// attempt's audit list, so a guest looping on `reveal` must not grow either without
/// bound; a task needs a handful.
pub const MAX_REVEALS_PER_ATTEMPT: usize = 256;

/// The values an attempt revealed, shared by the capabilities that must not let them out.
#[derive(Clone, Default)]
pub(crate) struct Revealed(Arc<Mutex<Held>>);

#[derive(Default)]
struct Held {
    /// Each value once (a value revealed again is not held twice).
    values: Vec<SecretString>,
    /// The redactor for `values`, built when first needed after a change.
    redactor: Option<Arc<Redactor>>,
}

impl Revealed {
    fn add(&self, value: SecretString) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.values.iter().any(|v| v.expose_secret() == value.expose_secret()) {
            return;
        }
        held.values.push(value);
        held.redactor = None;
    }

    /// A redactor for every value revealed so far.
    pub(crate) fn redactor(&self) -> Arc<Redactor> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = &held.redactor {
            return r.clone();
        }
        let r = Arc::new(Redactor::new(held.values.iter().map(|v| v.expose_secret())));
        held.redactor = Some(r.clone());
        r
    }

    /// Whether nothing was revealed.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).values.is_empty()
    }

    /// Whether `data` holds a revealed value in any form a redactor knows.
    pub(crate) fn found_in(&self, data: &[u8]) -> bool {
        !self.is_empty() && self.redactor().found_in(data)
    }

    /// `text` (guest-influenced, on its way to the host's log) with every revealed value redacted.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.is_empty() { text.to_string() } else { self.redactor().redact(text) }
    }
}

/// What reveals resolve against: the run's resolver, principal, workspace and target.
struct Access {
    resolver: Arc<dyn Resolver>,
    run: RunId,
    attempt: u32,
    principal: String,
    workspace: String,
    target: String,
}

/// The secrets capability of one attempt.
pub(crate) struct Secrets {
    task: String,
    granted: BTreeSet<String>,
    /// Every name the guest asked for and whether it was granted, in order.
    pub(crate) audit: Vec<(String, bool)>,
    access: Option<Access>,
    revealed: Revealed,
    /// Names the host injects into outbound HTTP (name → header): the guest gets a placeholder.
    inject: BTreeMap<String, String>,
    pub(crate) injections: super::http::Injections,
}

impl Secrets {
    /// A capability with grants but no resolver: granted names do not resolve.
    pub(crate) fn new(task: &str, granted: impl IntoIterator<Item = String>) -> Self {
        Secrets {
            task: task.to_string(),
            granted: granted.into_iter().collect(),
            audit: Vec::new(),
            access: None,
            revealed: Revealed::default(),
            inject: Default::default(),
            injections: Default::default(),
        }
    }

    /// The values this attempt revealed (a shared handle).
    pub(crate) fn revealed(&self) -> Revealed {
        self.revealed.clone()
    }

    /// A redactor for every value revealed.
    pub(crate) fn redactor(&self) -> Arc<Redactor> {
        self.revealed.redactor()
    }
}

/// What secrets an attempt may reveal, and those it holds already.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// `scope/key` names the task may reveal.
    pub names: Vec<String>,
    /// Granted names the host injects into outbound HTTP headers instead (name → header):
    /// the guest's reveal returns a placeholder.
    pub inject: BTreeMap<String, String>,
    /// Secret values the attempt holds before it starts (a command task's env): redacted
    /// from what it reports like the ones it reveals.
    pub held: Vec<SecretString>,
}

impl Capability for Secrets {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        let context = cx.context;
        let mut s = Secrets::new(&context.task.task_key, grant.names);
        s.inject = grant.inject;
        s.revealed = cx.revealed.clone();
        s.injections = cx.injections.clone();
        for value in grant.held {
            s.revealed.add(value);
        }
        s.access = context.secrets.as_ref().map(|resolver| Access {
            resolver: resolver.clone(),
            run: context.run,
            attempt: context.task.attempt,
            principal: context.principal.clone(),
            workspace: context.workspace.clone(),
            target: context.task.target.clone(),
        });
        Ok(s)
    }

    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        secrets::add_to_linker::<HostState, HasSelf<Secrets>>(linker, |s| &mut s.caps.secrets)
    }
}

/// An opaque stand-in for an injected secret, unique per reveal.
fn placeholder(task: &str, name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(task.as_bytes());
    h.update(name.as_bytes());
    h.update(&NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
    h.update(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    format!("sluice-injected-{}", &h.finalize().to_hex()[..32])
}

impl secrets::Host for Secrets {
    async fn reveal(&mut self, name: String) -> Result<String, String> {
        if self.audit.len() >= MAX_REVEALS_PER_ATTEMPT {
            return Err(format!("a task may ask for at most {MAX_REVEALS_PER_ATTEMPT} secrets per attempt"));
        }
        let result = self.reveal_once(name.clone()).await;
        self.audit.push((name, result.is_ok()));
        result
    }
}

impl Secrets {
    async fn reveal_once(&mut self, name: String) -> Result<String, String> {
        let granted = self.granted.contains(&name);
        let Some(access) = &self.access else {
            if !granted {
                let shown = self.revealed.scrub(&crate::secrets::shown(&name));
                tracing::warn!(task = %self.task, secret = %shown, "secret access denied: not granted to this task");
                return Err(format!("secret `{}` is not granted to task `{}`", name.escape_debug(), self.task));
            }
            return Err(format!("secret `{name}` is granted but no secret store is configured to resolve it"));
        };
        let request = RevealRequest {
            run: access.run,
            task: self.task.clone(),
            attempt: access.attempt,
            principal: access.principal.clone(),
            workspace: access.workspace.clone(),
            target: access.target.clone(),
            name: name.clone(),
            granted,
            via: None,
        };
        let resolver = access.resolver.clone();
        // the resolver reads the store and flushes the audit record: blocking work
        let result = tokio::task::spawn_blocking(move || resolver.reveal(&request))
            .await
            .unwrap_or_else(|e| Err(format!("the secret store failed while resolving `{name}`: {e}")));
        match result {
            Ok(value) => {
                tracing::info!(task = %self.task, secret = %self.revealed.scrub(&name), "secret revealed");
                if let Some(header) = self.inject.get(&name) {
                    // the guest never holds the value: the host puts it into requests
                    let placeholder = placeholder(&self.task, &name);
                    let mut injections = self.injections.lock().unwrap_or_else(PoisonError::into_inner);
                    injections.push(super::http::Injection {
                        placeholder: placeholder.clone(),
                        header: header.clone(),
                        value: value.clone(),
                    });
                    drop(injections);
                    self.revealed.add(value);
                    return Ok(placeholder);
                }
                let text = value.expose_secret().to_string();
                self.revealed.add(value);
                Ok(text)
            }
            Err(why) => {
                let (shown, reason) = (self.revealed.scrub(&crate::secrets::shown(&name)), self.revealed.scrub(&why));
                tracing::warn!(task = %self.task, secret = %shown, reason = %reason, "secret access denied");
                Err(why)
            }
        }
    }
}

/// The values of a command task's secret env variables: each part revealed
/// through the run's resolver (the reference in the task's `env` is its grant;
/// the principal's permission and the target are checked, every reveal audited).
/// Returns the variables and the values to redact; `Err`: why the attempt cannot start.
pub(crate) async fn resolve_env(
    context: &AttemptContext,
    secret_env: Vec<(String, Vec<Part>)>,
) -> Result<(Vec<(String, String)>, Vec<SecretString>), String> {
    let mut env = Vec::new();
    let mut values = Vec::new();
    for (var, parts) in secret_env {
        let mut text = zeroize::Zeroizing::new(String::new());
        for part in parts {
            match part {
                Part::Text(t) => text.push_str(&t),
                Part::Secret { scope, key } => {
                    let name = format!("{scope}/{key}");
                    let Some(resolver) = context.secrets.clone() else {
                        return Err(format!(
                            "env `{var}`: secret `{name}` cannot be revealed: no secret store is configured"
                        ));
                    };
                    let request = RevealRequest {
                        run: context.run,
                        task: context.task.task_key.clone(),
                        attempt: context.task.attempt,
                        principal: context.principal.clone(),
                        workspace: context.workspace.clone(),
                        target: context.task.target.clone(),
                        name: name.clone(),
                        granted: true,
                        via: None,
                    };
                    let value = tokio::task::spawn_blocking(move || resolver.reveal(&request))
                        .await
                        .unwrap_or_else(|e| Err(format!("the secret store failed: {e}")))
                        .map_err(|why| format!("env `{var}`: {why}"))?;
                    text.push_str(value.expose_secret());
                    values.push(value);
                }
            }
        }
        env.push((var, text.to_string()));
    }
    Ok((env, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{MasterKey, MemorySecretStore, ScopeId, SecretStore, Vault};
    use secrets::Host;

    #[tokio::test]
    async fn without_a_resolver_ungranted_names_are_denied_and_granted_ones_do_not_resolve() {
        let mut s = Secrets::new("t", ["storage/key".to_string()]);
        let denied = s.reveal("other/key".into()).await.unwrap_err();
        assert!(denied.contains("not granted to task `t`"), "{denied}");
        let unresolved = s.reveal("storage/key".into()).await.unwrap_err();
        assert!(unresolved.contains("no secret store"), "{unresolved}");
        assert_eq!(
            s.audit,
            vec![("other/key".to_string(), false), ("storage/key".to_string(), false)],
            "neither resolved"
        );
    }

    #[tokio::test]
    async fn granted_names_resolve_through_the_resolver_and_are_remembered() {
        let store: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
        let vault = Vault::new(store, Arc::new(MasterKey::generate("k")), Arc::new(crate::model::SystemClock));
        let id = ScopeId::new("default", "prod", "db").unwrap();
        vault.create_scope("alice", &id).unwrap();
        vault.put("alice", &id, "pw", &SecretString::from("hunter2".to_string())).unwrap();
        let vault = Arc::new(vault);
        let mut inv = super::super::Invocation::new("t", Arc::new(crate::store::MemoryStore::new()), 1);
        inv.context.principal = "alice".into();
        inv.context.task.target = "prod".into();
        inv.context.secrets = Some(vault.clone());
        let grant = Grant { names: vec!["db/pw".into()], ..Grant::default() };
        let mut s: Secrets = super::super::prepared(grant, &inv.context).unwrap();
        assert!(s.reveal("db/other".into()).await.unwrap_err().contains("not granted"));
        assert_eq!(s.reveal("db/pw".into()).await.unwrap(), "hunter2");
        assert!(s.revealed().found_in(b"xx hunter2 xx"));
        let trail = vault.audit(&Default::default()).unwrap();
        let reveals: Vec<bool> = trail.iter().filter(|r| r.run == Some(1)).map(|r| r.granted).collect();
        assert_eq!(reveals, vec![false, true], "the denial and the reveal are both audited");
    }
}
