//! Capability: outbound HTTP (`wasi:http/outgoing-handler`), through an allowlist.
//!
//! Owns the per-attempt policy checked in the host's send hook on every
//! request: the scheme, host and port must match one of the task's
//! `allow_hosts` rules (empty = no network), and the addresses the host name
//! resolves to must not be private, loopback, link-local or otherwise
//! internal unless a rule names that address (or `localhost`) explicitly.
//! Denied requests fail inside the guest with `HTTP-request-denied`; the first
//! [`MAX_DENIALS_LISTED`] are written to the attempt's log and warned about on the host
//! (URL without userinfo or query, scrubbed of revealed values), the rest counted. An
//! allowed request goes to the addresses that were checked ([`super::http_send`]). Sockets stay off (see `attempt.rs`): HTTP is the
//! only way out. It never lets a request through without a matching rule.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::http_send::{SendFuture, Timeouts};
use super::secrets::Revealed;
use super::{Capability, HostState, Prepare};
use crate::spec::HostRule;

/// How long a connection may take to establish: long enough for a slow TLS
/// handshake across the world, short enough that a black-holed host fails fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the first byte of a response, and between chunks of its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Denied requests listed one by one in the attempt's log (and warned about on the host):
/// enough to see what a task tried; the rest are counted, so a guest looping on denied
/// requests cannot grow the log, the host's memory or its stderr.
pub const MAX_DENIALS_LISTED: usize = 16;

/// Longest URL or reason shown for a denied request (a URL is guest text of any length).
pub const MAX_SHOWN_BYTES: usize = 256;

/// Requests one attempt may have in flight: each holds a connection and its buffers on
/// the host; a task fetching in parallel needs a handful.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 16;

/// The denied requests of one attempt: the first [`MAX_DENIALS_LISTED`], and how many in all.
#[derive(Debug, Default)]
pub(crate) struct Denials {
    listed: Vec<(String, String)>,
    total: u64,
}

impl Denials {
    /// The attempt's log lines about denials: one per listed request, one for the rest.
    pub(crate) fn lines(&self) -> String {
        let mut out: String = self
            .listed
            .iter()
            .map(|(url, reason)| format!("[sluice] outbound HTTP denied: {url} ({reason})\n"))
            .collect();
        let more = self.total - self.listed.len() as u64;
        if more > 0 {
            out.push_str(&format!("[sluice] outbound HTTP denied: {more} more requests (not listed)\n"));
        }
        out
    }
}

/// `url` as the host shows it: scheme, host, port and path — never userinfo, query or
/// fragment (where tokens travel) — cut to [`MAX_SHOWN_BYTES`].
pub fn shown_url(uri: &http::Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(host) = uri.host() {
        out.push_str(host);
    }
    if let Some(port) = uri.port_u16() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(uri.path());
    cut(out)
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_SHOWN_BYTES {
        let mut end = MAX_SHOWN_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
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
        let mut policy = HttpPolicy::new(grant.allow_hosts, cx.injections.clone());
        policy.revealed = cx.revealed.clone();
        Ok(Http { ctx: wasmtime_wasi_http::WasiHttpCtx::new(), policy })
    }

    fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }
}

/// The outbound HTTP policy of one attempt.
pub(crate) struct HttpPolicy {
    rules: Vec<HostRule>,
    pub(crate) denials: Arc<Mutex<Denials>>,
    injections: Injections,
    /// What the attempt revealed: denials are scrubbed of it before the host logs them.
    revealed: Revealed,
    in_flight: Arc<AtomicUsize>,
}

impl HttpPolicy {
    pub(crate) fn new(rules: Vec<HostRule>, injections: Injections) -> Self {
        HttpPolicy {
            rules,
            denials: Default::default(),
            injections,
            revealed: Default::default(),
            in_flight: Default::default(),
        }
    }

    /// The attempt's log lines about denied requests; warns on the host about those not warned of.
    pub(crate) fn denied_lines(&self) -> String {
        let d = self.denials.lock().unwrap_or_else(PoisonError::into_inner);
        let more = d.total - d.listed.len() as u64;
        if more > 0 {
            tracing::warn!(more, "outbound HTTP denied (more requests, not listed)");
        }
        d.lines()
    }
}

/// Record a denial (URL and reason scrubbed of revealed values) and warn on the host while
/// denials are still listed.
fn deny(denials: &Mutex<Denials>, revealed: &Revealed, url: &str, reason: &str) {
    let mut d = denials.lock().unwrap_or_else(PoisonError::into_inner);
    d.total += 1;
    if d.listed.len() < MAX_DENIALS_LISTED {
        let (url, reason) = (revealed.scrub(url), cut(revealed.scrub(reason)));
        tracing::warn!(url, reason, "outbound HTTP denied");
        d.listed.push((url, reason));
    }
}

/// A slot of [`MAX_REQUESTS_IN_FLIGHT`], given back when dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn take(count: &Arc<AtomicUsize>) -> Option<InFlight> {
        let taken = count.fetch_add(1, Ordering::AcqRel);
        let slot = InFlight(count.clone());
        (taken < MAX_REQUESTS_IN_FLIGHT).then_some(slot)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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

/// Check one request against the rules: the addresses it may go to (those the host name
/// resolved to, all checked), or why it is denied.
async fn check(rules: &[HostRule], scheme: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
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
    for &ip in &addrs {
        if is_internal(ip) && !matching.iter().any(|r| names_explicitly(r, ip)) {
            return Err(format!(
                "{host} resolves to the internal address {ip}; list it explicitly in allow_hosts to reach it"
            ));
        }
    }
    Ok(addrs.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

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
        let (denials, revealed) = (self.denials.clone(), self.revealed.clone());
        let injections = self.injections.clone();
        let in_flight = self.in_flight.clone();
        Box::new(async move {
            let mut request = request;
            let uri = request.uri().clone();
            let url = shown_url(&uri);
            let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            let Some(host) = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']')) else {
                deny(&denials, &revealed, &url, "no host in the URL");
                return Err(HttpError::HttpRequestDenied);
            };
            let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
            let addrs = match check(&rules, &scheme, host, port).await {
                Ok(addrs) => addrs,
                Err(reason) => {
                    deny(&denials, &revealed, &url, &reason);
                    return Err(HttpError::HttpRequestDenied);
                }
            };
            let Some(slot) = InFlight::take(&in_flight) else {
                return Err(HttpError::ConnectionLimitReached);
            };
            inject(&mut request, &injections);
            let timeouts = Timeouts {
                connect: options.and_then(|o| o.connect_timeout).map_or(CONNECT_TIMEOUT, |t| t.min(CONNECT_TIMEOUT)),
                first_byte: options.and_then(|o| o.first_byte_timeout).map_or(BODY_TIMEOUT, |t| t.min(BODY_TIMEOUT)),
                between_bytes: options
                    .and_then(|o| o.between_bytes_timeout)
                    .map_or(BODY_TIMEOUT, |t| t.min(BODY_TIMEOUT)),
            };
            super::http_send::send(request, &addrs, host, scheme == "https", timeouts, slot).await
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

    #[test]
    fn urls_are_shown_without_userinfo_query_or_fragment() {
        let uri: http::Uri = "http://user:pw@example.com:8080/a/b?token=s3cret#frag".parse().unwrap();
        assert_eq!(shown_url(&uri), "http://example.com:8080/a/b");
        let long: http::Uri = format!("https://example.com/{}", "x".repeat(1000)).parse().unwrap();
        assert!(shown_url(&long).len() <= MAX_SHOWN_BYTES + '…'.len_utf8());
    }

    #[test]
    fn denials_past_the_listed_ones_are_counted() {
        let denials = Mutex::new(Denials::default());
        for i in 0..1000 {
            deny(&denials, &Revealed::default(), &format!("http://h/{i}"), "no");
        }
        let lines = denials.lock().unwrap().lines();
        assert_eq!(lines.lines().count(), MAX_DENIALS_LISTED + 1, "{lines}");
        assert!(lines.ends_with(&format!("denied: {} more requests (not listed)\n", 1000 - MAX_DENIALS_LISTED)));
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
