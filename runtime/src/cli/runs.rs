//! `sluice runs list|show|cancel|resume|repair`.

use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open::tokio_runtime;
use super::run::{finish, finish_resumes, start_resumes};
use super::{open, parse_param, print};
use crate::model::{RunId, RunStatus, RunSummary, RunView};
use crate::scheduler::{RepairRequest, RunOptions, RuntimeOptions};
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List recent runs, newest first.
    List(ListArgs),
    /// Show one run: its task graph, states, attempts, outputs and logs.
    Show(IdArgs),
    /// Cancel a run (from another terminal while it runs, or one left unfinished).
    Cancel(IdArgs),
    /// Continue runs a stopped process left unfinished (all of them, or one).
    Resume(ResumeArgs),
    /// Rerun the failed tasks of a finished run (or named ones) inside the same run.
    Repair(RepairArgs),
}

/// A run as `runs list` shows it: its summary and whether it is running, interrupted or
/// finished.
#[derive(Debug, serde::Serialize)]
pub(super) struct Listed {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub status: RunStatus,
}

/// The tenant namespace a command works in: runs of other workspaces are invisible.
#[derive(Debug, Args)]
pub struct WorkspaceArg {
    /// Workspace (tenant namespace) whose runs to see.
    #[arg(long = "workspace", default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub name: String,
}

impl WorkspaceArg {
    /// Refuse a run of another workspace as if it did not exist.
    fn check(&self, view: &RunView) -> anyhow::Result<()> {
        if view.workspace != self.name {
            anyhow::bail!("no run {} in workspace `{}`", view.run_id, self.name);
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub workspace: WorkspaceArg,
}

/// One run of the current workspace.
#[derive(Debug, Args)]
pub struct IdArgs {
    pub run_id: RunId,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub workspace: WorkspaceArg,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to resume (default: every unfinished run).
    pub run_id: Option<RunId>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub workspace: WorkspaceArg,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    pub run_id: RunId,
    /// A task to rerun (repeatable; default: every task that did not succeed). `KEY[i]`
    /// reruns iteration i of for_each task KEY, `KEY[*]` all its iterations; a for_each
    /// otherwise reruns only the iterations that did not succeed.
    #[arg(long = "task", value_name = "KEY")]
    pub tasks: Vec<String>,
    /// Also rerun every task downstream of the named ones.
    #[arg(long)]
    pub with_dependents: bool,
    /// Override a job parameter for the repair: --param key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Rerun the tasks even when an identical earlier result could be reused.
    #[arg(long)]
    pub no_cache: bool,
    /// Repair with the plan the run has (its own, or its last repair's) instead of reading
    /// the bundle again; its components must be unchanged.
    #[arg(long)]
    pub pinned: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub workspace: WorkspaceArg,
}

pub fn runs(state_arg: Option<PathBuf>, cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List(args) => list(state_arg, args),
        RunsCommand::Show(args) => show(state_arg, args),
        RunsCommand::Cancel(args) => cancel(&open::existing_dir(state_arg)?, args),
        RunsCommand::Resume(args) => {
            let rt = open::runtime(&open::existing_dir(state_arg)?, RuntimeOptions::default())?;
            let opts = open::run_options(&args.workspace.name, args.json, 8);
            let tokio = tokio_runtime()?;
            let views = match args.run_id {
                Some(id) => {
                    args.workspace.check(&rt.view(id)?)?;
                    vec![tokio.block_on(rt.resume(id, &opts))?]
                }
                None => {
                    let resumed = start_resumes(&rt, &tokio, &opts, args.json)?;
                    tokio.block_on(finish_resumes(resumed)).into_iter().collect::<anyhow::Result<_>>()?
                }
            };
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                outln!("no unfinished runs");
            }
            for view in views.iter().filter(|_| !args.json) {
                outln!("{}", print::run_line(view));
            }
            let ok = views.iter().all(crate::scheduler::succeeded);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_RUN_FAILED) })
        }
        RunsCommand::Repair(args) => {
            let dir = open::existing_dir(state_arg)?;
            let rt = open::runtime(&dir, RuntimeOptions::default())?;
            args.workspace.check(&rt.view(args.run_id)?)?;
            let opts = RunOptions { no_cache: args.no_cache, ..open::run_options(&args.workspace.name, args.json, 8) };
            let req = RepairRequest {
                tasks: args.tasks,
                with_dependents: args.with_dependents,
                overrides: args.params.into_iter().collect(),
                pinned: args.pinned,
                bundle: None,
            };
            let view = tokio_runtime()?.block_on(rt.repair(args.run_id, req, &opts))?;
            finish(&view, args.json, &dir)
        }
    }
}

/// Cancel: through a request file when another process runs it, directly otherwise.
fn cancel(dir: &std::path::Path, args: IdArgs) -> anyhow::Result<ExitCode> {
    match crate::scheduler::open_store(dir) {
        Err(StoreError::Locked { .. }) => {
            crate::scheduler::control(dir).request_cancel(args.run_id, &args.workspace.name)?;
            outln!("cancel requested: the sluice process running run {} stops it", args.run_id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
        Ok(store) => {
            drop(store);
            let rt = open::runtime(dir, RuntimeOptions::default())?;
            let view = rt.view(args.run_id)?;
            args.workspace.check(&view)?;
            if let Some(r) = view.result {
                anyhow::bail!("run {} already finished ({})", args.run_id, r.as_str());
            }
            let opts = open::run_options(&args.workspace.name, args.json, 8);
            let view = tokio_runtime()?.block_on(rt.cancel_interrupted(args.run_id, &opts))?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                outln!("{}", print::run_line(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(state_arg: Option<PathBuf>, args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = open::existing_store(&open::existing_dir(state_arg)?)?;
    let runs: Vec<_> = store
        .list_summaries(usize::MAX)?
        .into_iter()
        .filter(|r| r.workspace == args.workspace.name)
        .take(args.limit)
        .collect();
    // this process holds the store: no other runs anything, so an unfinished run's
    // process died (it is interrupted until something resumes it)
    let listed: Vec<Listed> =
        runs.into_iter().map(|summary| Listed { status: RunStatus::of(summary.result, false), summary }).collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        print::run_list(&listed);
    }
    Ok(ExitCode::SUCCESS)
}

fn show(state_arg: Option<PathBuf>, args: IdArgs) -> anyhow::Result<ExitCode> {
    let dir = open::existing_dir(state_arg)?;
    let events = open::existing_store(&dir)?.events(args.run_id)?;
    if events.is_empty() {
        anyhow::bail!("no run {} in {}", args.run_id, dir.display());
    }
    let view = crate::state::RunState::from_events(&events)
        .map_err(|e| anyhow::anyhow!("run {}: {e}", args.run_id))?
        .into_view();
    args.workspace.check(&view)?;
    let status = RunStatus::of(view.result, false); // as in `runs list`
    if args.json {
        let mut json = serde_json::to_value(&view)?;
        json["status"] = serde_json::to_value(status)?;
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print::run_details(&view, status);
    }
    Ok(ExitCode::SUCCESS)
}
