//! `allow_hosts`: the outbound HTTP allowlist of a task.
//!
//! Each entry is `scheme://host[:port]` with scheme `http` or `https`, a DNS name or an
//! IP literal (IPv6 in brackets), and a port number or `*` for any port. Without a port
//! the scheme's default (80 or 443) is meant. No path, query or user info: a rule names
//! where a request may go, not what it asks for. An empty list means no network.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::Node;

/// One allowed destination of outbound HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRule {
    /// `"http"` or `"https"`.
    pub scheme: String,
    /// A lowercase DNS name or an IP literal (IPv6 without brackets, in its canonical form).
    pub host: String,
    /// `None` = any port (`*`); a rule written without a port holds the scheme's default.
    pub port: Option<u16>,
}

impl HostRule {
    /// Whether a request to `scheme://host:port` is allowed by this rule. Scheme and host
    /// compare case-insensitively; a host may be given with IPv6 brackets or a trailing dot,
    /// and IP literals compare as addresses (`::1` matches `0:0:0:0:0:0:0:1`).
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) || self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        match (self.host.parse::<IpAddr>(), host.parse::<IpAddr>()) {
            (Ok(rule), Ok(asked)) => rule == asked,
            _ => self.host.eq_ignore_ascii_case(host),
        }
    }
}

impl fmt::Display for HostRule {
    /// `https://api.example.com:443`, `http://127.0.0.1:*`, `http://[::1]:8080`: the form
    /// [`parse_host_rule`] reads back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => f.write_str(":*"),
        }
    }
}

/// Parses one `allow_hosts` entry such as `"https://api.example.com"`,
/// `"http://127.0.0.1:*"` or `"http://[::1]:8080"`. The error says what to write instead.
pub fn parse_host_rule(s: &str) -> Result<HostRule, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("`{s}` has no scheme; write `https://{s}` or `http://{s}`"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => {
            return Err(format!(
                "scheme `{scheme}` is not allowed in `{s}`; only `http` and `https` requests leave a task"
            ));
        }
    };
    if let Some(at) = rest.find(['/', '?', '#']) {
        return Err(format!(
            "`{s}` has a path or query `{}`; an allow_hosts entry names only scheme, host and port \
             (write `{scheme}://{}`)",
            &rest[at..],
            &rest[..at]
        ));
    }
    if rest.contains('@') {
        return Err(format!("`{s}` has user info (`…@`); credentials do not belong in allow_hosts"));
    }
    let (host, port) = split_host_port(s, rest)?;
    let host = check_host(s, host)?;
    let port = match port {
        None => Some(default_port),
        Some("*") => None,
        Some(port) => Some(parse_port(s, port)?),
    };
    Ok(HostRule { scheme, host, port })
}

/// `host[:port]` or `[v6][:port]`, the port as written.
fn split_host_port<'t>(s: &str, rest: &'t str) -> Result<(&'t str, Option<&'t str>), String> {
    if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else {
            return Err(format!("`{s}` opens `[` without a closing `]`"));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`[{v6}]` in `{s}` is not an IPv6 address"));
        }
        let port =
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("`{s}` has `{after}` after the IPv6 address; expected `:port` or nothing")
                })?),
            };
        return Ok((v6, port));
    }
    match rest.matches(':').count() {
        0 => Ok((rest, None)),
        1 => rest
            .split_once(':')
            .map(|(host, port)| (host, Some(port)))
            .ok_or_else(|| format!("`{s}` is not `host:port`")),
        _ => Err(format!("`{s}`: an IPv6 address needs brackets, e.g. `http://[::1]:8080`")),
    }
}

/// The host, lowercased: an IP literal in canonical form or a DNS name.
fn check_host(s: &str, host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(v6.to_string());
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|v4| v4.to_string())
            .map_err(|_| format!("`{host}` in `{s}` is not a valid IPv4 address"));
    }
    if host.contains('*') {
        return Err(format!("`{s}`: wildcard hosts are not supported; list each host (a port may be `*`)"));
    }
    let host = host.to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "`{host}` in `{s}` is not a DNS name or IP address (labels of letters, digits and `-`, \
             separated by single dots)"
        ));
    }
    Ok(host)
}

fn parse_port(s: &str, port: &str) -> Result<u16, String> {
    let bad = || format!("port `{port}` in `{s}` must be a number from 1 to 65535, or `*` for any port");
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    port.parse::<u16>().ok().filter(|&p| p >= 1).ok_or_else(bad)
}

/// An `allow_hosts` array: each entry parsed, duplicates (after normalising) refused.
pub(crate) fn allow_hosts(node: &Node<'_>) -> Result<Vec<HostRule>, SpecError> {
    let mut rules: Vec<HostRule> = Vec::new();
    for (index, (item, text)) in node.strings()?.into_iter().enumerate() {
        let rule = parse_host_rule(text).map_err(|why| item.error(why))?;
        if let Some(first) = rules.iter().position(|seen| *seen == rule) {
            return Err(item.error(format!(
                "`{text}` is listed twice: it allows the same as entry {first} (`{rule}`); \
                 remove entry {index}"
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}
