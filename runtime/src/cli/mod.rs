//! The command line: clap definitions and one thin function per command.
//!
//! Each command parses its arguments, calls the library, prints. It owns the
//! choice of state directory and of exit codes (0 success, 1 the run did not
//! succeed, 2 bad input or an error). It must never hold logic a library user
//! would need: that belongs in the scheduler, store, spec or sandbox.
//! The only module that prints: results and `--json` on stdout, progress, the live
//! board and errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod board;
mod build;
mod cache;
mod dag;
mod datasets;
mod deploy;
mod deployments;
mod follow;
mod frame;
mod groups;
mod models;
mod open;
mod out;
mod print;
mod progress;
mod replay;
mod run;
mod runs;
mod secrets;
mod serve;
mod store;
mod style;
mod task_files;
mod test;
mod tokens;
mod triggers;
mod validate;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use out::errln;

/// Exit code when the command worked but the run it reports did not succeed.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code for bad input and errors.
pub const EXIT_ERROR: u8 = 2;
/// Exit code when a third Ctrl-C stopped the command (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "Run workflows of WebAssembly tasks, each in its own sandbox")]
pub struct Cli {
    /// State directory (default: `.sluice` next to the bundle, or in the current directory).
    #[arg(long, global = true, env = "SLUICE_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job from a bundle directory (or sluice.toml file) and wait for it.
    Run(run::RunArgs),
    /// Build the bundle's source components (`{ path = "tasks/x", lang = "python" | "rust" }`).
    Build(build::BuildArgs),
    /// Scaffold something new: `sluice new task NAME --lang python|rust`.
    #[command(subcommand)]
    New(build::NewCommand),
    /// Inspect runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Work with single task components.
    #[command(subcommand)]
    Task(run::TaskCommand),
    /// Secret scopes, values, ACLs and the audit trail.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// The secrets audit trail (same as `sluice secrets audit`).
    Audit(secrets::AuditArgs),
    /// Explain cache hits and misses; collect unused results.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Re-execute a run's tasks in a scratch area and check their outputs are byte-identical.
    Verify(cache::VerifyArgs),
    /// Check the store for damage; back it up or restore a backup.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Own the state directory and serve its jobs over HTTP (Databricks Jobs API and sluice's own).
    Serve(serve::ServeArgs),
    /// The served jobs' triggers (schedules, file arrival, webhooks): list, pause, resume, fire.
    #[command(subcommand)]
    Triggers(triggers::TriggersCommand),
    /// Named datasets tasks publish: versions and lineage (list, show NAME).
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
    /// The model registry: versions, metrics, lineage, and the version each target loads
    /// (list, show NAME [VERSION], stage NAME VERSION --target T).
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// API tokens for `sluice serve`.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Groups and their members, for `group_name` grants in `permissions`.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Snapshot the bundle into the store as the target's next deployment.
    Deploy(deploy::Where),
    /// What `deploy` would change (exit 0: nothing, 3: changes, 2: error).
    Plan(deploy::Where),
    /// Remove the target's deployed jobs (run history stays).
    Destroy(deploy::Where),
    /// Deploy to one target exactly what another target's current deployment holds.
    Promote(deploy::PromoteArgs),
    /// Make an earlier deployment of the target current again.
    Rollback(deploy::RollbackArgs),
    /// Approve a deployment (TARGET/NUMBER) for promotion.
    Approve(deploy::ApproveArgs),
    /// A target's deployments and journal.
    #[command(subcommand)]
    Deployments(deployments::DeploymentsCommand),
    /// Check a bundle for a target without running it (exit 0 valid, 2 not).
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of sluice.toml (for editors: taplo, Even Better TOML).
    Schema,
    /// Run the bundle's [[tests]], each in isolated state; record the verdict.
    Test(test::TestArgs),
    /// Run attempts for a `sluice serve --nats` server, pulled from NATS JetStream.
    Worker(worker::WorkerArgs),
}

/// Parse the command line, run the command, print any error with its causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match dispatch(cli) {
        Ok(_) if out::stdout_failed() => ExitCode::from(EXIT_ERROR),
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e}");
            for cause in e.chain().skip(1) {
                errln!("  caused by: {cause}");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(cli.state, args),
        Command::Build(args) => build::build(args),
        Command::New(cmd) => build::new(cmd),
        Command::Task(cmd) => run::task(cli.state, cmd),
        Command::Runs(cmd) => runs::runs(cli.state, cmd),
        Command::Secrets(cmd) => secrets::secrets(cli.state, cmd),
        Command::Audit(args) => secrets::audit(cli.state, args),
        Command::Cache(cmd) => cache::cache(cli.state, cmd),
        Command::Verify(args) => cache::verify(cli.state, args),
        Command::Store(cmd) => store::store(cli.state, cmd),
        Command::Serve(args) => serve::serve(cli.state, args),
        Command::Tokens(cmd) => tokens::tokens(cli.state, cmd),
        Command::Groups(cmd) => groups::groups(cli.state, cmd),
        Command::Deploy(at) => deploy::deploy(cli.state, at),
        Command::Plan(at) => deploy::plan(cli.state, at),
        Command::Destroy(at) => deploy::destroy(cli.state, at),
        Command::Promote(a) => deploy::promote(cli.state, a),
        Command::Rollback(a) => deploy::rollback(cli.state, a),
        Command::Approve(a) => deploy::approve(cli.state, a),
        Command::Deployments(cmd) => deployments::deployments(cli.state, cmd),
        Command::Validate(args) => validate::validate(cli.state, args),
        Command::Schema => validate::schema(),
        Command::Test(args) => test::test(cli.state, args),
        Command::Triggers(cmd) => triggers::triggers(cli.state, cmd),
        Command::Datasets(cmd) => datasets::datasets(cli.state, cmd),
        Command::Models(cmd) => models::models(cli.state, cmd),
        Command::Worker(args) => worker::worker(cli.state, args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        // async-nats logs its own errors (a refused login) that the command reports anyway:
        // one error, said once; its connection events are logged by `scaleout::Auth`
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,async_nats=off"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// A workspace name: the bundle name rule, so it cannot escape its namespace.
pub(crate) fn parse_workspace(s: &str) -> Result<String, String> {
    crate::spec::names::check_name(s).map(|()| s.to_string()).map_err(|e| format!("workspace: {e}"))
}

/// Parse `k=v` pairs from `--param`.
pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not of the form key=value")),
    }
}
