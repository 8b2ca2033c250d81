//! The server's side of scale-out: [`RemoteExecutor`] publishes each attempt to the work
//! stream (on its route's subject), waits for the outcome a worker publishes, and turns it
//! into the executor's report; one listener task takes outcomes off the outcome stream and
//! hands each to the attempt waiting for it ([`super::inbox`]) — the first one only, so an
//! attempt delivered twice (its worker died, or was slow) is recorded once. Attempt ids are
//! derived from the server's durable key, run, task and attempt number, so a restarted
//! server adopts the attempts its previous process dispatched: it waits for the outcome a
//! worker kept (or is still making) instead of running the attempt again.
//!
//! It reads what the worker may see (upstream values, the task's checkpoints) from the
//! store and writes back only what an attempt hands back (checkpoints, `/out` blobs). It
//! never decides what an outcome means for the run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use tokio::sync::oneshot;

use super::inbox::{Delivered, Inbox};
use super::wire::{self, WorkOrder};
use super::{
    CANCEL_PREFIX, Link, MAX_DELIVER, OUTCOME_CONSUMER, OUTCOME_PREFIX, OUTCOME_STREAM, REVEAL_PREFIX, ScaleoutError,
    ServerKey, WORK_STREAM, attempt_subject, nats, reveal, route_of, transfer, work_consumer, work_subject,
};
use crate::cache::CacheDir;
use crate::model::PinnedComponent;
use crate::sandbox::FailureKind;
use crate::sandbox::values::Readable;
use crate::scheduler::{AttemptReport, Executor, ExecutorFactory, PreparedAttempt, Running};
use crate::secrets::Resolver;
use crate::store::Store;

/// How often a waiting attempt looks at its cancel flag: a cancel reaches the worker
/// within this (the sandbox's own cancel check is of the same order).
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// How long an outcome handed out is left unacknowledged before JetStream delivers it
/// again: a coordinator journals well within it; one delivered to a server that died
/// comes back to the next one after it.
const OUTCOME_ACK_WAIT: Duration = Duration::from_secs(10);

/// What every attempt of this server shares.
struct Shared {
    link: Link,
    lease: Duration,
    /// This server's durable identity: attempt ids and delivery tokens come from it.
    key: ServerKey,
    /// Attempts waiting for their outcome, and outcomes waiting for their attempt.
    inbox: Arc<Inbox>,
    /// Component files by blake3, as runs pinned them.
    paths: Mutex<HashMap<String, PathBuf>>,
    /// Components in the bucket already (checked or uploaded by this process).
    uploaded: tokio::sync::Mutex<HashSet<String>>,
    /// Routes whose consumer exists, as (stream, route).
    routes: tokio::sync::Mutex<HashSet<(String, String)>>,
    /// Workspaces whose attempts go to a work stream of their own (workspace → stream).
    streams: BTreeMap<String, String>,
    /// What each attempt waiting on a worker may reveal, by id.
    grants: Arc<reveal::Grants>,
    /// Where workers ask for secrets: `sluice.reveal.<server id>`.
    reveal_subject: String,
}

/// Runs attempts on workers through JetStream.
pub struct RemoteExecutor {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    cache: Option<Arc<CacheDir>>,
    /// The server's secrets: workers' reveals are answered with it.
    resolver: Option<Arc<dyn Resolver>>,
}

impl RemoteExecutor {
    /// Start listening for outcomes on `link`; the factory makes the executor of the runtime
    /// `sluice serve` opens. `lease`: how long a worker holds an attempt without a heartbeat;
    /// `streams`: workspaces whose attempts go to a work stream of their own; `key`: the
    /// server's durable identity ([`ServerKey::of_state`]).
    pub async fn start(
        link: Link,
        lease: Duration,
        streams: BTreeMap<String, String>,
        key: ServerKey,
    ) -> Result<ExecutorFactory, ScaleoutError> {
        for stream in streams.values() {
            super::check_stream_name(stream).map_err(ScaleoutError::Invalid)?;
        }
        let reveal_subject = format!("{REVEAL_PREFIX}.{}", key.id);
        let reveals = link.client.subscribe(reveal_subject.clone()).await.map_err(|e| nats("subscribing", e))?;
        let grants = Arc::new(reveal::Grants::default());
        tokio::spawn(reveal::serve(link.client.clone(), grants.clone(), reveals));
        let shared = Arc::new(Shared {
            link,
            lease,
            key,
            inbox: Arc::new(Inbox::default()),
            paths: Mutex::new(HashMap::new()),
            uploaded: tokio::sync::Mutex::new(HashSet::new()),
            routes: tokio::sync::Mutex::new(HashSet::new()),
            streams,
            grants,
            reveal_subject,
        });
        let stream = shared.link.js.get_stream(OUTCOME_STREAM).await.map_err(|e| nats("outcome stream", e))?;
        let config = pull::Config {
            durable_name: Some(OUTCOME_CONSUMER.into()),
            ack_policy: AckPolicy::Explicit,
            // outcomes are acknowledged once journaled; held ones wait unacknowledged (and
            // come again after OUTCOME_ACK_WAIT, which keeps them held)
            max_ack_pending: -1,
            ack_wait: OUTCOME_ACK_WAIT,
            ..Default::default()
        };
        let consumer = super::ensure_consumer(&stream, OUTCOME_CONSUMER, config).await?;
        let messages = consumer.messages().await.map_err(|e| nats("reading outcomes", e))?;
        tokio::spawn(super::inbox::listen(shared.inbox.clone(), messages));
        Ok(Arc::new(move |rt: &crate::scheduler::Runtime| {
            Arc::new(RemoteExecutor {
                shared: shared.clone(),
                store: rt.store().clone(),
                cache: rt.cache_dir().cloned(),
                resolver: rt.resolver().cloned(),
            }) as Arc<dyn Executor>
        }))
    }
}

impl RemoteExecutor {
    fn run(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>, adopt: bool) -> Running {
        let (shared, store, cache) = (self.shared.clone(), self.store.clone(), self.cache.clone());
        let grant = reveal::Grant::of(&attempt, self.resolver.clone());
        Box::pin(async move {
            dispatch(&shared, &*store, cache.as_deref(), attempt, grant, cancel, adopt).await.unwrap_or_else(|e| {
                AttemptReport::failed(FailureKind::Host, format!("running the attempt on a worker: {e}"))
            })
        })
    }
}

impl Executor for RemoteExecutor {
    fn execute(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running {
        self.run(attempt, cancel, false)
    }

    /// Workers keep running (and keep the outcomes of) attempts while the server is down.
    fn adopts(&self) -> bool {
        true
    }

    fn adopt(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running {
        self.run(attempt, cancel, true)
    }

    fn components_pinned(&self, components: &BTreeMap<String, PinnedComponent>) {
        let mut paths = self.shared.paths.lock().unwrap_or_else(PoisonError::into_inner);
        for pin in components.values() {
            paths.entry(pin.hash.clone()).or_insert_with(|| pin.path.clone());
        }
    }
}

/// Publish `attempt` (adopted: only if it is neither in the work stream nor has an outcome
/// waiting), wait for its outcome, take back what it hands back.
async fn dispatch(
    shared: &Shared,
    store: &dyn Store,
    cache: Option<&CacheDir>,
    attempt: PreparedAttempt,
    mut grant: reveal::Grant,
    cancel: Arc<AtomicBool>,
    adopt: bool,
) -> Result<AttemptReport, ScaleoutError> {
    let (run, task) = (attempt.run, attempt.task.task_key.clone());
    let id = shared.key.attempt_id(run, &task, attempt.task.attempt);
    let route = route_of(&attempt.exec.worker_labels);
    let stream = shared.streams.get(&attempt.workspace).map_or(WORK_STREAM, String::as_str).to_string();
    let subject = attempt_subject(&stream, &route, &id);
    grant.token = shared.key.token(&id);
    let rx = shared.inbox.wait_for(&id);
    shared.grants.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), grant);
    let outcome = async {
        if !adopt || !dispatched(shared, &stream, &route, &subject, &id).await? {
            send(shared, store, cache, attempt, &stream, &route, &subject, &id).await?;
        } else {
            tracing::info!(id, task, run, "adopted an attempt the previous server process dispatched");
        }
        wait(shared, &id, rx, &cancel).await
    }
    .await;
    // no reveal is answered for this attempt once it is over
    shared.grants.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    let delivered = outcome.inspect_err(|_| shared.inbox.forget(&id))?;
    let receipt = delivered.receipt();
    let outcome = delivered.outcome;
    for (key, text) in &outcome.checkpoints {
        let bytes = wire::decode(text).map_err(ScaleoutError::Invalid)?;
        store
            .save_checkpoint(run, &task, key, &bytes)
            .map_err(|e| ScaleoutError::Invalid(format!("saving checkpoint {key}: {e}")))?;
    }
    let worker = outcome.worker.clone();
    let mut report = outcome.report();
    if let (Some(cache), Ok(Some(tree))) = (cache, &report.out)
        && let Err(e) = transfer::get_trees(&shared.link.blobs, &cache.blobs, &[tree]).await
    {
        report.out = Err(format!("fetching /out from worker {worker}: {e}"));
    }
    report.receipt = Some(receipt);
    tracing::debug!(id, worker, "attempt done on a worker");
    Ok(report)
}

/// Whether attempt `id` left this server before (a previous process of it): its order is
/// still in the work stream (waiting or running), or its outcome is waiting.
async fn dispatched(
    shared: &Shared,
    stream: &str,
    route: &str,
    subject: &str,
    id: &str,
) -> Result<bool, ScaleoutError> {
    if shared.inbox.holds(id) {
        return Ok(true);
    }
    ensure_route(shared, stream, route).await?;
    // the order first: a worker publishes the outcome before it acknowledges the order,
    // so an order gone means an outcome there
    let outcome = format!("{OUTCOME_PREFIX}.{id}");
    for (stream, subject) in [(stream, subject), (OUTCOME_STREAM, outcome.as_str())] {
        let found = shared.link.js.get_stream(stream).await.map_err(|e| nats(&format!("stream {stream}"), e))?;
        match found.get_last_raw_message_by_subject(subject).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(nats(&format!("looking for {subject}"), e)),
        }
    }
    Ok(false)
}

/// Publish attempt `id`'s order, with what it may read, on `subject`.
#[allow(clippy::too_many_arguments)]
async fn send(
    shared: &Shared,
    store: &dyn Store,
    cache: Option<&CacheDir>,
    attempt: PreparedAttempt,
    stream: &str,
    route: &str,
    subject: &str,
    id: &str,
) -> Result<(), ScaleoutError> {
    upload_component(shared, &attempt.component).await?;
    if let Some(cache) = cache {
        let trees: Vec<&crate::cache::TreeManifest> = attempt.inputs.iter().map(|(_, t)| t).collect();
        transfer::put_trees(&shared.link.blobs, &cache.blobs, &trees).await?;
    }
    ensure_route(shared, stream, route).await?;
    let (run, task) = (attempt.run, attempt.task.task_key.clone());
    let readable = readable_tasks(&attempt.readable);
    let mut order = WorkOrder::new(id.to_string(), shared.lease, attempt, readable);
    order.reveal_subject = Some(shared.reveal_subject.clone());
    order.reveal_token = Some(shared.key.token(id));
    if let Some(cache) = cache {
        order.models = take_models(cache, &mut order.exec.mounts);
        for model in &order.models {
            let hash = model.hash.parse().map_err(|_| ScaleoutError::Invalid(format!("model hash {}", model.hash)))?;
            transfer::put_blob(&shared.link.blobs, &cache.blobs, &hash).await?;
        }
    }
    let read = |e: crate::store::StoreError| ScaleoutError::Invalid(format!("reading the store: {e}"));
    for up in &order.readable {
        for (key, json) in store.values(run, up).map_err(read)? {
            order.values.push((up.clone(), key, json));
        }
    }
    for (key, bytes) in store.checkpoints(run, &task).map_err(read)? {
        order.checkpoints.push((key, wire::encode(&bytes)));
    }
    let payload = serde_json::to_vec(&order).map_err(|e| ScaleoutError::Invalid(e.to_string()))?;
    publish(shared, subject, id, payload).await
}

async fn publish(shared: &Shared, subject: &str, id: &str, payload: Vec<u8>) -> Result<(), ScaleoutError> {
    let message = PublishMessage::build().payload(payload.into()).message_id(id);
    let ack = shared.link.js.send_publish(subject.to_string(), message).await.map_err(|e| nats("publishing", e))?;
    ack.await.map_err(|e| nats("publishing", e))?;
    Ok(())
}

/// The outcome of attempt `id`; a cancel is passed on to its worker (which then reports
/// the attempt canceled).
async fn wait(
    shared: &Shared,
    id: &str,
    mut rx: oneshot::Receiver<Delivered>,
    cancel: &AtomicBool,
) -> Result<Delivered, ScaleoutError> {
    let mut told = false;
    loop {
        tokio::select! {
            outcome = &mut rx => {
                return outcome.map_err(|_| ScaleoutError::Invalid("the outcome listener stopped".into()));
            }
            _ = tokio::time::sleep(CANCEL_POLL), if !told => {
                if cancel.load(Ordering::Relaxed) {
                    told = true;
                    let subject = format!("{CANCEL_PREFIX}.{id}");
                    if let Err(e) = shared.link.client.publish(subject, bytes::Bytes::new()).await {
                        tracing::warn!(error = %e, id, "sending a cancel to the worker");
                    }
                }
            }
        }
    }
}

/// Upload a component once per process (the bucket is checked first).
async fn upload_component(shared: &Shared, hash: &str) -> Result<(), ScaleoutError> {
    let mut uploaded = shared.uploaded.lock().await;
    if uploaded.contains(hash) {
        return Ok(());
    }
    let path = shared.paths.lock().unwrap_or_else(PoisonError::into_inner).get(hash).cloned();
    let Some(path) = path else {
        return Err(ScaleoutError::Invalid(format!("component {hash} was not pinned by any run of this server")));
    };
    transfer::put_component(&shared.link.components, hash, &path).await?;
    uploaded.insert(hash.to_string());
    Ok(())
}

/// Make sure the route's durable consumer exists, with this server's lease.
async fn ensure_route(shared: &Shared, stream: &str, route: &str) -> Result<(), ScaleoutError> {
    let mut routes = shared.routes.lock().await;
    let key = (stream.to_string(), route.to_string());
    if routes.contains(&key) {
        return Ok(());
    }
    super::ensure_work_stream(&shared.link.js, stream).await?;
    let name = work_consumer(route);
    let filter_subject = work_subject(stream, route);
    let stream = shared.link.js.get_stream(stream).await.map_err(|e| nats(&format!("work stream {stream}"), e))?;
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject,
        ack_policy: AckPolicy::Explicit,
        ack_wait: shared.lease,
        max_deliver: MAX_DELIVER,
        max_ack_pending: -1,
        ..Default::default()
    };
    super::ensure_consumer(&stream, &name, config).await?;
    routes.insert(key);
    Ok(())
}

/// The staged-model mounts among `mounts` (`<staging>/model-<blake3>-<file>`, made by
/// `scheduler::models::mounts`), taken out: they travel by content instead.
fn take_models(cache: &CacheDir, mounts: &mut Vec<crate::spec::Mount>) -> Vec<wire::WireModel> {
    let mut models = Vec::new();
    mounts.retain(|m| {
        let model = m.host.parent().filter(|p| *p == cache.staging).and_then(|_| {
            let name = m.host.file_name()?.to_str()?.strip_prefix("model-")?;
            let (hash, file) = (name.get(..64)?, name.get(65..)?);
            Some(wire::WireModel { guest: m.guest.clone(), hash: hash.into(), file: file.into() })
        });
        models.extend(model.clone());
        model.is_none()
    });
    models
}

/// The tasks whose values an attempt may read.
fn readable_tasks(readable: &Readable) -> BTreeSet<String> {
    match readable {
        Readable::Nothing => BTreeSet::new(),
        Readable::Tasks(tasks) => tasks.clone(),
        Readable::UpstreamsOf { graph, task } => graph.upstreams_of(task).into_iter().collect(),
    }
}
