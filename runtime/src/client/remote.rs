//! A running `sluice serve` reached over TCP with a bearer token (`sluice deploy --server
//! URL`, the token from `SLUICE_TOKEN`): deployments requests and component uploads, one
//! HTTP/1 request per call. Plain `http://` only (TLS belongs to a proxy in front).
//!
//! It never decides anything and never prints.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::socket::error_of;
use super::{ClientError, ClientResult};
use crate::service::{DeployAnswer, DeployOp};

/// A server at `http://HOST:PORT`, called with `token`.
#[derive(Debug, Clone)]
pub struct RemoteServer {
    /// `HOST:PORT`.
    authority: String,
    token: String,
}

impl RemoteServer {
    /// The server at `url` (`http://HOST:PORT`, no path); a bad URL is refused, naming it.
    pub fn new(url: &str, token: &str) -> Result<RemoteServer, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--server {url}: only http://HOST:PORT is supported (put TLS in a proxy in front of sluice serve)")
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--server {url}: expected http://HOST:PORT with no path"));
        }
        Ok(RemoteServer { authority: authority.to_string(), token: token.to_string() })
    }

    async fn send(&self, method: Method, path: &str, body: Vec<u8>, json: bool) -> ClientResult<Bytes> {
        let disconnected = |e: &dyn std::fmt::Display| ClientError::Disconnected(format!("{}: {e}", self.authority));
        let stream = TcpStream::connect(&self.authority).await.map_err(|e| disconnected(&e))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| disconnected(&e))?;
        tokio::spawn(conn);
        let content_type = if json { "application/json" } else { "application/octet-stream" };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = sender.send_request(req).await.map_err(|e| disconnected(&e))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| disconnected(&e))?.to_bytes();
        if !status.is_success() {
            return Err(error_of(status, &bytes));
        }
        Ok(bytes)
    }

    /// One deployments request.
    pub async fn deployments(&self, op: &DeployOp) -> ClientResult<DeployAnswer> {
        let body = serde_json::to_vec(op).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let bytes = self.send(Method::POST, "/api/sluice/v1/deployments/op", body, true).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("deployments: {e}")))
    }

    /// Upload one component by its blake3.
    pub async fn put_blob(&self, hash: &str, bytes: Vec<u8>) -> ClientResult<()> {
        self.send(Method::PUT, &format!("/api/sluice/v1/blobs/{hash}"), bytes, false).await.map(|_| ())
    }
}
