//! `sluice models list|show|stage`: the model registry — each model's versions (artifact
//! hash, metrics, the run, task and Git commit that produced them) and the version staged
//! for each target, which tasks with `models = [{ name, guest }]` load — through the state
//! directory's owner (or `--server`). Results on stdout (`--json` for the records).

use super::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open;
use crate::scheduler::RuntimeOptions;
use crate::service::{DeployAnswer, DeployOp, ModelView};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every model: its latest version, metrics and what each target loads.
    List(Common),
    /// One model's versions (or one version), with metrics, run, commit and stages.
    Show(ShowArgs),
    /// Stage VERSION of NAME for a target: what that target's runs load from now on.
    Stage(StageArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// A running `sluice serve` (http://HOST:PORT) instead of the local state directory;
    /// the token comes from SLUICE_TOKEN.
    #[arg(long)]
    pub server: Option<String>,
    /// Workspace the models belong to (locally; a token names its own).
    #[arg(long, default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub workspace: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The model's name (`churn`).
    pub name: String,
    /// Only this version.
    pub version: Option<u64>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    pub name: String,
    pub version: u64,
    /// The target whose runs load it.
    #[arg(long)]
    pub target: String,
    #[command(flatten)]
    pub common: Common,
}

pub fn models(state_arg: Option<PathBuf>, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    let (op, common, detail) = match cmd {
        ModelsCommand::List(c) => (DeployOp::ModelsList, c, false),
        ModelsCommand::Show(a) => (DeployOp::ModelsShow { name: a.name, version: a.version }, a.common, true),
        ModelsCommand::Stage(a) => {
            (DeployOp::ModelsStage { name: a.name, version: a.version, target: a.target }, a.common, true)
        }
    };
    let staging = matches!(op, DeployOp::ModelsStage { .. });
    let DeployAnswer::Models { models } = ask(state_arg, &common, op)? else {
        anyhow::bail!("unexpected answer from the owner of the state directory")
    };
    if common.json {
        let json = if staging { serde_json::to_value(models.first())? } else { serde_json::to_value(&models)? };
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    if models.is_empty() {
        errln!("no model has been registered in workspace {}", common.workspace);
    }
    for m in &models {
        if detail { print_detail(m) } else { print_line(m) }
    }
    Ok(ExitCode::SUCCESS)
}

fn ask(state_arg: Option<PathBuf>, common: &Common, op: DeployOp) -> anyhow::Result<DeployAnswer> {
    if let Some(url) = &common.server {
        let server = super::deploy::remote(url)?;
        return open::tokio_runtime()?.block_on(async move { Ok(server.deployments(&op).await?) });
    }
    let dir = open::state_dir(state_arg, &std::env::current_dir()?);
    let options = open::owner_options(&common.workspace, RuntimeOptions::default());
    open::with_session(&dir, options, move |s| Box::pin(async move { Ok(s.client().deployments(op).await?) }))
}

fn stages_of(m: &ModelView, version: Option<u64>) -> String {
    let staged: Vec<String> = m
        .stages
        .iter()
        .filter(|s| version.is_none_or(|v| v == s.version))
        .map(|s| if version.is_some() { s.target.clone() } else { format!("{}=v{}", s.target, s.version) })
        .collect();
    if staged.is_empty() { "-".into() } else { staged.join(",") }
}

fn print_line(m: &ModelView) {
    let Some(latest) = m.versions.last() else { return };
    outln!(
        "{:<20} v{:<4} {}  {}  staged: {}",
        m.name,
        latest.version,
        &latest.hash[..latest.hash.len().min(16)],
        latest.metrics,
        stages_of(m, None)
    );
}

fn print_detail(m: &ModelView) {
    outln!("{}  staged: {}", m.name, stages_of(m, None));
    for v in &m.versions {
        let commit = v.commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("-");
        outln!(
            "  v{:<4} {}  {} ({} bytes)  run {} task {} of {} (target {})  commit {}{}  metrics {}  staged: {}",
            v.version,
            &v.hash[..v.hash.len().min(16)],
            v.file,
            v.size,
            v.run,
            v.task,
            v.job,
            v.target,
            commit,
            if v.dirty { " (dirty)" } else { "" },
            v.metrics,
            stages_of(m, Some(v.version))
        );
    }
}
