//! `sluice run` and `sluice task run`.

use super::out::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::follow::{Followed, follow};
use super::open;
use super::progress::Progress;
use super::{EXIT_INTERRUPTED, EXIT_RUN_FAILED, parse_param, print};
use crate::client::Session;
use crate::model::RunView;
use crate::scheduler::RuntimeOptions;
use crate::service::{ComponentTask, Source, Submission};
use crate::spec;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Bundle directory (holding sluice.toml) or the bundle file itself.
    #[arg(required_unless_present = "deployment")]
    pub bundle: Option<PathBuf>,
    /// Run a deployed job instead of the working tree: TARGET/JOB (the deployment's spec
    /// and component bytes; with a bundle given, of that bundle).
    #[arg(long, value_name = "TARGET/JOB", conflicts_with = "job")]
    pub deployment: Option<String>,
    /// The job to run (may be omitted when the bundle has one job).
    #[arg(long)]
    pub job: Option<String>,
    /// Override a job parameter: --param key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Deployment target the run belongs to: one the bundle declares under [targets]
    /// (default: the one marked `default = true`, else `dev`).
    #[arg(long, env = "SLUICE_TARGET")]
    pub target: Option<String>,
    /// Set a bundle variable: --var name=value (repeatable; wins over SLUICE_VAR_name, the
    /// target's `variables` and the variable's default).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub vars: Vec<(String, String)>,
    /// Workspace whose secret scopes the run reads.
    #[arg(long, default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub workspace: String,
    /// Print the finished run's record as JSON (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
    /// Run every task even when an identical earlier result could be reused.
    #[arg(long)]
    pub no_cache: bool,
    /// Sandboxes this process runs at once, across all runs (the global bound).
    #[arg(long, env = "SLUICE_MAX_PARALLEL", value_parser = parse_max_parallel)]
    pub max_parallel: Option<usize>,
    /// Re-read every mounted file instead of trusting unchanged size, mtime and inode.
    #[arg(long)]
    pub rehash: bool,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run one component with no bundle.
    Run(TaskRunArgs),
}

#[derive(Debug, Args)]
pub struct TaskRunArgs {
    /// The component (.wasm) to run.
    pub component: PathBuf,
    /// Workspace (tenant namespace) the run belongs to.
    #[arg(long, default_value = crate::secrets::DEFAULT_WORKSPACE, env = "SLUICE_WORKSPACE", value_parser = super::parse_workspace)]
    pub workspace: String,
    /// A task parameter: --param key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Memory limit, e.g. 64MiB.
    #[arg(long, value_parser = spec::parse_size)]
    pub memory: Option<u64>,
    /// Wall-clock timeout, e.g. 30s.
    #[arg(long, value_parser = spec::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Print the finished run's record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run it as a command: a `wasi:cli/command` component or a WASI preview1
    /// module (a program with `main`, from any toolchain); exit code 0 is success.
    #[arg(long)]
    pub command: bool,
    /// An environment variable for a command: --env KEY=VALUE (repeatable; nothing else is set).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_param, requires = "command")]
    pub env: Vec<(String, String)>,
    /// A file fed to a command's stdin.
    #[arg(long, requires = "command")]
    pub stdin_file: Option<PathBuf>,
    /// A command's stdout is the task's output (JSON as-is, other text as a JSON string).
    #[arg(long, requires = "command")]
    pub stdout_output: bool,
    /// Write a command's stdout to this host file (instead of its log).
    #[arg(long, requires = "command", conflicts_with = "stdout_output")]
    pub stdout_file: Option<PathBuf>,
    /// A host directory the task sees: --mount HOST:GUEST[:ro|rw] (read-only by default; repeatable).
    #[arg(long = "mount", value_name = "HOST:GUEST[:MODE]", value_parser = spec::parse_mount_arg)]
    pub mounts: Vec<spec::Mount>,
    /// Allow outbound HTTP to a host: --allow-host https://api.example.com (repeatable).
    #[arg(long = "allow-host", value_name = "URL", value_parser = spec::parse_host_rule)]
    pub allow_hosts: Vec<spec::HostRule>,
    /// A command's arguments (after `--`).
    #[arg(last = true, requires = "command")]
    pub args: Vec<String>,
}

pub fn run(state_arg: Option<PathBuf>, args: RunArgs) -> anyhow::Result<ExitCode> {
    // read here too: a bad bundle is refused before anything starts, and the board
    // needs the job's task keys
    if let Some(deployment) = args.deployment.clone() {
        return run_deployed(state_arg, args, &deployment);
    }
    let Some(path) = &args.bundle else { anyhow::bail!("name a bundle, or --deployment TARGET/JOB") };
    let load = spec::LoadOptions::new(args.target.clone(), args.vars.clone(), std::env::vars());
    let read = crate::service::read_bundle_with(path, &load)?;
    let bundle = read.bundle.clone();
    let job = bundle.job(args.job.as_deref())?;
    let target = bundle.target(args.target.as_deref())?;
    let dir = open::state_dir(state_arg, &bundle.root);
    let overrides: std::collections::BTreeMap<String, String> = args.params.iter().cloned().collect();
    crate::scheduler::check_overrides(job, &overrides)?;
    let width = job.tasks.iter().map(|t| t.key.len()).max().unwrap_or(4);
    let runtime = RuntimeOptions { max_parallel: args.max_parallel, ..Default::default() };
    let sub = Submission {
        overrides: args.params.iter().cloned().collect(),
        target: Some(target),
        vars: load.vars,
        env_vars: load.env,
        no_cache: args.no_cache,
        rehash: args.rehash,
        // a retry after the owner vanished mid-submission must not start a second run
        idempotency_token: Some(submission_token()),
        ..Submission::new(Source::Bundle { path: read.path.clone(), job: Some(job.name.clone()) })
    };
    let json = args.json;
    let options = open::owner_options(&args.workspace, runtime);
    open::with_session(&dir.clone(), options, move |session| {
        Box::pin(async move {
            match session.owner() {
                // the owner is this process: it takes the bundle as read above
                Some(owner) => owner.service.remember_bundle(&read),
                None if args.max_parallel.is_some() => {
                    errln!(
                        "note: --max-parallel is ignored: the sluice process already serving {} sets it",
                        dir.display()
                    );
                }
                None => {}
            }
            for (run, workspace) in session.client().take_over().await? {
                if workspace == args.workspace && !json {
                    errln!("resuming run {run}: the process running it stopped before it finished");
                }
            }
            submit_and_follow(session, sub, json, width, &dir).await
        })
    })
}

/// `sluice run --deployment TARGET/JOB`: the owner resolves the deployed job's id and runs
/// it from its deployment.
fn run_deployed(state_arg: Option<PathBuf>, args: RunArgs, deployment: &str) -> anyhow::Result<ExitCode> {
    let Some((target, job)) = deployment.split_once('/') else {
        anyhow::bail!("--deployment {deployment}: expected TARGET/JOB, e.g. prod/nightly");
    };
    let (bundle, dir) = match &args.bundle {
        Some(path) => {
            let bundle = spec::load(path)?;
            (Some(bundle.name), open::state_dir(state_arg, &bundle.root))
        }
        None => (None, open::existing_dir(state_arg)?),
    };
    let op = crate::service::DeployOp::Resolve { bundle, target: target.to_string(), job: job.to_string() };
    let deployment = deployment.to_string();
    let overrides = args.params.iter().cloned().collect();
    let json = args.json;
    let options =
        open::owner_options(&args.workspace, RuntimeOptions { max_parallel: args.max_parallel, ..Default::default() });
    open::with_session(&dir.clone(), options, move |session| {
        Box::pin(async move {
            let crate::service::DeployAnswer::Job { job_id } = session.client().deployments(op).await? else {
                anyhow::bail!("unexpected answer resolving {deployment}");
            };
            let sub = Submission {
                overrides,
                no_cache: args.no_cache,
                rehash: args.rehash,
                idempotency_token: Some(submission_token()),
                ..Submission::new(Source::Job(job_id))
            };
            submit_and_follow(session, sub, json, DEPLOYED_BOARD_WIDTH, &dir).await
        })
    })
}

/// The task-key column of the board for a deployed job (its keys are the owner's to know).
const DEPLOYED_BOARD_WIDTH: usize = 16;

pub fn task(state_arg: Option<PathBuf>, cmd: TaskCommand) -> anyhow::Result<ExitCode> {
    let TaskCommand::Run(args) = cmd;
    let cwd = std::env::current_dir()?;
    let dir = open::state_dir(state_arg, &cwd);
    let stdin = args.stdin_file.map(|f| std::path::absolute(&f).map(crate::spec::Stdin::File)).transpose()?;
    let command = args.command.then(|| crate::spec::CommandSpec {
        component: String::new(),
        args: args.args,
        env: args.env.into_iter().collect(),
        stdin,
        stdout_is_output: args.stdout_output,
        stdout_file: args.stdout_file.is_some().then(|| super::task_files::STDOUT_NAME.to_string()),
        success_exit_codes: Vec::new(),
        script: None,
    });
    if command.is_some() && !args.params.is_empty() {
        anyhow::bail!("--param is for task components; a command takes arguments after `--`, --env and --stdin-file");
    }
    let task = ComponentTask {
        params: args.params.into_iter().collect(),
        memory: args.memory,
        timeout_ms: args.timeout.map(|t| t.as_millis() as u64),
        command,
        mounts: args.mounts,
        allow_hosts: args.allow_hosts,
    };
    let stdout_file = args.stdout_file.map(|f| std::path::absolute(&f)).transpose()?;
    let path = std::path::absolute(&args.component)?;
    let sub = Submission {
        idempotency_token: Some(submission_token()),
        ..Submission::new(Source::Component { path, task: Box::new(task) })
    };
    let json = args.json;
    let options = open::owner_options(&args.workspace, RuntimeOptions::default());
    open::with_session(&dir.clone(), options, move |session| {
        Box::pin(async move {
            let submitted = session.client().submit(sub).await?;
            let code = follow_and_finish(session, submitted.run_id, 0, json, 8, &dir).await?;
            if let Some(to) = &stdout_file {
                let view = session.client().view(submitted.run_id).await?;
                super::task_files::save_stdout(&dir, &view, to)?;
            }
            Ok(code)
        })
    })
}

/// Submit a run, follow it on the board (nothing with `--json`), print how it ended.
async fn submit_and_follow(
    session: &mut Session,
    sub: Submission,
    json: bool,
    width: usize,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    let submitted = session.client().submit(sub).await?;
    follow_and_finish(session, submitted.run_id, 0, json, width, dir).await
}

/// Follow a run from `from` and print its end; the exit code says whether it succeeded.
pub(crate) async fn follow_and_finish(
    session: &mut Session,
    run: crate::model::RunId,
    from: u64,
    json: bool,
    width: usize,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    let progress = (!json).then(|| Progress::new(width));
    match follow(session, run, from, progress.as_ref()).await? {
        Followed::Finished(view) => {
            drop(progress);
            finish(&view, json, dir)
        }
        Followed::Interrupted => {
            errln!("stopped following run {run}; `sluice runs show {run}` shows how it ends");
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}

/// A random idempotency token for one submission.
fn submission_token() -> String {
    use chacha20poly1305::aead::OsRng;
    use chacha20poly1305::aead::rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("cli-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub(crate) fn parse_max_parallel(s: &str) -> Result<usize, String> {
    let max = crate::sandbox::MAX_CONCURRENT_INSTANCES as usize;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max} (the sandbox pool's size)")),
    }
}

pub(crate) fn finish(view: &RunView, json: bool, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(view)?);
    } else {
        print::run_footer(view, dir);
    }
    Ok(if view.result.is_some_and(|r| r.is_success()) { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
}
