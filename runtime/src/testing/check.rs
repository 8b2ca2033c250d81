//! Assertions on a finished test run: the run's and tasks' results, task outputs and
//! values (a JSON path into them, compared with `==`, `!=`, `>`, `>=`, `<`, `<=` or
//! `contains`). A failing assertion reads `what: expected …, got …`, with a JSON-aware
//! diff when two structures differ.
//!
//! Pure over the run's view and its store: it must never run anything or write.

use serde_json::Value;

use super::Failure;
use super::diff;
use crate::model::RunView;
use crate::spec::suite::{Assertion, Check, CompareOp, JsonPath};
use crate::store::Store;

/// `None` when the assertion holds, else why not.
pub fn evaluate(assertion: &Assertion, view: &RunView, store: &dyn Store) -> Option<Failure> {
    let fail = |message: String, diff: Option<String>| Some(Failure { line: assertion.line, message, diff });
    match &assertion.check {
        Check::Run { result } => {
            let got = view.result.map_or("unfinished", |r| r.as_str());
            (got != result.as_str())
                .then(|| fail(format!("run result: expected `{result}`, got `{got}`{}", why_failed(view)), None))?
        }
        Check::TaskResult { task, result } => {
            let Some(t) = view.tasks.iter().find(|t| &t.key == task) else {
                return fail(format!("task `{task}`: not in the run"), None);
            };
            let got = t.result.map_or("unfinished", |r| r.as_str());
            let error =
                t.attempts.last().and_then(|a| a.error.as_deref()).map(|e| format!(" ({e})")).unwrap_or_default();
            (got != result.as_str())
                .then(|| fail(format!("task `{task}` result: expected `{result}`, got `{got}`{error}"), None))?
        }
        Check::Output { task, path, op, expected } => {
            let what = format!("task `{task}` output {}", path.text);
            let output = view.tasks.iter().find(|t| &t.key == task).and_then(|t| t.attempts.last()?.output.clone());
            let Some(text) = output else {
                return fail(format!("{what}: the task has no output"), None);
            };
            let parsed = serde_json::from_str(&text).unwrap_or(Value::String(text));
            compare_at(&what, &parsed, path, *op, expected).and_then(|(m, d)| fail(m, d))
        }
        // read from the task's /out files: see `quality::expect` (run by the test runner)
        Check::Expect { .. } => None,
        Check::Value { task, key, path, op, expected } => {
            let what = format!("task `{task}` value `{key}` {}", path.text);
            let stored = match store.value(view.run_id, task, key) {
                Ok(Some(json)) => json,
                Ok(None) => return fail(format!("{what}: the task set no value `{key}`"), None),
                Err(e) => return fail(format!("{what}: {e}"), None),
            };
            let parsed = serde_json::from_str(&stored).unwrap_or(Value::String(stored));
            compare_at(&what, &parsed, path, *op, expected).and_then(|(m, d)| fail(m, d))
        }
    }
}

/// The first failed task and its error, to say why a run did not succeed.
fn why_failed(view: &RunView) -> String {
    let failed =
        view.tasks.iter().find(|t| t.result.is_some_and(|r| r.as_str() == "failed" || r.as_str() == "timed_out"));
    match failed.and_then(|t| Some((t, t.attempts.last()?.error.as_deref()?))) {
        Some((t, error)) => format!(" (task `{}`: {error})", t.key),
        None => String::new(),
    }
}

fn compare_at(
    what: &str,
    value: &Value,
    path: &JsonPath,
    op: CompareOp,
    expected: &Value,
) -> Option<(String, Option<String>)> {
    let Some(actual) = path.select(value) else {
        return Some((format!("{what}: nothing at this path in {}", shorten(value)), None));
    };
    match compare(actual, op, expected) {
        Ok(true) => None,
        Ok(false) => {
            let d = (op == CompareOp::Eq && (actual.is_object() || actual.is_array()))
                .then(|| diff::json_diff(expected, actual, &path.text).join("\n"));
            Some((format!("{what}: expected {} {}, got {}", op.symbol(), shorten(expected), shorten(actual)), d))
        }
        Err(why) => Some((format!("{what}: {why}"), None)),
    }
}

/// Whether `actual op expected` holds; `Err` when the two cannot be compared so.
pub fn compare(actual: &Value, op: CompareOp, expected: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    let equal = || match (actual.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) if actual.is_number() && expected.is_number() => a == b,
        _ => actual == expected,
    };
    let order = || -> Result<Ordering, String> {
        match (actual, expected) {
            (Value::Number(a), Value::Number(b)) => {
                let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
                a.partial_cmp(&b).ok_or_else(|| "numbers that do not compare".to_string())
            }
            (Value::String(a), Value::String(b)) => Ok(a.cmp(b)),
            _ => Err(format!("cannot order {} against {}", kind(actual), kind(expected))),
        }
    };
    Ok(match op {
        CompareOp::Eq => equal(),
        CompareOp::Ne => !equal(),
        CompareOp::Gt => order()? == Ordering::Greater,
        CompareOp::Ge => order()? != Ordering::Less,
        CompareOp::Lt => order()? == Ordering::Less,
        CompareOp::Le => order()? != Ordering::Greater,
        CompareOp::Contains => match (actual, expected) {
            (Value::String(a), Value::String(b)) => a.contains(b.as_str()),
            (Value::Array(items), e) => items.iter().any(|item| compare(item, CompareOp::Eq, e).unwrap_or(false)),
            (Value::Object(map), Value::String(key)) => map.contains_key(key),
            _ => return Err(format!("{} cannot contain {}", kind(actual), kind(expected))),
        },
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How much of a value a message repeats.
const SHOWN_CHARS: usize = 200;

/// A value as JSON, cut at [`SHOWN_CHARS`] so a huge output makes no huge message.
pub(crate) fn shorten(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparisons_of_numbers_strings_and_collections() {
        assert!(compare(&json!(3), CompareOp::Eq, &json!(3.0)).unwrap());
        assert!(compare(&json!(5), CompareOp::Gt, &json!(2)).unwrap());
        assert!(!compare(&json!(5), CompareOp::Lt, &json!(2)).unwrap());
        assert!(compare(&json!("b"), CompareOp::Ge, &json!("a")).unwrap());
        assert!(compare(&json!([1, 2]), CompareOp::Contains, &json!(2)).unwrap());
        assert!(compare(&json!("hello"), CompareOp::Contains, &json!("ell")).unwrap());
        assert!(compare(&json!({"a": 1}), CompareOp::Ne, &json!({"a": 2})).unwrap());
        assert!(compare(&json!("5"), CompareOp::Gt, &json!(2)).unwrap_err().contains("cannot order a string"));
    }

    #[test]
    fn a_failed_comparison_says_what_was_expected_and_what_came() {
        let path = JsonPath::parse("$.rows").unwrap();
        let (message, _) =
            compare_at("task `t` output $.rows", &json!({"rows": 3}), &path, CompareOp::Gt, &json!(5)).expect("fails");
        assert_eq!(message, "task `t` output $.rows: expected > 5, got 3");
        let path = JsonPath::parse("$").unwrap();
        let (_, diff) = compare_at("o", &json!({"a": [1, 2]}), &path, CompareOp::Eq, &json!({"a": [1, 3]})).unwrap();
        assert_eq!(diff.as_deref(), Some("$.a[1]: expected 3, got 2"));
    }
}
