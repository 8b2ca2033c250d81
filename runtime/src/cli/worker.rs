//! `sluice worker`: run attempts for a `sluice serve --nats` server (glue over
//! [`crate::scaleout::worker`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::out::errln;
use crate::sandbox::MAX_CONCURRENT_INSTANCES;
use crate::scaleout::{self, MIN_LEASE, worker::WorkerOptions};

/// The worker's directory when neither `--dir` nor `--state` names one.
const DEFAULT_DIR: &str = ".sluice-worker";
/// How long running attempts may take to end after SIGTERM or Ctrl-C (those that do not
/// go back to the queue when their lease runs out).
const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The NATS JetStream server the `sluice serve --nats` server uses (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// Attempts at once (default: one per CPU).
    #[arg(long, value_parser = parse_slots)]
    pub slots: Option<usize>,
    /// A label this worker offers (repeatable): tasks with `worker = { labels = … }` run
    /// only on workers offering every label they name.
    #[arg(long = "labels", value_name = "K=V", value_parser = scaleout::parse_label)]
    pub labels: Vec<(String, String)>,
    /// The name outcomes carry (default: host name and process id).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the worker keeps file contents and scratch directories (default: `--state`,
    /// else ./.sluice-worker).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The work stream to serve: a tenant's own (`nats_stream` of a workspace in the
    /// server's --config), or the shared one.
    #[arg(long, value_name = "NAME", default_value = scaleout::WORK_STREAM, value_parser = parse_stream)]
    pub stream: String,
    #[command(flatten)]
    pub auth: NatsAuthArgs,
}

/// How `sluice serve --nats` and `sluice worker` authenticate to NATS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsAuthArgs {
    /// The NATS user (with --nats-password).
    #[arg(long, value_name = "USER", env = "SLUICE_NATS_USER")]
    pub nats_user: Option<String>,
    /// The NATS user's password (better: the SLUICE_NATS_PASSWORD variable).
    #[arg(long, value_name = "PASSWORD", env = "SLUICE_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// A NATS token (better: the SLUICE_NATS_TOKEN variable).
    #[arg(long, value_name = "TOKEN", env = "SLUICE_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// PEM file of the roots that sign the NATS server's certificate: TLS is required.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
}

impl NatsAuthArgs {
    pub(crate) fn auth(&self) -> scaleout::Auth {
        scaleout::Auth {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            tls_ca: self.nats_tls_ca.clone(),
        }
    }
}

fn parse_stream(text: &str) -> Result<String, String> {
    scaleout::check_stream_name(text).map(|()| text.to_string())
}

fn parse_slots(text: &str) -> Result<usize, String> {
    let max = MAX_CONCURRENT_INSTANCES as usize;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("--slots must be a whole number from 1 to {max} (the sandbox pool's size)")),
    }
}

/// `--lease`: a duration of at least [`MIN_LEASE`].
pub(crate) fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = crate::spec::parse_duration(text)?;
    if lease < MIN_LEASE {
        return Err(format!("--lease must be at least {}", crate::util::human_duration(MIN_LEASE)));
    }
    Ok(lease)
}

pub fn worker(state: Option<PathBuf>, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let labels: std::collections::BTreeMap<_, _> = args.labels.into_iter().collect();
    if labels.len() > crate::spec::MAX_WORKER_LABELS {
        anyhow::bail!("at most {} --labels, not {}", crate::spec::MAX_WORKER_LABELS, labels.len());
    }
    let slots = args.slots.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_CONCURRENT_INSTANCES as usize)
    });
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let name = args
        .name
        .unwrap_or_else(|| format!("{}-{}", if host.is_empty() { "worker" } else { &host }, std::process::id()));
    let dir = args.dir.or(state).unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let options = WorkerOptions { name: name.clone(), slots, labels: labels.clone(), dir, stream: args.stream.clone() };
    let tokio = super::open::tokio_runtime()?;
    tokio.block_on(async move {
        let link = scaleout::Link::connect(&args.nats, &args.auth.auth()).await?;
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        errln!(
            "sluice worker {name}: {slots} slot{}, labels [{}], pulling from {} (stream {})",
            if slots == 1 { "" } else { "s" },
            shown.join(", "),
            args.nats,
            args.stream
        );
        scaleout::worker::run(link, options, super::serve::stop_signal(), STOP_GRACE).await?;
        errln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
