//! The library used directly: the component cache's levels, checkpoints reaching the
//! durable store, and the journal's group commit as the store and an observer see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice::cache::{CacheEntry, Hash, KeyParts};
use sluice::model::{Event, RunId, RunSummary};
use sluice::sandbox::{Invocation, LoadOrigin, Sandbox, SandboxConfig, Status};
use sluice::scheduler::{JobRequest, Observer, RunOptions, Runtime};
use sluice::store::{SledStore, Store, StoreError};
use sluice_tests::{guest, task};

#[test]
fn components_are_compiled_once_then_reused_from_memory_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig { cache_dir: Some(dir.path().join("components")) };
    let first = Sandbox::new(config.clone()).unwrap();
    assert_eq!(first.load_file(&task("fib")).unwrap().origin, LoadOrigin::Compiled);
    assert_eq!(first.load_file(&task("fib")).unwrap().origin, LoadOrigin::Memory);
    let second = Sandbox::new(config).unwrap();
    let loaded = second.load_file(&task("fib")).unwrap();
    assert_eq!(loaded.origin, LoadOrigin::Disk);
    assert_eq!(loaded.hash, blake3::hash(&std::fs::read(task("fib")).unwrap()).to_hex().to_string());
}

#[tokio::test]
async fn a_saved_checkpoint_is_durable_when_the_guest_gets_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let probe = sandbox.load_file(&guest("probe")).unwrap();
    let mut call = Invocation::new("probe", store.clone(), 1);
    call.grants.params.insert("checkpoint".into(), "step-3".into());
    let outcome = sandbox.run(&probe, call).await;
    assert!(matches!(outcome.status, Status::Success { .. }), "{outcome:?}");
    drop(store);
    // reopened (in this process, so this does not prove the flush: failpoints.rs does)
    let reopened = SledStore::open(&dir.path().join("store")).unwrap();
    assert_eq!(reopened.load_checkpoint(1, "probe", "cp").unwrap().as_deref(), Some(&b"step-3"[..]));

    // the next attempt of the same task sees it
    let store: Arc<dyn Store> = Arc::new(reopened);
    let mut call = Invocation::new("probe", store, 1);
    call.context.task.attempt = 1;
    call.grants.params.insert("checkpoint".into(), "step-4".into());
    let outcome = sandbox.run(&probe, call).await;
    let Status::Success { output } = outcome.status else { panic!("{outcome:?}") };
    let output: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["checkpoint_before"], "step-3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runtime_opened_by_the_library_runs_many_runs_at_once() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<sluice::scheduler::Runtime>();

    let s = sluice_tests::Sluice::new();
    let dir = s.bundle(
        "lib",
        "[bundle]\nname = \"lib\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\nparameters = { n = \"10\" }\n\
         [[jobs.j.tasks]]\nkey = \"fib\"\ncomponent = \"fib\"\nparams = { n = \"{{ job.parameters.n }}\" }\n",
    );
    let bundle = sluice::spec::load(&dir).unwrap();
    let rt = sluice::scheduler::Runtime::open(&s.state(), Default::default()).unwrap();
    let start = |workspace: &str, n: &str| {
        let (rt, bundle) = (rt.clone(), bundle.clone());
        let opts = sluice::scheduler::RunOptions { workspace: workspace.into(), ..Default::default() };
        let overrides = [("n".to_string(), n.to_string())].into();
        tokio::spawn(async move {
            let job = bundle.job(None).unwrap();
            let req = sluice::scheduler::JobRequest { bundle: &bundle, job, overrides, target: "dev".into() };
            rt.run_job(req, &opts).await.unwrap()
        })
    };
    let (a, b) = (start("alpha", "10"), start("beta", "20"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(sluice::scheduler::succeeded(&a) && sluice::scheduler::succeeded(&b));
    assert_ne!(a.run_id, b.run_id);
    assert_eq!((a.workspace.as_str(), b.workspace.as_str()), ("alpha", "beta"));
    let output = |v: &sluice::model::RunView| v.tasks[0].attempts[0].output.clone().unwrap();
    assert_ne!(output(&a), output(&b), "each run its own parameters");
    assert_eq!(rt.view(a.run_id).unwrap(), a, "what the runtime returned is what it recorded");
}

/// One step the journal took, in the order the process took them.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Append(RunId, String),
    Flush,
    Observed(RunId, String),
    Returned,
}

type Steps = Arc<Mutex<Vec<Step>>>;

fn kind(event: &Event) -> String {
    serde_json::to_value(event).unwrap()["event"].as_str().unwrap().to_string()
}

/// The real sled store, each append and flush noted in `steps` as it happens.
struct Noting {
    inner: SledStore,
    steps: Steps,
}

impl Noting {
    fn note(&self, step: Step) {
        self.steps.lock().unwrap().push(step);
    }
}

impl Store for Noting {
    fn next_run_id(&self) -> Result<RunId, StoreError> {
        self.inner.next_run_id()
    }
    fn append(&self, run: RunId, events: &[Event]) -> Result<(), StoreError> {
        self.inner.append(run, events)?;
        events.iter().for_each(|e| self.note(Step::Append(run, kind(e))));
        Ok(())
    }
    fn events(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        self.inner.events(run)
    }
    fn put_summary(&self, summary: &RunSummary) -> Result<(), StoreError> {
        self.inner.put_summary(summary)
    }
    fn summary(&self, run: RunId) -> Result<Option<RunSummary>, StoreError> {
        self.inner.summary(run)
    }
    fn list_summaries(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        self.inner.list_summaries(limit)
    }
    fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        self.inner.unfinished_runs()
    }
    fn put_value(&self, run: RunId, task: &str, key: &str, json: &str) -> Result<(), StoreError> {
        self.inner.put_value(run, task, key, json)
    }
    fn value(&self, run: RunId, task: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.value(run, task, key)
    }
    fn values(&self, run: RunId, task: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.values(run, task)
    }
    fn save_checkpoint(&self, run: RunId, task: &str, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.inner.save_checkpoint(run, task, key, data)
    }
    fn load_checkpoint(&self, run: RunId, task: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.load_checkpoint(run, task, key)
    }
    fn checkpoints(&self, run: RunId, task: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.checkpoints(run, task)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()?;
        self.note(Step::Flush);
        Ok(())
    }
    fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        self.inner.put_cache_entry(entry)
    }
    fn cache_entry(&self, key: &Hash) -> Result<Option<CacheEntry>, StoreError> {
        self.inner.cache_entry(key)
    }
    fn cache_entries(&self) -> Result<Vec<CacheEntry>, StoreError> {
        self.inner.cache_entries()
    }
    fn remove_cache_entry(&self, key: &Hash) -> Result<(), StoreError> {
        self.inner.remove_cache_entry(key)
    }
    fn put_key_parts(&self, key: &Hash, parts: &KeyParts) -> Result<(), StoreError> {
        self.inner.put_key_parts(key, parts)
    }
    fn key_parts(&self, key: &Hash) -> Result<Option<KeyParts>, StoreError> {
        self.inner.key_parts(key)
    }
}

/// An observer noting, in the same `steps`, each event it is told about.
struct Watching(Steps);

impl Observer for Watching {
    fn event(&self, run: RunId, event: &Event) {
        self.0.lock().unwrap().push(Step::Observed(run, kind(event)));
    }
}

/// The journal's group commit, seen from outside: the observer (what progress, the live
/// board and the events stream show) is told of an event only after a flush that followed
/// its append; a child run starts only once its parent's `child_run_started` is flushed;
/// and the run's result is flushed before the run returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_flushes_before_it_shows_an_event_starts_a_child_run_or_returns_the_result() {
    let s = sluice_tests::Sluice::new();
    let dir = s.bundle(
        "journal",
        "[bundle]\nname = \"journal\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fib\"\nparams = { n = 5 }\n\
         [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"fib\"\ndepends_on = [\"a\"]\nparams = { n = 6 }\n\
         [[jobs.j.tasks]]\nkey = \"child\"\ndepends_on = [\"a\"]\nrun_job = { job = \"inner\" }\n\
         [jobs.inner]\n[[jobs.inner.tasks]]\nkey = \"c\"\ncomponent = \"fib\"\nparams = { n = 7 }\n",
    );
    let bundle = sluice::spec::load(&dir).unwrap();
    let steps: Steps = Arc::default();
    let store = Noting { inner: SledStore::open(&s.dir.path().join("store")).unwrap(), steps: steps.clone() };
    let sandbox = Arc::new(Sandbox::new(SandboxConfig::default()).unwrap());
    let rt = Runtime::new(Arc::new(store), sandbox, Arc::new(sluice::model::SystemClock));
    let opts = RunOptions { observer: Arc::new(Watching(steps.clone())), ..Default::default() };
    let job = bundle.job(Some("j")).unwrap();
    let req = JobRequest { bundle: &bundle, job, overrides: Default::default(), target: "dev".into() };
    let view = rt.run_job(req, &opts).await.unwrap();
    steps.lock().unwrap().push(Step::Returned);
    assert!(sluice::scheduler::succeeded(&view), "{view:?}");
    let steps = steps.lock().unwrap().clone();

    // the k-th event shown of a run is among its events appended before the last flush
    let (mut appended, mut durable, mut shown) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Append(run, _) => *appended.entry(*run).or_insert(0) += 1,
            Step::Flush => durable.clone_from(&appended),
            Step::Observed(run, event) => {
                let k = shown.entry(*run).or_insert(0);
                *k += 1;
                let flushed = durable.get(run).copied().unwrap_or(0);
                assert!(*k <= flushed, "step {i}: `{event}` of run {run} shown before it was flushed: {steps:#?}");
            }
            Step::Returned => {}
        }
    }
    let parent = view.run_id;
    assert!(shown[&parent] > 5 && shown.len() == 2, "both runs' events were shown: {steps:#?}");

    let at = |want: &dyn Fn(&Step) -> bool| steps.iter().position(want).unwrap_or_else(|| panic!("{steps:#?}"));
    let child_started = at(&|s| matches!(s, Step::Append(r, e) if *r == parent && e == "child_run_started"));
    let child_first = at(&|s| matches!(s, Step::Append(r, _) if *r != parent));
    assert!(
        steps[child_started..child_first].contains(&Step::Flush),
        "the child run's id is flushed before the child starts: {steps:#?}"
    );
    let finished = at(&|s| matches!(s, Step::Append(r, e) if *r == parent && e == "run_finished"));
    let returned = at(&|s| *s == Step::Returned);
    assert!(steps[finished..returned].contains(&Step::Flush), "the result is flushed before it returns: {steps:#?}");
}
