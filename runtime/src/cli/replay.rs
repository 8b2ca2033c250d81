//! `sluice test --from-run N [--task T] [--job J] [--save DIR] [--secrets-file FILE]`:
//! replay a recorded run's inputs against the current bundle (library:
//! [`crate::testing::replay`]), print the result as `sluice test` does, optionally save it
//! as a regression test. No verdict is recorded: a replay is not the bundle's suite.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::out::{errln, outln};
use super::test::{TestArgs, print, suite_options, write_atomically};
use super::{EXIT_RUN_FAILED, open};
use crate::cache::CacheDir;
use crate::spec::Bundle;
use crate::store::StoreError;
use crate::testing::{self, TestingError, replay};

pub fn replay(state_arg: Option<PathBuf>, args: &TestArgs, bundle: &Bundle) -> anyhow::Result<ExitCode> {
    let dir = open::state_dir(state_arg, &bundle.root);
    let run = args.from_run.context("--from-run")?;
    let secrets_file = match &args.secrets_file {
        Some(f) => Some(std::fs::canonicalize(f).with_context(|| format!("--secrets-file {}", f.display()))?),
        None => None,
    };
    let req = replay::ReplayRequest {
        run,
        task: args.task.clone(),
        job: args.job.clone(),
        secrets_file,
        copy_mounts: args.save.is_some(),
    };
    let name = replay::test_name(&req);
    let scratch = tempfile::Builder::new().prefix("sluice-replay-").tempdir().context("a temporary directory")?;
    let fixtures = match &args.save {
        Some(save) => {
            let fixtures = save.join(&name);
            if fixtures.exists() {
                std::fs::remove_dir_all(&fixtures).with_context(|| format!("replacing {}", fixtures.display()))?;
            }
            fixtures
        }
        None => scratch.path().to_path_buf(),
    };
    let built = read_run(&dir, bundle, &req, &fixtures)?;
    for note in &built.notes {
        errln!("note: {note}");
    }
    let saved = match &args.save {
        Some(save) => Some(replay::save(bundle, &built, save, run)?),
        None => None,
    };
    let options = suite_options(args, &dir);
    let hash = testing::bundle_hash(bundle)?;
    let report = open::tokio_runtime()?.block_on(testing::run_tests(bundle, vec![built.test], &options, hash))?;
    if let Some(file) = &args.junit {
        write_atomically(file, &testing::junit::render(&report))?;
    }
    let included = saved.as_ref().map(|_| included(bundle, &name));
    if args.json {
        let value = serde_json::json!({
            "report": report, "verdicts": [], "replay": { "run": run, "notes": built.notes, "saved": saved },
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print(&report, &[]);
        if let Some(file) = &saved {
            outln!("saved the replay as {} (test `{name}`)", file.display());
        }
    }
    if included == Some(false) {
        errln!(
            "note: the bundle does not include the saved file yet: add its directory to `include` (e.g. include = [\"tests/*.toml\"])"
        );
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
}

/// The run read from the state directory's store and blobs (the store is released before
/// anything runs).
fn read_run(
    dir: &Path,
    bundle: &Bundle,
    req: &replay::ReplayRequest,
    fixtures: &Path,
) -> anyhow::Result<replay::Replay> {
    if !dir.join(crate::scheduler::STORE_DIR).exists() {
        return Err(
            TestingError::Replay(format!("run {} does not exist: {} holds no runs", req.run, dir.display())).into()
        );
    }
    let sled = crate::scheduler::open_store(dir).map_err(|e| match e {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "replay: another sluice process owns {}; the replay reads the run from its store: stop it, or replay on a backup (`sluice store backup`)",
            dir.display()
        ),
        e => anyhow::Error::new(e),
    })?;
    let cache = CacheDir::open(dir, 1).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    Ok(replay::build(bundle, sled.as_ref(), &cache, req, fixtures)?)
}

/// Whether the bundle, read again, holds test `name` (from the saved file).
fn included(bundle: &Bundle, name: &str) -> bool {
    crate::spec::load(&bundle.file).is_ok_and(|b| b.tests.iter().any(|t| t.name == name))
}
