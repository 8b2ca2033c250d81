//! `netprobe`: tries network access the test asks for and reports each result.
//!
//! Params: `get=URL` (an HTTP GET through wasi:http; output `"get"`:
//! `{"status": N, "body": "…"}` or `{"err": "…"}`; with `auth_secret=NAME` it reveals
//! that secret and sends it as `authorization: Bearer …`, output `"saw"`: what it got), `connect=HOST:PORT` (a raw
//! TCP connection through std; output `"connect"`: `{"ok": true}` or `{"err": "…"}`).
//! `url_secret=NAME` reveals that secret and puts it, percent-encoded, into the URL of
//! `get` as its last path segment and as `?token=<value>` (where a careless host logs it);
//! `times=N` sends `get` N times (output `"failed"`: how many failed).

use serde_json::{Map, Value, json};
use sluice_sdk::{Context, Task, TaskError, params};

pub struct NetProbe;

impl Task for NetProbe {
    type Output = Value;

    fn run(_ctx: &Context) -> Result<Value, TaskError> {
        let mut out = Map::new();
        if let Some(mut url) = params::get("get") {
            if let Some(name) = params::get("url_secret") {
                let value = sluice_sdk::secrets::reveal(&name)?;
                let pct: String = value
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                    .collect();
                url = format!("{url}/{pct}?token={pct}");
            }
            if let Some(n) = params::get("times").and_then(|v| v.parse::<u32>().ok()) {
                let failed = (0..n).filter(|_| waki::Client::new().get(&url).send().is_err()).count();
                out.insert("failed".into(), json!(failed));
            }
            let mut request = waki::Client::new().get(&url);
            if let Some(name) = params::get("auth_secret") {
                // an injected secret reveals as a placeholder; the host fills in the value
                let token = sluice_sdk::secrets::reveal(&name)?;
                out.insert("saw".into(), Value::String(token.clone()));
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let got = request.send().and_then(|r| {
                let status = r.status_code();
                let body = r.body()?;
                Ok(json!({ "status": status, "body": String::from_utf8_lossy(&body) }))
            });
            out.insert("get".into(), got.unwrap_or_else(|e| json!({ "err": e.to_string() })));
        }
        if let Some(addr) = params::get("connect") {
            let connected = std::net::TcpStream::connect(addr.as_str());
            out.insert("connect".into(), match connected {
                Ok(_) => json!({ "ok": true }),
                Err(e) => json!({ "err": e.to_string() }),
            });
        }
        Ok(Value::Object(out))
    }
}

sluice_sdk::export_task!(NetProbe);
