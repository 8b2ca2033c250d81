//! `enrich`: add a rate to every row of an upstream task's CSV, the rates fetched over HTTP.
//! The SDK's file and HTTP helpers in a few lines, and (below) how a task using them is
//! unit-tested with plain `cargo test` — no wasm, no runtime — through `MockHost`.
//!
//! Params:
//! * `from` — the upstream task whose `/out` holds the CSV (offered at `/in/<from>/`);
//! * `file` (default `rows.csv`) — the CSV's path there; its header names a `country` column;
//! * `rates_url` — a URL answering `{"NL": 1.1, …}` (its host must be in `allow_hosts`).
//!
//! Writes `/out/enriched.csv` (the rows plus a `rate` column, empty when the country has no
//! rate). Output `{ "rows", "unknown" }`; publishes value `unknown` (rows without a rate).
//! A missing file or column, or a rates document that is not a JSON object of numbers, is a
//! permanent error; an HTTP 5xx is transient (retried by policy).
//!
//! Bundle use:
//!
//! ```toml
//! [[jobs.daily.tasks]]
//! key = "enrich"
//! component = "enrich"
//! depends_on = ["load"]
//! params = { from = "load", rates_url = "https://rates.example.com/today" }
//! allow_hosts = ["https://rates.example.com"]
//! ```

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, files, http, params, values};

#[derive(Debug, Serialize, PartialEq)]
pub struct Output {
    pub rows: usize,
    pub unknown: usize,
}

/// `text` (a CSV whose header has `country`) with a `rate` column appended.
pub fn enrich(text: &str, rates: &BTreeMap<String, f64>) -> Result<(String, Output), TaskError> {
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| TaskError::permanent("the CSV is empty"))?;
    let country = header
        .split(',')
        .position(|c| c.trim() == "country")
        .ok_or_else(|| TaskError::permanent(format!("the CSV has no `country` column: {header}")))?;
    let mut out = format!("{header},rate\n");
    let (mut rows, mut unknown) = (0, 0);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let code = line.split(',').nth(country).unwrap_or("").trim();
        let rate = rates.get(code).map(f64::to_string).unwrap_or_default();
        unknown += usize::from(rate.is_empty());
        rows += 1;
        out.push_str(&format!("{line},{rate}\n"));
    }
    Ok((out, Output { rows, unknown }))
}

pub struct Enrich;

impl Task for Enrich {
    type Output = Output;

    fn run(_ctx: &Context) -> Result<Output, TaskError> {
        let from: String = params::require("from")?;
        let file: String = params::get_or("file", "rows.csv".to_string())?;
        let url: String = params::require("rates_url")?;
        let rates: BTreeMap<String, f64> = http::get(&url)?.error_for_status()?.json()?;
        let text = files::read_input_to_string(&from, &file)?;
        let (enriched, output) = enrich(&text, &rates)?;
        files::write_output("enriched.csv", enriched)?;
        values::set("unknown", &output.unknown)?;
        Ok(output)
    }
}

sluice_sdk::export_task!(Enrich);

#[cfg(test)]
mod tests {
    use sluice_sdk::testing::{self, MockHost};
    use sluice_sdk::{Context, serde_json::json};

    use super::*;

    const RATES: &str = "https://rates.example.com/today";

    /// The host a production run would give: the upstream file, the allowed host's answer.
    fn host() -> MockHost {
        MockHost::new()
            .param("from", "load")
            .param("rates_url", RATES)
            .input("load", "rows.csv", "id,country\n1,NL\n2,BE\n3,XX\n")
            .allow_host("rates.example.com")
    }

    #[test]
    fn enriches_the_upstream_file_with_the_fetched_rates() {
        host().respond("GET", RATES, 200, r#"{"NL": 1.5, "BE": 2}"#).install();
        let out = testing::run::<Enrich>(&Context::default()).unwrap();
        assert_eq!(out, json!({ "rows": 3, "unknown": 1 }));
        let written = String::from_utf8(testing::output("enriched.csv").unwrap()).unwrap();
        assert_eq!(written, "id,country,rate\n1,NL,1.5\n2,BE,2\n3,XX,\n");
        assert_eq!(testing::published("unknown"), Some(json!(1)));
        assert_eq!(testing::requests().len(), 1);
    }

    #[test]
    fn a_server_error_is_transient_and_a_host_not_allowed_is_refused() {
        host().respond("GET", RATES, 503, "busy").install();
        let busy = testing::run::<Enrich>(&Context::default()).unwrap_err();
        assert!(!busy.is_permanent(), "{busy}");
        host().param("rates_url", "https://elsewhere.example.org/r").install();
        let refused = testing::run::<Enrich>(&Context::default()).unwrap_err();
        assert!(refused.is_permanent() && refused.message().contains("is not allowed"), "{refused}");
    }

    #[test]
    fn a_missing_input_file_is_permanent() {
        host().param("file", "nope.csv").respond("GET", RATES, 200, "{}").install();
        let missing = testing::run::<Enrich>(&Context::default()).unwrap_err();
        assert!(missing.is_permanent() && missing.message().contains("/in/load/nope.csv"), "{missing}");
    }
}
