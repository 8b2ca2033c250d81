//! `netprobe`: tries network access the test asks for and reports each result.
//!
//! Params: `get=URL` (an HTTP GET through wasi:http; output `"get"`:
//! `{"status": N, "body": "…"}` or `{"err": "…"}`), `connect=HOST:PORT` (a raw
//! TCP connection through std; output `"connect"`: `{"ok": true}` or `{"err": "…"}`).

use serde_json::{Map, Value, json};
use sluice_sdk::{Context, Task, TaskError, params};

pub struct NetProbe;

impl Task for NetProbe {
    type Output = Value;

    fn run(_ctx: &Context) -> Result<Value, TaskError> {
        let mut out = Map::new();
        if let Some(url) = params::get("get") {
            let got = waki::Client::new().get(&url).send().and_then(|r| {
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
