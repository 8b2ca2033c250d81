//! `sluice store check|backup|restore`: thin over `store::check` and `store::backup`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_RUN_FAILED, state};
use crate::cache::{BLOBS_DIR, BlobStore};
use crate::secrets::{KeySource, StateKey};
use crate::store::check::{self, SecretsCheck};
use crate::store::sled_secrets::SledSecretStore;
use crate::store::{SledStore, StoreError, backup};

/// The store directory inside the state directory.
const STORE_DIR: &str = "store";

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
    let dir = state::state_dir(state_arg, &std::env::current_dir()?);
    let blobs = || BlobStore::open(dir.join(BLOBS_DIR)).map_err(|e| anyhow::anyhow!("opening the blob store: {e}"));
    match cmd {
        StoreCommand::Check(args) => {
            let store = open(&dir)?;
            let blobs = blobs()?;
            let secrets = SledSecretStore::open(&store)?;
            let key = StateKey::new(&dir).load(false).map_err(|e| e.to_string());
            let report =
                check::check(&store, &store.run_ids()?, Some(&blobs), Some(SecretsCheck { store: &secrets, key }));
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "store {}: {} runs ({} events), {} cache entries, {} blobs, {} secret versions ({} opened)",
                    store.path().display(),
                    report.runs,
                    report.events,
                    report.cache_entries,
                    report.blobs,
                    report.secret_versions,
                    report.secrets_opened
                );
                report.notes.iter().for_each(|n| println!("note: {n}"));
                report.problems.iter().for_each(|p| println!("damaged: {}: {}", p.what, p.message));
                match report.problems.len() {
                    0 => println!("ok: nothing damaged"),
                    n => println!("{n} problems; `sluice store restore BACKUP` puts back a backup"),
                }
            }
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
        }
        StoreCommand::Backup(args) => {
            let store = open(&dir)?;
            let report = backup::backup(&store, Some(&blobs()?), &args.dest)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
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
            let report = backup::restore(&args.backup, &dir.join(STORE_DIR), Some(&blobs()?)).map_err(in_use)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "restored {} records and {} blobs from {} (written by {})",
                    report.store.records,
                    report.blobs.blobs,
                    args.backup.display(),
                    report.store.written_by
                );
                if let Some(old) = &report.store.replaced {
                    println!("the store it replaced is kept in {}", old.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The existing store of the state directory.
fn open(dir: &std::path::Path) -> anyhow::Result<SledStore> {
    if !dir.join(STORE_DIR).exists() {
        anyhow::bail!("no sluice state in {} (nothing has run there yet); pass --state DIR", dir.display());
    }
    SledStore::open(&dir.join(STORE_DIR)).map_err(in_use)
}

fn in_use(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Locked { .. } => anyhow::anyhow!("{e}: try again when it ends"),
        other => other.into(),
    }
}
