//! `probe`: a well-behaved task that exercises every import and reports what it saw.
//!
//! Params (all optional):
//! * every param is echoed in the output under `"params"`;
//! * `set_<k>=V` publishes value `<k>`: `V` itself if it is valid JSON, else `V` as a JSON
//!   string; `setraw_<k>=V` hands `V` to the host verbatim (to probe its JSON/cap checks).
//!   Results under `"set"`: `{ "<k>": {"ok": true} | {"err": "..."} }`;
//! * `read_value=task.key` → `"read"`: that upstream value, or `null`;
//! * `checkpoint=V` → loads checkpoint `cp` (`"checkpoint_before"`: its previous contents as a
//!   string, or `null`), then saves `V` under `cp`;
//! * `secret=name` → `"secret_result"`: `{"ok": value}` or `{"err": message}`, and on success
//!   `"secret_len"`: the value's length in bytes;
//! * `echo_secret=1` (with `secret`) → tries to leak the revealed value every way the host
//!   must redact: prints it and its base64 to stdout, its URL-safe base64 and percent-encoding
//!   to stderr, puts `"echo": {raw, b64, b64url, pct, basic}` in the output (`basic`: an
//!   HTTP Basic header for `user:<value>`), publishes it as value `leak`, appends it to the
//!   `fail` message, and tries to save it as checkpoint `cp_secret` (`"checkpoint_secret"`:
//!   `{"ok": true}` or `{"err": message}`);
//! * `out_secret=raw|hex` (with `secret`) → writes the revealed value, as is or in lowercase
//!   hex, into `/out/report.txt` (`"out_secret"`: `{"ok": true}` or `{"err": message}`);
//! * `checkpoint_key_secret=1` (with `secret`) → tries to save a checkpoint whose *key* is the
//!   revealed value (`"checkpoint_key"`: `{"ok": true}` or `{"err": message}`);
//! * `checkpoints=N` → saves N checkpoints of distinct keys (`"checkpoints"`: how many were
//!   saved, and the first error);
//! * `reveals=N` (with `secret`) → asks for the secret N more times (`"reveals"`: how many
//!   were answered, and the last error);
//! * `open_files=N` → opens N files in `/tmp` and keeps them open (`"open_files"`: how many
//!   opened, and the first error);
//! * `print=S` → `S` on stdout; `eprint=S` → `S` on stderr;
//! * `fail=transient|permanent` → after all of the above, fail with that kind and param
//!   `message` (default `probe failed`);
//! * `entropy=1` → `"entropy"`: the wall clock (ns) and a value drawn from the random source;
//! * `touch=PATH` → first of all, creates the empty file PATH (under an rw mount): a sign,
//!   outside the sandbox, that the attempt has started (crash tests kill at that moment);
//! * `sleep_ms=N` → sleeps N ms (real time) before anything else but `touch`;
//! * `hang_below_attempt=N` → on attempts < N, loops forever (to be timed out);
//! * `fail_below_attempt=N` → on attempts < N, fails transiently at the end.
//!
//! The output always includes `"ctx"`: job, run_id, task_key, attempt, target.

use serde_json::{Map, Value, json};
use sluice_sdk::{Context, Task, TaskError, checkpoint, params, secrets, values};

fn result<T: Into<Value>>(r: Result<T, TaskError>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v.into() }),
        Err(e) => json!({ "err": e.message() }),
    }
}

/// `V` as JSON if it parses, else as a JSON string.
pub fn as_json(v: &str) -> String {
    match serde_json::from_str::<Value>(v) {
        Ok(_) => v.to_string(),
        Err(_) => Value::String(v.to_string()).to_string(),
    }
}

pub struct Probe;

impl Task for Probe {
    type Output = Value;

    fn run(ctx: &Context) -> Result<Value, TaskError> {
        if let Some(path) = params::get("touch") {
            std::fs::write(&path, b"")
                .map_err(|e| TaskError::permanent(format!("param `touch`: cannot create {path}: {e}")))?;
        }
        if let Some(ms) = params::get("sleep_ms").and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let below = |name: &str| {
            params::get(name)
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|n| ctx.attempt < n)
        };
        if below("hang_below_attempt") {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        let all = params::all();
        let mut out = Map::new();
        if params::get("entropy").is_some() {
            // the wall clock and the random source a deterministic task must not leak
            use std::hash::{BuildHasher, Hasher};
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(1);
            out.insert("entropy".into(), json!({ "now_ns": now.to_string(), "random": h.finish().to_string() }));
        }
        out.insert("ctx".into(), serde_json::to_value(ctx)?);
        out.insert(
            "params".into(),
            Value::Object(
                all.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );

        let mut set = Map::new();
        for (k, v) in &all {
            if let Some(key) = k.strip_prefix("set_") {
                set.insert(
                    key.into(),
                    result(values::set_json(key, &as_json(v)).map(|()| true)),
                );
            } else if let Some(key) = k.strip_prefix("setraw_") {
                set.insert(key.into(), result(values::set_json(key, v).map(|()| true)));
            }
        }
        out.insert("set".into(), Value::Object(set));

        let read = match params::get("read_value") {
            None => Value::Null,
            Some(name) => {
                let (task, key) = name.split_once('.').ok_or_else(|| {
                    TaskError::permanent(format!("param `read_value`: `{name}` is not `task.key`"))
                })?;
                match values::get_json(task, key) {
                    None => Value::Null,
                    Some(raw) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
                }
            }
        };
        out.insert("read".into(), read);

        if let Some(cp) = params::get("checkpoint") {
            let before = checkpoint::load("cp").map(|b| String::from_utf8_lossy(&b).into_owned());
            out.insert(
                "checkpoint_before".into(),
                before.map_or(Value::Null, Value::String),
            );
            checkpoint::save("cp", cp.as_bytes())?;
        }

        let mut leaked = None;
        let mut revealed_value = None;
        if let Some(name) = params::get("secret") {
            let revealed = secrets::reveal(&name);
            if let Some(n) = params::get("reveals").and_then(|v| v.parse::<usize>().ok()) {
                let (mut answered, mut last_err) = (0, Value::Null);
                for _ in 0..n {
                    match secrets::reveal(&name) {
                        Ok(_) => answered += 1,
                        Err(e) => last_err = Value::String(e.message().to_string()),
                    }
                }
                out.insert("reveals".into(), json!({ "answered": answered, "err": last_err }));
            }
            if let Ok(v) = &revealed {
                revealed_value = Some(v.clone());
                out.insert("secret_len".into(), json!(v.len()));
                leaked = params::get("echo_secret").filter(|e| e == "1").map(|_| v.clone());
            }
            out.insert("secret_result".into(), result(revealed));
        }
        if let Some(v) = &leaked {
            println!("secret={v} b64={}", base64(v.as_bytes(), STD));
            eprintln!("b64url={} pct={}", base64(v.as_bytes(), URL), percent(v));
            let basic = format!("Authorization: Basic {}", base64(format!("user:{v}").as_bytes(), STD));
            out.insert(
                "echo".into(),
                json!({ "raw": v, "b64": base64(v.as_bytes(), STD), "b64url": base64(v.as_bytes(), URL), "pct": percent(v), "basic": basic }),
            );
            let _ = values::set_json("leak", &Value::String(v.clone()).to_string());
            out.insert(
                "checkpoint_secret".into(),
                result(checkpoint::save("cp_secret", v.as_bytes()).map(|()| true)),
            );
        }

        if let Some(v) = &revealed_value {
            side_doors(v, &mut out);
        }
        if let Some(n) = params::get("checkpoints").and_then(|v| v.parse::<usize>().ok()) {
            let mut saved = 0;
            let mut first_err = Value::Null;
            for i in 0..n {
                match checkpoint::save(&format!("k{i}"), b"1") {
                    Ok(()) => saved += 1,
                    Err(e) => {
                        first_err = Value::String(e.message().to_string());
                        break;
                    }
                }
            }
            out.insert("checkpoints".into(), json!({ "saved": saved, "err": first_err }));
        }
        if let Some(n) = params::get("open_files").and_then(|v| v.parse::<usize>().ok()) {
            let mut open = Vec::new();
            let mut first_err = Value::Null;
            for i in 0..n {
                match std::fs::File::create(format!("/tmp/f{i}")) {
                    Ok(f) => open.push(f),
                    Err(e) => {
                        first_err = Value::String(e.to_string());
                        break;
                    }
                }
            }
            out.insert("open_files".into(), json!({ "opened": open.len(), "err": first_err }));
        }

        if let Some(s) = params::get("print") {
            println!("{s}");
        }
        if let Some(s) = params::get("eprint") {
            eprintln!("{s}");
        }

        let mut message = params::get("message").unwrap_or_else(|| "probe failed".into());
        if let Some(v) = &leaked {
            message = format!("{message}: {v}");
        }
        if below("fail_below_attempt") {
            return Err(TaskError::transient(format!(
                "{message} (attempt {})",
                ctx.attempt
            )));
        }
        match params::get("fail").as_deref() {
            None | Some("") => Ok(Value::Object(out)),
            Some("transient") => Err(TaskError::transient(message)),
            Some("permanent") => Err(TaskError::permanent(message)),
            Some(other) => Err(TaskError::permanent(format!(
                "param `fail`: `{other}` is not transient or permanent"
            ))),
        }
    }
}

sluice_sdk::export_task!(Probe);

/// The ways to let a revealed value out that are not the log or the output.
fn side_doors(v: &str, out: &mut Map<String, Value>) {
    if let Some(form) = params::get("out_secret") {
        let text = match form.as_str() {
            "hex" => v.bytes().map(|b| format!("{b:02x}")).collect(),
            _ => v.to_string(),
        };
        let written = std::fs::write("/out/report.txt", format!("token: {text}\n"));
        out.insert("out_secret".into(), result(written.map(|()| true).map_err(|e| TaskError::permanent(e.to_string()))));
    }
    if params::get("checkpoint_key_secret").is_some() {
        out.insert("checkpoint_key".into(), result(checkpoint::save(v, b"x").map(|()| true)));
    }
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with padding over `alphabet` (the guest carries no base64 crate).
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of everything but RFC 3986 unreserved characters.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{self, MockHost};

    #[test]
    fn everything() {
        MockHost::new()
            .param("set_rows", "3")
            .param("set_word", "hi")
            .param("setraw_bad", "{")
            .param("read_value", "up.k")
            .upstream("up", "k", json!({"a": 1}))
            .param("checkpoint", "two")
            .checkpoint("cp", b"one".to_vec())
            .param("secret", "db/pw")
            .secret("db/pw", "s3cret")
            .install();
        let ctx = Context {
            job: "j".into(),
            attempt: 2,
            ..Context::default()
        };
        let out = testing::run::<Probe>(&ctx).unwrap();
        assert_eq!(out["ctx"]["attempt"], 2);
        assert_eq!(out["ctx"]["job"], "j");
        assert_eq!(out["params"]["set_word"], "hi");
        assert_eq!(out["set"]["rows"], json!({"ok": true}));
        assert!(out["set"]["bad"]["err"].is_string());
        assert_eq!(out["read"], json!({"a": 1}));
        assert_eq!(out["checkpoint_before"], "one");
        assert_eq!(out["secret_result"], json!({"ok": "s3cret"}));
        assert_eq!(testing::published("rows"), Some(json!(3)));
        assert_eq!(testing::published("word"), Some(json!("hi")));
        assert_eq!(testing::host().checkpoints["cp"], b"two");
    }

    #[test]
    fn encodings() {
        assert_eq!(base64(b"user:pass", STD), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab?>", STD), "YWI/Pg==");
        assert_eq!(base64(b"ab?>", URL), "YWI_Pg==");
        assert_eq!(percent("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn failures_and_denials() {
        MockHost::new().param("secret", "nope").install();
        let out = testing::run::<Probe>(&Context::default()).unwrap();
        assert!(
            out["secret_result"]["err"]
                .as_str()
                .unwrap()
                .contains("nope")
        );
        assert_eq!(out["read"], Value::Null);

        MockHost::new()
            .param("fail", "transient")
            .param("message", "m")
            .install();
        assert_eq!(
            testing::run::<Probe>(&Context::default()).unwrap_err(),
            TaskError::Transient("m".into())
        );
        MockHost::new().param("fail", "permanent").install();
        assert_eq!(
            testing::run::<Probe>(&Context::default()).unwrap_err(),
            TaskError::Permanent("probe failed".into())
        );
    }
}
