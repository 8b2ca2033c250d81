//! `report`: turn upstream values into a message.
//!
//! Params: `from` — comma-separated `task.key` pairs (`extract.rows,extract.valid`); `greeting`
//! (default `hello`); `who` (default `world`).
//!
//! Output `{ "message": "hello world: extract.rows=3, extract.valid=2", "inputs": {
//! "extract.rows": 3, ... } }`; publishes value `message` and prints the message to stdout.
//! A missing upstream value is a permanent error naming it.

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, params, values};

/// One `task.key` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub task: String,
    pub key: String,
}

impl Input {
    pub fn name(&self) -> String {
        format!("{}.{}", self.task, self.key)
    }
}

/// Parse `a.x, b.y` (split at each pair's first dot; empty items are skipped).
pub fn parse_from(s: &str) -> Result<Vec<Input>, TaskError> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('.') {
            Some((task, key)) if !task.is_empty() && !key.is_empty() => Ok(Input {
                task: task.to_string(),
                key: key.to_string(),
            }),
            _ => Err(TaskError::permanent(format!(
                "param `from`: `{item}` is not a `task.key` pair"
            ))),
        })
        .collect()
}

/// `hello world: a.x=3, b.y=ok` (strings unquoted, everything else as JSON).
pub fn message(greeting: &str, who: &str, inputs: &[(String, serde_json::Value)]) -> String {
    let mut msg = format!("{greeting} {who}");
    if !inputs.is_empty() {
        let parts: Vec<String> = inputs
            .iter()
            .map(|(name, v)| match v {
                serde_json::Value::String(s) => format!("{name}={s}"),
                other => format!("{name}={other}"),
            })
            .collect();
        msg.push_str(": ");
        msg.push_str(&parts.join(", "));
    }
    msg
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub message: String,
    pub inputs: serde_json::Map<String, serde_json::Value>,
}

pub struct Report;

impl Task for Report {
    type Output = Output;

    fn run(_ctx: &Context) -> Result<Output, TaskError> {
        let wanted = parse_from(&params::get("from").unwrap_or_default())?;
        let greeting = params::get("greeting").unwrap_or_else(|| "hello".into());
        let who = params::get("who").unwrap_or_else(|| "world".into());
        let mut inputs = Vec::with_capacity(wanted.len());
        for input in &wanted {
            let v: serde_json::Value = values::require(&input.task, &input.key)?;
            inputs.push((input.name(), v));
        }
        let message = message(&greeting, &who, &inputs);
        println!("{message}");
        values::set("message", &message)?;
        Ok(Output {
            message,
            inputs: inputs.into_iter().collect(),
        })
    }
}

sluice_sdk::export_task!(Report);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_sdk::testing::{self, MockHost};

    #[test]
    fn parses_pairs() {
        let v = parse_from(" extract.rows, extract.valid ,,load.a.b").unwrap();
        assert_eq!(
            v.iter().map(Input::name).collect::<Vec<_>>(),
            ["extract.rows", "extract.valid", "load.a.b"]
        );
        assert_eq!(v[2].key, "a.b");
        assert!(parse_from("").unwrap().is_empty());
        let e = parse_from("a.b,nodot").unwrap_err();
        assert_eq!(
            e.message(),
            "param `from`: `nodot` is not a `task.key` pair"
        );
        assert!(parse_from(".x").is_err());
    }

    #[test]
    fn formats_message() {
        let inputs = vec![
            ("a.n".to_string(), json!(3)),
            ("b.s".to_string(), json!("ok")),
        ];
        assert_eq!(message("hi", "you", &inputs), "hi you: a.n=3, b.s=ok");
        assert_eq!(message("hello", "world", &[]), "hello world");
    }

    #[test]
    fn run_end_to_end() {
        MockHost::new()
            .param("from", "extract.rows,extract.valid")
            .upstream("extract", "rows", 3)
            .upstream("extract", "valid", 2)
            .install();
        let out = testing::run::<Report>(&Context::default()).unwrap();
        assert_eq!(
            out,
            json!({
                "message": "hello world: extract.rows=3, extract.valid=2",
                "inputs": { "extract.rows": 3, "extract.valid": 2 }
            })
        );
        assert_eq!(testing::published("message"), Some(out["message"].clone()));

        MockHost::new().param("from", "extract.rows").install();
        let e = testing::run::<Report>(&Context::default()).unwrap_err();
        assert_eq!(
            e,
            TaskError::Permanent("missing upstream value `extract.rows`".into())
        );
    }
}
