//! `sluice run` and `sluice task run`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::open::{self, tokio_runtime};
use super::{EXIT_RUN_FAILED, parse_param, print};
use crate::model::RunView;
use crate::sandbox::Limits;
use crate::scheduler::{JobRequest, RunOptions, Runtime, RuntimeOptions, SingleTask};
use crate::spec;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Bundle directory (holding sluice.toml) or the bundle file itself.
    pub bundle: PathBuf,
    /// The job to run (may be omitted when the bundle has one job).
    #[arg(long)]
    pub job: Option<String>,
    /// Override a job parameter: --param key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Deployment target the run belongs to.
    #[arg(long, default_value = "dev")]
    pub target: String,
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
    /// A command's arguments (after `--`).
    #[arg(last = true, requires = "command")]
    pub args: Vec<String>,
}

pub fn run(state_arg: Option<PathBuf>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let bundle = spec::load(&args.bundle)?;
    let job = bundle.job(args.job.as_deref())?;
    let dir = open::state_dir(state_arg, &bundle.root);
    let overrides: BTreeMap<String, String> = args.params.into_iter().collect();
    let rt = open::runtime(&dir, RuntimeOptions { max_parallel: args.max_parallel, ..Default::default() })?;
    let width = job.tasks.iter().map(|t| t.key.len()).max().unwrap_or(4);
    let opts = RunOptions {
        no_cache: args.no_cache,
        rehash: args.rehash,
        ..open::run_options(&args.workspace, args.json, width)
    };
    let tokio = tokio_runtime()?;
    for view in resume_interrupted(&rt, &tokio, &opts, args.json)? {
        if !args.json {
            eprintln!("{}", print::run_line(&view));
        }
    }
    let request = JobRequest { bundle: &bundle, job, overrides, target: args.target };
    let view = tokio.block_on(rt.run_job(request, &opts))?;
    finish(&view, args.json, &dir)
}

pub fn task(state_arg: Option<PathBuf>, cmd: TaskCommand) -> anyhow::Result<ExitCode> {
    let TaskCommand::Run(args) = cmd;
    let cwd = std::env::current_dir()?;
    let dir = open::state_dir(state_arg, &cwd);
    let rt = open::runtime(&dir, RuntimeOptions::default())?;
    let opts = open::run_options(&args.workspace, args.json, 8);
    let defaults = Limits::default();
    let limits = Limits {
        memory: args.memory.unwrap_or(defaults.memory),
        timeout: args.timeout.unwrap_or(defaults.timeout),
        ..defaults
    };
    let command = args.command.then(|| crate::spec::CommandSpec {
        component: String::new(),
        args: args.args,
        env: args.env.into_iter().collect(),
        stdin: args.stdin_file.map(crate::spec::Stdin::File),
        stdout_is_output: args.stdout_output,
    });
    if command.is_some() && !args.params.is_empty() {
        anyhow::bail!("--param is for task components; a command takes arguments after `--`, --env and --stdin-file");
    }
    let task = SingleTask { params: args.params.into_iter().collect(), limits, command };
    let view = tokio_runtime()?.block_on(rt.run_component(&args.component, task, &opts))?;
    finish(&view, args.json, &dir)
}

fn parse_max_parallel(s: &str) -> Result<usize, String> {
    let max = crate::sandbox::MAX_CONCURRENT_INSTANCES as usize;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max} (the sandbox pool's size)")),
    }
}

/// Continue the runs a previous process left in flight (it died), before anything else.
pub(crate) fn resume_interrupted(
    rt: &Runtime,
    tokio: &tokio::runtime::Runtime,
    opts: &RunOptions,
    quiet: bool,
) -> anyhow::Result<Vec<RunView>> {
    let mut resumed = Vec::new();
    for run in rt.interrupted_runs()? {
        if rt.view(run)?.workspace != opts.workspace {
            continue; // another tenant's run: resumed by a command of its own workspace
        }
        if !quiet {
            eprintln!("resuming run {run}: the process running it stopped before it finished");
        }
        resumed.push(tokio.block_on(rt.resume(run, opts))?);
    }
    Ok(resumed)
}

pub(crate) fn finish(view: &RunView, json: bool, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(view)?);
    } else {
        print::run_footer(view, dir);
    }
    Ok(if view.result.is_some_and(|r| r.is_success()) { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
}
