//! Capability: outbound HTTP (`wasi:http/outgoing-handler`), through an allowlist.
//!
//! Owns the per-attempt policy checked in the host's send hook on every
//! request: the scheme, host and port must match one of the task's
//! `allow_hosts` rules (empty = no network), and the addresses the host name
//! resolves to must not be private, loopback, link-local or otherwise
//! internal unless a rule names that address (or `localhost`) explicitly.
//! Denied requests fail inside the guest with `HTTP-request-denied` and are
//! written to the attempt's log. Sockets stay off (see `attempt.rs`): HTTP is the
//! only way out. It never lets a request through without a matching rule.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::{Capability, HostState, Prepare};
use crate::spec::HostRule;

/// How long a connection may take to establish: long enough for a slow TLS
/// handshake across the world, short enough that a black-holed host fails fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the first byte of a response, and between chunks of its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the guest asked for and what was decided, for the attempt's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub url: String,
    pub allowed: bool,
    pub reason: String,
}

/// A secret the guest holds only as a placeholder: the host puts the real value
/// into `header` of requests that pass the allowlist, where the placeholder stands.
pub(crate) struct Injection {
    pub placeholder: String,
    pub header: String,
    pub value: crate::secrets::SecretString,
}

/// The injections of one attempt, shared by the secrets and http capabilities.
pub(crate) type Injections = Arc<Mutex<Vec<Injection>>>;

/// Where an attempt's outbound HTTP may go.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The task's `allow_hosts`; empty = no network.
    pub allow_hosts: Vec<HostRule>,
}

/// The outbound HTTP capability of one attempt: wasi-http's context and our policy.
pub(crate) struct Http {
    pub(crate) ctx: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) policy: HttpPolicy,
}

impl Capability for Http {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        let policy = HttpPolicy::new(grant.allow_hosts, cx.injections.clone());
        Ok(Http { ctx: wasmtime_wasi_http::WasiHttpCtx::new(), policy })
    }

    fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }
}

/// The outbound HTTP policy of one attempt.
pub(crate) struct HttpPolicy {
    rules: Vec<HostRule>,
    pub(crate) decisions: Arc<Mutex<Vec<Decision>>>,
    injections: Injections,
}

impl HttpPolicy {
    pub(crate) fn new(rules: Vec<HostRule>, injections: Injections) -> Self {
        HttpPolicy { rules, decisions: Arc::new(Mutex::new(Vec::new())), injections }
    }

    /// One log line per denied request, for the attempt's log.
    pub(crate) fn denied_lines(&self) -> String {
        let d = self.decisions.lock().unwrap_or_else(PoisonError::into_inner);
        d.iter()
            .filter(|x| !x.allowed)
            .map(|x| format!("[sluice] outbound HTTP denied: {} ({})\n", x.url, x.reason))
            .collect()
    }
}

fn record(decisions: &Mutex<Vec<Decision>>, url: &str, allowed: bool, reason: String) {
    let mut d = decisions.lock().unwrap_or_else(PoisonError::into_inner);
    d.push(Decision { url: url.to_string(), allowed, reason });
}

/// Loopback, private, link-local, unique-local, unspecified, multicast,
/// broadcast, documentation and carrier-grade NAT addresses: everything a
/// tenant's code must not reach on the host's network unless allowed by name.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `rule` names this destination explicitly (an IP literal or `localhost`).
fn names_explicitly(rule: &HostRule, ip: IpAddr) -> bool {
    if rule.host == "localhost" {
        return ip.is_loopback();
    }
    rule.host.parse::<IpAddr>().is_ok_and(|r| r == ip)
}

/// Check one request against the rules: the matching rule, or why it is denied.
async fn check(rules: &[HostRule], scheme: &str, host: &str, port: u16) -> Result<(), String> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let matching: Vec<&HostRule> = rules.iter().filter(|r| r.matches(scheme, &host, port)).collect();
    if matching.is_empty() {
        return Err(if rules.is_empty() {
            "the task has no network access (allow_hosts is empty)".to_string()
        } else {
            format!("{scheme}://{host}:{port} is not in allow_hosts")
        });
    }
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(a) => a.map(|s| s.ip()).collect(),
            Err(e) => return Err(format!("cannot resolve {host}: {e}")),
        },
    };
    for ip in addrs {
        if is_internal(ip) && !matching.iter().any(|r| names_explicitly(r, ip)) {
            return Err(format!(
                "{host} resolves to the internal address {ip}; list it explicitly in allow_hosts to reach it"
            ));
        }
    }
    Ok(())
}

type SendFuture = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;
type Sent = Box<dyn std::future::Future<Output = Result<(http::Response<WasiBody>, SendFuture), HttpError>> + Send>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: SendFuture,
    ) -> Sent {
        drop(fut);
        let rules = self.rules.clone();
        let decisions = self.decisions.clone();
        let injections = self.injections.clone();
        Box::new(async move {
            let mut request = request;
            let uri = request.uri().clone();
            let url = uri.to_string();
            let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            let Some(host) = uri.host() else {
                record(&decisions, &url, false, "no host in the URL".into());
                return Err(HttpError::HttpRequestDenied);
            };
            let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
            if let Err(reason) = check(&rules, &scheme, host, port).await {
                tracing::warn!(url, reason, "outbound HTTP denied");
                record(&decisions, &url, false, reason);
                return Err(HttpError::HttpRequestDenied);
            }
            record(&decisions, &url, true, "allowed".into());
            inject(&mut request, &injections);
            let options = RequestOptions {
                connect_timeout: Some(
                    options.and_then(|o| o.connect_timeout).map_or(CONNECT_TIMEOUT, |t| t.min(CONNECT_TIMEOUT)),
                ),
                first_byte_timeout: Some(
                    options.and_then(|o| o.first_byte_timeout).map_or(BODY_TIMEOUT, |t| t.min(BODY_TIMEOUT)),
                ),
                between_bytes_timeout: Some(
                    options.and_then(|o| o.between_bytes_timeout).map_or(BODY_TIMEOUT, |t| t.min(BODY_TIMEOUT)),
                ),
            };
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as SendFuture))
        })
    }
}

/// Put the real value of every injected secret where its placeholder stands in
/// its header; placeholders anywhere else stay placeholders.
fn inject(request: &mut http::Request<WasiBody>, injections: &Injections) {
    use crate::secrets::ExposeSecret as _;
    let injections = injections.lock().unwrap_or_else(PoisonError::into_inner);
    for inj in injections.iter() {
        let Ok(name) = http::HeaderName::from_bytes(inj.header.as_bytes()) else { continue };
        let Some(current) = request.headers().get(&name).and_then(|v| v.to_str().ok()).map(str::to_string) else {
            continue;
        };
        if !current.contains(&inj.placeholder) {
            continue;
        }
        let filled = current.replace(&inj.placeholder, inj.value.expose_secret());
        if let Ok(mut value) = http::HeaderValue::from_str(&filled) {
            value.set_sensitive(true);
            request.headers_mut().insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_host_rule;

    fn rules(list: &[&str]) -> Vec<HostRule> {
        list.iter().map(|r| parse_host_rule(r).unwrap()).collect()
    }

    #[tokio::test]
    async fn only_listed_hosts_and_ports_pass() {
        let r = rules(&["http://127.0.0.1:*", "https://93.184.215.14"]);
        assert!(check(&r, "http", "127.0.0.1", 8080).await.is_ok());
        assert!(check(&r, "https", "93.184.215.14", 443).await.is_ok());
        assert!(check(&r, "http", "93.184.215.14", 80).await.unwrap_err().contains("not in allow_hosts"));
        assert!(check(&[], "http", "127.0.0.1", 80).await.unwrap_err().contains("no network access"));
    }

    #[tokio::test]
    async fn internal_addresses_need_an_explicit_rule() {
        let r = rules(&["http://localhost:*"]);
        assert!(check(&r, "http", "localhost", 80).await.is_ok());
        let r = rules(&["http://169.254.169.254"]);
        assert!(check(&r, "http", "169.254.169.254", 80).await.is_ok(), "named explicitly");
        assert!(is_internal("169.254.169.254".parse().unwrap()));
        assert!(is_internal("10.1.2.3".parse().unwrap()) && is_internal("::1".parse().unwrap()));
        assert!(is_internal("fd00::1".parse().unwrap()) && is_internal("::ffff:192.168.1.1".parse().unwrap()));
        assert!(!is_internal("93.184.215.14".parse().unwrap()));
    }
}
