//! A command's session with its state directory: the election, and an owner's lifetime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Client, LocalClient, SOCKET_FILE, SocketClient};
use crate::scheduler::{OpenError, Runtime, RuntimeOptions};
use crate::server::listen::{self, Connections};
use crate::server::{AppState, Metrics};
use crate::service::{Caller, Service};
use crate::store::StoreError;

/// How long a command tries to become the owner or reach one (an owner may be starting or
/// exiting meanwhile) before it gives up.
pub const ELECTION_WAIT: Duration = Duration::from_secs(10);
/// The first and the longest pause between election rounds.
const ELECTION_BACKOFF: Duration = Duration::from_millis(5);
const ELECTION_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// How long an owner waits for runs to wrap up before it says it stays for them: a run
/// the command followed is still recording its summary just after its last event.
const LINGER_NOTICE_DELAY: Duration = Duration::from_millis(500);

/// Why a session could not begin.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(
        "another sluice process holds the state in {} but does not answer on {} after {}s; \
         if none is running, the store's lock is held by something else",
        dir.display(), socket.display(), ELECTION_WAIT.as_secs()
    )]
    Unsettled { dir: PathBuf, socket: PathBuf },
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
}

/// How a command that becomes the owner sets up.
#[derive(Clone)]
pub struct OwnerOptions {
    pub runtime: RuntimeOptions,
    /// Also serve HTTP on this address (`sluice serve --listen`).
    pub listen: Option<SocketAddr>,
    /// Who the command is, and the workspace it works in.
    pub principal: String,
    pub workspace: String,
}

/// This process owns the state directory and serves it.
pub struct Owner {
    pub service: Service,
    pub client: LocalClient,
    conns: Arc<Connections>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    socket: Option<PathBuf>,
    /// The TCP address actually bound (`--listen 127.0.0.1:0` picks one).
    pub tcp: Option<SocketAddr>,
}

enum Role {
    Owner(Box<Owner>),
    Client(SocketClient),
}

/// A command's connection to its state directory's owner (perhaps itself).
pub struct Session {
    state_dir: PathBuf,
    options: OwnerOptions,
    role: Role,
}

impl Session {
    /// Become the owner of `state_dir`, or a client of its owner.
    pub async fn open(state_dir: &Path, options: OwnerOptions) -> Result<Session, SessionError> {
        let role = elect(state_dir, &options).await?;
        Ok(Session { state_dir: state_dir.to_path_buf(), options, role })
    }

    pub fn client(&self) -> &dyn Client {
        match &self.role {
            Role::Owner(o) => &o.client,
            Role::Client(c) => c,
        }
    }

    /// This process's owner side, if it owns the state directory.
    pub fn owner(&self) -> Option<&Owner> {
        match &self.role {
            Role::Owner(o) => Some(o),
            Role::Client(_) => None,
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The owner vanished: elect again. Becoming the owner, take over what it left (the
    /// run this command follows among it). Whether this process is the owner now.
    pub async fn reconnect(&mut self) -> Result<bool, SessionError> {
        self.role = elect(&self.state_dir, &self.options).await?;
        if let Role::Owner(o) = &self.role {
            if let Err(e) = o.service.take_over().await {
                tracing::warn!("taking over: {e}");
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// The command is done. An owner stays while runs are in flight or clients are
    /// connected (`lingering` is told how many runs, once), then stops serving; if
    /// `interrupted` resolves first, it stops gracefully within `grace` (see
    /// [`Session::shutdown`]).
    pub async fn finish(
        self,
        lingering: impl FnOnce(usize),
        interrupted: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) {
        let Role::Owner(owner) = self.role else { return };
        let quiet = async {
            let mut told = Some(lingering);
            loop {
                if owner.service.busy() {
                    if told.is_some() && tokio::time::timeout(LINGER_NOTICE_DELAY, owner.service.idle()).await.is_ok() {
                        continue;
                    }
                    if let Some(tell) = told.take() {
                        let (running, queued) = owner.service.run_counts();
                        tell(running + queued);
                    }
                    owner.service.idle().await;
                } else if owner.conns.open() > 0 {
                    owner.conns.none().await;
                } else {
                    return true;
                }
            }
        };
        let quiet = tokio::select! {
            quiet = quiet => quiet,
            () = interrupted => false,
        };
        if !quiet {
            owner.service.drain();
            let _ = tokio::time::timeout(grace, owner.service.drained()).await;
        }
        owner.close().await;
    }

    /// Stop gracefully (`sluice serve` on SIGTERM, a second Ctrl-C): refuse new runs, give
    /// running attempts `grace` to end (their runs stay unfinished and resume on the next
    /// start), stop serving, make everything durable.
    pub async fn shutdown(self, grace: Duration) {
        let Role::Owner(owner) = self.role else { return };
        owner.service.drain();
        let _ = tokio::time::timeout(grace, owner.service.drained()).await;
        owner.close().await;
    }
}

impl Owner {
    /// Stop accepting, let open requests finish, remove the socket, flush the store.
    async fn close(self) {
        self.service.settle_notifications(crate::notify::NOTIFY_EXIT_WAIT).await;
        let _ = self.stop.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        if let Err(e) = self.service.runtime().store().flush() {
            tracing::warn!("flushing the store: {e}");
        }
    }
}

async fn elect(state_dir: &Path, options: &OwnerOptions) -> Result<Role, SessionError> {
    let socket = state_dir.join(SOCKET_FILE);
    let deadline = Instant::now() + ELECTION_WAIT;
    let mut pause = ELECTION_BACKOFF;
    loop {
        let metrics = Arc::new(Metrics::new());
        let mut runtime = options.runtime.clone();
        runtime.telemetry = Some(metrics.clone());
        match Runtime::open(state_dir, runtime) {
            Ok(rt) => return become_owner(rt, metrics, state_dir, options).await.map(|o| Role::Owner(Box::new(o))),
            Err(OpenError::Store(StoreError::Locked { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        if UnixStream::connect(&socket).await.is_ok() {
            let client = SocketClient {
                path: socket,
                principal: options.principal.clone(),
                workspace: options.workspace.clone(),
            };
            return Ok(Role::Client(client));
        }
        if Instant::now() >= deadline {
            return Err(SessionError::Unsettled { dir: state_dir.to_path_buf(), socket });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ELECTION_BACKOFF_MAX);
    }
}

async fn become_owner(
    rt: Runtime,
    metrics: Arc<Metrics>,
    state_dir: &Path,
    options: &OwnerOptions,
) -> Result<Owner, SessionError> {
    let service = Service::new(rt, state_dir.to_path_buf());
    let app = crate::server::router(AppState { service: service.clone(), metrics });
    let (stop, stopped) = watch::channel(false);
    let conns = Arc::new(Connections::default());
    let mut servers = Vec::new();
    let path = state_dir.join(SOCKET_FILE);
    let socket = match listen::bind_socket(&path) {
        Ok(listener) => {
            servers.push(tokio::spawn(listen::serve_unix(listener, app.clone(), conns.clone(), stopped.clone())));
            Some(path)
        }
        Err(e) => {
            tracing::warn!("other sluice commands cannot reach this one: {e}");
            None
        }
    };
    let mut tcp = None;
    if let Some(addr) = options.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| SessionError::Listen { addr: addr.to_string(), message: e.to_string() })?;
        tcp = listener.local_addr().ok();
        servers.push(tokio::spawn(listen::serve_tcp(listener, app, conns.clone(), stopped)));
    }
    let dashboard = std::env::var(crate::notify::DASHBOARD_URL_ENV).ok().filter(|url| !url.is_empty());
    service.start_notifications(dashboard.or_else(|| tcp.map(|addr| format!("http://{addr}"))));
    let caller = Caller::local(options.principal.clone(), options.workspace.clone());
    let client = LocalClient { service: service.clone(), caller };
    Ok(Owner { service, client, conns, stop, servers, socket, tcp })
}
