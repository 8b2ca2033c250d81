//! Scale-out through NATS JetStream: `sluice serve --nats URL` hands attempts to workers on
//! other machines (`sluice worker --nats URL`) instead of this process's sandbox.
//!
//! Owns the wire between the coordinator and its workers: the JetStream streams and object
//! stores and their names ([`Link`]), routing by worker labels ([`route_of`], [`routes_of`]),
//! the messages ([`wire`]), the server's [`RemoteExecutor`] and the [`worker`] loop. The server
//! stays the single owner of the store: a worker holds no store, no secret scope and no run
//! state; it gets an attempt with everything it may read, runs it in the same sandbox with the
//! same limits, and publishes what happened. This module must never decide what an outcome
//! means for a run (that is the coordinator's), nor open a state directory's store.
//!
//! Streams (created by whoever connects first, with the same configuration):
//! - `SLUICE_WORK` (work-queue retention), subjects `sluice.work.<route>`: one attempt per
//!   message. Each route (a set of required labels) has its own durable pull consumer that
//!   every eligible worker pulls from, so a worker without a task's labels never sees it.
//! - a tenant's own work-queue stream (`nats_stream` of a workspace in the server's
//!   config), subjects `sluice.lane.<stream>.<route>`: that workspace's attempts only,
//!   served by workers started with `--stream <stream>` (and by no other worker).
//!   An attempt's subject ends with its id (`sluice.work.<route>.<id>`), so a restarted
//!   server can tell whether an attempt it dispatched is still there.
//! - `SLUICE_OUTCOMES` (work-queue retention), subjects `sluice.outcome.<attempt id>`: what
//!   workers report, published with the attempt id as message id (JetStream drops a
//!   duplicate within its window; the server keeps only the first outcome of an attempt).
//! - object stores `sluice-components` (component bytes by blake3) and `sluice-blobs`
//!   (`/in` and `/out` file contents by blake3).
//! - core subject `sluice.cancel.<attempt id>`: stop a running attempt.
//! - core subject `sluice.reveal.<server>`: a worker asks the server for a secret of an
//!   attempt it runs ([`reveal`]).

pub mod remote;
pub mod wire;
pub mod worker;

mod inbox;
mod reveal;
mod transfer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::object_store::ObjectStore;

pub use remote::RemoteExecutor;

/// The work-queue stream attempts travel on.
pub const WORK_STREAM: &str = "SLUICE_WORK";
/// Subject prefix of the work stream: `sluice.work.<route>`.
pub const WORK_PREFIX: &str = "sluice.work";
/// The stream outcomes travel on.
pub const OUTCOME_STREAM: &str = "SLUICE_OUTCOMES";
/// Subject prefix of the outcome stream: `sluice.outcome.<attempt id>`.
pub const OUTCOME_PREFIX: &str = "sluice.outcome";
/// The coordinator's durable consumer of outcomes.
pub const OUTCOME_CONSUMER: &str = "coordinator";
/// Core subject prefix of cancel requests: `sluice.cancel.<attempt id>`.
pub const CANCEL_PREFIX: &str = "sluice.cancel";
/// Core subject prefix of workers' secret reveals: `sluice.reveal.<server prefix>`.
pub const REVEAL_PREFIX: &str = "sluice.reveal";
/// Object store of component bytes, named by blake3.
pub const COMPONENTS_BUCKET: &str = "sluice-components";
/// Object store of file contents (`/in`, `/out`), named by blake3.
pub const BLOBS_BUCKET: &str = "sluice-blobs";

/// How long a worker holds an attempt without a heartbeat before JetStream hands it to
/// another worker: long enough that a busy worker's heartbeat (every third of it) is never
/// late, short enough that a dead worker's attempt moves on quickly.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The shortest lease `--lease` accepts: heartbeats go every third of it.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// Deliveries of one attempt before JetStream gives up on it: an attempt that kills every
/// worker it lands on must not circle forever (the server then fails it after its lease).
pub const MAX_DELIVER: i64 = 5;
/// How long outcomes and attempts wait in their streams for a server or worker to come
/// back (and the window in which a duplicate outcome is dropped by JetStream).
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// JetStream's duplicate window for outcomes published twice (a worker that died between
/// publishing and acknowledging, then the attempt ran again elsewhere).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Why the scale-out wire failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaleoutError {
    #[error("connecting to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS JetStream: {0}")]
    Nats(String),
    #[error("{0}")]
    Invalid(String),
}

/// `err` with what was being done.
pub(crate) fn nats(what: &str, err: impl std::fmt::Display) -> ScaleoutError {
    ScaleoutError::Nats(format!("{what}: {err}"))
}

/// A connection to NATS with the streams and object stores scale-out uses.
#[derive(Clone)]
pub struct Link {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) components: ObjectStore,
    pub(crate) blobs: ObjectStore,
}

/// How to authenticate to NATS and which TLS roots to trust (`--nats-user`/
/// `--nats-password`, `--nats-token`, `--nats-tls-ca`). NATS `.creds` files (JWT + NKey)
/// need async-nats' `nkeys` feature, which this build leaves out.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// PEM roots to verify the server's certificate with (TLS is then required).
    pub tls_ca: Option<PathBuf>,
}

impl Auth {
    fn options(&self, url: &str) -> Result<async_nats::ConnectOptions, ScaleoutError> {
        let invalid = |message: String| ScaleoutError::Connect { url: url.to_string(), message };
        let mut options = async_nats::ConnectOptions::new();
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options = options.user_and_password(user.clone(), password.clone()),
            (None, None) => {}
            _ => return Err(invalid("--nats-user and --nats-password go together".into())),
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.tls_ca {
            if !ca.is_file() {
                return Err(invalid(format!("--nats-tls-ca {}: no such file", ca.display())));
            }
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        Ok(options.name("sluice").event_callback(|event| async move { log_event(&event) }))
    }
}

/// A connection's events, in this process's log (async-nats' own log is off by default: it
/// repeats the errors commands report).
fn log_event(event: &async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected | Event::Draining | Event::Closed => tracing::info!("NATS: {event}"),
        _ => tracing::warn!("NATS: {event}"),
    }
}

impl Link {
    /// Connect to `url` (`nats://HOST:PORT`) as `auth` says and make sure the streams and
    /// buckets exist.
    pub async fn connect(url: &str, auth: &Auth) -> Result<Link, ScaleoutError> {
        let client = auth
            .options(url)?
            .connect(url)
            .await
            .map_err(|e| ScaleoutError::Connect { url: url.to_string(), message: e.to_string() })?;
        let js = jetstream::new(client.clone());
        ensure_stream(&js, WORK_STREAM, WORK_PREFIX).await?;
        ensure_stream(&js, OUTCOME_STREAM, OUTCOME_PREFIX).await?;
        let components = ensure_bucket(&js, COMPONENTS_BUCKET).await?;
        let blobs = ensure_bucket(&js, BLOBS_BUCKET).await?;
        Ok(Link { client, js, components, blobs })
    }
}

async fn ensure_stream(js: &jetstream::Context, name: &str, prefix: &str) -> Result<(), ScaleoutError> {
    use jetstream::stream::{Config, RetentionPolicy, StorageType};
    let config = Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.>")],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        max_age: RETENTION,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|e| nats(&format!("stream {name}"), e))?;
    Ok(())
}

/// Make sure durable pull consumer `name` of `stream` has `config`. A consumer with another
/// subject filter (one an older sluice made, before attempt ids joined the work subjects) is
/// deleted and made again: NATS 2.9 accepts a filter change in place but then skips the
/// messages published after it. Other settings (the lease as `ack_wait`) are updated in
/// place. The stream keeps its messages meanwhile (work-queue retention drops one only when
/// it is acknowledged), and an attempt delivered twice by the change is recorded once
/// (outcomes go by attempt id).
pub(crate) async fn ensure_consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
    config: jetstream::consumer::pull::Config,
) -> Result<jetstream::consumer::PullConsumer, ScaleoutError> {
    if let Ok(info) = stream.consumer_info(name).await
        && info.config.filter_subject != config.filter_subject
    {
        tracing::info!(
            consumer = name,
            old = %info.config.filter_subject,
            new = %config.filter_subject,
            "NATS: replacing a consumer whose subject filter changed"
        );
        stream.delete_consumer(name).await.map_err(|e| nats(&format!("replacing consumer {name}"), e))?;
    }
    stream.create_consumer(config).await.map_err(|e| nats(&format!("consumer {name}"), e))
}

async fn ensure_bucket(js: &jetstream::Context, bucket: &str) -> Result<ObjectStore, ScaleoutError> {
    if let Ok(store) = js.get_object_store(bucket).await {
        return Ok(store);
    }
    let config = jetstream::object_store::Config { bucket: bucket.to_string(), ..Default::default() };
    match js.create_object_store(config).await {
        Ok(store) => Ok(store),
        // another process created it meanwhile
        Err(e) => js.get_object_store(bucket).await.map_err(|_| nats(&format!("object store {bucket}"), e)),
    }
}

/// File in a server's state directory holding its scale-out key (32 random bytes, hex).
pub const KEY_FILE: &str = "nats.key";

/// A server's durable identity on the wire, kept in its state directory: attempt ids and
/// the reveal subject are derived from it, so a restarted server recognises the attempts
/// (and the outcomes workers kept) of the process before it; delivery tokens are keyed by
/// it, so only the server can make them.
#[derive(Clone)]
pub struct ServerKey {
    /// Public: names the server in subjects.
    pub id: String,
    key: [u8; 32],
}

impl ServerKey {
    /// The key of the server whose state directory is `dir`, made on first use.
    pub fn of_state(dir: &Path) -> Result<ServerKey, ScaleoutError> {
        let path = dir.join(KEY_FILE);
        let io = |e: std::io::Error| ScaleoutError::Invalid(format!("{}: {e}", path.display()));
        if !path.exists() {
            std::fs::create_dir_all(dir).map_err(io)?;
            let tmp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| ScaleoutError::Invalid("no system randomness".into()))?;
            write_private(&tmp, &hex(&bytes)).map_err(io)?;
            // another server process may have made it meanwhile: the first one stays
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            if let Err(e) = linked
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(io(e));
            }
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let mut key = [0u8; 32];
        let text = text.trim();
        let bad = || ScaleoutError::Invalid(format!("{}: not 64 hex digits", path.display()));
        if text.len() != 64 {
            return Err(bad());
        }
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ServerKey::from_bytes(key))
    }

    fn from_bytes(key: [u8; 32]) -> ServerKey {
        let id = blake3::keyed_hash(&key, b"server id").to_hex()[..16].to_string();
        ServerKey { id, key }
    }

    /// The id of attempt `attempt` of task `task` in run `run` (the same in every process
    /// of this server).
    pub fn attempt_id(&self, run: crate::model::RunId, task: &str, attempt: u32) -> String {
        let mut h = blake3::Hasher::new();
        h.update(self.id.as_bytes()).update(b"\0");
        h.update(&run.to_le_bytes()).update(task.as_bytes()).update(b"\0").update(&attempt.to_le_bytes());
        h.finalize().to_hex()[..32].to_string()
    }

    /// The token a worker shows with the reveals of attempt `id`: in its order only.
    pub(crate) fn token(&self, id: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"reveal token\0").update(id.as_bytes());
        h.finalize().to_hex()[..32].to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `text` to a new file only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The route of a label set: `any` for none, else a short hash of the sorted `k=v` pairs
/// (subject tokens must not hold the `.`, `*` or `>` labels could).
pub fn route_of(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "any".into();
    }
    let mut h = blake3::Hasher::new();
    for (k, v) in labels {
        h.update(k.as_bytes()).update(b"=").update(v.as_bytes()).update(b"\n");
    }
    h.finalize().to_hex()[..16].to_string()
}

/// Every route a worker with `labels` serves: one per subset of its labels (a task requiring
/// a subset of them may run there). Labels are at most [`crate::spec::MAX_WORKER_LABELS`].
pub fn routes_of(labels: &BTreeMap<String, String>) -> Vec<String> {
    let pairs: Vec<(&String, &String)> = labels.iter().collect();
    (0u32..1 << pairs.len())
        .map(|mask| {
            let subset = pairs
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, (k, v))| ((*k).clone(), (*v).clone()))
                .collect();
            route_of(&subset)
        })
        .collect()
}

/// The subjects of a route's attempts in work stream `stream` (a consumer's filter).
pub(crate) fn work_subject(stream: &str, route: &str) -> String {
    format!("{}.{route}.*", stream_prefix(stream))
}

/// The subject of attempt `id` on route `route` of work stream `stream`.
pub(crate) fn attempt_subject(stream: &str, route: &str, id: &str) -> String {
    format!("{}.{route}.{id}", stream_prefix(stream))
}

/// The subject prefix of work stream `stream`: [`WORK_PREFIX`] for the shared one, a
/// prefix of its own for a tenant's (streams' subjects must not overlap).
pub(crate) fn stream_prefix(stream: &str) -> String {
    if stream == WORK_STREAM { WORK_PREFIX.to_string() } else { format!("sluice.lane.{stream}") }
}

/// Make sure work stream `stream` exists (a tenant's is made when first used).
pub(crate) async fn ensure_work_stream(js: &jetstream::Context, stream: &str) -> Result<(), ScaleoutError> {
    ensure_stream(js, stream, &stream_prefix(stream)).await
}

/// Check a work stream's name: 1 to 32 letters, digits, `_` or `-` (a subject token and a
/// JetStream stream name both).
pub fn check_stream_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok || name == OUTCOME_STREAM {
        return Err(format!(
            "`{name}`: a work stream's name is 1 to 32 letters, digits, `_` or `-` (and not {OUTCOME_STREAM})"
        ));
    }
    Ok(())
}

/// The durable consumer of a route's attempts.
pub(crate) fn work_consumer(route: &str) -> String {
    format!("work-{route}")
}

/// `k=v` as `--labels` takes it.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("`{text}`: a label is `name=value`"))?;
    for word in [k, v] {
        if !crate::spec::is_label_word(word) {
            return Err(format!("`{text}`: label names and values are 1 to 64 letters, digits, `_` or `-`"));
        }
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_worker_serves_exactly_the_routes_of_its_label_subsets() {
        let worker = routes_of(&labels(&[("pool", "gpu"), ("zone", "a")]));
        assert_eq!(worker.len(), 4);
        assert!(worker.contains(&route_of(&labels(&[]))));
        assert!(worker.contains(&route_of(&labels(&[("pool", "gpu")]))));
        assert!(worker.contains(&route_of(&labels(&[("zone", "a"), ("pool", "gpu")]))));
        assert!(!worker.contains(&route_of(&labels(&[("pool", "cpu")]))));
        assert!(!worker.contains(&route_of(&labels(&[("pool", "gpu"), ("zone", "b")]))));
        assert_eq!(routes_of(&labels(&[])), vec!["any".to_string()]);
    }

    #[test]
    fn tenant_streams_have_subjects_of_their_own() {
        assert_eq!(work_subject(WORK_STREAM, "any"), "sluice.work.any.*");
        assert_eq!(attempt_subject("ACME", "any", "ab"), "sluice.lane.ACME.any.ab");
        assert!(check_stream_name("TENANT_a-1").is_ok());
        for bad in ["", "a.b", "a*", "a>", OUTCOME_STREAM, &"x".repeat(33)] {
            assert!(check_stream_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_servers_key_survives_its_restart_and_names_attempts_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServerKey::of_state(dir.path()).unwrap();
        let again = ServerKey::of_state(dir.path()).unwrap();
        assert_eq!(first.id, again.id);
        assert_eq!(first.attempt_id(3, "t", 1), again.attempt_id(3, "t", 1));
        assert_ne!(first.attempt_id(3, "t", 1), first.attempt_id(3, "t", 2));
        assert_ne!(first.attempt_id(3, "t", 1), first.attempt_id(4, "t", 1));
        assert_eq!(first.token("x"), again.token("x"));
        let other = ServerKey::of_state(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(other.attempt_id(3, "t", 1), first.attempt_id(3, "t", 1));
        assert_ne!(other.token("x"), first.token("x"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads the key");
    }

    #[test]
    fn labels_are_words() {
        assert_eq!(parse_label("pool=gpu").unwrap(), ("pool".into(), "gpu".into()));
        assert!(parse_label("pool").unwrap_err().contains("name=value"));
        assert!(parse_label("po.ol=x").unwrap_err().contains("letters"));
        assert!(parse_label("pool=").is_err());
    }
}
