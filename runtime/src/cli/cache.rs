//! `sluice cache explain|gc` and `sluice verify`: requests to the state directory's
//! owner, which inspects content-hashed reruns.

use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_RUN_FAILED, open};
use crate::client::{BoxFuture, Client, ClientError};
use crate::model::{Clock as _, RunId};
use crate::scheduler::RuntimeOptions;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show a task's cache key parts; for a miss, what differs from the nearest earlier result.
    Explain(ExplainArgs),
    /// Forget old cache entries and delete blobs nothing references any more.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    pub run_id: RunId,
    pub task: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep only the newest N cache entries.
    #[arg(long)]
    pub keep: Option<usize>,
    /// Forget cache entries older than this (e.g. 30d, 12h).
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub run_id: RunId,
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Run `command` against the owner of the existing state directory.
fn with_owner<T: Send + 'static>(
    state_arg: Option<PathBuf>,
    command: impl for<'a> FnOnce(&'a dyn Client) -> BoxFuture<'a, Result<T, ClientError>> + Send + 'static,
) -> anyhow::Result<T> {
    let dir = open::existing_dir(state_arg)?;
    let options = open::owner_options(crate::secrets::DEFAULT_WORKSPACE, RuntimeOptions::default());
    open::with_session(&dir, options, move |session| Box::pin(async move { Ok(command(session.client()).await?) }))
}

pub fn cache(state_arg: Option<PathBuf>, cmd: CacheCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CacheCommand::Explain(args) => {
            let task = args.task.clone();
            let run = args.run_id;
            let e = with_owner(state_arg, move |c| c.explain(run, task))?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&e)?);
                return Ok(ExitCode::SUCCESS);
            }
            match (&e.key, &e.reused_from, &e.not_cached) {
                (_, _, Some(why)) => outln!("{}: never reused: {why}", e.task),
                (Some(key), Some(from), _) => {
                    outln!("{}: hit — key {} reused the result of {from}", e.task, &key[..16])
                }
                (Some(key), None, _) => {
                    outln!("{}: miss — key {}", e.task, &key[..16]);
                    match &e.nearest {
                        Some(near) => {
                            outln!("  nearest earlier result: {near}");
                            for d in &e.differences {
                                outln!("  {d}");
                            }
                        }
                        None => outln!("  no earlier result of this task to compare with"),
                    }
                }
                (None, _, _) => {
                    outln!("{}: no cache key was recorded (not a component or command task, or it never ran)", e.task)
                }
            }
            if let Some(parts) = &e.parts {
                outln!("  key parts:");
                outln!("    component  {}", parts.component);
                for (k, v) in &parts.params {
                    outln!("    param      {k} = {v}");
                }
                for (k, v) in &parts.inputs {
                    outln!("    input      {k} = {v}");
                }
                for m in &parts.mounts {
                    outln!("    mount      {} ({}) = {}", m.guest, m.mode, m.content);
                }
                for (k, v) in &parts.secrets {
                    outln!("    secret     {k} (version {v})");
                }
                for (k, v) in &parts.limits {
                    outln!("    limit      {k} = {v}");
                }
                outln!("    granted    {}", parts.capabilities.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Gc(args) => {
            if args.keep.is_none() && args.older_than.is_none() {
                anyhow::bail!(
                    "say what to forget: --keep N and/or --older-than DURATION (unreferenced blobs are always removed)"
                );
            }
            let now = crate::model::SystemClock.now_millis();
            let before = args.older_than.map(|d| now.saturating_sub(d.as_millis() as u64));
            let keep = args.keep;
            let g = with_owner(state_arg, move |c| c.gc(keep, before))?;
            let compiled = crate::sandbox::artifacts::user_cache_dir();
            let pruned = match &compiled {
                Some(dir) => crate::sandbox::artifacts::prune(
                    dir,
                    args.older_than,
                    crate::sandbox::artifacts::MAX_COMPILED_CACHE_BYTES,
                )?,
                None => Default::default(),
            };
            if args.json {
                let mut json = serde_json::to_value(&g)?;
                json["compiled"] = serde_json::to_value(&pruned)?;
                outln!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                if let Some(dir) = &compiled {
                    outln!(
                        "compiled components ({}): {} removed ({}), {} kept ({})",
                        dir.display(),
                        pruned.removed,
                        crate::util::human_bytes(pruned.bytes_freed),
                        pruned.kept,
                        crate::util::human_bytes(pruned.bytes_kept)
                    );
                }
                outln!(
                    "cache entries: {} removed, {} kept; blobs: {} removed ({}), {} kept",
                    g.removed_entries,
                    g.kept_entries,
                    g.removed_blobs,
                    crate::util::human_bytes(g.bytes_freed),
                    g.kept_blobs
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn verify(state_arg: Option<PathBuf>, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let task = args.task.clone();
    let run = args.run_id;
    let results = with_owner(state_arg, move |c| c.verify(run, task))?;
    let all_same = results.iter().all(|v| v.verdict != "different");
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let w = results.iter().map(|v| v.task.len()).max().unwrap_or(4);
        for v in &results {
            outln!("  {:<w$}  {:<9}  {}", v.task, v.verdict, v.detail);
        }
        outln!("run {}: {}", args.run_id, if all_same { "reproduced" } else { "NOT reproduced" });
    }
    Ok(if all_same { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
}
