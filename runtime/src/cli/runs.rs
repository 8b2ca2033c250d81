//! `sluice runs list|show|cancel|resume|repair`.

use super::out::outln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::follow::{Followed, follow};
use super::run::follow_and_finish;
use super::{open, parse_param, print};
use crate::client::{ClientError, Session};
use crate::model::RunId;
use crate::scheduler::{RepairRequest, RuntimeOptions};
use crate::service::{CancelOutcome, RunFilter, ServiceError};

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
    let dir = open::existing_dir(state_arg)?;
    let workspace = match &cmd {
        RunsCommand::List(a) => &a.workspace,
        RunsCommand::Show(a) | RunsCommand::Cancel(a) => &a.workspace,
        RunsCommand::Resume(a) => &a.workspace,
        RunsCommand::Repair(a) => &a.workspace,
    }
    .name
    .clone();
    let options = open::owner_options(&workspace, RuntimeOptions::default());
    open::with_session(&dir.clone(), options, move |session| {
        Box::pin(async move {
            match cmd {
                RunsCommand::List(args) => list(session, args).await,
                RunsCommand::Show(args) => show(session, args, &dir).await,
                RunsCommand::Cancel(args) => cancel(session, args).await,
                RunsCommand::Resume(args) => resume(session, args, &dir).await,
                RunsCommand::Repair(args) => repair(session, args, &dir).await,
            }
        })
    })
}

async fn list(session: &mut Session, args: ListArgs) -> anyhow::Result<ExitCode> {
    let filter = RunFilter { limit: args.limit, ..RunFilter::default() };
    let runs = session.client().list(filter).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        print::run_list(&runs);
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(session: &mut Session, args: IdArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let view = session.client().view(args.run_id).await.map_err(|e| no_run(e, args.run_id, &args.workspace, dir))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print::run_details(&view);
    }
    Ok(ExitCode::SUCCESS)
}

/// "No such run" in the words of the CLI: the workspace and the state directory.
fn no_run(e: ClientError, run: RunId, workspace: &WorkspaceArg, dir: &Path) -> anyhow::Error {
    match e {
        ClientError::Service(ServiceError::NotFound(_)) => {
            anyhow::anyhow!("no run {run} in workspace `{}` of {}", workspace.name, dir.display())
        }
        other => other.into(),
    }
}

async fn cancel(session: &mut Session, args: IdArgs) -> anyhow::Result<ExitCode> {
    match session.client().cancel(args.run_id).await? {
        CancelOutcome::Requested => {
            outln!(
                "cancel requested: run {} stops (`sluice runs show {}` shows how it ended)",
                args.run_id,
                args.run_id
            );
            Ok(ExitCode::SUCCESS)
        }
        CancelOutcome::AlreadyFinished => {
            let view = session.client().view(args.run_id).await?;
            anyhow::bail!("run {} already finished ({})", args.run_id, print::result_word(&view))
        }
    }
}

async fn resume(session: &mut Session, args: ResumeArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let mut runs: Vec<(RunId, u64)> = Vec::new();
    for (run, workspace) in session.client().take_over().await? {
        if workspace == args.workspace.name && args.run_id.is_none_or(|r| r == run) {
            runs.push((run, 0));
        }
    }
    let wanted = match args.run_id {
        Some(run) if runs.is_empty() => Some(run),
        _ => None,
    };
    if wanted.is_some() || args.run_id.is_none() {
        runs.extend(session.client().resume(wanted).await?);
    }
    let mut views = Vec::new();
    for (run, from) in runs {
        let progress = (!args.json).then(|| super::progress::Progress::new(8));
        match follow(session, run, from, progress.as_ref()).await? {
            Followed::Finished(view) => views.push(*view),
            Followed::Interrupted => return Ok(ExitCode::from(super::EXIT_INTERRUPTED)),
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        outln!("no unfinished runs in {}", dir.display());
    }
    for view in views.iter().filter(|_| !args.json) {
        outln!("{}", print::run_line(view));
    }
    let ok = views.iter().all(crate::scheduler::succeeded);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_RUN_FAILED) })
}

async fn repair(session: &mut Session, args: RepairArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let req = RepairRequest {
        tasks: args.tasks,
        with_dependents: args.with_dependents,
        overrides: args.params.into_iter().collect(),
        pinned: args.pinned,
        bundle: None,
    };
    let repaired = session
        .client()
        .repair(args.run_id, req, args.no_cache)
        .await
        .map_err(|e| no_run(e, args.run_id, &args.workspace, dir))?;
    follow_and_finish(session, args.run_id, repaired.from, args.json, 8, dir).await
}
