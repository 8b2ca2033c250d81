//! `sluice runs list|show|cancel|resume|repair`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open::tokio_runtime;
use super::run::{finish, resume_interrupted};
use super::{open, parse_param, print};
use crate::model::{RunId, RunView};
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
    /// A task to rerun (repeatable; default: every task that did not succeed).
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
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub workspace: WorkspaceArg,
}

pub fn runs(state_arg: Option<PathBuf>, cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List(args) => {
            let store = open::existing_store(&open::existing_dir(state_arg)?)?;
            let runs: Vec<_> = store
                .list_summaries(usize::MAX)?
                .into_iter()
                .filter(|r| r.workspace == args.workspace.name)
                .take(args.limit)
                .collect();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print::run_list(&runs);
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show(args) => {
            let dir = open::existing_dir(state_arg)?;
            let events = open::existing_store(&dir)?.events(args.run_id)?;
            if events.is_empty() {
                anyhow::bail!("no run {} in {}", args.run_id, dir.display());
            }
            let view = crate::state::RunState::from_events(&events)
                .map_err(|e| anyhow::anyhow!("run {}: {e}", args.run_id))?
                .into_view();
            args.workspace.check(&view)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print::run_details(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
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
                None => resume_interrupted(&rt, &tokio, &opts, args.json)?,
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                println!("no unfinished runs");
            }
            for view in views.iter().filter(|_| !args.json) {
                println!("{}", print::run_line(view));
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
            anyhow::bail!("run {} is in progress", args.run_id);
            #[allow(unreachable_code)]
            println!("cancel requested: the sluice process running run {} stops it", args.run_id);
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
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!("{}", print::run_line(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
