//! `{{ … }}` references inside parameter values.
//!
//! A value such as `"orders/{{ job.parameters.day }}.csv"` names things that are only
//! known when a run starts or when an upstream task has finished. This module parses
//! those references ([`references`]) so the bundle can be validated up front, and fills
//! them in ([`render`]) once a caller can resolve them. It knows nothing about runs:
//! resolution is the caller's closure.

use std::fmt;

use super::names;

/// One thing a `{{ … }}` reference can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `job.parameters.<name>`
    JobParameter(String),
    /// `job.run_id`
    JobRunId,
    /// `job.name`
    JobName,
    /// `job.start_time.iso_date`
    JobStartDate,
    /// `job.start_time.iso_datetime`
    JobStartDateTime,
    /// `job.start_time.<part>`: one part of the run's logical start, in UTC.
    JobStartTime(TimePart),
    /// `job.id`: the job's identifier, `<bundle>.<job>` (stable across runs).
    JobId,
    /// `job.repair_count`: how many times the run has been repaired (0 in the run itself).
    JobRepairCount,
    /// `task.attempt`
    TaskAttempt,
    /// `task.key`
    TaskKey,
    /// `tasks.<task>.values.<name>`: a value an upstream task set.
    TaskValue { task: String, name: String },
    /// `tasks.<task>.result_state`: how an upstream task ended (`success`, `failed`,
    /// `excluded`, …).
    TaskResultState { task: String },
    /// `tasks.<task>.error_code`: why an upstream task failed (`transient`, `permanent`,
    /// `trap`, `timed_out`, …; empty when it did not fail).
    TaskErrorCode { task: String },
    /// `tasks.<task>.output`: an upstream task's output (a JSON string without its quotes,
    /// anything else as JSON text; a command's stdout with `stdout = "output"`).
    TaskOutput { task: String },
    /// `input`: the current element of a `for_each` task's inputs (only valid in the
    /// params of a `for_each` task template; how an element is written, e.g. a JSON
    /// string without its quotes, is up to whoever resolves it for [`render`]).
    Input,
    /// `input.<field>[.<field>…]`: a field of the current element when the inputs are an
    /// array of objects (same places as [`Reference::Input`]).
    InputField(String),
    /// `trigger.time`: the logical time of the trigger firing that started the run (RFC 3339,
    /// UTC; the run's start when no trigger started it).
    TriggerTime,
    /// `trigger.files`: the new files a file-arrival trigger started the run for, as a JSON
    /// array of `{path, size, etag | mtime}` (`[]` otherwise).
    TriggerFiles,
    /// `trigger.tables`: the new dataset versions a table-update trigger started the run
    /// for, as a JSON array of `{name, version, hash, run, task}` (`[]` otherwise).
    TriggerTables,
    /// `trigger.payload`: a webhook's JSON body (`{}` otherwise).
    TriggerPayload,
    /// `trigger.payload.<field>[.<field>…]`: a field of the webhook's body (strings
    /// without their quotes).
    TriggerPayloadField(String),
    /// `secrets/<scope>/<key>`: a secret's value. Allowed only in a command task's
    /// `env` (see `refs`), and resolved inside the sandbox, never into stored text.
    Secret { scope: String, key: String },
}

/// One part of a time, as `job.start_time.<part>` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimePart {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Milliseconds since the Unix epoch.
    TimestampMs,
}

/// The references that name one fixed thing, as written.
const FIXED: [(&str, Reference); 20] = [
    ("job.run_id", Reference::JobRunId),
    ("job.name", Reference::JobName),
    ("job.id", Reference::JobId),
    ("job.repair_count", Reference::JobRepairCount),
    ("job.start_time.iso_date", Reference::JobStartDate),
    ("job.start_time.iso_datetime", Reference::JobStartDateTime),
    ("job.start_time.year", Reference::JobStartTime(TimePart::Year)),
    ("job.start_time.month", Reference::JobStartTime(TimePart::Month)),
    ("job.start_time.day", Reference::JobStartTime(TimePart::Day)),
    ("job.start_time.hour", Reference::JobStartTime(TimePart::Hour)),
    ("job.start_time.minute", Reference::JobStartTime(TimePart::Minute)),
    ("job.start_time.second", Reference::JobStartTime(TimePart::Second)),
    ("job.start_time.timestamp_ms", Reference::JobStartTime(TimePart::TimestampMs)),
    ("task.attempt", Reference::TaskAttempt),
    ("task.key", Reference::TaskKey),
    ("input", Reference::Input),
    ("trigger.time", Reference::TriggerTime),
    ("trigger.files", Reference::TriggerFiles),
    ("trigger.tables", Reference::TriggerTables),
    ("trigger.payload", Reference::TriggerPayload),
];

impl Reference {
    /// Whether the reference is known when a run starts, before any task ran
    /// (the only kind a job parameter may use).
    pub fn is_run_level(&self) -> bool {
        matches!(
            self,
            Reference::JobRunId
                | Reference::JobName
                | Reference::JobId
                | Reference::JobStartDate
                | Reference::JobStartDateTime
                | Reference::JobStartTime(_)
                | Reference::TriggerTime
                | Reference::TriggerFiles
                | Reference::TriggerTables
                | Reference::TriggerPayload
                | Reference::TriggerPayloadField(_)
        )
    }

    /// The upstream task the reference reads from, if it reads one.
    pub fn upstream(&self) -> Option<&str> {
        match self {
            Reference::TaskValue { task, .. }
            | Reference::TaskResultState { task }
            | Reference::TaskErrorCode { task }
            | Reference::TaskOutput { task } => Some(task),
            _ => None,
        }
    }

    /// Whether the reference reads the current for_each element.
    pub fn is_input(&self) -> bool {
        matches!(self, Reference::Input | Reference::InputField(_))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::JobParameter(name) => write!(f, "job.parameters.{name}"),
            Reference::TaskValue { task, name } => write!(f, "tasks.{task}.values.{name}"),
            Reference::TaskResultState { task } => write!(f, "tasks.{task}.result_state"),
            Reference::TaskErrorCode { task } => write!(f, "tasks.{task}.error_code"),
            Reference::TaskOutput { task } => write!(f, "tasks.{task}.output"),
            Reference::InputField(path) => write!(f, "input.{path}"),
            Reference::TriggerPayloadField(path) => write!(f, "trigger.payload.{path}"),
            Reference::Secret { scope, key } => write!(f, "secrets/{scope}/{key}"),
            fixed => {
                let text = FIXED.iter().find(|(_, r)| r == fixed).map_or("?", |(text, _)| *text);
                f.write_str(text)
            }
        }
    }
}

/// A piece of a template: literal text or a reference.
enum Piece<'t> {
    Text(&'t str),
    Ref(Reference),
}

/// Every reference in `text`, in order (repeats included).
pub fn references(text: &str) -> Result<Vec<Reference>, String> {
    let pieces = pieces(text)?;
    Ok(pieces
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Ref(reference) => Some(reference),
            Piece::Text(_) => None,
        })
        .collect())
}

/// `text` with every reference replaced by what `resolve` returns for it. A reference
/// that `resolve` cannot answer (returns `None` for) is an error naming it.
pub fn render(text: &str, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(literal) => out.push_str(literal),
            Piece::Ref(reference) => match resolve(&reference) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("cannot resolve `{{{{ {reference} }}}}`")),
            },
        }
    }
    Ok(out)
}

/// A rendered value that may still hold secret references (a command task's `env`):
/// text, or a secret for the sandbox to reveal in its place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Part {
    Text(String),
    Secret { scope: String, key: String },
}

/// Like [`render`], but secret references stay [`Part::Secret`] (`resolve` is not
/// asked for them), so that their values never pass through rendered text.
/// Neighbouring text is merged.
pub fn render_parts(text: &str, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Result<Vec<Part>, String> {
    let mut parts: Vec<Part> = Vec::new();
    let push_text = |parts: &mut Vec<Part>, s: &str| match parts.last_mut() {
        Some(Part::Text(t)) => t.push_str(s),
        _ => parts.push(Part::Text(s.to_string())),
    };
    for piece in pieces(text)? {
        match piece {
            Piece::Text(literal) => push_text(&mut parts, literal),
            Piece::Ref(Reference::Secret { scope, key }) => parts.push(Part::Secret { scope, key }),
            Piece::Ref(reference) => match resolve(&reference) {
                Some(value) => push_text(&mut parts, &value),
                None => return Err(format!("cannot resolve `{{{{ {reference} }}}}`")),
            },
        }
    }
    Ok(parts)
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let inside = &rest[open + 2..];
        let Some(close) = inside.find("}}") else {
            return Err(format!("`{{{{` without a closing `}}}}` in `{}`", excerpt(&rest[open..])));
        };
        let body = &inside[..close];
        if body.contains("{{") {
            return Err(format!("`{{{{` inside a reference in `{}`", excerpt(&rest[open..])));
        }
        pieces.push(Piece::Ref(parse_reference(body.trim())?));
        rest = &inside[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// A short excerpt for error messages, so long values are not echoed whole.
fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn parse_reference(body: &str) -> Result<Reference, String> {
    if let Some((_, fixed)) = FIXED.iter().find(|(text, _)| *text == body) {
        return Ok(fixed.clone());
    }
    if let Some(name) = body.strip_prefix("job.parameters.") {
        return names::check_name(name)
            .map(|()| Reference::JobParameter(name.to_string()))
            .map_err(|why| format!("bad parameter name in `{{{{ {body} }}}}`: {why}"));
    }
    if let Some(rest) = body.strip_prefix("tasks.") {
        return parse_task_value(body, rest);
    }
    if let Some(path) = body.strip_prefix("trigger.payload.") {
        if path.is_empty() || !path.split('.').all(names::is_name) {
            return Err(format!(
                "`{{{{ {body} }}}}` should read `trigger.payload.<field>` (fields use letters, digits, `_` and `-`, \
                 nested ones joined by `.`)"
            ));
        }
        return Ok(Reference::TriggerPayloadField(path.to_string()));
    }
    if let Some(path) = body.strip_prefix("input.") {
        let fields_ok = !path.is_empty() && path.split('.').all(names::is_name);
        if !fields_ok {
            return Err(format!(
                "`{{{{ {body} }}}}` should read `input.<field>` (fields use letters, digits, `_` and `-`, \
                 nested ones joined by `.`)"
            ));
        }
        return Ok(Reference::InputField(path.to_string()));
    }
    if let Some(name) = body.strip_prefix("secrets/") {
        return names::check_secret_name(name)
            .map(|()| {
                let (scope, key) = name.split_once('/').unwrap_or((name, ""));
                Reference::Secret { scope: scope.to_string(), key: key.to_string() }
            })
            .map_err(|why| format!("bad secret reference `{{{{ {body} }}}}` (write `secrets/<scope>/<key>`): {why}"));
    }
    Err(unknown_reference(body))
}

fn parse_task_value(body: &str, rest: &str) -> Result<Reference, String> {
    let shape = || {
        format!(
            "`{{{{ {body} }}}}` should read `tasks.<task key>.values.<name>`, `tasks.<task key>.output`, \
             `tasks.<task key>.result_state` or `tasks.<task key>.error_code`"
        )
    };
    let (task, after) = rest.split_once('.').ok_or_else(shape)?;
    names::check_name(task).map_err(|why| format!("bad task key in `{{{{ {body} }}}}`: {why}"))?;
    match after {
        "result_state" => return Ok(Reference::TaskResultState { task: task.to_string() }),
        "error_code" => return Ok(Reference::TaskErrorCode { task: task.to_string() }),
        "output" => return Ok(Reference::TaskOutput { task: task.to_string() }),
        _ => {}
    }
    let name = after.strip_prefix("values.").ok_or_else(shape)?;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(shape());
    }
    Ok(Reference::TaskValue { task: task.to_string(), name: name.to_string() })
}

fn unknown_reference(body: &str) -> String {
    let known = FIXED.iter().map(|(text, _)| *text);
    let hint = names::suggestion(body, known);
    format!(
        "unknown reference `{{{{ {body} }}}}`{hint}; known: job.parameters.<name>, job.run_id, job.name, job.id, \
         job.repair_count, job.start_time.[iso_date|iso_datetime|year|month|day|hour|minute|second|timestamp_ms], \
         task.attempt, task.key, tasks.<task>.values.<name>, tasks.<task>.output, tasks.<task>.result_state, \
         tasks.<task>.error_code, input and input.<field> (in a for_each task template), \
         secrets/<scope>/<key> (in a command task's env)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_kind_of_reference() {
        let text = "{{job.parameters.day}} {{ job.run_id }} {{job.name}} {{ job.start_time.iso_date }} \
                    {{job.start_time.iso_datetime}} {{task.attempt}} {{ task.key }} {{ tasks.a-1.values.rows }} {{input}}";
        let found = references(text).unwrap();
        assert_eq!(
            found,
            vec![
                Reference::JobParameter("day".into()),
                Reference::JobRunId,
                Reference::JobName,
                Reference::JobStartDate,
                Reference::JobStartDateTime,
                Reference::TaskAttempt,
                Reference::TaskKey,
                Reference::TaskValue { task: "a-1".into(), name: "rows".into() },
                Reference::Input,
            ]
        );
    }

    #[test]
    fn databricks_references_and_input_fields_parse_and_display_as_written() {
        let text = "{{job.id}} {{ job.repair_count }} {{job.start_time.hour}} {{ job.start_time.timestamp_ms }} \
                    {{tasks.a.result_state}} {{ tasks.a.error_code }} {{ input.name }} {{input.at.day}} {{ tasks.a.output }}";
        let found = references(text).unwrap();
        assert_eq!(
            found,
            vec![
                Reference::JobId,
                Reference::JobRepairCount,
                Reference::JobStartTime(TimePart::Hour),
                Reference::JobStartTime(TimePart::TimestampMs),
                Reference::TaskResultState { task: "a".into() },
                Reference::TaskErrorCode { task: "a".into() },
                Reference::InputField("name".into()),
                Reference::InputField("at.day".into()),
                Reference::TaskOutput { task: "a".into() },
            ]
        );
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[4..],
            ["tasks.a.result_state", "tasks.a.error_code", "input.name", "input.at.day", "tasks.a.output"]
        );
        assert_eq!(Reference::TaskOutput { task: "a".into() }.upstream(), Some("a"));
        assert_eq!(shown[2], "job.start_time.hour");
        assert!(Reference::JobId.is_run_level() && !Reference::JobRepairCount.is_run_level());
        assert_eq!(Reference::TaskErrorCode { task: "a".into() }.upstream(), Some("a"));
        assert!(references("{{ input.a b }}").is_err() && references("{{ job.start_time.week }}").is_err());
    }

    #[test]
    fn secret_references_name_a_scope_and_a_key() {
        assert_eq!(
            references("{{ secrets/db/pw }}").unwrap(),
            vec![Reference::Secret { scope: "db".into(), key: "pw".into() }]
        );
        assert_eq!(references("{{secrets/db/pw}}").unwrap()[0].to_string(), "secrets/db/pw");
        for bad in ["{{ secrets/db }}", "{{ secrets/db/pw/x }}", "{{ secrets/ db/pw }}", "{{ secrets/a b/c }}"] {
            assert!(references(bad).is_err(), "{bad}");
        }
        let mut none = |_: &Reference| None;
        assert!(render("{{ secrets/db/pw }}", &mut none).is_err());
        let mut key = |r: &Reference| (*r == Reference::TaskKey).then(|| "t".to_string());
        assert_eq!(
            render_parts("u={{task.key}}:{{ secrets/db/pw }}!", &mut key).unwrap(),
            vec![
                Part::Text("u=t:".into()),
                Part::Secret { scope: "db".into(), key: "pw".into() },
                Part::Text("!".into())
            ]
        );
        assert!(render_parts("{{ job.name }}", &mut none).is_err());
    }

    #[test]
    fn plain_text_has_no_references() {
        assert_eq!(references("a,b\n1,2 } {").unwrap(), vec![]);
    }

    #[test]
    fn display_matches_the_written_form() {
        for text in ["job.parameters.day", "job.start_time.iso_datetime", "tasks.a.values.b", "task.key", "input"] {
            let found = references(&format!("{{{{{text}}}}}")).unwrap();
            assert_eq!(found[0].to_string(), text);
        }
    }

    #[test]
    fn unclosed_braces_are_an_error() {
        let err = references("x {{ job.name").unwrap_err();
        assert!(err.contains("without a closing"), "{err}");
        assert!(references("{{ {{ job.name }}").is_err());
    }

    #[test]
    fn unknown_references_suggest_the_closest() {
        let err = references("{{ job.runid }}").unwrap_err();
        assert!(err.contains("unknown reference `{{ job.runid }}`"), "{err}");
        assert!(err.contains("did you mean `job.run_id`?"), "{err}");
        assert!(references("{{ tasks.a.outputs.b }}").unwrap_err().contains("tasks.<task key>.values.<name>"));
        assert!(references("{{ job.parameters.a b }}").is_err());
        assert!(references("{{}}").is_err());
    }

    #[test]
    fn render_fills_in_and_refuses_unresolved() {
        let mut resolve = |r: &Reference| match r {
            Reference::JobParameter(name) if name == "day" => Some("2024-01-02".to_string()),
            Reference::TaskKey => Some("extract".to_string()),
            _ => None,
        };
        let out = render("in/{{ job.parameters.day }}/{{task.key}}.csv", &mut resolve).unwrap();
        assert_eq!(out, "in/2024-01-02/extract.csv");
        let err = render("{{ job.run_id }}", &mut resolve).unwrap_err();
        assert_eq!(err, "cannot resolve `{{ job.run_id }}`");
    }
}
