//! `allow_hosts`: rules on their own (parsing, defaults, display, matching) and in a task.

use super::*;
use crate::spec::{HostRule, parse_host_rule};

const A: &str = "jobs.hello.tasks[0]";

fn rule(text: &str) -> HostRule {
    parse_host_rule(text).unwrap_or_else(|why| panic!("`{text}` refused: {why}"))
}

fn rule_of(scheme: &str, host: &str, port: Option<u16>) -> HostRule {
    HostRule { scheme: scheme.into(), host: host.into(), port }
}

#[test]
fn ports_default_by_scheme_and_star_means_any() {
    assert_eq!(rule("https://api.example.com"), rule_of("https", "api.example.com", Some(443)));
    assert_eq!(rule("http://api.example.com"), rule_of("http", "api.example.com", Some(80)));
    assert_eq!(rule("http://127.0.0.1:*"), rule_of("http", "127.0.0.1", None));
    assert_eq!(rule("http://localhost:8080"), rule_of("http", "localhost", Some(8080)));
}

#[test]
fn hosts_are_normalised() {
    assert_eq!(rule("HTTPS://API.Example.COM:8443"), rule_of("https", "api.example.com", Some(8443)));
    assert_eq!(rule("http://[::1]:8080"), rule_of("http", "::1", Some(8080)));
    assert_eq!(rule("http://[0:0:0:0:0:0:0:1]"), rule_of("http", "::1", Some(80)));
    assert_eq!(rule("https://[fe80::1]:*").port, None);
    assert_eq!(rule("http://my_service-2.internal").host, "my_service-2.internal");
}

#[test]
fn display_reads_back_to_the_same_rule() {
    let cases = [
        ("https://api.example.com", "https://api.example.com:443"),
        ("http://127.0.0.1:*", "http://127.0.0.1:*"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://Localhost", "http://localhost:80"),
    ];
    for (written, shown) in cases {
        let parsed = rule(written);
        assert_eq!(parsed.to_string(), shown);
        assert_eq!(rule(shown), parsed, "{shown} does not read back");
    }
}

#[test]
fn matching() {
    let api = rule("https://api.example.com");
    assert!(api.matches("https", "api.example.com", 443));
    assert!(api.matches("HTTPS", "API.example.com", 443), "case-insensitive");
    assert!(api.matches("https", "api.example.com.", 443), "trailing dot");
    assert!(!api.matches("https", "api.example.com", 8443), "other port");
    assert!(!api.matches("http", "api.example.com", 443), "other scheme");
    assert!(!api.matches("https", "evil.example.com", 443));
    assert!(!api.matches("https", "api.example.com.evil.net", 443));
    assert!(!api.matches("https", "example.com", 443), "no subdomain rule");

    let local = rule("http://127.0.0.1:*");
    for port in [1, 80, 8080, 65535] {
        assert!(local.matches("http", "127.0.0.1", port), "port {port}");
    }
    assert!(!local.matches("https", "127.0.0.1", 443));
    assert!(!local.matches("http", "127.0.0.2", 80));
    assert!(!local.matches("http", "localhost", 80), "names do not resolve");

    let v6 = rule("http://[::1]:8080");
    assert!(v6.matches("http", "::1", 8080));
    assert!(v6.matches("http", "[::1]", 8080));
    assert!(v6.matches("http", "0:0:0:0:0:0:0:1", 8080), "same address");
    assert!(!v6.matches("http", "::2", 8080));
    assert!(!v6.matches("http", "::1", 80));
}

#[test]
fn bad_rules_say_what_to_write() {
    let cases = [
        ("api.example.com", "has no scheme; write `https://api.example.com`"),
        ("ftp://files.example.com", "scheme `ftp` is not allowed"),
        ("ws://x.example.com", "only `http` and `https`"),
        ("https://api.example.com/v1/items", "has a path or query `/v1/items`"),
        ("https://api.example.com/", "write `https://api.example.com`"),
        ("https://api.example.com?x=1", "path or query `?x=1`"),
        ("https://user:pw@api.example.com", "user info"),
        ("https://", "has no host"),
        ("https://:443", "has no host"),
        ("https://api.example.com:", "port `` in"),
        ("https://api.example.com:0", "must be a number from 1 to 65535, or `*`"),
        ("https://api.example.com:65536", "from 1 to 65535"),
        ("https://api.example.com:http", "port `http`"),
        ("http://::1", "an IPv6 address needs brackets"),
        ("http://[::1", "without a closing `]`"),
        ("http://[nope]:80", "`[nope]` in `http://[nope]:80` is not an IPv6 address"),
        ("http://[::1]x", "expected `:port` or nothing"),
        ("http://300.1.1.1", "not a valid IPv4 address"),
        ("https://*.example.com", "wildcard hosts are not supported"),
        ("https://bad..example.com", "is not a DNS name or IP address"),
        ("https://-x.example.com", "is not a DNS name"),
        ("https://a b.com", "is not a DNS name"),
    ];
    for (text, needle) in cases {
        match parse_host_rule(text) {
            Ok(parsed) => panic!("`{text}` accepted as {parsed:?}"),
            Err(why) => assert!(why.contains(needle), "`{text}`: `{needle}` missing from: {why}"),
        }
    }
}

#[test]
fn allow_hosts_errors_point_at_the_entry() {
    let hosts = |list: &str| task(&format!("key = \"a\"\ncomponent = \"ingest\"\nallow_hosts = [{list}]"));
    let cases = [
        ("\"https://ok.example.com\", \"ftp://x\"", "[1]", "scheme `ftp` is not allowed"),
        ("\"api.example.com\"", "[0]", "has no scheme; write `https://api.example.com`"),
        ("\"https://x.example.com/v1\"", "[0]", "has a path or query `/v1`"),
        ("\"https://x.example.com:99999\"", "[0]", "from 1 to 65535, or `*`"),
        (
            "\"http://[::1]:80\", \"http://[0::1]\"",
            "[1]",
            "is listed twice: it allows the same as entry 0 (`http://[::1]:80`)",
        ),
        ("\"https://API.example.com\", \"https://api.example.com:443\"", "[1]", "listed twice"),
        ("443", "[0]", "expected a string"),
    ];
    for (list, index, needle) in cases {
        let text = hosts(list);
        assert_error(&text, line_of(&text, "allow_hosts"), &format!("{A}.allow_hosts{index}"), needle);
    }
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nallow_hosts = \"https://x.example.com\"");
    assert_error(&text, line_of(&text, "allow_hosts"), &format!("{A}.allow_hosts"), "expected an array");
}
