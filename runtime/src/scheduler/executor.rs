//! Where attempts run: the [`Executor`] seam between the coordinator and a sandbox.
//!
//! The coordinator hands an executor a [`PreparedAttempt`]: an owned description of one
//! attempt — the component by content hash, the execution spec after templating, limits,
//! grants, and upstream files by content — and gets an [`AttemptReport`] back. Nothing in
//! it points into the coordinator, so an executor may run it anywhere; [`LocalExecutor`]
//! runs it in this process's sandbox, offering `/in` from the blob store and collecting
//! `/out` into it. An executor never decides what an outcome means for the run.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::cache::{self, CacheDir, TreeManifest};
use crate::model::{Millis, RunId};
use crate::sandbox::{AttemptContext, Command, FailureKind, Limits, Outcome, Sandbox, Status, TaskContext, World};
use crate::secrets::Resolver;
use crate::spec::ExecSpec;
use crate::store::Store;
use crate::util::human_bytes;

use super::attempt::{self, AttemptInputs};

/// One attempt, ready to run anywhere.
#[derive(Debug, Clone)]
pub struct PreparedAttempt {
    pub run: RunId,
    /// What the guest's `run(context)` receives.
    pub task: TaskContext,
    /// Who started the run (secrets are revealed for them) and its workspace.
    pub principal: String,
    pub workspace: String,
    /// The run's logical start: what the guest's wall clock starts at.
    pub logical_start: Millis,
    /// blake3 (hex) of the component, and the world it was loaded as.
    pub component: String,
    pub world: World,
    /// The execution spec after templating (its params rendered).
    pub exec: ExecSpec,
    /// A command task's args, env (secret references still unrevealed) and stdin.
    pub command: Option<Command>,
    pub limits: Limits,
    /// Upstream tasks whose values it may read.
    pub readable: crate::sandbox::values::Readable,
    /// Direct upstream tasks' `/out` files, by content, offered read-only at `/in/<task>`.
    pub inputs: Vec<(String, TreeManifest)>,
    /// Offer an empty `/out` and collect what the attempt writes there.
    pub collect_out: bool,
    /// The most `/out` may hold, in bytes; `None`: unlimited.
    pub max_out: Option<u64>,
    /// Seed of every random source, for attempts that must be reproducible.
    pub seed: Option<[u8; 32]>,
    /// The task's production expectations, checked on `/out` when the attempt succeeds.
    pub expectations: Vec<crate::spec::expect::TaskExpectation>,
}

/// What an executor reports about an attempt.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: Outcome,
    /// The files a successful attempt wrote under `/out`, stored by content (`None`: none,
    /// or nothing collected); `Err`: why they could not be, and the attempt must fail.
    pub out: Result<Option<TreeManifest>, String>,
    /// The production expectations' results on `/out` (empty: none were checked).
    pub quality: Vec<crate::model::ExpectationResult>,
    /// Told once the attempt's end is durable in the run's journal (an executor elsewhere
    /// lets go of the outcome only then); `None`: nothing to tell.
    pub receipt: Option<Receipt>,
}

impl AttemptReport {
    /// An attempt that could not run at all.
    pub fn failed(kind: FailureKind, message: String) -> AttemptReport {
        AttemptReport {
            outcome: Outcome::failed(kind, message, Duration::ZERO),
            out: Ok(None),
            quality: Vec::new(),
            receipt: None,
        }
    }
}

/// What the coordinator calls once an attempt's end is durable (flushed with its journal).
#[derive(Clone)]
pub struct Receipt(Arc<dyn Fn() + Send + Sync>);

impl Receipt {
    pub fn new(durable: impl Fn() + Send + Sync + 'static) -> Receipt {
        Receipt(Arc::new(durable))
    }

    /// The attempt's end is durable.
    pub fn durable(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipt")
    }
}

/// The future an executor returns.
pub type Running = Pin<Box<dyn Future<Output = AttemptReport> + Send>>;

/// Runs prepared attempts. `cancel` set: stop the attempt promptly (it ends `Canceled`).
pub trait Executor: Send + Sync {
    fn execute(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running;

    /// A run's pinned components (name → file and blake3), told once per run before its
    /// attempts: an executor elsewhere ships the code by hash; this process's needs nothing.
    fn components_pinned(&self, _components: &std::collections::BTreeMap<String, crate::model::PinnedComponent>) {}

    /// Whether an attempt a previous process left running may still be running here (on a
    /// worker that keeps its outcome): then a resumed run adopts it ([`Executor::adopt`])
    /// instead of recording it interrupted and running it again. This process's sandbox
    /// died with the process: no.
    fn adopts(&self) -> bool {
        false
    }

    /// The outcome of `attempt`, dispatched by a previous process that died: waited for
    /// where it still is, run if it never left.
    fn adopt(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running {
        self.execute(attempt, cancel)
    }
}

/// Runs attempts in this process's sandbox.
pub struct LocalExecutor {
    pub(crate) sandbox: Arc<Sandbox>,
    /// Where upstream values are read and checkpoints kept.
    pub(crate) store: Arc<dyn Store>,
    pub(crate) secrets: Option<Arc<dyn Resolver>>,
    /// The blob store `/in` comes from and `/out` goes to; `None`: no files move.
    pub(crate) cache: Option<Arc<CacheDir>>,
}

impl Executor for LocalExecutor {
    fn execute(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running {
        let (sandbox, store, secrets, cache) =
            (self.sandbox.clone(), self.store.clone(), self.secrets.clone(), self.cache.clone());
        Box::pin(async move {
            let Some(component) = sandbox.loaded(&attempt.component, attempt.world) else {
                let message = format!("component {} is not loaded in this process", &attempt.component);
                return AttemptReport::failed(FailureKind::Host, message);
            };
            let files = match offer_files(cache.as_deref(), &attempt) {
                Ok(files) => files,
                Err(e) => return AttemptReport::failed(FailureKind::Host, format!("preparing the attempt: {e}")),
            };
            let context = AttemptContext {
                task: attempt.task,
                run: attempt.run,
                principal: attempt.principal,
                workspace: attempt.workspace,
                logical_start: crate::model::time_of(attempt.logical_start),
                cancel,
                store,
                secrets,
            };
            let given = AttemptInputs {
                params: attempt.exec.params.clone(),
                readable: attempt.readable,
                inputs: files.inputs,
                out: files.out.clone(),
                seed: attempt.seed,
            };
            let invocation = attempt::invocation(context, attempt.limits, &attempt.exec, given);
            let outcome = match attempt.command {
                Some(command) => sandbox.run_command(&component, invocation, command).await,
                None => sandbox.run(&component, invocation).await,
            };
            let success = matches!(outcome.status, Status::Success { .. });
            let quality = match (success, attempt.expectations.is_empty()) {
                (true, false) => check_quality(files.out.clone(), attempt.expectations).await,
                _ => Vec::new(),
            };
            let out = collect_out(cache.as_deref(), files.out, success, attempt.max_out);
            AttemptReport { outcome, out, quality, receipt: None }
        })
    }
}

/// The expectations' results on `out`, read off the async threads (a dataset may be large).
async fn check_quality(
    out: Option<PathBuf>,
    expectations: Vec<crate::spec::expect::TaskExpectation>,
) -> Vec<crate::model::ExpectationResult> {
    let names: Vec<_> = expectations.iter().map(|e| (e.expectation.clone(), e.on_failure, e.blocks.clone())).collect();
    let checking = tokio::task::spawn_blocking(move || crate::quality::task::check_out(out.as_deref(), &expectations));
    match checking.await {
        Ok(results) => results,
        // the check itself died (a bug): every expectation fails saying so
        Err(e) => names
            .into_iter()
            .map(|(x, on_failure, blocks)| crate::model::ExpectationResult {
                expectation: x.name,
                dataset: x.dataset,
                column: x.column,
                on_failure,
                success: false,
                observed: format!("the check stopped: {e}"),
                rows: Vec::new(),
                blocks,
            })
            .collect(),
    }
}

/// The directories an attempt sees: upstream files at `/in/<task>`, its own `/out`.
struct Offered {
    inputs: Vec<(String, PathBuf)>,
    out: Option<PathBuf>,
}

fn offer_files(cache: Option<&CacheDir>, attempt: &PreparedAttempt) -> Result<Offered, String> {
    let Some(cache) = cache else { return Ok(Offered { inputs: Vec::new(), out: None }) };
    let mut inputs = Vec::new();
    for (task, tree) in &attempt.inputs {
        inputs.push((task.clone(), materialize(cache, task, tree)?));
    }
    let out = attempt.collect_out.then(|| cache.out_dirs.take()).transpose()?;
    Ok(Offered { inputs, out })
}

/// Upstream `task`'s files in the staging area (made once per tree, by hard links).
fn materialize(cache: &CacheDir, task: &str, tree: &TreeManifest) -> Result<PathBuf, String> {
    let dir = cache.staging.join(format!("in-{}", tree.root));
    if dir.exists() {
        return Ok(dir);
    }
    // attempts of this process starting together may offer the same tree: each makes its
    // own copy, and the first rename wins
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache.staging.join(format!(".in-{}-{}-{seq}", tree.root, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    cache::materialize(&cache.blobs, tree, &tmp).map_err(|e| format!("offering /in/{task}: {e}"))?;
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.exists() {
            return Err(format!("offering /in/{task}: {e}"));
        }
    }
    Ok(dir)
}

/// Store what a successful attempt wrote under `/out` in the blob store, within `max`
/// bytes; give the directory back to its pool either way.
fn collect_out(
    cache: Option<&CacheDir>,
    dir: Option<PathBuf>,
    success: bool,
    max: Option<u64>,
) -> Result<Option<TreeManifest>, String> {
    let (Some(cache), Some(dir)) = (cache, dir) else { return Ok(None) };
    if !success {
        cache.out_dirs.give_back(dir);
        return Ok(None);
    }
    let tree = cache::store_tree(&cache.blobs, &dir).map_err(|e| format!("collecting /out: {e}"));
    match &tree {
        // the walk found nothing at all (a link or special file is an error): the guest is
        // gone, so the directory is still empty
        Ok(t) if t.entries.is_empty() && t.dirs.is_empty() => cache.out_dirs.give_back_empty(dir),
        _ => cache.out_dirs.give_back(dir),
    }
    let tree = tree?;
    if let Some(max) = max
        && tree.total_size() > max
    {
        return Err(format!(
            "wrote {} to /out, over the limit of {}",
            human_bytes(tree.total_size()),
            human_bytes(max)
        ));
    }
    Ok((!tree.entries.is_empty() || !tree.dirs.is_empty()).then_some(tree))
}
