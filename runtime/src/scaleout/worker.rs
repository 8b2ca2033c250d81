//! `sluice worker`: pull attempts from the work stream (every route its labels allow), run
//! each in this machine's sandbox with the limits it came with, publish the outcome, then
//! acknowledge. While an attempt runs, the worker heartbeats it (JetStream's in-progress
//! acknowledgement) every third of its lease; a worker that dies stops heartbeating and the
//! attempt goes to another worker.
//!
//! Owns its sandbox, its compiled-component cache and a blob store of its own (`/in` and
//! `/out` contents). It holds no run store and no secrets: values it may read and its
//! task's checkpoints come with the attempt, in a store that lives as long as the attempt;
//! a secret reveal is a request to the server that dispatched the attempt ([`super::reveal`]).
//! It never decides what an outcome means for the run.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reveal::RemoteResolver;
use super::wire::{self, WorkOrder, WorkOutcome};
use super::{CANCEL_PREFIX, Link, OUTCOME_PREFIX, ScaleoutError, nats, routes_of, transfer, work_consumer};
use crate::cache::CacheDir;
use crate::sandbox::{FailureKind, Sandbox, SandboxConfig, World};
use crate::scheduler::{AttemptReport, Executor, LocalExecutor};
use crate::store::Store;
use crate::store::memory::MemoryStore;

/// How often a worker looks again for a route's consumer that does not exist yet (the
/// server creates it when it first sends a task there).
const ROUTE_POLL: Duration = Duration::from_millis(500);
/// How long one pull request waits for attempts: short enough that a worker serving
/// several routes moves between them often, long enough not to spin.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Most attempts one pull request asks for.
const MAX_BATCH: usize = 64;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How the worker is named in outcomes and logs.
    pub name: String,
    /// Attempts at once.
    pub slots: usize,
    /// What it offers: tasks requiring a subset of these run here.
    pub labels: BTreeMap<String, String>,
    /// Its own directory: blobs, staging, `/out` directories.
    pub dir: PathBuf,
    /// The work stream it serves: [`super::WORK_STREAM`], or a tenant's own.
    pub stream: String,
}

struct Worker {
    link: Link,
    name: String,
    sandbox: Arc<Sandbox>,
    cache: Arc<CacheDir>,
    slots: Arc<Semaphore>,
    /// Cancel flags of the attempts running here, by attempt id.
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// One component compiles at a time.
    loading: tokio::sync::Mutex<()>,
}

/// Serve attempts until `stop` resolves, then let the running ones finish (at most `grace`).
pub async fn run(
    link: Link,
    options: WorkerOptions,
    stop: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> Result<(), ScaleoutError> {
    let compiled = crate::sandbox::artifacts::user_cache_dir().unwrap_or_else(|| options.dir.join("components"));
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: Some(compiled) })
        .map_err(|e| ScaleoutError::Invalid(format!("starting the sandbox: {e}")))?;
    let cache = CacheDir::open(&options.dir, options.slots)
        .map_err(|e| ScaleoutError::Invalid(format!("opening {}: {e}", options.dir.display())))?;
    let worker = Arc::new(Worker {
        link,
        name: options.name,
        sandbox: Arc::new(sandbox),
        cache: Arc::new(cache),
        slots: Arc::new(Semaphore::new(options.slots)),
        running: Mutex::new(HashMap::new()),
        loading: tokio::sync::Mutex::new(()),
    });
    let cancels =
        worker.link.client.subscribe(format!("{CANCEL_PREFIX}.>")).await.map_err(|e| nats("subscribing", e))?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(cancel_loop(worker.clone(), cancels));
    let routes = routes_of(&options.labels);
    let per_route = (options.slots / routes.len()).clamp(1, MAX_BATCH);
    for route in routes {
        tasks.spawn(pull_loop(worker.clone(), options.stream.clone(), route, per_route));
    }
    stop.await;
    tasks.abort_all();
    let all = u32::try_from(options.slots).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, worker.slots.acquire_many(all)).await;
    Ok(())
}

async fn cancel_loop(worker: Arc<Worker>, mut cancels: async_nats::Subscriber) {
    while let Some(message) = cancels.next().await {
        let id = message.subject.as_str().rsplit('.').next().unwrap_or_default();
        if let Some(flag) = worker.running.lock().unwrap_or_else(PoisonError::into_inner).get(id) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Pull a route's attempts while slots are free.
async fn pull_loop(worker: Arc<Worker>, stream: String, route: String, per_fetch: usize) {
    let name = work_consumer(&route);
    loop {
        let consumer = match worker.link.js.get_stream(&stream).await {
            Ok(stream) => stream.get_consumer::<pull::Config>(&name).await.ok(),
            Err(_) => None,
        };
        let Some(consumer) = consumer else {
            tokio::time::sleep(ROUTE_POLL).await;
            continue;
        };
        loop {
            let Ok(first) = worker.slots.clone().acquire_owned().await else { return };
            let mut permits = vec![first];
            while permits.len() < per_fetch {
                match worker.slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let batch = consumer.batch().max_messages(permits.len()).expires(FETCH_WAIT).messages().await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(route, error = %e, "pulling attempts");
                    tokio::time::sleep(ROUTE_POLL).await;
                    break;
                }
            };
            while let Some(message) = batch.next().await {
                match message {
                    Ok(message) => {
                        let Some(permit) = permits.pop() else { break };
                        tokio::spawn(handle(worker.clone(), message, permit));
                    }
                    Err(e) => tracing::debug!(route, error = %e, "pull request ended"),
                }
            }
        }
    }
}

/// Run one delivered attempt: heartbeat it, run it, publish its outcome, acknowledge it.
async fn handle(worker: Arc<Worker>, message: async_nats::jetstream::Message, _permit: OwnedSemaphorePermit) {
    let order: WorkOrder = match serde_json::from_slice(&message.payload) {
        Ok(order) => order,
        Err(e) => {
            tracing::warn!(error = %e, "an attempt that is not one: dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let beat = Duration::from_millis(order.lease_ms / 3).max(Duration::from_millis(100));
    let heartbeat = {
        let message = message.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(beat).await;
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!(error = %e, "heartbeat");
                }
            }
        })
    };
    let (task, run, attempt) = (&order.task.task_key, order.run, order.task.attempt);
    tracing::info!(task = %task, run, attempt, id = %order.id, "attempt started");
    let cancel = Arc::new(AtomicBool::new(false));
    worker.running.lock().unwrap_or_else(PoisonError::into_inner).insert(order.id.clone(), cancel.clone());
    let outcome = worker.run_order(&order, cancel).await;
    worker.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&order.id);
    tracing::info!(task = %task, run, attempt, id = %order.id, status = ?outcome.status, "attempt ended");
    let published = worker.publish(&outcome).await;
    heartbeat.abort();
    match published {
        Ok(()) => {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(id = %order.id, error = %e, "acknowledging an attempt (it may run again; its outcome is kept once)");
            }
        }
        Err(e) => {
            tracing::warn!(id = %order.id, error = %e, "publishing an outcome; the attempt goes back to the queue");
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
    }
}

impl Worker {
    async fn publish(&self, outcome: &WorkOutcome) -> Result<(), ScaleoutError> {
        let payload = serde_json::to_vec(outcome).map_err(|e| ScaleoutError::Invalid(e.to_string()))?;
        let subject = format!("{OUTCOME_PREFIX}.{}", outcome.id);
        let message = PublishMessage::build().payload(payload.into()).message_id(&outcome.id);
        let ack = self.link.js.send_publish(subject, message).await.map_err(|e| nats("publishing an outcome", e))?;
        ack.await.map_err(|e| nats("publishing an outcome", e))?;
        Ok(())
    }

    /// Run `order` here; whatever goes wrong is the attempt's outcome (a host failure).
    async fn run_order(&self, order: &WorkOrder, cancel: Arc<AtomicBool>) -> WorkOutcome {
        match self.try_run(order, cancel).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let report = AttemptReport::failed(FailureKind::Host, format!("on worker {}: {e}", self.name));
                WorkOutcome::new(order.id.clone(), self.name.clone(), report, Vec::new())
            }
        }
    }

    async fn try_run(&self, order: &WorkOrder, cancel: Arc<AtomicBool>) -> Result<WorkOutcome, ScaleoutError> {
        let mut prepared = order.prepared().map_err(ScaleoutError::Invalid)?;
        self.load(&order.component, prepared.world).await?;
        prepared.exec.mounts.extend(self.stage_models(&order.models).await?);
        let trees: Vec<&crate::cache::TreeManifest> = order.inputs.iter().map(|(_, t)| t).collect();
        transfer::get_trees(&self.link.blobs, &self.cache.blobs, &trees).await?;
        let (run, task) = (order.run, order.task.task_key.as_str());
        let store = Arc::new(MemoryStore::new());
        let seed = |e: crate::store::StoreError| ScaleoutError::Invalid(format!("preparing the attempt: {e}"));
        for (up, key, json) in &order.values {
            store.put_value(run, up, key, json).map_err(seed)?;
        }
        let mut before = HashMap::new();
        for (key, text) in &order.checkpoints {
            let bytes = wire::decode(text).map_err(ScaleoutError::Invalid)?;
            store.save_checkpoint(run, task, key, &bytes).map_err(seed)?;
            before.insert(key.clone(), bytes);
        }
        let secrets = order.reveal_subject.as_ref().map(|subject| {
            Arc::new(RemoteResolver {
                client: self.link.client.clone(),
                subject: subject.clone(),
                id: order.id.clone(),
                token: order.reveal_token.clone().unwrap_or_default(),
                worker: self.name.clone(),
                handle: tokio::runtime::Handle::current(),
            }) as Arc<dyn crate::secrets::Resolver>
        });
        let executor = LocalExecutor {
            sandbox: self.sandbox.clone(),
            store: store.clone(),
            secrets,
            cache: Some(self.cache.clone()),
        };
        let mut report = executor.execute(prepared, cancel).await;
        let saved = store.checkpoints(run, task).map_err(seed)?;
        let changed =
            saved.into_iter().filter(|(k, v)| before.get(k) != Some(v)).map(|(k, v)| (k, wire::encode(&v))).collect();
        if let Ok(Some(tree)) = &report.out
            && let Err(e) = transfer::put_trees(&self.link.blobs, &self.cache.blobs, &[tree]).await
        {
            report.out = Err(format!("sending /out from worker {}: {e}", self.name));
        }
        Ok(WorkOutcome::new(order.id.clone(), self.name.clone(), report, changed))
    }

    /// The order's models staged here from the blobs bucket (by content), as read-only mounts.
    async fn stage_models(&self, models: &[wire::WireModel]) -> Result<Vec<crate::spec::Mount>, ScaleoutError> {
        let mut staged = Vec::new();
        for m in models {
            let hash = m.hash.parse().map_err(|_| ScaleoutError::Invalid(format!("model hash {}", m.hash)))?;
            transfer::get_blob(&self.link.blobs, &self.cache.blobs, &hash).await?;
            let (guest, file) = (m.guest.clone(), m.file.clone());
            staged.push(crate::scheduler::models::Staged { name: file.clone(), guest, version: 0, hash, file });
        }
        let cache = self.cache.clone();
        let mounts = tokio::task::spawn_blocking(move || crate::scheduler::models::mounts(Some(&*cache), &staged));
        let mounts = mounts.await.map_err(|e| ScaleoutError::Invalid(format!("staging models: {e}")))?;
        let mounts = mounts.map_err(ScaleoutError::Invalid)?;
        if !mounts.is_empty() {
            tracing::info!(models = mounts.len(), "staged models by content");
        }
        Ok(mounts)
    }

    /// Make component `hash` loaded for `world`: from memory, this machine's compiled
    /// artifacts, or the components bucket (compiled once, then cached).
    async fn load(&self, hash: &str, world: World) -> Result<(), ScaleoutError> {
        if self.sandbox.loaded(hash, world).is_some() {
            return Ok(());
        }
        let _one = self.loading.lock().await;
        if self.sandbox.loaded(hash, world).is_some() {
            return Ok(());
        }
        let (sandbox, h) = (self.sandbox.clone(), hash.to_string());
        let cached = tokio::task::spawn_blocking(move || sandbox.load_pinned(&h, world)).await.ok().flatten();
        if cached.is_some() {
            return Ok(());
        }
        let bytes = transfer::get_component(&self.link.components, hash).await?;
        let (sandbox, label) = (self.sandbox.clone(), format!("component {}", &hash[..hash.len().min(12)]));
        tokio::task::spawn_blocking(move || sandbox.load_bytes_as(&bytes, &label, world))
            .await
            .map_err(|e| ScaleoutError::Invalid(format!("loading component: {e}")))?
            .map_err(|e| ScaleoutError::Invalid(e.to_string()))?;
        Ok(())
    }
}
