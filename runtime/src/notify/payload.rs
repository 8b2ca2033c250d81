//! What a notification says: the generic JSON payload (stored with the notice) and its
//! renderings for Slack, Teams and mail.
//!
//! Owns the wording and the shapes. It must never add a secret: it only reads the
//! payload, which is built from the run's log (task errors there are already redacted by
//! the sandbox), and the delivering owner's link to the run.

use serde_json::{Value, json};

use crate::spec::WebhookFormat;

/// The payload with the link to the run, when the owner knows one.
pub(crate) fn with_link(payload: &Value, link: Option<&str>) -> Value {
    let mut out = payload.clone();
    if let (Some(link), Some(map)) = (link, out.as_object_mut()) {
        map.insert("url".into(), Value::String(link.to_string()));
    }
    out
}

/// The one-line summary every rendering starts with.
pub(crate) fn headline(payload: &Value) -> String {
    payload["message"].as_str().unwrap_or("sluice notification").to_string()
}

/// The lines naming failed tasks and their errors.
fn failure_lines(payload: &Value) -> Vec<String> {
    let Some(tasks) = payload["failed_tasks"].as_array() else { return Vec::new() };
    tasks
        .iter()
        .map(|t| format!("{}: {}", t["task"].as_str().unwrap_or("?"), t["error"].as_str().unwrap_or("failed")))
        .collect()
}

/// The webhook body in `format`.
pub(crate) fn webhook_body(format: WebhookFormat, payload: &Value) -> Value {
    let headline = headline(payload);
    let failures = failure_lines(payload);
    let link = payload["url"].as_str();
    match format {
        WebhookFormat::Generic => payload.clone(),
        WebhookFormat::Slack => {
            let mut text = headline.clone();
            for line in &failures {
                text.push_str(&format!("\n• {line}"));
            }
            if let Some(link) = link {
                text.push_str(&format!("\n<{link}|Open run {}>", payload["run_id"]));
            }
            json!({
                "text": text,
                "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": text } }],
            })
        }
        WebhookFormat::Teams => {
            let facts: Vec<Value> =
                [("Job", &payload["job"]), ("Run", &payload["run_id"]), ("State", &payload["state"])]
                    .into_iter()
                    .map(|(name, value)| json!({ "name": name, "value": plain(value) }))
                    .chain(failures.iter().map(|line| json!({ "name": "Failed task", "value": line })))
                    .collect();
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": headline,
                "themeColor": if payload["event"] == "on_failure" { "D70000" } else { "0076D7" },
                "title": headline,
                "sections": [{ "facts": facts }],
            });
            if let Some(link) = link {
                card["potentialAction"] = json!([{
                    "@type": "OpenUri", "name": "Open run",
                    "targets": [{ "os": "default", "uri": link }],
                }]);
            }
            card
        }
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A mail's subject and plain-text body.
pub(crate) fn mail(payload: &Value) -> (String, String) {
    let subject = headline(payload);
    let mut body = format!("{subject}\n\n");
    for (name, key) in [("Job", "job"), ("Run", "run_id"), ("Task", "task"), ("State", "state")] {
        if !payload[key].is_null() {
            body.push_str(&format!("{name}: {}\n", plain(&payload[key])));
        }
    }
    if let Some(secs) = payload["duration_seconds"].as_f64() {
        body.push_str(&format!("Duration: {secs:.1}s\n"));
    }
    let failures = failure_lines(payload);
    if !failures.is_empty() {
        body.push_str("\nFailed tasks:\n");
        for line in failures {
            body.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(link) = payload["url"].as_str() {
        body.push_str(&format!("\n{link}\n"));
    }
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Value {
        json!({
            "event": "on_failure", "job": "nightly", "run_id": 7, "state": "failed",
            "duration_seconds": 2.5, "message": "Run 7 of job nightly failed after 2.5s",
            "failed_tasks": [{ "task": "load", "error": "disk full" }],
        })
    }

    #[test]
    fn slack_and_teams_get_their_own_shapes_with_the_failed_tasks_and_the_link() {
        let payload = with_link(&failed(), Some("http://dash/runs/7"));
        let slack = webhook_body(WebhookFormat::Slack, &payload);
        let text = slack["text"].as_str().unwrap();
        assert!(text.contains("failed") && text.contains("load: disk full") && text.contains("<http://dash/runs/7|"));
        assert_eq!(slack["blocks"][0]["type"], "section");
        let teams = webhook_body(WebhookFormat::Teams, &payload);
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["potentialAction"][0]["targets"][0]["uri"], "http://dash/runs/7");
        assert!(teams["sections"][0]["facts"].to_string().contains("disk full"));
        assert_eq!(webhook_body(WebhookFormat::Generic, &payload)["url"], "http://dash/runs/7");
    }

    #[test]
    fn a_mail_says_what_happened_in_its_subject_and_lists_failures() {
        let (subject, body) = mail(&failed());
        assert_eq!(subject, "Run 7 of job nightly failed after 2.5s");
        assert!(body.contains("Job: nightly") && body.contains("load: disk full") && body.contains("Duration: 2.5s"));
    }
}
