//! `sluice store check|backup|restore`: thin over `store::check` and `store::backup`;
//! `backup` goes through the state directory's owner (which copies while runs go on).

use super::out::outln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{EXIT_RUN_FAILED, open};
use crate::cache::{BLOBS_DIR, BlobStore};
use crate::scheduler::RuntimeOptions;
use crate::scheduler::{STORE_DIR, open_store};
use crate::secrets::DEFAULT_WORKSPACE;
use crate::secrets::{KeySource, StateKey};
use crate::store::check::{self, SecretsCheck};
use crate::store::sled_secrets::SledSecretStore;
use crate::store::{SledStore, backup};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Read everything in the store and report what is damaged (exit 1 if anything is).
    Check(JsonArg),
    /// Write a consistent copy of the store and its blobs into a new directory.
    Backup(BackupArgs),
    /// Replace the store with a backup's (adding its blobs); the old store is kept beside it.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A directory to create (it must not exist, or be empty).
    pub dest: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory written by `sluice store backup`.
    pub backup: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn store(state_arg: Option<PathBuf>, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    let blobs =
        |dir: &Path| BlobStore::open(dir.join(BLOBS_DIR)).map_err(|e| anyhow::anyhow!("opening the blob store: {e}"));
    match cmd {
        StoreCommand::Check(args) => {
            let (dir, store) = existing(state_arg)?;
            let blobs = blobs(&dir)?;
            let secrets = SledSecretStore::open(&store)?;
            let key = StateKey::new(&dir).load(false).map_err(|e| e.to_string());
            let inventory = store.inventory()?;
            let report = check::check(&*store, &inventory, Some(&blobs), Some(SecretsCheck { store: &secrets, key }));
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!(
                    "store {}: {} runs ({} events), {} cache entries, {} blobs, {} secret versions ({} opened)",
                    store.path().display(),
                    report.runs,
                    report.events,
                    report.cache_entries,
                    report.blobs,
                    report.secret_versions,
                    report.secrets_opened
                );
                report.notes.iter().for_each(|n| outln!("note: {n}"));
                report.problems.iter().for_each(|p| outln!("damaged: {}: {}", p.what, p.message));
                match report.problems.len() {
                    0 => outln!("ok: nothing damaged"),
                    n => outln!("{n} problems; `sluice store restore BACKUP` puts back a backup"),
                }
            }
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
        }
        StoreCommand::Backup(args) => {
            // through the owner (this process, if none runs): it copies while runs go on
            let dir = open::existing_dir(state_arg)?;
            let dest = std::path::absolute(&args.dest)?;
            let options = open::owner_options(DEFAULT_WORKSPACE, RuntimeOptions::default());
            let report = open::with_session(&dir, options, move |session| {
                Box::pin(async move { Ok(session.client().backup(dest).await?) })
            })?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!(
                    "backed up {} records and {} blobs ({}) to {}; the master key is not in it: keep it separately",
                    report.store.records,
                    report.blobs.blobs,
                    crate::util::human_bytes(report.store.bytes + report.blobs.bytes),
                    report.dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Restore(args) => {
            let dir = open::state_dir(state_arg, &std::env::current_dir()?);
            let report = backup::restore(&args.backup, &dir.join(STORE_DIR), Some(&blobs(&dir)?)).map_err(owned)?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!(
                    "restored {} records and {} blobs from {} (written by {})",
                    report.store.records,
                    report.blobs.blobs,
                    args.backup.display(),
                    report.store.written_by
                );
                if let Some(old) = &report.store.replaced {
                    outln!("the store it replaced is kept in {}", old.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The existing state directory (`--state`, else `.sluice` here) and its store, which
/// this command holds while it works (a run in progress holds it: the error says so).
fn existing(state_arg: Option<PathBuf>) -> anyhow::Result<(PathBuf, Arc<SledStore>)> {
    let dir = open::existing_dir(state_arg)?;
    let store = open_store(&dir).map_err(owned)?;
    Ok((dir, store))
}

/// Explain a store another process owns: `check` and `restore` read or replace the store
/// files themselves, so they need the state directory to themselves (`backup` does not:
/// the owner takes the copy).
fn owned(e: crate::store::StoreError) -> anyhow::Error {
    match e {
        crate::store::StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}: a sluice process owns this state directory (a run or `sluice serve`); \
             `sluice store check` and `sluice store restore` work on the store's files and need \
             the directory to themselves: stop that process, or wait for its runs to end \
             (`sluice store backup` works while it runs)"
        ),
        other => other.into(),
    }
}
