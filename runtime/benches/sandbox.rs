//! Sandbox figures: compile vs cached-artifact load of one component, and the
//! median time to instantiate and run a trivial task with a warm cache.
//!
//! Run with `cargo bench -p sluice --bench sandbox` after `scripts/setup`
//! (it uses tasks/target/wasm32-wasip2/release/fib.wasm).
#![allow(clippy::print_stdout)] // a benchmark's figures are its output

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::sandbox::{Invocation, LoadOrigin, Sandbox, SandboxConfig, Status};
use sluice::store::{SledStore, Store};

const RUNS: usize = 2_000;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let fib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tasks/target/wasm32-wasip2/release/fib.wasm");
    assert!(fib.is_file(), "{} missing: run scripts/setup first", fib.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SandboxConfig { cache_dir: Some(dir.path().join("components")) };

    let mut compile = Vec::new();
    let mut disk = Vec::new();
    for i in 0..5 {
        let cache = dir.path().join(format!("c{i}"));
        let fresh = Sandbox::new(SandboxConfig { cache_dir: Some(cache.clone()) }).expect("sandbox");
        let c = fresh.load_file(&fib).expect("load");
        assert_eq!(c.origin, LoadOrigin::Compiled);
        compile.push(c.load_time);
        let again = Sandbox::new(SandboxConfig { cache_dir: Some(cache) }).expect("sandbox");
        let d = again.load_file(&fib).expect("load");
        assert_eq!(d.origin, LoadOrigin::Disk);
        disk.push(d.load_time);
    }
    println!(
        "fib.wasm ({} KiB): compile median {:?}, cached-artifact load median {:?}",
        std::fs::metadata(&fib).unwrap().len() / 1024,
        median(compile),
        median(disk)
    );

    let sandbox = Sandbox::new(config).expect("sandbox");
    let component = sandbox.load_file(&fib).expect("load");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).expect("store"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let mut times = Vec::with_capacity(RUNS);
    rt.block_on(async {
        for i in 0..RUNS {
            let mut call = Invocation::new("fib", store.clone(), 1);
            call.grants.params.insert("n".into(), "10".into());
            let t = Instant::now();
            let outcome = sandbox.run(&component, call).await;
            times.push(t.elapsed());
            if i == 0 {
                assert!(matches!(outcome.status, Status::Success { .. }), "{outcome:?}");
            }
        }
    });
    let p90 = {
        let mut s = times.clone();
        s.sort();
        s[s.len() * 9 / 10]
    };
    println!("instantiate + run fib(10), warm cache, {RUNS} runs: median {:?}, p90 {:?}", median(times), p90);
}
