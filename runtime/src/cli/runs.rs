//! `sluice runs list` and `sluice runs show`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{print, state};
use crate::model::{RunId, RunView};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List recent runs, newest first.
    List(ListArgs),
    /// Show one run: its tasks, states, durations, outputs and logs.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub run_id: RunId,
    #[arg(long)]
    pub json: bool,
}

pub fn runs(state_arg: Option<PathBuf>, cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    let dir = state::state_dir(state_arg, &std::env::current_dir()?);
    let store = state::open_existing(&dir)?;
    match cmd {
        RunsCommand::List(args) => {
            let runs = store.list_summaries(args.limit)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print::run_list(&runs);
            }
        }
        RunsCommand::Show(args) => {
            let events = store.events(args.run_id)?;
            if events.is_empty() {
                anyhow::bail!("no run {} in {}", args.run_id, dir.display());
            }
            let view = RunView::from_events(&events).with_context(|| format!("run {}", args.run_id))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print::run_details(&view);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
