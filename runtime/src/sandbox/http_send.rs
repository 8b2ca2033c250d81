//! Sending one outbound request the allowlist let through, to the addresses it checked.
//!
//! Owns the connection: TCP to an address [`super::http`] resolved and checked — the host
//! name is never resolved again, so a DNS answer that changes between the check and the
//! connection (DNS rebinding) cannot move a request to an address the check refused —
//! TLS verified against the host name the guest asked for (webpki roots), HTTP/1.1 with a
//! bounded read buffer, and the timeouts. It never decides whether a request may go.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// The read buffer of one connection, which bounds a response's head (status line and
/// headers): a guest must not make the host hold megabytes of headers per request. 64 KiB
/// is far above what real APIs send.
pub const MAX_RESPONSE_BUFFER_BYTES: usize = 64 << 10;

/// The timeouts of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// What the guest's wasi-http learns about the connection once the response is handed over.
pub(crate) type SendFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Send `request` to `host` (the name the guest used, for TLS) at the first of `addrs` that
/// accepts a connection. `guard` lives as long as the connection.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    addrs: &[SocketAddr],
    host: &str,
    tls: bool,
    t: Timeouts,
    guard: impl Send + 'static,
) -> Result<(http::Response<WasiBody>, SendFuture), HttpError> {
    let tcp = connect(addrs, t.connect).await?;
    let io: Box<dyn Io> = if tls { Box::new(tls_handshake(tcp, host, t.connect).await?) } else { Box::new(tcp) };
    let handshake =
        hyper::client::conn::http1::Builder::new().max_buf_size(MAX_RESPONSE_BUFFER_BYTES).handshake(TokioIo::new(io));
    let (mut sender, conn) =
        tokio::time::timeout(t.connect, handshake).await.map_err(|_| HttpError::ConnectionTimeout)??;
    // the request line carries the path only (the host is in the Host header)
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let driver = tokio::spawn(async move {
        let _guard = guard;
        conn.await
    });
    let response = tokio::time::timeout(t.first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    let gap = t.between_bytes.max(Duration::from_millis(1));
    let response =
        response.map(|incoming| TimedBody { incoming, gap, idle: Box::pin(tokio::time::sleep(gap)) }.boxed_unsync());
    let io: SendFuture = Box::new(async move {
        match driver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_timeout() => Err(HttpError::HttpResponseTimeout),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(HttpError::ConnectionTerminated),
        }
    });
    Ok((response, io))
}

/// A TCP connection to the first address that takes one.
async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, HttpError> {
    let mut last = HttpError::DestinationNotFound;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = HttpError::Connect(e),
            Err(_) => last = HttpError::ConnectionTimeout,
        }
    }
    Err(last)
}

async fn tls_handshake(
    tcp: TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
    });
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(HttpError::InvalidDnsNameError)?;
    let connect = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp);
    tokio::time::timeout(timeout, connect).await.map_err(|_| HttpError::ConnectionTimeout)?.map_err(HttpError::Tls)
}

/// A response body that fails when no bytes come for `gap`.
struct TimedBody {
    incoming: Incoming,
    gap: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.as_mut().reset(tokio::time::Instant::now() + this.gap);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback answering every request with `hello`.
    async fn hello_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0; 4096];
                let _ = stream.read(&mut buf).await;
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_request_goes_to_the_checked_address_and_the_name_is_not_resolved_again() {
        let addr = hello_server().await;
        // `.invalid` never resolves (RFC 6761): only the checked address can be reached
        let url = format!("http://rebound.invalid:{}/x?q=1", addr.port());
        let body = http_body_util::Empty::<bytes::Bytes>::new()
            .map_err(|never: std::convert::Infallible| -> HttpError { match never {} })
            .boxed_unsync();
        let request = http::Request::get(url).body(body).unwrap();
        let t = Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(5),
            between_bytes: Duration::from_secs(5),
        };
        let (response, _io) = send(request, &[addr], "rebound.invalid", false, t, ()).await.unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }
}
