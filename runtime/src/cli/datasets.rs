//! `sluice datasets list|show NAME`: the named datasets tasks publish (`datasets = { … }`),
//! their versions and lineage — which run and task produced each version, which runs a
//! table-update trigger started for it — through the state directory's owner. Results on
//! stdout (`--json` for the records).

use super::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open;
use super::triggers::Workspace;
use crate::scheduler::RuntimeOptions;
use crate::service::{TriggerAction, TriggerAnswer};

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Every dataset of the workspace: its target, latest version, hash and producer.
    List(ListArgs),
    /// One dataset's versions, each with the run and task that produced it and the runs
    /// that consumed it.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub workspace: Workspace,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The dataset's name (`sales.orders`).
    pub dataset: String,
    #[command(flatten)]
    pub workspace: Workspace,
    #[arg(long)]
    pub json: bool,
}

pub fn datasets(state_arg: Option<PathBuf>, cmd: DatasetsCommand) -> anyhow::Result<ExitCode> {
    let (name, workspace, json) = match cmd {
        DatasetsCommand::List(a) => (None, a.workspace.name, a.json),
        DatasetsCommand::Show(a) => (Some(a.dataset), a.workspace.name, a.json),
    };
    let show = name.is_some();
    let dir = open::state_dir(state_arg, &std::env::current_dir()?);
    let options = open::owner_options(&workspace, RuntimeOptions::default());
    let action = TriggerAction::Datasets { name };
    let answer: TriggerAnswer = open::with_session(&dir, options, move |session| {
        Box::pin(async move { Ok(session.client().triggers(action).await?) })
    })?;
    let datasets = answer.datasets.unwrap_or_default();
    if json {
        outln!("{}", serde_json::to_string_pretty(&datasets)?);
        return Ok(ExitCode::SUCCESS);
    }
    if datasets.is_empty() {
        errln!("no dataset has been published in workspace {workspace}");
    }
    for d in &datasets {
        let versions = d["versions"].as_array().cloned().unwrap_or_default();
        if !show {
            let latest = versions.last().cloned().unwrap_or_default();
            outln!(
                "{:<32} {:<8} v{:<4} {}  run {} task {}",
                d["name"].as_str().unwrap_or_default(),
                d["target"].as_str().unwrap_or_default(),
                latest["version"],
                short(&latest["hash"]),
                latest["run"],
                latest["task"].as_str().unwrap_or_default()
            );
            continue;
        }
        outln!("{} (target {})", d["name"].as_str().unwrap_or_default(), d["target"].as_str().unwrap_or_default());
        for v in &versions {
            let consumed: Vec<String> = v["consumed_by"]
                .as_array()
                .map(|c| {
                    c.iter().map(|u| format!("run {} ({})", u["run"], u["job"].as_str().unwrap_or_default())).collect()
                })
                .unwrap_or_default();
            outln!(
                "  v{:<4} {}  produced by run {} task {} of {}  consumed by: {}",
                v["version"],
                short(&v["hash"]),
                v["run"],
                v["task"].as_str().unwrap_or_default(),
                v["job"].as_str().unwrap_or_default(),
                if consumed.is_empty() { "-".to_string() } else { consumed.join(", ") }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A hash's first 16 hex digits.
fn short(hash: &serde_json::Value) -> &str {
    let text = hash.as_str().unwrap_or_default();
    &text[..text.len().min(16)]
}
