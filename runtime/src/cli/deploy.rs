//! `sluice deploy`, `plan`, `destroy`, `promote`, `rollback` and `approve`: glue over
//! [`crate::deploy`] — the bundle is read into a snapshot here (the working tree, Git
//! metadata, component hashes), its components reach the blob store (written beside the
//! owner's store locally, uploaded when missing with `--server`), and the owner commits.
//!
//! `sluice plan` exits 0 when nothing would change, 3 when something would
//! ([`EXIT_PLAN_CHANGES`]), 2 on an error.

use super::out::{errln, outln};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::open;
use crate::cache::{BLOBS_DIR, BlobStore};
use crate::client::remote::RemoteServer;
use crate::deploy::{self, Deployment, Plan, Snapshot};
use crate::scheduler::RuntimeOptions;
use crate::service::{DeployAnswer, DeployOp};

/// `sluice plan`'s exit code when the deploy would change something.
pub const EXIT_PLAN_CHANGES: u8 = 3;

/// The variable holding the token of `--server`.
pub const TOKEN_ENV: &str = "SLUICE_TOKEN";

/// Where a deployments request goes: the bundle's state directory, or a server.
#[derive(Debug, Args, Clone)]
pub struct Where {
    /// Bundle directory (holding sluice.toml) or the bundle file.
    #[arg(long = "bundle", default_value = ".")]
    pub bundle: PathBuf,
    /// Target (default: the bundle's default target).
    #[arg(long, env = "SLUICE_TARGET")]
    pub target: Option<String>,
    /// A running `sluice serve` (http://HOST:PORT) instead of the local state directory;
    /// the token comes from SLUICE_TOKEN.
    #[arg(long)]
    pub server: Option<String>,
    /// Workspace the deployments belong to (locally; a token names its own).
    #[arg(long, default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub workspace: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Set a bundle variable: --var name=value (repeatable; wins over SLUICE_VAR_name).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::parse_param)]
    pub vars: Vec<(String, String)>,
}

impl Where {
    fn load_options(&self) -> crate::spec::LoadOptions {
        crate::spec::LoadOptions::new(self.target.clone(), self.vars.clone(), std::env::vars())
    }
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub at: Where,
    /// The target whose current deployment is promoted.
    #[arg(long)]
    pub from: String,
    /// The target it is deployed to.
    #[arg(long)]
    pub to: String,
    /// Promote only this job: the destination's other jobs keep running from the
    /// deployments they run from now.
    #[arg(long)]
    pub job: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub at: Where,
    /// The deployment to make current (default: the one before the current one).
    #[arg(long)]
    pub to: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The deployment to approve: TARGET/NUMBER.
    pub deployment: String,
    #[command(flatten)]
    pub at: Where,
}

/// Send `ops` (in order; each built from the previous answers) to the owner or the server.
pub(crate) fn ask(state_arg: Option<PathBuf>, at: &Where, root: &Path, op: DeployOp) -> anyhow::Result<DeployAnswer> {
    if let Some(url) = &at.server {
        let server = remote(url)?;
        return open::tokio_runtime()?.block_on(async move { Ok(server.deployments(&op).await?) });
    }
    let dir = open::state_dir(state_arg, root);
    let options = open::owner_options(&at.workspace, RuntimeOptions::default());
    open::with_session(&dir, options, move |s| Box::pin(async move { Ok(s.client().deployments(op).await?) }))
}

pub(crate) fn remote(url: &str) -> anyhow::Result<RemoteServer> {
    let token = std::env::var(TOKEN_ENV).map_err(|_| anyhow::anyhow!("--server needs a token in {TOKEN_ENV}"))?;
    RemoteServer::new(url, &token).map_err(anyhow::Error::msg)
}

/// The bundle at `at.bundle`: its name, its root and the target named (or its default).
pub(crate) fn bundle_of(at: &Where) -> anyhow::Result<(String, PathBuf, String)> {
    let bundle = crate::spec::load_with(&at.bundle, &at.load_options())?;
    let target = bundle.target(at.target.as_deref())?;
    Ok((bundle.name, bundle.root, target))
}

pub fn deploy(state_arg: Option<PathBuf>, at: Where) -> anyhow::Result<ExitCode> {
    let (snapshot, files) = deploy::snapshot_with(&at.bundle, &at.load_options())?;
    let root = snapshot.spec.root.clone();
    let uploaded = match &at.server {
        Some(url) => upload(&remote(url)?, &snapshot, &files)?,
        None => store_locally(state_arg.clone(), &root, &files)?,
    };
    let plan =
        expect_plan(ask(state_arg.clone(), &at, &root, DeployOp::Plan { snapshot: Box::new(snapshot.clone()) })?)?;
    let op = DeployOp::Deploy { snapshot: Box::new(snapshot), expected: plan.current, planned: true };
    let d = expect_deployment(ask(state_arg, &at, &root, op)?)?;
    if at.json {
        outln!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        outln!(
            "deployed bundle `{}` to target `{}`: deployment {} (bundle {}, {} component{}, {uploaded} stored new; {} change{})",
            d.snapshot.bundle,
            d.snapshot.target,
            d.number,
            &d.snapshot.bundle_hash[..12],
            d.snapshot.components.len(),
            if d.snapshot.components.len() == 1 { "" } else { "s" },
            plan.items.len(),
            if plan.items.len() == 1 { "" } else { "s" },
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write the components into the state directory's blob store (unchanged ones cost
/// nothing); how many were new.
fn store_locally(state_arg: Option<PathBuf>, root: &Path, files: &BTreeMap<String, PathBuf>) -> anyhow::Result<usize> {
    let dir = open::state_dir(state_arg, root);
    let blobs = BlobStore::open(dir.join(BLOBS_DIR))?;
    let mut new = 0;
    for (hash, path) in files {
        let present = hash.parse().map(|h| blobs.verify(&h).is_ok()).unwrap_or(false);
        if !present {
            blobs.put_file(path).with_context(|| format!("storing {}", path.display()))?;
            new += 1;
        }
    }
    blobs.sync()?;
    Ok(new)
}

/// Upload the components the server lacks; how many.
fn upload(server: &RemoteServer, snapshot: &Snapshot, files: &BTreeMap<String, PathBuf>) -> anyhow::Result<usize> {
    let hashes = snapshot.components.values().cloned().collect();
    open::tokio_runtime()?.block_on(async move {
        let DeployAnswer::Missing { hashes } = server.deployments(&DeployOp::Missing { hashes }).await? else {
            anyhow::bail!("unexpected answer to a blob query");
        };
        for hash in &hashes {
            let path = &files[hash];
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            errln!("uploading {} ({} bytes)", path.display(), bytes.len());
            server.put_blob(hash, bytes).await?;
        }
        Ok(hashes.len())
    })
}

pub fn plan(state_arg: Option<PathBuf>, at: Where) -> anyhow::Result<ExitCode> {
    let (snapshot, _) = deploy::snapshot_with(&at.bundle, &at.load_options())?;
    let root = snapshot.spec.root.clone();
    let plan = expect_plan(ask(state_arg, &at, &root, DeployOp::Plan { snapshot: Box::new(snapshot) })?)?;
    print_plan(&plan, at.json)?;
    Ok(if plan.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PLAN_CHANGES) })
}

pub(crate) fn print_plan(plan: &Plan, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(plan)?);
        return Ok(());
    }
    let against = plan.current.map_or_else(|| "no deployment yet".to_string(), |n| format!("deployment {n}"));
    outln!("plan for bundle `{}`, target `{}` (against {against}):", plan.bundle, plan.target);
    for item in &plan.items {
        let sign = match item.action.as_str() {
            "add" => "+",
            "remove" => "-",
            _ => "~",
        };
        let detail = if item.detail.is_empty() { String::new() } else { format!(": {}", item.detail) };
        outln!("  {sign} {} {}{detail}", item.kind, item.name);
    }
    match plan.items.len() {
        0 => outln!("no changes"),
        n => outln!("{n} change{}", if n == 1 { "" } else { "s" }),
    }
    Ok(())
}

fn expect_plan(answer: DeployAnswer) -> anyhow::Result<Plan> {
    match answer {
        DeployAnswer::Plan { plan } => Ok(plan),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
}

pub(crate) fn expect_deployment(answer: DeployAnswer) -> anyhow::Result<Deployment> {
    match answer {
        DeployAnswer::Deployment { deployment } => Ok(*deployment),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
}

fn report(d: &Deployment, verb: &str, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(d)?);
    } else {
        outln!(
            "{verb} target `{}`: deployment {} (bundle {})",
            d.snapshot.target,
            d.number,
            &d.snapshot.bundle_hash[..12]
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn destroy(state_arg: Option<PathBuf>, at: Where) -> anyhow::Result<ExitCode> {
    if at.target.is_none() {
        anyhow::bail!("say which target to destroy: --target T");
    }
    let (bundle, root, target) = bundle_of(&at)?;
    let d = expect_deployment(ask(state_arg, &at, &root, DeployOp::Destroy { bundle, target })?)?;
    if !at.json {
        outln!(
            "destroyed target `{}`: its jobs are gone (deployment {} was current; run history stays)",
            d.snapshot.target,
            d.number
        );
        return Ok(ExitCode::SUCCESS);
    }
    report(&d, "destroyed", true)
}

pub fn promote(state_arg: Option<PathBuf>, a: PromoteArgs) -> anyhow::Result<ExitCode> {
    let (bundle, root, _) = bundle_of(&Where { target: None, ..a.at.clone() })?;
    let op = DeployOp::Promote { bundle, from: a.from, to: a.to, job: a.job };
    let d = expect_deployment(ask(state_arg, &a.at, &root, op)?)?;
    report(&d, "promoted to", a.at.json)
}

pub fn rollback(state_arg: Option<PathBuf>, a: RollbackArgs) -> anyhow::Result<ExitCode> {
    let (bundle, root, target) = bundle_of(&a.at)?;
    let d = expect_deployment(ask(state_arg, &a.at, &root, DeployOp::Rollback { bundle, target, to: a.to })?)?;
    report(&d, "rolled back", a.at.json)
}

pub fn approve(state_arg: Option<PathBuf>, a: ApproveArgs) -> anyhow::Result<ExitCode> {
    let (target, number) = parse_deployment(&a.deployment)?;
    let (bundle, root, _) = bundle_of(&Where { target: None, ..a.at.clone() })?;
    let d = expect_deployment(ask(state_arg, &a.at, &root, DeployOp::Approve { bundle, target, number })?)?;
    report(&d, "approved", a.at.json)
}

/// `TARGET/NUMBER`.
pub(crate) fn parse_deployment(text: &str) -> anyhow::Result<(String, u64)> {
    match text.split_once('/') {
        Some((target, n)) if !target.is_empty() => match n.parse() {
            Ok(n) => Ok((target.to_string(), n)),
            Err(_) => anyhow::bail!("`{text}`: expected TARGET/NUMBER, e.g. test/3"),
        },
        _ => anyhow::bail!("`{text}`: expected TARGET/NUMBER, e.g. test/3"),
    }
}
