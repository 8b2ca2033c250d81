//! Notifications in the bundle: `[destinations.NAME]` declared once, and per job and per
//! task `notifications`, `health` and `notification_settings` (Databricks' keys and
//! semantics).
//!
//! Owns reading and checking those keys: every destination a job or task names exists
//! (else an error at the name's `file:line:col`), a webhook's URL is `http(s)://`, an email
//! destination has a host, a sender and recipients, secrets are `scope/key` names. The
//! destinations a job uses are pinned into its [`JobSpec::notify`](super::JobSpec), so a
//! run delivers to what its plan names even after the bundle changed. It must never
//! reveal a secret or send anything: [`crate::notify`] does.
//!
//! ```toml
//! [destinations.ops]
//! kind = "webhook"
//! url = "https://hooks.slack.com/services/…"
//! format = "slack"                  # "generic" (default) | "slack" | "teams"
//! secret = "hooks/ops"              # HMAC-SHA256 of the body: X-Sluice-Signature
//!
//! [destinations.oncall]
//! kind = "email"
//! host = "smtp.example.com"
//! port = 587                        # default: 25, or 465 with tls = "tls"
//! tls = "starttls"                  # "off" (default) | "starttls" | "tls"
//! from = "sluice@example.com"
//! to = ["oncall@example.com"]
//! username = "sluice"
//! password = "smtp/password"        # a secret of the run's target
//!
//! [jobs.nightly]
//! notifications = { on_start = ["ops"], on_success = ["ops"], on_failure = ["ops", "oncall"],
//!                   on_duration_warning_threshold_exceeded = ["oncall"] }
//! health = { rules = [{ metric = "RUN_DURATION_SECONDS", op = "GREATER_THAN", value = 3600 }] }
//! notification_settings = { no_alert_for_skipped_runs = true, no_alert_for_canceled_runs = true }
//! ```
//!
//! A task takes the same three keys (its notifications are about the task's attempts), and
//! `notification_settings.alert_on_last_attempt` (a job does not: its notifications are
//! about runs, which have no retries).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::JobSpec;
use super::build::check_key_name;
use super::error::SpecError;
use super::names;
use super::read::{Node, Table};

const NOTIFICATION_KEYS: &[&str] = &["on_start", "on_success", "on_failure", "on_duration_warning_threshold_exceeded"];
const SETTINGS_KEYS: &[&str] = &["no_alert_for_skipped_runs", "no_alert_for_canceled_runs", "alert_on_last_attempt"];
const HEALTH_KEYS: &[&str] = &["rules"];
const RULE_KEYS: &[&str] = &["metric", "op", "value"];
const WEBHOOK_KEYS: &[&str] = &["kind", "url", "secret", "format"];
const EMAIL_KEYS: &[&str] = &["kind", "host", "port", "tls", "from", "to", "username", "password"];
/// The only health metric: Databricks' `RUN_DURATION_SECONDS` (its streaming-backlog
/// metrics have nothing to measure here).
pub const RUN_DURATION_SECONDS: &str = "RUN_DURATION_SECONDS";

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// An HTTP POST of a JSON payload.
    Webhook {
        url: String,
        /// `scope/key` of the HMAC-SHA256 key signing the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        #[serde(default)]
        format: WebhookFormat,
    },
    /// A mail through an SMTP server.
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        from: String,
        to: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// `scope/key` of the SMTP password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
}

/// The JSON shape a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// sluice's own payload: every field by name.
    #[default]
    Generic,
    /// A Slack incoming webhook's `{"text", "blocks"}`.
    Slack,
    /// A Microsoft Teams incoming webhook's MessageCard.
    Teams,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or network).
    #[default]
    Off,
    /// Plain, then upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// Which destinations hear of what, for a job or one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_start: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_duration_warning_threshold_exceeded: Vec<String>,
    /// `health.rules`: `RUN_DURATION_SECONDS GREATER_THAN value`, as seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_warning_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_alert_for_skipped_runs: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_alert_for_canceled_runs: bool,
    /// A task's `alert_on_last_attempt` (Databricks'): no `on_start` for its retries, and
    /// `on_failure` only for an attempt no retry follows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alert_on_last_attempt: bool,
}

impl Notifications {
    pub fn is_empty(&self) -> bool {
        *self == Notifications::default()
    }
}

/// A job's notifications, its tasks', and the destinations they name (pinned with the job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobNotify {
    #[serde(default, skip_serializing_if = "Notifications::is_empty")]
    pub job: Notifications,
    /// By task key; only tasks that say something.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, Notifications>,
    /// Every destination named above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, Destination>,
}

impl JobNotify {
    pub fn is_empty(&self) -> bool {
        self.job.is_empty() && self.tasks.is_empty()
    }
}

/// Reads `[destinations]` and every job's and task's notification keys into `jobs`.
pub(crate) fn attach(top: &Table<'_>, jobs: &mut BTreeMap<String, JobSpec>) -> Result<(), SpecError> {
    let destinations = match top.get("destinations") {
        Some(node) => destinations(node)?,
        None => BTreeMap::new(),
    };
    let Some(jobs_node) = top.get("jobs") else { return Ok(()) };
    for entry in jobs_node.table()?.entries() {
        let Some(job) = jobs.get_mut(entry.key) else { continue };
        let table = entry.node.table()?;
        let mut notify = JobNotify { job: notifications(&table, &destinations, false)?, ..JobNotify::default() };
        if let Some(tasks) = table.get("tasks") {
            for task in tasks.array()? {
                let task = task.table()?;
                let key = task.require("key")?.str()?;
                let read = notifications(&task, &destinations, true)?;
                if !read.is_empty() {
                    notify.tasks.insert(key.to_string(), read);
                }
            }
        }
        let named = std::iter::once(&notify.job).chain(notify.tasks.values()).flat_map(named);
        notify.destinations =
            named.filter_map(|name| destinations.get(name).map(|d| (name.clone(), d.clone()))).collect();
        job.notify = notify;
    }
    Ok(())
}

/// Every destination name a job's or task's notifications use.
fn named(n: &Notifications) -> impl Iterator<Item = &String> {
    n.on_start.iter().chain(&n.on_success).chain(&n.on_failure).chain(&n.on_duration_warning_threshold_exceeded)
}

fn destinations(node: &Node<'_>) -> Result<BTreeMap<String, Destination>, SpecError> {
    let mut out = BTreeMap::new();
    for entry in node.table()?.entries() {
        check_key_name(entry, "destination")?;
        out.insert(entry.key.to_string(), destination(&entry.node)?);
    }
    Ok(out)
}

fn destination(node: &Node<'_>) -> Result<Destination, SpecError> {
    let table = node.table()?;
    let kind = table.require("kind")?;
    match kind.str()? {
        "webhook" => {
            table.deny_unknown(WEBHOOK_KEYS)?;
            let url_node = table.require("url")?;
            let url = url_node.str()?;
            let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if host.is_none_or(str::is_empty) {
                return Err(url_node.error("a webhook's url must start with http:// or https://"));
            }
            let format = match table.get("format") {
                None => WebhookFormat::Generic,
                Some(f) => match f.str()? {
                    "generic" => WebhookFormat::Generic,
                    "slack" => WebhookFormat::Slack,
                    "teams" => WebhookFormat::Teams,
                    other => return Err(f.error(format!("unknown format `{other}`; expected generic, slack or teams"))),
                },
            };
            Ok(Destination::Webhook { url: url.to_string(), secret: secret(&table, "secret")?, format })
        }
        "email" => email(&table),
        other => Err(kind.error(format!("unknown destination kind `{other}`; expected webhook or email"))),
    }
}

fn email(table: &Table<'_>) -> Result<Destination, SpecError> {
    table.deny_unknown(EMAIL_KEYS)?;
    let tls = match table.get("tls") {
        None => SmtpTls::Off,
        Some(t) => match t.str()? {
            "off" => SmtpTls::Off,
            "starttls" => SmtpTls::Starttls,
            "tls" => SmtpTls::Tls,
            other => return Err(t.error(format!("unknown tls `{other}`; expected off, starttls or tls"))),
        },
    };
    let port = match table.get("port") {
        None if tls == SmtpTls::Tls => 465,
        None => 25,
        Some(p) => {
            let value = p.integer()?;
            u16::try_from(value).ok().filter(|&n| n > 0).ok_or_else(|| p.error("port must be from 1 to 65535"))?
        }
    };
    let host = table.require("host")?.str()?.to_string();
    let from_node = table.require("from")?;
    let from = address(from_node, from_node.str()?)?;
    let to_node = table.require("to")?;
    let to = match to_node.value {
        toml::de::DeValue::String(_) => vec![address(to_node, to_node.str()?)?],
        _ => to_node.strings()?.into_iter().map(|(n, text)| address(&n, text)).collect::<Result<Vec<_>, _>>()?,
    };
    if to.is_empty() {
        return Err(to_node.error("an email destination needs at least one recipient"));
    }
    let username = table.get("username").map(Node::str).transpose()?.map(str::to_string);
    Ok(Destination::Email { host, port, tls, from, to, username, password: secret(table, "password")? })
}

/// A mail address: one `@` with text on both sides (the SMTP server judges the rest).
fn address(node: &Node<'_>, text: &str) -> Result<String, SpecError> {
    match text.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !text.contains(char::is_whitespace) => {
            Ok(text.to_string())
        }
        _ => Err(node.error(format!("`{text}` is not a mail address"))),
    }
}

fn secret(table: &Table<'_>, key: &str) -> Result<Option<String>, SpecError> {
    let Some(node) = table.get(key) else { return Ok(None) };
    let name = node.str()?;
    names::check_secret_name(name).map_err(|why| node.error(why))?;
    Ok(Some(name.to_string()))
}

/// A job's or task's `notifications`, `health` and `notification_settings`.
fn notifications(
    table: &Table<'_>,
    destinations: &BTreeMap<String, Destination>,
    is_task: bool,
) -> Result<Notifications, SpecError> {
    let mut out = Notifications::default();
    if let Some(node) = table.get("notifications") {
        let lists = node.table()?;
        lists.deny_unknown(NOTIFICATION_KEYS)?;
        for entry in lists.entries() {
            let mut listed = Vec::new();
            for (item, name) in entry.node.strings()? {
                if !destinations.contains_key(name) {
                    let known = destinations.keys().map(String::as_str);
                    let hint = names::suggestion(name, known);
                    let declared = if destinations.is_empty() {
                        "the bundle declares no [destinations]".to_string()
                    } else {
                        format!("declared: {}", names::list(destinations.keys()))
                    };
                    return Err(item.error(format!("unknown destination `{name}`{hint}; {declared}")));
                }
                listed.push(name.to_string());
            }
            match entry.key {
                "on_start" => out.on_start = listed,
                "on_success" => out.on_success = listed,
                "on_failure" => out.on_failure = listed,
                _ => out.on_duration_warning_threshold_exceeded = listed,
            }
        }
    }
    if let Some(node) = table.get("health") {
        out.duration_warning_secs = health(node)?;
    }
    if let Some(node) = table.get("notification_settings") {
        let settings = node.table()?;
        settings.deny_unknown(SETTINGS_KEYS)?;
        let flag = |key| settings.get(key).map(Node::bool).transpose().map(Option::unwrap_or_default);
        out.no_alert_for_skipped_runs = flag("no_alert_for_skipped_runs")?;
        out.no_alert_for_canceled_runs = flag("no_alert_for_canceled_runs")?;
        out.alert_on_last_attempt = flag("alert_on_last_attempt")?;
        if let (Some(node), false) = (settings.get("alert_on_last_attempt"), is_task) {
            return Err(node.error(
                "alert_on_last_attempt is a task's setting (it is about the task's attempts and retries); \
                 move it to the task's notification_settings",
            ));
        }
    }
    Ok(out)
}

/// `health = { rules = [...] }`: the smallest `RUN_DURATION_SECONDS GREATER_THAN` value.
fn health(node: &Node<'_>) -> Result<Option<u64>, SpecError> {
    let table = node.table()?;
    table.deny_unknown(HEALTH_KEYS)?;
    let mut threshold: Option<u64> = None;
    for rule in table.require("rules")?.array()? {
        let rule_table = rule.table()?;
        rule_table.deny_unknown(RULE_KEYS)?;
        let metric = rule_table.require("metric")?;
        if metric.str()? != RUN_DURATION_SECONDS {
            return Err(metric.error(format!("unknown metric; the one metric is {RUN_DURATION_SECONDS}")));
        }
        let op = rule_table.require("op")?;
        if op.str()? != "GREATER_THAN" {
            return Err(op.error("unknown op; RUN_DURATION_SECONDS takes GREATER_THAN"));
        }
        let value_node = rule_table.require("value")?;
        let value = value_node.integer()?;
        let secs = u64::try_from(value)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| value_node.error("value must be a whole number of seconds, at least 1"))?;
        threshold = Some(threshold.map_or(secs, |t| t.min(secs)));
    }
    Ok(threshold)
}

#[cfg(test)]
#[path = "tests/notify.rs"]
mod tests;
