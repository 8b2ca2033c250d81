//! One test in its own state: a temporary state directory (sled store, blob store, vault),
//! the bundle with the test's fixtures applied, the job run in this process, then its
//! assertions and golden files checked. The directory is deleted when the test ends.
//!
//! Owns what a test's runtime shares with the others (the sandbox, so compiled components,
//! and the sandbox slots, so the pooled instances are never over-committed) and what it
//! does not (everything durable). It must never write outside its temporary directory but
//! golden files under `--update-golden`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::stub::StubExecutor;
use super::{Failure, TEST_PRINCIPAL, TestReport, TestStatus, TestingError, check, golden};
use crate::cache::CacheDir;
use crate::model::{RunView, SystemClock};
use crate::sandbox::{MAX_CONCURRENT_INSTANCES, Sandbox};
use crate::scheduler::slots::{FairShare, Slots};
use crate::scheduler::{JobRequest, LocalExecutor, RunOptions, Runtime, open_store, open_vault};
use crate::secrets::{ScopeId, SecretString, Vault};
use crate::spec::expect::Expectation;
use crate::spec::suite::{Assertion, Check, TestSpec};
use crate::spec::{Bundle, LoadOptions, MountMode};
use crate::store::Store;

/// What every test's runtime shares.
#[derive(Clone)]
pub(super) struct Shared {
    sandbox: Arc<Sandbox>,
    slots: Arc<Slots>,
}

impl Shared {
    pub(super) fn new(sandbox: Arc<Sandbox>) -> Shared {
        let slots = Slots::new(MAX_CONCURRENT_INSTANCES as usize, FairShare::default(), Arc::new(SystemClock));
        Shared { sandbox, slots }
    }
}

/// A test's runtime over its own temporary state.
struct Isolated {
    rt: Runtime,
    cache: Arc<CacheDir>,
    dir: tempfile::TempDir,
}

fn isolate(shared: &Shared, test: &TestSpec, target: &str) -> Result<Isolated, TestingError> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-test-")
        .tempdir()
        .map_err(|e| TestingError::io(&std::env::temp_dir(), e))?;
    let state = dir.path().join("state");
    let sled = open_store(&state)?;
    let vault = Arc::new(open_vault(&sled, &state)?);
    if let Some(file) = &test.secrets_file {
        put_secrets(&vault, file, target)?;
    }
    let cache = Arc::new(CacheDir::open(&state, 4).map_err(|e| TestingError::io(&state, e))?);
    let store: Arc<dyn Store> = sled;
    let mut rt = Runtime::new(store.clone(), shared.sandbox.clone(), Arc::new(SystemClock));
    rt.secrets = Some(vault.clone());
    rt.vault = Some(vault.clone());
    rt.cache = Some(cache.clone());
    rt.slots = shared.slots.clone();
    let local =
        LocalExecutor { sandbox: shared.sandbox.clone(), store, secrets: Some(vault), cache: Some(cache.clone()) };
    rt.executor = Arc::new(StubExecutor { inner: Arc::new(local), stubs: test.stubs.clone(), cache: cache.clone() });
    Ok(Isolated { rt, cache, dir })
}

/// `[scope] key = "value"`: each sealed into the test's own vault, for its principal.
fn put_secrets(vault: &Vault, file: &Path, target: &str) -> Result<(), TestingError> {
    let err = |message: String| TestingError::Secrets { path: file.display().to_string(), message };
    let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
    for (scope, keys) in &table {
        let toml::Value::Table(keys) = keys else {
            return Err(err(format!("`{scope}` is not a table: write [{scope}] then key = \"value\" lines")));
        };
        let id = ScopeId::new(crate::secrets::DEFAULT_WORKSPACE, target, scope).map_err(|e| err(e.to_string()))?;
        vault.create_scope(TEST_PRINCIPAL, &id).map_err(|e| err(e.to_string()))?;
        for (key, value) in keys {
            let toml::Value::String(value) = value else {
                return Err(err(format!("{scope}.{key}: a secret value is a string")));
            };
            let value = SecretString::from(value.clone());
            vault.put(TEST_PRINCIPAL, &id, key, &value).map_err(|e| err(format!("{scope}.{key}: {e}")))?;
        }
    }
    Ok(())
}

/// The bundle with the test's mount fixtures in place of the tasks' own mounts. A
/// read-write object-storage mount with no fixture gets an empty directory under `scratch`
/// (the test's own): a test never writes to object storage.
fn with_fixtures(bundle: &Bundle, test: &TestSpec, scratch: &Path) -> Result<Bundle, TestingError> {
    let mut bundle = bundle.clone();
    if let Some(job) = bundle.jobs.get_mut(&test.job) {
        for task in &mut job.tasks {
            let fixtures = test.mounts.get(&task.key);
            for (n, mount) in task.exec.mounts.iter_mut().enumerate() {
                let host = match fixtures.and_then(|f| f.get(&mount.guest)) {
                    Some(host) => host.clone(),
                    None if mount.object.is_some() && mount.mode == MountMode::Rw => {
                        let dir = scratch.join("rw-objects").join(&task.key).join(n.to_string());
                        std::fs::create_dir_all(&dir).map_err(|e| TestingError::io(&dir, e))?;
                        dir
                    }
                    None => continue,
                };
                mount.host = host;
                mount.outside_roots = false;
                // a fixture directory stands in for an object-storage prefix too
                mount.object = None;
            }
        }
    }
    Ok(bundle)
}

/// Runs one test to its report. Errors are bad input or a run that could not be driven.
pub(super) async fn run_test(
    shared: &Shared,
    bundle: &Bundle,
    test: &TestSpec,
    update_golden: bool,
) -> Result<TestReport, TestingError> {
    let started = Instant::now();
    let target = super::target_of(bundle, test)?;
    // a test of another target than the one the bundle was read for sees that target's
    // variables (its paths, thresholds, URLs), as a run with `--target` would
    let reloaded;
    let bundle = match &bundle.resolved_target {
        Some(read_for) if *read_for != target => {
            let opts = LoadOptions { target: Some(target.clone()), ..LoadOptions::default() };
            reloaded = crate::spec::load_with(&bundle.file, &opts)?;
            &reloaded
        }
        _ => bundle,
    };
    let iso = isolate(shared, test, &target)?;
    let fixed = with_fixtures(bundle, test, iso.dir.path())?;
    let job = fixed.job(Some(&test.job))?;
    let request = JobRequest { bundle: &fixed, job, overrides: test.parameters.clone(), target: target.clone() };
    let options = RunOptions { principal: TEST_PRINCIPAL.into(), ..Default::default() };
    let view = iso.rt.run_job(request, &options).await.map_err(|e| TestingError::Run {
        file: bundle.file.display().to_string(),
        line: test.line,
        test: test.name.clone(),
        message: e.to_string(),
    })?;
    let mut failures: Vec<Failure> =
        test.asserts.iter().filter_map(|a| check::evaluate(a, &view, iso.rt.store().as_ref())).collect();
    let mut outs = Outs::default();
    failures.extend(expectations(bundle, test, &iso, &view, &mut outs)?);
    let mut golden_updates = Vec::new();
    for (task, path) in &test.golden {
        let out = outs.get(&iso, &view, task)?;
        if update_golden {
            golden_updates.push(golden::update(task, path, out.as_deref())?);
        } else if let Some(failure) = golden::compare(task, path, out.as_deref(), test.line)? {
            failures.push(failure);
        }
    }
    let status = if failures.is_empty() { TestStatus::Passed } else { TestStatus::Failed };
    Ok(TestReport {
        name: test.name.clone(),
        line: test.line,
        job: test.job.clone(),
        target,
        status,
        failures,
        run_id: view.run_id,
        run_result: view.result.map(|r| r.as_str().to_string()),
        elapsed_ms: started.elapsed().as_millis() as u64,
        golden_updates,
    })
}

/// Tasks' `/out` files, each materialised once.
#[derive(Default)]
struct Outs(BTreeMap<String, Option<PathBuf>>);

impl Outs {
    fn get(&mut self, iso: &Isolated, view: &RunView, task: &str) -> Result<Option<PathBuf>, TestingError> {
        if let Some(dir) = self.0.get(task) {
            return Ok(dir.clone());
        }
        let dir = out_dir(iso, view, task)?;
        self.0.insert(task.to_string(), dir.clone());
        Ok(dir)
    }
}

/// The test's expectations, one pass over each dataset for all of its expectations.
fn expectations(
    bundle: &Bundle,
    test: &TestSpec,
    iso: &Isolated,
    view: &RunView,
    outs: &mut Outs,
) -> Result<Vec<Failure>, TestingError> {
    let mut groups: BTreeMap<(&str, &str), Vec<(&Assertion, &Expectation)>> = BTreeMap::new();
    for a in &test.asserts {
        if let Check::Expect { task, expectation } = &a.check {
            groups.entry((task.as_str(), expectation.dataset.as_str())).or_default().push((a, expectation));
        }
    }
    let mut failures = Vec::new();
    for ((task, dataset), items) in groups {
        let line = items[0].0.line;
        let file = outs.get(iso, view, task)?.map(|dir| dir.join(dataset)).filter(|f| f.is_file());
        let Some(file) = file else {
            failures.push(Failure { line, message: format!("task `{task}`: /out has no `{dataset}`"), diff: None });
            continue;
        };
        let list: Vec<&Expectation> = items.iter().map(|(_, e)| *e).collect();
        let outcomes = super::expect::evaluate(&file, &list).map_err(|message| TestingError::Expectation {
            file: bundle.file.display().to_string(),
            line,
            test: test.name.clone(),
            message: message
                .replace(&format!("{}/", file.parent().map(|p| p.display().to_string()).unwrap_or_default()), ""),
        })?;
        for ((assertion, e), outcome) in items.iter().zip(outcomes).filter(|(_, o)| !o.success) {
            let column = e.column.as_deref().map(|c| format!(" column `{c}`")).unwrap_or_default();
            let mostly = e.mostly.map(|m| format!(" (mostly {m})")).unwrap_or_default();
            failures.push(Failure {
                line: assertion.line,
                message: format!("task `{task}` {dataset}: {}{column}: {}{mostly}", e.name, outcome.observed),
                diff: (!outcome.rows.is_empty()).then(|| outcome.rows.join("\n")),
            });
        }
    }
    Ok(failures)
}

/// The files `task` wrote to `/out` in its last attempt, materialised in the test's
/// directory; `None` when it wrote none.
fn out_dir(iso: &Isolated, view: &RunView, task: &str) -> Result<Option<PathBuf>, TestingError> {
    let artifacts = view
        .tasks
        .iter()
        .find(|t| t.key == task)
        .and_then(|t| t.attempts.last())
        .and_then(|a| a.cache.as_ref()?.artifacts.clone());
    let Some(hash) = artifacts else { return Ok(None) };
    let Some(manifest) = iso.cache.manifest(&hash) else {
        return Err(TestingError::Io { path: hash, message: format!("the /out manifest of `{task}` is missing") });
    };
    let dest = iso.dir.path().join("out").join(task);
    crate::cache::materialize(&iso.cache.blobs, &manifest, &dest).map_err(|e| TestingError::io(&dest, e))?;
    Ok(Some(dest))
}
