//! A job's trigger, one per job as in Databricks: `schedule = { cron, timezone, … }`
//! or `trigger = { periodic | file_arrival | webhook | table_update = … }` or
//! `continuous = { … }`.
//!
//! Reading only: the cron pattern is checked with the same parser the trigger engine
//! uses ([`parse_cron`]), the time zone against the tz database, URLs and durations by
//! shape; every error names `file:line:col` and the key. What a trigger does when it
//! fires is the `triggers` module's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::{Node, Table};

/// The job keys that declare a trigger (at most one of them per job).
pub(crate) const TRIGGER_JOB_KEYS: [&str; 3] = ["schedule", "trigger", "continuous"];

const SCHEDULE_KEYS: &[&str] = &["cron", "timezone", "pause_status", "dst", "catch_up", "catch_up_window"];
pub(crate) const TRIGGER_KEYS: &[&str] =
    &["periodic", "file_arrival", "webhook", "table_update", "pause_status", "catch_up", "catch_up_window"];
const PERIODIC_KEYS: &[&str] = &["interval", "unit"];
const FILE_KEYS: &[&str] = &["url", "min_time_between_triggers", "wait_after_last_change", "credentials"];
const DST_KEYS: &[&str] = &["skipped", "repeated"];

/// How long after a missed tick catching up may still start it, unless the bundle says.
pub const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(3600);

/// A job's trigger and whether it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerSpec {
    pub kind: TriggerKind,
    /// `PAUSED` in the bundle: the trigger fires nothing until `sluice triggers resume`.
    #[serde(default)]
    pub paused: bool,
    /// What becomes of ticks the server was not up for (schedule and periodic).
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Ticks older than this (when the server is back) are missed whatever `catch_up` says.
    #[serde(default = "default_window")]
    pub catch_up_window: Duration,
    /// The line of the trigger in the bundle file (for messages).
    #[serde(default)]
    pub line: usize,
}

fn default_window() -> Duration {
    DEFAULT_CATCH_UP_WINDOW
}

/// What starts the job's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// `schedule = { cron = "0 30 2 * * ?", timezone = "Europe/Amsterdam" }` (Quartz syntax).
    Schedule { cron: String, timezone: String, dst: DstPolicy },
    /// `trigger = { periodic = { interval = 4, unit = "HOURS" } }`: every `every`, counted from
    /// the Unix epoch (so the ticks do not move when the server restarts).
    Periodic { every: Duration },
    /// `trigger = { file_arrival = { url, min_time_between_triggers, wait_after_last_change } }`.
    FileArrival(FileArrival),
    /// `trigger = { webhook = { secret = "scope/key" } }`.
    Webhook { secret: String },
    /// `continuous = { pause_status }`: a new run when the previous one ends.
    Continuous,
    /// `trigger = { table_update = { tables, condition, … } }` (see [`super::datasets`]).
    TableUpdate(super::datasets::TableUpdate),
}

impl TriggerKind {
    /// `schedule`, `periodic`, `file_arrival`, `webhook`, `continuous` or `table_update`.
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Schedule { .. } => "schedule",
            TriggerKind::Periodic { .. } => "periodic",
            TriggerKind::FileArrival(_) => "file_arrival",
            TriggerKind::Webhook { .. } => "webhook",
            TriggerKind::Continuous => "continuous",
            TriggerKind::TableUpdate(_) => "table_update",
        }
    }
}

/// Where files arrive and how the trigger waits for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileArrival {
    /// An absolute local directory, or an object store's URL (`s3://`, `az://`, `abfss://`,
    /// `gs://`; see `objstore::Location`).
    pub url: String,
    /// At least this long between two runs the trigger starts.
    pub min_time_between_triggers: Duration,
    /// A run starts only once the location has been unchanged this long.
    pub wait_after_last_change: Duration,
    /// For object stores (required there): the secret (`scope/key`) whose value is the store's
    /// JSON credentials (`objstore::Credentials`; never the values themselves in the bundle).
    pub credentials: Option<String>,
}

/// Databricks' defaults for file arrival.
const DEFAULT_MIN_BETWEEN: Duration = Duration::from_secs(60);
const DEFAULT_WAIT_AFTER: Duration = Duration::from_secs(60);

/// What a schedule does on daylight-saving days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DstPolicy {
    pub skipped: Skipped,
    pub repeated: Repeated,
}

/// A tick whose local time does not exist (the clocks jump over it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skipped {
    /// Fire once at the first valid time after the jump.
    #[default]
    Shift,
    /// Do not fire (recorded as skipped).
    Skip,
}

/// A tick whose local time happens twice (the clocks go back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repeated {
    #[default]
    First,
    Last,
    Both,
}

/// What becomes of ticks missed while the server was down (within the window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Start one run for the latest missed tick.
    #[default]
    Last,
    /// Start a run for every missed tick (at most the engine's cap).
    All,
    /// Start none.
    None,
}

/// Parse a Quartz cron pattern (seconds field required; `?`, `L`, `W`, `#`; weekdays 1 =
/// Sunday as in Quartz; an optional year field).
pub fn parse_cron(pattern: &str) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Optional)
        .alternative_weekdays(true)
        .build()
        .parse(pattern)
        .map_err(|e| format!("invalid Quartz cron pattern `{pattern}`: {e} (six or seven fields: sec min hour day-of-month month day-of-week [year])"))
}

/// The trigger declared by a job's table, if any.
pub(crate) fn read(table: &Table<'_>) -> Result<Option<TriggerSpec>, SpecError> {
    let declared: Vec<_> = table.entries().iter().filter(|e| TRIGGER_JOB_KEYS.contains(&e.key)).collect();
    let [entry] = declared.as_slice() else {
        return match declared.get(1) {
            Some(second) => {
                Err(second.key_error(format!("a job has at most one trigger; it already has `{}`", declared[0].key)))
            }
            None => Ok(None),
        };
    };
    let node = &entry.node;
    let t = node.table()?;
    let line = node.line();
    let spec = match entry.key {
        "schedule" => {
            t.deny_unknown(SCHEDULE_KEYS)?;
            let kind = schedule(&t)?;
            common(&t, kind, line)?
        }
        "continuous" => {
            t.deny_unknown(&["pause_status"])?;
            common(&t, TriggerKind::Continuous, line)?
        }
        _ => {
            t.deny_unknown(TRIGGER_KEYS)?;
            let kinds: Vec<_> = ["periodic", "file_arrival", "webhook", "table_update"]
                .into_iter()
                .filter_map(|k| t.get(k).map(|n| (k, n)))
                .collect();
            let [(kind, n)] = kinds.as_slice() else {
                return Err(node
                    .error("a trigger names exactly one of `periodic`, `file_arrival`, `webhook` or `table_update`"));
            };
            let kind = match *kind {
                "periodic" => periodic(n)?,
                "file_arrival" => file_arrival(n)?,
                "table_update" => super::datasets::table_update(n)?,
                _ => webhook(n)?,
            };
            common(&t, kind, line)?
        }
    };
    Ok(Some(spec))
}

fn common(t: &Table<'_>, kind: TriggerKind, line: usize) -> Result<TriggerSpec, SpecError> {
    let paused = match t.get("pause_status") {
        Some(n) => match n.str()? {
            "PAUSED" => true,
            "UNPAUSED" => false,
            other => return Err(n.error(format!("pause_status is \"PAUSED\" or \"UNPAUSED\", found \"{other}\""))),
        },
        None => false,
    };
    let catch_up = match t.get("catch_up") {
        Some(n) => match n.str()? {
            "last" => CatchUp::Last,
            "all" => CatchUp::All,
            "none" => CatchUp::None,
            other => return Err(n.error(format!("catch_up is \"last\", \"all\" or \"none\", found \"{other}\""))),
        },
        None => CatchUp::default(),
    };
    let catch_up_window = t.get("catch_up_window").map(Node::duration).transpose()?.unwrap_or(DEFAULT_CATCH_UP_WINDOW);
    Ok(TriggerSpec { kind, paused, catch_up, catch_up_window, line })
}

fn schedule(t: &Table<'_>) -> Result<TriggerKind, SpecError> {
    let cron_node = t.require("cron")?;
    let cron = cron_node.str()?;
    parse_cron(cron).map_err(|why| cron_node.error(why))?;
    let timezone = match t.get("timezone") {
        Some(n) => {
            let name = n.str()?;
            name.parse::<chrono_tz::Tz>().map_err(|_| {
                n.error(format!(
                    "unknown time zone \"{name}\"; use a tz database name such as \"Europe/Amsterdam\" or \"UTC\""
                ))
            })?;
            name.to_string()
        }
        None => "UTC".to_string(),
    };
    let mut dst = DstPolicy::default();
    if let Some(n) = t.get("dst") {
        let d = n.table()?;
        d.deny_unknown(DST_KEYS)?;
        if let Some(n) = d.get("skipped") {
            dst.skipped = match n.str()? {
                "shift" => Skipped::Shift,
                "skip" => Skipped::Skip,
                other => return Err(n.error(format!("dst.skipped is \"shift\" or \"skip\", found \"{other}\""))),
            };
        }
        if let Some(n) = d.get("repeated") {
            dst.repeated = match n.str()? {
                "first" => Repeated::First,
                "last" => Repeated::Last,
                "both" => Repeated::Both,
                other => {
                    return Err(n.error(format!("dst.repeated is \"first\", \"last\" or \"both\", found \"{other}\"")));
                }
            };
        }
    }
    Ok(TriggerKind::Schedule { cron: cron.to_string(), timezone, dst })
}

fn periodic(node: &Node<'_>) -> Result<TriggerKind, SpecError> {
    let t = node.table()?;
    t.deny_unknown(PERIODIC_KEYS)?;
    let n = t.require("interval")?;
    let interval = n.integer()?;
    if interval < 1 {
        return Err(n.error(format!("interval must be a whole number of at least 1, found {interval}")));
    }
    let u = t.require("unit")?;
    let unit = match u.str()? {
        "MINUTES" => 60,
        "HOURS" => 3600,
        "DAYS" => 86_400,
        "WEEKS" => 7 * 86_400,
        other => {
            return Err(u.error(format!("unit is \"MINUTES\", \"HOURS\", \"DAYS\" or \"WEEKS\", found \"{other}\"")));
        }
    };
    let secs = (interval as u64).checked_mul(unit).filter(|s| *s <= 10 * 366 * 86_400);
    let secs = secs.ok_or_else(|| n.error("interval is longer than ten years"))?;
    Ok(TriggerKind::Periodic { every: Duration::from_secs(secs) })
}

fn file_arrival(node: &Node<'_>) -> Result<TriggerKind, SpecError> {
    let t = node.table()?;
    t.deny_unknown(FILE_KEYS)?;
    let u = t.require("url")?;
    let url = u.str()?;
    check_url(url).map_err(|why| u.error(why))?;
    let credentials = t.get("credentials").map(|n| {
        let name = n.str()?;
        super::names::check_secret_name(name)
            .map_err(|why| n.error(format!("credentials names a secret, `scope/key`: {why}")))?;
        Ok::<_, SpecError>(name.to_string())
    });
    let credentials = credentials.transpose()?;
    if url.starts_with('/') && credentials.is_some() {
        return Err(node.error("credentials apply to object stores (s3://…), not to a local directory"));
    }
    if crate::objstore::is_object_url(url) && credentials.is_none() {
        return Err(node.error(format!(
            "file arrival on \"{url}\" needs `credentials = \"scope/key\"`: a secret whose value is the store's \
             JSON credentials (never in the bundle)"
        )));
    }
    Ok(TriggerKind::FileArrival(FileArrival {
        url: url.to_string(),
        min_time_between_triggers: t
            .get("min_time_between_triggers")
            .map(Node::duration)
            .transpose()?
            .unwrap_or(DEFAULT_MIN_BETWEEN),
        wait_after_last_change: t
            .get("wait_after_last_change")
            .map(Node::duration)
            .transpose()?
            .unwrap_or(DEFAULT_WAIT_AFTER),
        credentials,
    }))
}

/// An absolute local directory or an object store's URL (`s3://`, `az://`, `abfss://`, `gs://`).
fn check_url(url: &str) -> Result<(), String> {
    if crate::objstore::is_object_url(url) {
        return crate::objstore::Location::parse(url).map(|_| ()).map_err(|e| e.to_string());
    }
    if url.starts_with('/') {
        if url.split('/').any(|part| part == "..") {
            return Err(format!("\"{url}\": `..` is not allowed in a watched path"));
        }
        return Ok(());
    }
    let scheme = url.split_once("://").map(|(s, _)| s);
    Err(match scheme {
        Some(s) => format!(
            "unsupported URL scheme `{s}://` in \"{url}\"; file arrival watches an absolute local directory, \
             s3://bucket/prefix/, az://container/prefix/, abfss://container@account.dfs.core.windows.net/prefix/ \
             or gs://bucket/prefix/"
        ),
        None => format!(
            "\"{url}\" is neither an absolute directory nor an object-store URL (s3://, az://, abfss://, gs://)"
        ),
    })
}

fn webhook(node: &Node<'_>) -> Result<TriggerKind, SpecError> {
    let t = node.table()?;
    t.deny_unknown(&["secret"])?;
    let s = t.require("secret")?;
    let secret = s.str()?;
    super::names::check_secret_name(secret).map_err(|why| s.error(format!("secret is `scope/key`: {why}")))?;
    Ok(TriggerKind::Webhook { secret: secret.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartz_patterns_parse_and_bad_ones_say_why() {
        for ok in ["0 30 2 * * ?", "0 0 12 ? * 2#1", "0 0 0 L * ?", "0 0 9 15W * ?", "0 15 10 ? * 6L 2030"] {
            parse_cron(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["30 2 * * *", "0 61 * * * ?", "nonsense", ""] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_absolute_dirs_or_s3() {
        assert!(check_url("/data/landing").is_ok());
        assert!(check_url("s3://bucket/landing/").is_ok());
        assert!(check_url("az://container/landing/").is_ok());
        assert!(check_url("abfss://lake@acct.dfs.core.windows.net/raw").is_ok());
        assert!(check_url("gs://bucket/landing/").is_ok());
        assert!(check_url("landing").is_err());
        assert!(check_url("ftp://x/y").unwrap_err().contains("ftp://"));
        assert!(check_url("s3://B/x").is_err());
        assert!(check_url("/a/../b").is_err());
    }
}
