//! `sluice triggers list|pause|resume|fire JOB`: the served jobs' triggers, through the
//! state directory's owner (which must be `sluice serve`: triggers fire there). JOB is a
//! job id, `bundle.job` or a job name. Results on stdout (`--json` for the records).

use super::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open;
use crate::scheduler::RuntimeOptions;
use crate::service::{TriggerAction, TriggerAnswer};

#[derive(Debug, Subcommand)]
pub enum TriggersCommand {
    /// List the served jobs' triggers: kind, paused, next tick, last firing, counts.
    List(ListArgs),
    /// Pause a job's trigger (durable): it fires nothing; ticks meanwhile are skipped.
    Pause(JobArgs),
    /// Resume a paused trigger (ticks due while paused are not caught up).
    Resume(JobArgs),
    /// Fire a job's trigger now, by hand, with the same payload shape.
    Fire(FireArgs),
}

#[derive(Debug, Args)]
pub struct Workspace {
    /// Workspace (tenant namespace) whose jobs to see.
    #[arg(long = "workspace", default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub workspace: Workspace,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job: its id, `bundle.job`, or its name.
    pub job: String,
    #[command(flatten)]
    pub workspace: Workspace,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FireArgs {
    /// The job: its id, `bundle.job`, or its name.
    pub job: String,
    /// A webhook trigger's payload (a JSON object), as `{{ trigger.payload.FIELD }}` sees it.
    #[arg(long, value_parser = parse_payload)]
    pub payload: Option<serde_json::Value>,
    #[command(flatten)]
    pub workspace: Workspace,
    #[arg(long)]
    pub json: bool,
}

fn parse_payload(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("the payload must be a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

pub fn triggers(state_arg: Option<PathBuf>, cmd: TriggersCommand) -> anyhow::Result<ExitCode> {
    let (action, workspace, json) = match cmd {
        TriggersCommand::List(a) => (TriggerAction::List, a.workspace.name, a.json),
        TriggersCommand::Pause(a) => (TriggerAction::Pause { job: a.job }, a.workspace.name, a.json),
        TriggersCommand::Resume(a) => (TriggerAction::Resume { job: a.job }, a.workspace.name, a.json),
        TriggersCommand::Fire(a) => (TriggerAction::Fire { job: a.job, payload: a.payload }, a.workspace.name, a.json),
    };
    let dir = open::state_dir(state_arg, &std::env::current_dir()?);
    let options = open::owner_options(&workspace, RuntimeOptions::default());
    let answer: TriggerAnswer = open::with_session(&dir, options, move |session| {
        Box::pin(async move { Ok(session.client().triggers(action).await?) })
    })?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(run) = answer.run_id {
        outln!("run {run}{}", if answer.existing { " (already started by this firing)" } else { "" });
        return Ok(ExitCode::SUCCESS);
    }
    if answer.triggers.is_empty() {
        errln!("no served job has a trigger in workspace {workspace}");
    }
    for t in &answer.triggers {
        let next = t["next"].as_u64().map(when).unwrap_or_else(|| "-".into());
        let paused = if t["paused"].as_bool() == Some(true) { "paused" } else { "active" };
        outln!(
            "{:>5}  {:<28} {:<12} {:<7} next {:<20} fired {} missed {} skipped {}{}",
            t["job_id"],
            t["job"].as_str().unwrap_or_default(),
            t["kind"].as_str().unwrap_or_default(),
            paused,
            next,
            t["fired"],
            t["missed"],
            t["skipped"],
            t["error"].as_str().map(|e| format!("  error: {e}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(crate::model::time_of(ms)).to_string()
}
