//! The dashboard's search: text in task logs, outputs and errors, within one run or across
//! the caller's latest runs, and runs by a parameter value. Read-only, through the service
//! (so a caller finds only what it may read; logs are stored redacted), and bounded.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Authed;
use super::super::error::{ApiError, Params};
use crate::model::RunView;

/// Across runs, search at most this many of the caller's latest: each costs a fold of its
/// run, and a search should answer in well under a second.
pub const MAX_SEARCH_RUNS: usize = 200;
/// At most this many hits are returned (the page shows them all; more is a refinement job).
pub const MAX_SEARCH_HITS: usize = 200;
/// The shortest query: one or two characters match nearly every log.
pub const MIN_QUERY_CHARS: usize = 3;
/// Characters of context on each side of a hit in a log line.
const SNIPPET_CHARS: usize = 60;

/// `?q=TEXT[&run=N]`: hits `[{run_id, job, task, attempt, field, text}]`, newest run first,
/// case-insensitive; `field` is `log`, `output`, `error` or `parameter`.
pub async fn search(State(st): State<AppState>, Authed(caller): Authed, p: Params) -> Result<Json<Value>, ApiError> {
    let q = p.str("q").unwrap_or_default().trim().to_string();
    if q.chars().count() < MIN_QUERY_CHARS {
        return Err(ApiError::invalid(format!("a search needs at least {MIN_QUERY_CHARS} characters")));
    }
    let run = p.int("run")?;
    super::super::blocking(&st, move |svc| {
        let ids: Vec<u64> = match run {
            Some(run) => vec![run],
            None => {
                let filter = crate::service::RunFilter { limit: MAX_SEARCH_RUNS, ..Default::default() };
                svc.list_runs(&caller, &filter)?.into_iter().map(|s| s.run_id).collect()
            }
        };
        let needle = q.to_lowercase();
        let (mut hits, mut searched) = (Vec::new(), 0);
        for id in ids {
            // a single named run must be readable; across runs, an unreadable one is skipped
            let record = match svc.record(&caller, id) {
                Ok((record, _)) => record,
                Err(e) if run.is_some() => return Err(e),
                Err(_) => continue,
            };
            searched += 1;
            hits_in(&record.view, &needle, &mut hits);
            if hits.len() >= MAX_SEARCH_HITS {
                hits.truncate(MAX_SEARCH_HITS);
                break;
            }
        }
        let truncated = hits.len() >= MAX_SEARCH_HITS;
        Ok(Json(json!({ "query": q, "runs_searched": searched, "hits": hits, "truncated": truncated })))
    })
    .await
}

fn hits_in(view: &RunView, needle: &str, hits: &mut Vec<Value>) {
    let hit = |task: Option<&str>, attempt: Option<u32>, field: &str, text: String| json!({ "run_id": view.run_id, "job": view.job, "task": task, "attempt": attempt, "field": field, "text": text });
    for (name, value) in &view.parameters {
        if value.to_lowercase().contains(needle) || name.to_lowercase().contains(needle) {
            hits.push(hit(None, None, "parameter", format!("{name} = {value}")));
        }
    }
    for task in &view.tasks {
        for a in &task.attempts {
            let fields = [("log", Some(&a.log)), ("output", a.output.as_ref()), ("error", a.error.as_ref())];
            let fields = fields.map(|(f, t)| (f, t.map(String::as_str)));
            for (field, text) in fields {
                let Some(text) = text else { continue };
                for line in text.lines().filter(|l| l.to_lowercase().contains(needle)) {
                    hits.push(hit(Some(&task.key), Some(a.attempt), field, snippet(line, needle)));
                    if hits.len() >= MAX_SEARCH_HITS {
                        return;
                    }
                }
            }
        }
    }
}

/// The line around the first match, at most [`SNIPPET_CHARS`] each side.
fn snippet(line: &str, needle: &str) -> String {
    let lower = line.to_lowercase();
    let chars: Vec<char> = line.chars().collect();
    // char index of the match (lowercasing can change byte lengths; count in chars)
    let at = lower.find(needle).map(|b| lower[..b].chars().count()).unwrap_or(0).min(chars.len());
    let start = at.saturating_sub(SNIPPET_CHARS);
    let end = (at + needle.chars().count() + SNIPPET_CHARS).min(chars.len());
    let mut out: String = chars[start..end].iter().collect();
    if start > 0 {
        out.insert(0, '…');
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_keeps_the_match_with_context() {
        assert_eq!(snippet("short NEEDLE line", "needle"), "short NEEDLE line");
        let long = format!("{}needle{}", "a".repeat(100), "b".repeat(100));
        let s = snippet(&long, "needle");
        assert!(s.starts_with('…') && s.ends_with('…') && s.contains("needle"), "{s}");
        assert_eq!(s.chars().count(), 2 + 60 + 6 + 60);
    }
}
