//! Sending one notice: an HTTP POST to a webhook (signed with HMAC-SHA256 when the
//! destination names a secret) or a mail through SMTP (`lettre`).
//!
//! Owns the wire: URLs, headers, the signature, SMTP connection security, timeouts, and
//! the last safety net that takes every secret the destination revealed out of what is
//! sent. It must never put a secret value or a webhook URL's path (which is often a
//! credential itself) into an error: errors are stored and shown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::payload;
use crate::secrets::{Redactor, Resolver, RevealRequest};
use crate::spec::Destination;
use crate::store::Notice;

/// How long one delivery may take (connect, send, answer): a slow destination holds one
/// delivery slot this long at most, never the run.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The signature header of a webhook with a `secret`: `sha256=` + hex HMAC-SHA256 of
/// `TIMESTAMP.BODY` (the same shape sluice's webhook trigger checks).
pub const SIGNATURE_HEADER: &str = "x-sluice-signature";
/// The Unix time (seconds) the signature covers, so receivers can refuse replays.
pub const TIMESTAMP_HEADER: &str = "x-sluice-timestamp";
/// How much of a refusing server's answer an error keeps.
const ERROR_BODY_SHOWN: usize = 200;

/// Why a delivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (no connection, a timeout, a 5xx, 408 or 429).
    #[error("{0}")]
    Retry(String),
    /// Trying again would not help (a 4xx, a secret that does not resolve, a bad URL).
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// Deliver `notice` (its payload with `link`) once.
pub(crate) async fn deliver(
    notice: &Notice,
    link: Option<&str>,
    resolver: Option<&Arc<dyn Resolver>>,
    now_secs: u64,
) -> Result<(), SendError> {
    let payload = payload::with_link(&notice.payload, link);
    match &notice.destination {
        Destination::Webhook { url, secret, format } => {
            let key = secret.as_deref().map(|name| reveal(notice, name, resolver)).transpose()?;
            let redactor = Redactor::new(key.iter().map(|k| k.expose_secret()));
            let body = redactor.redact_json(&payload::webhook_body(*format, &payload).to_string());
            let signature = key.as_ref().map(|k| (now_secs, sign(k.expose_secret().as_bytes(), now_secs, &body)));
            tokio::time::timeout(DELIVERY_TIMEOUT, post(url, body, signature, &notice.id))
                .await
                .map_err(|_| SendError::Retry(format!("{} did not answer within {DELIVERY_TIMEOUT:?}", shown(url))))?
        }
        Destination::Email { password, .. } => {
            let password = password.as_deref().map(|name| reveal(notice, name, resolver)).transpose()?;
            let (subject, body) = payload::mail(&payload);
            let redactor = Redactor::new(password.iter().map(|p| p.expose_secret()));
            let mail = (redactor.redact(&subject), redactor.redact(&body));
            super::mail::send(&notice.destination, password, mail).await
        }
    }
}

/// A destination's secret, revealed as the run's principal (audited like a task's reveal).
fn reveal(notice: &Notice, name: &str, resolver: Option<&Arc<dyn Resolver>>) -> Result<SecretString, SendError> {
    let resolver =
        resolver.ok_or_else(|| SendError::Permanent(format!("secret `{name}`: this owner has no secrets")))?;
    let request = RevealRequest {
        run: notice.run,
        task: format!("notify:{}", notice.view.destination),
        attempt: notice.view.attempts + 1,
        principal: notice.principal.clone(),
        workspace: notice.workspace.clone(),
        target: notice.target.clone(),
        name: name.to_string(),
        granted: true,
        via: None,
    };
    resolver.reveal(&request).map_err(|why| SendError::Permanent(format!("secret `{name}`: {why}")))
}

/// `sha256=` + hex of HMAC-SHA256(key, `TIMESTAMP.BODY`).
pub fn sign(key: &[u8], timestamp: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The URL as errors show it: scheme, host and port only.
fn shown(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => format!("{}://{}", uri.scheme_str().unwrap_or("http"), uri.authority().map_or("?", |a| a.as_str())),
        Err(_) => "the webhook".into(),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn post(url: &str, body: String, signature: Option<(u64, String)>, id: &str) -> Result<(), SendError> {
    let where_ = shown(url);
    let uri: http::Uri = url.parse().map_err(|_| SendError::Permanent(format!("{where_}: not a valid URL")))?;
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or_else(|| SendError::Permanent(format!("{where_}: no host")))?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| SendError::Retry(format!("{where_}: cannot connect: {e}")))?;
    let io: Box<dyn Io> = if tls { Box::new(tls_connect(tcp, &host).await?) } else { Box::new(tcp) };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| SendError::Retry(format!("{where_}: {e}")))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::post(path)
        .header(http::header::HOST, uri.authority().map_or(host.as_str(), |a| a.as_str()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .header("x-sluice-delivery", id);
    if let Some((timestamp, signature)) = signature {
        request = request.header(TIMESTAMP_HEADER, timestamp.to_string()).header(SIGNATURE_HEADER, signature);
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| SendError::Permanent(format!("{where_}: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| SendError::Retry(format!("{where_}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answer = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let answer: String = String::from_utf8_lossy(&answer).chars().take(ERROR_BODY_SHOWN).collect();
    let message = format!("{where_} answered {status}: {}", answer.trim());
    let again = status.is_server_error() || status == http::StatusCode::REQUEST_TIMEOUT || status.as_u16() == 429;
    Err(if again { SendError::Retry(message) } else { SendError::Permanent(message) })
}

async fn tls_connect(tcp: TcpStream, host: &str) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
    });
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| SendError::Permanent(format!("{host}: {e}")))?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| SendError::Retry(format!("{host}: TLS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), over "what do ya want for nothing?"
        let body = "ya want for nothing?";
        let signature = sign(b"Jefe", 0, body);
        assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        assert!(ring::hmac::verify(&key, format!("0.{body}").as_bytes(), &hex(&signature[7..])).is_ok());
        assert_ne!(sign(b"Jefe", 1, body), signature, "the timestamp is covered");
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn errors_show_where_but_not_the_path_of_a_webhook_url() {
        assert_eq!(shown("https://hooks.slack.com/services/T0/B0/SECRET"), "https://hooks.slack.com");
        assert_eq!(shown("http://127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080");
    }
}
