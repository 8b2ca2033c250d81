//! Accepting connections: the owner's Unix socket (mode 0600, and only peers of the
//! owner's uid or root, by SO_PEERCRED) and TCP, both served by the same router over
//! hyper's HTTP/1, with header and idle limits, a count of open connections (the owner
//! stays while clients are connected), and a graceful stop (stop accepting, let open
//! requests finish within a grace period).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::auth::Peer;

/// How long a client may take to send a request's headers (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most headers and header bytes a request may have.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// How long a stop waits for open requests (events streams included) before closing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The longest Unix socket path (`sun_path`, Linux).
pub const MAX_SOCKET_PATH: usize = 107;

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "the socket path {0} is longer than {MAX_SOCKET_PATH} bytes (a Unix socket limit); use a shorter --state directory"
    )]
    PathTooLong(PathBuf),
    #[error("cannot listen on {what}: {message}")]
    Io { what: String, message: String },
}

/// Open connections, and a way to wait for there to be none.
#[derive(Default)]
pub struct Connections {
    open: AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Connections {
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Wait until no connection is open.
    pub async fn none(&self) {
        loop {
            let notified = self.changed.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Bind the owner's socket at `path`: a stale file is removed first (the caller holds the
/// store's lock, so no other owner can be using it), then the socket is made 0600.
pub fn bind_socket(path: &Path) -> Result<UnixListener, ListenError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ListenError::PathTooLong(path.to_path_buf()));
    }
    let io = |e: std::io::Error| ListenError::Io { what: path.display().to_string(), message: e.to_string() };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// The uid of this process.
fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Serve `app` on the owner's socket until `stop` turns true; then stop accepting and
/// give open requests [`SHUTDOWN_GRACE`].
pub async fn serve_unix(listener: UnixListener, app: Router, conns: Arc<Connections>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let uid = own_uid();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                match stream.peer_cred() {
                    Ok(cred) if cred.uid() == uid || cred.uid() == 0 => {
                        serve_connection(stream, Peer::Local, &app, &conns, &graceful);
                    }
                    Ok(cred) => tracing::warn!("refused a connection to the owner's socket from uid {}", cred.uid()),
                    Err(e) => tracing::warn!("refused a connection to the owner's socket: {e}"),
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Serve `app` on TCP until `stop` turns true (then as [`serve_unix`]).
pub async fn serve_tcp(listener: TcpListener, app: Router, conns: Arc<Connections>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                serve_connection(stream, Peer::Remote, &app, &conns, &graceful);
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

fn serve_connection<S>(stream: S, peer: Peer, app: &Router, conns: &Arc<Connections>, graceful: &GracefulShutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.clone().map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
    let watched = graceful.watch(conn);
    let conns = conns.clone();
    conns.open.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let _ = watched.await;
        conns.open.fetch_sub(1, Ordering::SeqCst);
        conns.changed.notify_waiters();
    });
}
