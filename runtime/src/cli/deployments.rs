//! `sluice deployments list|show|diff`: a target's deployments, its journal (every deploy,
//! promotion, approval, rollback and destroy: who, when, from and to which hash), one
//! deployment, and what changed between two.

use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::deploy::{Where, ask, bundle_of, expect_deployment, print_plan};
use crate::service::{DeployAnswer, DeployOp};

#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// The target's deployments (the current one marked) and its journal.
    List(ListArgs),
    /// One deployment (default: the current one): hashes, who, when, Git, jobs.
    Show(ShowArgs),
    /// What changed from deployment A to deployment B of the target.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub at: Where,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The deployment's number (default: the current one).
    pub number: Option<u64>,
    #[command(flatten)]
    pub at: Where,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub a: u64,
    pub b: u64,
    #[command(flatten)]
    pub at: Where,
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn when(millis: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_seconds(at).to_string()
}

pub fn deployments(state_arg: Option<PathBuf>, cmd: DeploymentsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeploymentsCommand::List(a) => list(state_arg, a.at),
        DeploymentsCommand::Show(a) => {
            let (bundle, root, target) = bundle_of(&a.at)?;
            let d =
                expect_deployment(ask(state_arg, &a.at, &root, DeployOp::Show { bundle, target, number: a.number })?)?;
            if a.at.json {
                outln!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(ExitCode::SUCCESS);
            }
            outln!("deployment {} of bundle `{}`, target `{}`", d.number, d.snapshot.bundle, d.snapshot.target);
            outln!("  bundle hash  {}", d.snapshot.bundle_hash);
            outln!("  spec hash    {}", d.spec_hash);
            outln!("  deployed by  {} at {}", d.principal, when(d.at));
            outln!("  mode         {}", d.mode.as_deref().unwrap_or("(none)"));
            if let Some(git) = &d.snapshot.git {
                outln!(
                    "  git          {} on {}{}{}",
                    git.commit.as_deref().map_or("(no commit)", short),
                    git.branch.as_deref().unwrap_or("(detached)"),
                    git.remote.as_deref().map(|r| format!(" from {r}")).unwrap_or_default(),
                    if git.dirty { " (dirty)" } else { "" }
                );
            }
            for (name, hash) in &d.snapshot.components {
                outln!("  component    {name} {}", short(hash));
            }
            for (name, job) in &d.jobs {
                let pinned = d.pinned.get(name).map(|n| format!(" (runs from deployment {n})")).unwrap_or_default();
                let paused = if job.paused { " (paused)" } else { "" };
                outln!("  job          {name}: {}{paused}{pinned}", job.display_name);
            }
            Ok(ExitCode::SUCCESS)
        }
        DeploymentsCommand::Diff(a) => {
            let (bundle, root, target) = bundle_of(&a.at)?;
            match ask(state_arg, &a.at, &root, DeployOp::Diff { bundle, target, a: a.a, b: a.b })? {
                DeployAnswer::Plan { plan } => print_plan(&plan, a.at.json)?,
                other => anyhow::bail!("unexpected answer: {other:?}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(state_arg: Option<PathBuf>, at: Where) -> anyhow::Result<ExitCode> {
    let (bundle, root, target) = bundle_of(&at)?;
    let answer = ask(state_arg, &at, &root, DeployOp::List { bundle: bundle.clone(), target: target.clone() })?;
    let DeployAnswer::Listed { deployments, journal } = answer else { anyhow::bail!("unexpected answer") };
    if at.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "deployments": deployments, "journal": journal }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("deployments of bundle `{bundle}`, target `{target}`:");
    for d in &deployments {
        let origin = match &d.origin {
            crate::deploy::Origin::Deploy => "deploy".to_string(),
            crate::deploy::Origin::Promote { from, number } => format!("promoted from {from}/{number}"),
        };
        outln!(
            "  {} {:>4}  {}  {:<12} {}  {origin}{}",
            if d.current { "*" } else { " " },
            d.number,
            short(&d.bundle_hash),
            d.principal,
            when(d.at),
            d.git_commit.as_deref().map(|c| format!("  git {}", short(c))).unwrap_or_default()
        );
    }
    outln!("journal:");
    for e in &journal {
        let side = |n: Option<u64>, h: &Option<String>| match (n, h) {
            (Some(n), Some(h)) => format!("{n} ({})", short(h)),
            (Some(n), None) => n.to_string(),
            _ => "-".to_string(),
        };
        outln!(
            "  {}  {:<9} by {:<12} {} → {}{}",
            when(e.at),
            format!("{:?}", e.action).to_lowercase(),
            e.principal,
            side(e.from, &e.from_hash),
            side(e.to, &e.to_hash),
            e.source.as_deref().map(|s| format!("  from {s}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
