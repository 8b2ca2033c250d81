//! The library used directly: the component cache's levels and checkpoints
//! reaching the durable store.

use std::sync::Arc;

use sluice::sandbox::{Invocation, LoadOrigin, Sandbox, SandboxConfig, Status};
use sluice::store::{SledStore, Store};
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
    // reopen: the checkpoint was flushed before `save` returned to the guest
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
