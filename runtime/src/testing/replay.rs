//! Replay as regression (`sluice test --from-run N`): a recorded run's inputs made into a
//! test of the *current* bundle — the run's job parameters, its upstream tasks' values,
//! outputs and `/out` files (from the blob store, by content) and its read-only mounts
//! (checked by content against the Merkle roots its cache keys recorded).
//!
//! Without a task the whole job runs against those inputs and must succeed; with a task
//! only that task runs, every other component or command task stubbed with what the run
//! recorded for it. The result is a [`TestSpec`] run like any other test (in its own
//! isolated state), and [`save`] writes it as a committed regression test: a
//! `[[tests]]` file plus the fixture files it names.
//!
//! It must never write to the production state it reads (the store is only read, blobs
//! only copied out), never copy a production secret (a replayed task that reads secrets
//! gets test-only values from a secrets file, or the replay is refused), and never hand a
//! replayed task a read-write mount of production data (it gets a copy).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::TestingError;
use crate::cache::{self, CacheDir, Hash};
use crate::model::{RunId, RunPlan, RunView, TaskResult};
use crate::spec::suite::{Assertion, Check, Stub, TestSpec};
use crate::spec::{Bundle, JobSpec, MountMode, TaskKind};
use crate::state::RunState;
use crate::store::Store;

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayRequest {
    pub run: RunId,
    /// Only this task runs; the others are stubbed with what the run recorded.
    pub task: Option<String>,
    /// The job the run must be of (a guard against replaying the wrong run).
    pub job: Option<String>,
    /// Test-only secret values (`[scope] key = "value"`) for replayed tasks that read secrets.
    pub secrets_file: Option<PathBuf>,
    /// Copy read-only mounts into the fixtures too (for a saved test); read-write mounts
    /// are always copied.
    pub copy_mounts: bool,
}

/// A replay made into a test.
#[derive(Debug, Clone)]
pub struct Replay {
    pub test: TestSpec,
    /// What the replay could not reproduce exactly, or did differently (said to the user).
    pub notes: Vec<String>,
}

fn bad(message: impl Into<String>) -> TestingError {
    TestingError::Replay(message.into())
}

/// The test name of a replay.
pub fn test_name(req: &ReplayRequest) -> String {
    match &req.task {
        Some(task) => format!("replay-run-{}-{task}", req.run),
        None => format!("replay-run-{}", req.run),
    }
}

/// Reads run `req.run` from `store` and `cache` and makes it a test of `bundle`, writing
/// the fixture files it needs under `fixtures`.
pub fn build(
    bundle: &Bundle,
    store: &dyn Store,
    cache: &CacheDir,
    req: &ReplayRequest,
    fixtures: &Path,
) -> Result<Replay, TestingError> {
    let run = req.run;
    let events = store.events(run)?;
    if events.is_empty() {
        return Err(bad(format!("run {run} does not exist in this state directory")));
    }
    let state = RunState::from_events(&events).map_err(|e| bad(format!("run {run}: its log is corrupt: {e}")))?;
    let plan = state.plan().cloned().ok_or_else(|| bad(format!("run {run} has no recorded plan")))?;
    let view = state.into_view();
    check_run(bundle, &plan, &view, req)?;
    let job = bundle.jobs.get(&view.job).ok_or_else(|| {
        bad(format!("run {run} is of job `{}`, which bundle `{}` no longer has", view.job, bundle.name))
    })?;
    if let Some(task) = &req.task
        && (view.task(task).is_none() || job.task(task).is_none())
    {
        let known: Vec<&str> = job.tasks.iter().map(|t| t.key.as_str()).collect();
        let known = known.join(", ");
        return Err(bad(format!("run {run} (job `{}`) has no task `{task}`; tasks: {known}", view.job)));
    }
    bundle.target(Some(&view.target)).map_err(|e| bad(format!("run {run} ran on target `{}`: {e}", view.target)))?;
    let runs: Vec<&str> = match &req.task {
        Some(task) => vec![task.as_str()],
        None => job.tasks.iter().map(|t| t.key.as_str()).collect(),
    };
    let mut notes = Vec::new();
    secrets_needed(job, &runs, req)?;
    let mounts = mount_fixtures(store, cache, &plan, &view, job, &runs, req, fixtures, &mut notes)?;
    let stubs = match &req.task {
        Some(task) => stubs(store, cache, &view, job, task, fixtures, &mut notes)?,
        None => BTreeMap::new(),
    };
    let parameters = view.parameters.iter().filter(|(k, _)| job.parameters.contains_key(*k));
    let check = match &req.task {
        Some(task) => Check::TaskResult { task: task.clone(), result: "success".into() },
        None => Check::Run { result: "success".into() },
    };
    let test = TestSpec {
        name: test_name(req),
        line: 0,
        job: view.job.clone(),
        target: Some(view.target.clone()),
        parameters: parameters.map(|(k, v)| (k.clone(), v.clone())).collect(),
        mounts,
        secrets_file: req.secrets_file.clone(),
        stubs,
        golden: BTreeMap::new(),
        asserts: vec![Assertion { line: 0, check }],
    };
    Ok(Replay { test, notes })
}

/// The run is of this bundle, of the job asked for, and finished.
fn check_run(bundle: &Bundle, plan: &RunPlan, view: &RunView, req: &ReplayRequest) -> Result<(), TestingError> {
    let run = req.run;
    if !plan.bundle.is_empty() && plan.bundle != bundle.name {
        return Err(bad(format!("run {run} is a run of bundle `{}`, not of `{}`", plan.bundle, bundle.name)));
    }
    if let Some(job) = &req.job
        && *job != view.job
    {
        return Err(bad(format!("run {run} is a run of job `{}`, not of `{job}`", view.job)));
    }
    if plan.parent.is_some() {
        return Err(bad(format!("run {run} is a child run (run_job); replay its parent run instead")));
    }
    if view.result.is_none() {
        return Err(bad(format!("run {run} has not finished")));
    }
    Ok(())
}

/// Replayed tasks that read secrets need test-only values: production's are never copied.
fn secrets_needed(job: &JobSpec, runs: &[&str], req: &ReplayRequest) -> Result<(), TestingError> {
    if req.secrets_file.is_some() {
        return Ok(());
    }
    if let Some(task) = job.tasks.iter().find(|t| runs.contains(&t.key.as_str()) && !t.exec.secrets.is_empty()) {
        return Err(bad(format!(
            "task `{}` reads secrets ({}); a replay never copies production secrets: \
             pass --secrets-file FILE with test-only values ([scope] key = \"value\")",
            task.key,
            task.exec.secrets.join(", ")
        )));
    }
    Ok(())
}

/// The key parts' mount contents (guest → Merkle root hex) of `task`'s last attempt that
/// recorded a cache key, or why there are none.
fn recorded_mounts(store: &dyn Store, view: &RunView, task: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(tv) = view.task(task) else { return Err("it is not in the run".into()) };
    let info = tv.attempts.iter().rev().find_map(|a| a.cache.as_ref().filter(|c| c.key.is_some()));
    let Some(info) = info else {
        let why = tv.attempts.iter().rev().find_map(|a| a.cache.as_ref()?.not_cached.clone());
        return Err(why.map_or("it never ran".into(), |w| format!("it is never cached: {w}")));
    };
    let key = info.key.as_deref().and_then(|k| k.parse::<Hash>().ok()).ok_or("its cache key is unreadable")?;
    let parts = store.key_parts(&key).map_err(|e| e.to_string())?.ok_or("its cache key's parts are gone")?;
    Ok(parts.mounts.into_iter().map(|m| (m.guest, m.content)).collect())
}

/// For every replayed task's mount: the run's host directory, checked by content against
/// what the run read (refused when it changed), offered as a fixture (copied when asked,
/// and always for read-write mounts).
#[allow(clippy::too_many_arguments)]
fn mount_fixtures(
    store: &dyn Store,
    cache: &CacheDir,
    plan: &RunPlan,
    view: &RunView,
    job: &JobSpec,
    runs: &[&str],
    req: &ReplayRequest,
    fixtures: &Path,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, BTreeMap<String, PathBuf>>, TestingError> {
    let mut out: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for task in job.tasks.iter().filter(|t| runs.contains(&t.key.as_str()) && !t.exec.mounts.is_empty()) {
        let Some(recorded_spec) = plan.job.task(&task.key) else {
            notes.push(format!("task `{}` is new since run {}: its mounts are used as they are", task.key, req.run));
            continue;
        };
        let recorded = recorded_mounts(store, view, &task.key);
        for (i, mount) in task.exec.mounts.iter().enumerate() {
            let Some(then) = recorded_spec.exec.mounts.iter().find(|m| m.guest == mount.guest) else {
                notes.push(format!("task `{}`: mount {} is new since the run; used as it is", task.key, mount.guest));
                continue;
            };
            let source = match then.object {
                None => then.host.clone(),
                Some(_) => match staged_object(cache, &recorded, &task.key, then, req.run)? {
                    Some(dir) => dir,
                    None => {
                        let (key, guest) = (&task.key, &then.guest);
                        notes.push(format!(
                            "task `{key}`: read-write object-storage mount {guest} is replayed on an empty \
                             directory (nothing is uploaded)"
                        ));
                        continue;
                    }
                },
            };
            let root = cache::snapshot(&source)
                .map_err(|e| bad(format!("task `{}` mount {} ({}): {e}", task.key, then.guest, source.display())))?
                .root
                .to_string();
            match (&recorded, then.mode) {
                (Ok(contents), MountMode::Ro) => match contents.get(&then.guest) {
                    Some(content) if *content != root => {
                        return Err(bad(format!(
                            "task `{}` mount {} ({}) changed since run {}: it read content {}…, the directory now \
                             holds {}…; the run's input is no longer there to replay",
                            task.key,
                            then.guest,
                            then.host.display(),
                            req.run,
                            &content[..12.min(content.len())],
                            &root[..12]
                        )));
                    }
                    Some(_) => {}
                    None => notes.push(format!("task `{}`: mount {} has no recorded content", task.key, then.guest)),
                },
                (Err(why), MountMode::Ro) => notes.push(format!(
                    "task `{}`: the content of mount {} is not recorded ({why}); replayed with its current content",
                    task.key, then.guest
                )),
                (_, MountMode::Rw) => notes.push(format!(
                    "task `{}`: read-write mount {} is replayed on a copy of its current content",
                    task.key, then.guest
                )),
            }
            let host = if req.copy_mounts || then.mode == MountMode::Rw {
                let dest = fixtures.join("mounts").join(&task.key).join(i.to_string());
                copy_dir(&source, &dest)?;
                dest
            } else {
                source
            };
            out.entry(task.key.clone()).or_default().insert(mount.guest.clone(), host);
        }
    }
    Ok(out)
}

/// The directory holding what a read-only object-storage mount staged for the run (the
/// state's `staging/obj-<root>`, by the content its cache key recorded); `None` for a
/// read-write one (it gets an empty directory); an error when the staged tree is gone.
fn staged_object(
    cache: &CacheDir,
    recorded: &Result<BTreeMap<String, String>, String>,
    task: &str,
    then: &crate::spec::Mount,
    run: RunId,
) -> Result<Option<PathBuf>, TestingError> {
    if then.mode == MountMode::Rw {
        return Ok(None);
    }
    let url = then.object.as_ref().map(|o| o.url.as_str()).unwrap_or_default();
    let what = format!("task `{task}` mount {} ({url})", then.guest);
    let root = match recorded {
        Ok(contents) => contents.get(&then.guest).ok_or_else(|| bad(format!("{what}: no recorded content")))?,
        Err(why) => return Err(bad(format!("{what}: the content run {run} read is not recorded ({why})"))),
    };
    let dir = cache.staging.join(format!("obj-{root}"));
    if !dir.is_dir() {
        return Err(bad(format!(
            "{what}: the objects run {run} read (content {}…) are no longer staged in this state directory; \
             the run's input is no longer there to replay",
            &root[..12.min(root.len())]
        )));
    }
    Ok(Some(dir))
}

/// Every component or command task but `only`, stubbed with what the run recorded: its
/// values, output and `/out` files. Upstreams of `only` must have succeeded.
#[allow(clippy::too_many_arguments)]
fn stubs(
    store: &dyn Store,
    cache: &CacheDir,
    view: &RunView,
    job: &JobSpec,
    only: &str,
    fixtures: &Path,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, Stub>, TestingError> {
    let run = view.run_id;
    let upstream = ancestors(job, only);
    let mut out = BTreeMap::new();
    for task in job.tasks.iter().filter(|t| t.key != only) {
        if !matches!(task.kind, TaskKind::Component { .. } | TaskKind::Command(_)) {
            continue;
        }
        let Some(tv) = view.task(&task.key) else {
            notes.push(format!("task `{}` is new since run {run}: it runs", task.key));
            continue;
        };
        let success = tv.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success));
        let Some(attempt) = success.or(tv.attempts.last()) else {
            if upstream.contains(task.key.as_str()) {
                return Err(bad(format!(
                    "task `{}` (upstream of `{only}`) never ran in run {run}: nothing recorded to stub it with",
                    task.key
                )));
            }
            out.insert(
                task.key.clone(),
                Stub { values: BTreeMap::new(), output: serde_json::Value::Null, files: None },
            );
            continue;
        };
        if success.is_none() && upstream.contains(task.key.as_str()) {
            return Err(bad(format!(
                "task `{}` (upstream of `{only}`) did not succeed in run {run}: `{only}` never ran on its output",
                task.key
            )));
        }
        let values = store
            .values(run, &task.key)?
            .into_iter()
            .map(|(k, json)| (k, serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json))))
            .collect();
        let output = attempt.output.as_deref().map_or(serde_json::Value::Null, |o| {
            serde_json::from_str(o).unwrap_or_else(|_| serde_json::Value::String(o.to_string()))
        });
        let files = match attempt.cache.as_ref().and_then(|c| c.artifacts.as_deref()) {
            Some(hash) => Some(materialize(cache, hash, &task.key, run, &fixtures.join("stubs").join(&task.key))?),
            None => None,
        };
        out.insert(task.key.clone(), Stub { values, output, files });
    }
    Ok(out)
}

/// The tasks `task` depends on, however far upstream.
fn ancestors<'a>(job: &'a JobSpec, task: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = job.task(task).into_iter().flat_map(|t| t.upstream_keys()).collect();
    while let Some(key) = todo.pop() {
        if let Some(spec) = job.task(key)
            && seen.insert(spec.key.as_str())
        {
            todo.extend(spec.upstream_keys());
        }
    }
    seen
}

/// `/out` files recorded as manifest `hash`, written to `dest`.
fn materialize(cache: &CacheDir, hash: &str, task: &str, run: RunId, dest: &Path) -> Result<PathBuf, TestingError> {
    let gone = |why: String| {
        bad(format!(
            "the /out files task `{task}` wrote in run {run} are no longer stored ({why}); were they garbage-collected (`sluice cache gc`)?"
        ))
    };
    let manifest =
        cache.manifest(hash).ok_or_else(|| gone(format!("manifest {}… missing", &hash[..12.min(hash.len())])))?;
    cache::materialize(&cache.blobs, &manifest, dest).map_err(|e| gone(e.to_string()))?;
    Ok(dest.to_path_buf())
}

/// Copies the files under `from` to `to` (directories created, symlinks refused).
fn copy_dir(from: &Path, to: &Path) -> Result<(), TestingError> {
    std::fs::create_dir_all(to).map_err(|e| TestingError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| TestingError::io(from, e))? {
        let entry = entry.map_err(|e| TestingError::io(from, e))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| TestingError::io(&src, e))?;
        if kind.is_dir() {
            copy_dir(&src, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dest).map_err(|e| TestingError::io(&src, e))?;
        } else {
            return Err(bad(format!("{}: only files and directories are copied into a replay", src.display())));
        }
    }
    Ok(())
}

/// Writes `replay` as a committed regression test: `DIR/NAME.toml` (one `[[tests]]`
/// entry, for the bundle's `include`) naming fixtures under `DIR/NAME/` (where [`build`]
/// was told to write them) and the stubs' recorded values and outputs as
/// `DIR/NAME/stubs/TASK.json`. Every path it names must lie inside the bundle root.
pub fn save(bundle: &Bundle, replay: &Replay, dir: &Path, run: RunId) -> Result<PathBuf, TestingError> {
    let root = std::fs::canonicalize(&bundle.root).map_err(|e| TestingError::io(&bundle.root, e))?;
    std::fs::create_dir_all(dir).map_err(|e| TestingError::io(dir, e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| TestingError::io(dir, e))?;
    let rel = |path: &Path, what: &str| -> Result<String, TestingError> {
        let path = std::fs::canonicalize(path).map_err(|e| TestingError::io(path, e))?;
        let inside = path.strip_prefix(&root).map_err(|_| {
            bad(format!(
                "{what} {} is outside the bundle root {}: a saved test names files of the bundle",
                path.display(),
                root.display()
            ))
        })?;
        Ok(q(&inside.to_string_lossy().replace('\\', "/")))
    };
    let test = &replay.test;
    let name = &test.name;
    let mut text = format!(
        "# A replay of run {run} (job `{}`), saved by `sluice test --from-run {run} --save`:\n\
         # the run's inputs as fixtures, so `sluice test` re-runs it without the production state.\n\
         [[tests]]\nname = {}\njob = {}\n",
        test.job,
        q(name),
        q(&test.job)
    );
    if let Some(target) = &test.target {
        text.push_str(&format!("target = {}\n", q(target)));
    }
    let params: Vec<String> = test.parameters.iter().map(|(k, v)| format!("{} = {}", q(k), q(v))).collect();
    if !params.is_empty() {
        text.push_str(&format!("parameters = {{ {} }}\n", params.join(", ")));
    }
    if let Some(file) = &test.secrets_file {
        text.push_str(&format!("secrets_file = {}\n", rel(file, "the secrets file")?));
    }
    let mut mounts = Vec::new();
    for (task, guests) in &test.mounts {
        let each: Result<Vec<String>, TestingError> =
            guests.iter().map(|(g, host)| Ok(format!("{} = {}", q(g), rel(host, "the mount fixture")?))).collect();
        mounts.push(format!("{} = {{ {} }}", q(task), each?.join(", ")));
    }
    if !mounts.is_empty() {
        text.push_str(&format!("mounts = {{ {} }}\n", mounts.join(", ")));
    }
    let stubs_dir = dir.join(name).join("stubs");
    let mut stubs = Vec::new();
    for (task, stub) in &test.stubs {
        let json = stubs_dir.join(format!("{task}.json"));
        std::fs::create_dir_all(&stubs_dir).map_err(|e| TestingError::io(&stubs_dir, e))?;
        let body = serde_json::json!({ "values": stub.values, "output": stub.output });
        let pretty = serde_json::to_string_pretty(&body).map_err(|e| TestingError::io(&json, e))?;
        std::fs::write(&json, pretty + "\n").map_err(|e| TestingError::io(&json, e))?;
        let mut entry = format!("json = {}", rel(&json, "the stub file")?);
        if let Some(files) = &stub.files {
            entry.push_str(&format!(", files = {}", rel(files, "the stub's files")?));
        }
        stubs.push(format!("{} = {{ {entry} }}", q(task)));
    }
    if !stubs.is_empty() {
        text.push_str(&format!("stub = {{ {} }}\n", stubs.join(", ")));
    }
    let asserts: Vec<String> = test
        .asserts
        .iter()
        .map(|a| match &a.check {
            Check::TaskResult { task, result } => format!("{{ task = {}, result = {} }}", q(task), q(result)),
            Check::Run { result } => format!("{{ run = {} }}", q(result)),
            _ => String::new(),
        })
        .filter(|a| !a.is_empty())
        .collect();
    text.push_str(&format!("assert = [{}]\n", asserts.join(", ")));
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).map_err(|e| TestingError::io(&file, e))?;
    Ok(file)
}

/// A TOML basic string (JSON's escapes are TOML's).
fn q(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
