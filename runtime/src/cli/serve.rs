//! `sluice serve [BUNDLE…] [--listen ADDR]`: own the state directory and stay up, serving
//! the bundles' jobs over HTTP (the Databricks Jobs API subset and sluice's own) and the
//! owner's socket, until SIGTERM or Ctrl-C stops it gracefully.
//!
//! Owns the server's configuration file (`--config`: fair share of sandbox slots between
//! workspaces; unknown keys are errors naming them) and the stderr lines saying where it
//! listens. Holds no logic: the client module elects, the service runs, the server serves.

use super::out::errln;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;

use super::open;
use crate::scheduler::RuntimeOptions;
use crate::scheduler::slots::FairShare;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Bundle directories (or sluice.toml files) whose jobs to serve. With one bundle, the
    /// state directory is the `.sluice` beside it (as for `sluice run`), else `./.sluice`.
    pub bundles: Vec<PathBuf>,
    /// Also serve HTTP on this address (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// A workspace the bundles' jobs are served to (repeatable; default: `default`).
    #[arg(long = "workspace", value_name = "NAME", value_parser = super::parse_workspace)]
    pub workspaces: Vec<String>,
    /// Server configuration: per-workspace weights and slot caps (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sandboxes at once, across all runs.
    #[arg(long, env = "SLUICE_MAX_PARALLEL", value_parser = super::run::parse_max_parallel)]
    pub max_parallel: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long running attempts may take to end before the server
    /// exits (their runs resume on the next start).
    #[arg(long, default_value = "30s", value_parser = crate::spec::parse_duration)]
    pub grace: Duration,
    /// Run attempts on `sluice worker`s through this NATS JetStream server instead of
    /// this process's sandbox (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// With --nats: how long a worker holds an attempt without a heartbeat before it is
    /// handed to another worker.
    #[arg(long, default_value = "10s", value_parser = super::worker::parse_lease)]
    pub lease: Duration,
    #[command(flatten)]
    pub nats_auth: super::worker::NatsAuthArgs,
}

/// The server's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    #[serde(default)]
    workspaces: BTreeMap<String, WorkspaceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceConfig {
    /// Its share of the sandbox slots relative to other workspaces' (default 1).
    weight: Option<u32>,
    /// The most slots its runs hold at once.
    max_slots: Option<usize>,
    /// With --nats: the JetStream work-queue stream its attempts go to, its own (served
    /// by `sluice worker --stream NAME`) instead of the shared one.
    nats_stream: Option<String>,
}

/// What the configuration file says: fair share, and workspaces' own work streams.
struct Configured {
    share: FairShare,
    streams: BTreeMap<String, String>,
}

fn server_config(path: Option<&PathBuf>) -> anyhow::Result<Configured> {
    let Some(path) = path else { return Ok(Configured { share: FairShare::default(), streams: BTreeMap::new() }) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: ServerConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut share = FairShare::default();
    let mut streams = BTreeMap::new();
    for (name, ws) in config.workspaces {
        if let Some(stream) = ws.nats_stream {
            crate::scaleout::check_stream_name(&stream)
                .map_err(|e| anyhow::anyhow!("{}: workspaces.{name}.nats_stream: {e}", path.display()))?;
            streams.insert(name.clone(), stream);
        }
        super::parse_workspace(&name).map_err(|e| anyhow::anyhow!("{}: [workspaces.{name}]: {e}", path.display()))?;
        if let Some(w) = ws.weight {
            if w == 0 {
                anyhow::bail!("{}: workspaces.{name}.weight must be at least 1", path.display());
            }
            share.weights.insert(name.clone(), w);
        }
        if let Some(cap) = ws.max_slots {
            if cap == 0 {
                anyhow::bail!("{}: workspaces.{name}.max_slots must be at least 1", path.display());
            }
            share.caps.insert(name, cap);
        }
    }
    Ok(Configured { share, streams })
}

pub fn serve(state_arg: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // one bundle: its state beside it, where `sluice run BUNDLE` keeps it (so a run of
    // that bundle finds this server); several: the current directory's
    let beside = match args.bundles.as_slice() {
        [one] if one.is_file() => one.parent().map(std::path::Path::to_path_buf),
        [one] => Some(one.clone()),
        _ => None,
    };
    let dir = open::state_dir(state_arg, &beside.map_or_else(std::env::current_dir, Ok)?);
    let Configured { share: fair_share, streams } = server_config(args.config.as_ref())?;
    let runtime = RuntimeOptions { max_parallel: args.max_parallel, fair_share, ..Default::default() };
    let workspaces =
        if args.workspaces.is_empty() { vec![crate::secrets::DEFAULT_WORKSPACE.to_string()] } else { args.workspaces };
    let mut options = open::owner_options(&workspaces[0], runtime);
    options.listen = args.listen;
    let tokio = open::tokio_runtime()?;
    tokio.block_on(async move {
        if let Some(url) = &args.nats {
            let key = crate::scaleout::ServerKey::of_state(&dir)?;
            let id = key.id.clone();
            let link = crate::scaleout::Link::connect(url, &args.nats_auth.auth()).await?;
            let executor = crate::scaleout::RemoteExecutor::start(link, args.lease, streams, key).await?;
            options.runtime.executor = Some(executor);
            errln!(
                "attempts go to workers through NATS JetStream at {url} (lease {}, server {id})",
                crate::util::human_duration(args.lease)
            );
        }
        let session = crate::client::Session::open(&dir, options).await?;
        let Some(owner) = session.owner() else {
            anyhow::bail!(
                "another sluice process owns {} (its socket answers); stop it first: `sluice serve` must own the store",
                dir.display()
            );
        };
        owner.service.serve_bundles(&args.bundles, &workspaces)?;
        let resumed = owner.service.take_over().await?;
        owner
            .service
            .start_triggers(trigger_clock(), &open::principal().unwrap_or_else(|| crate::service::ANONYMOUS.into()));
        let jobs = count_jobs(&args.bundles);
        errln!(
            "sluice serve: {jobs} job{} of {} bundle{} for workspace{} {}; state {}",
            plural(jobs),
            args.bundles.len(),
            plural(args.bundles.len()),
            plural(workspaces.len()),
            workspaces.join(", "),
            dir.display()
        );
        for (run, _) in &resumed {
            errln!("resuming run {run}: the process running it stopped before it finished");
        }
        errln!("listening on {}", dir.join(crate::client::SOCKET_FILE).display());
        if let Some(addr) = owner.tcp {
            errln!("listening on http://{addr}");
        }
        stop_signal().await;
        owner.service.stop_triggers();
        errln!("stopping: no new runs; running attempts have {} to end", crate::util::human_duration(args.grace));
        session.shutdown(args.grace).await;
        errln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Test only: `SLUICE_TEST_CLOCK=FILE` makes the trigger engine's time the milliseconds
/// written in FILE (end-to-end tests move time by writing it); otherwise the real clock.
const TEST_CLOCK_ENV: &str = "SLUICE_TEST_CLOCK";

fn trigger_clock() -> std::sync::Arc<dyn crate::triggers::WakeClock> {
    match std::env::var_os(TEST_CLOCK_ENV) {
        Some(file) => {
            errln!(
                "{TEST_CLOCK_ENV} is set: triggers follow the time written in {} (for tests only)",
                PathBuf::from(&file).display()
            );
            std::sync::Arc::new(crate::triggers::FileClock::new(file.into()))
        }
        None => std::sync::Arc::new(crate::model::SystemClock),
    }
}

fn count_jobs(bundles: &[PathBuf]) -> usize {
    bundles.iter().filter_map(|b| crate::spec::load(b).ok()).map(|b| b.jobs.len()).sum()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_names_unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "[workspaces.a]\nweight = 3\nmax_slots = 2\n[workspaces.b]\nweight = 1\n").unwrap();
        let share = server_config(Some(&path)).unwrap().share;
        assert_eq!(share.weights.get("a"), Some(&3));
        assert_eq!(share.caps.get("a"), Some(&2));
        std::fs::write(&path, "[workspaces.a]\nweigth = 3\n").unwrap();
        let e = server_config(Some(&path)).err().unwrap().to_string();
        assert!(e.contains("weigth") && e.contains("server.toml"), "{e}");
        std::fs::write(&path, "[workspaces.a]\nweight = 0\n").unwrap();
        assert!(server_config(Some(&path)).err().unwrap().to_string().contains("workspaces.a.weight"));
        std::fs::write(&path, "[workspaces.a]\nnats_stream = \"ACME\"\n").unwrap();
        assert_eq!(server_config(Some(&path)).unwrap().streams.get("a").map(String::as_str), Some("ACME"));
        std::fs::write(&path, "[workspaces.a]\nnats_stream = \"a.b\"\n").unwrap();
        assert!(server_config(Some(&path)).err().unwrap().to_string().contains("workspaces.a.nats_stream"));
    }
}
