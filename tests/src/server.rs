//! `sluice serve` in the background, and an HTTP client for its API.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Sluice, sluice_bin};

/// How long a test waits for the server to listen, or a run to end.
const WAIT: Duration = Duration::from_secs(120);

/// A `sluice serve` process with its HTTP address.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    lines: std::sync::Mutex<Receiver<String>>,
    pub seen: Vec<String>,
    agent: ureq::Agent,
}

impl Sluice {
    /// Start `sluice serve ARGS --listen 127.0.0.1:0 --state <state>` and wait until it listens.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_env(args, &[])
    }

    /// [`Sluice::serve`] with `env` set (e.g. `SLUICE_TEST_CLOCK`).
    pub fn serve_env(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(sluice_bin())
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--state"])
            .arg(self.state())
            .env_remove("SLUICE_STATE")
            .env_remove("SLUICE_WORKSPACE")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sluice serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut server =
            Server { child, base: String::new(), lines: std::sync::Mutex::new(lines), seen: Vec::new(), agent };
        let line = server.wait_for("listening on http://");
        server.base = line.split("listening on ").nth(1).expect("address").trim().to_string();
        server
    }

    /// `sluice tokens create --principal P --workspace W [--expires E]`: the token.
    pub fn token(&self, principal: &str, workspace: &str, expires: Option<&str>) -> String {
        let mut args = vec!["tokens", "create", "--principal", principal, "--workspace", workspace];
        if let Some(e) = expires {
            args.extend(["--expires", e]);
        }
        let out = self.run(&args);
        out.assert_exit(0);
        out.stdout.trim().to_string()
    }
}

impl Server {
    /// Wait for a stderr line containing `needle`; the line.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let next = self.lines.lock().expect("lines").recv_timeout(Duration::from_millis(100));
            match next {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("`{needle}` never appeared on the server's stderr; saw:\n{}", self.seen.join("\n"));
    }

    fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut response = response.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("response body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, value)
    }

    /// `GET path` (with `Authorization: Bearer token` if given).
    pub fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Server::answer(req.call())
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(token, path, body.to_string().as_bytes())
    }

    /// `POST path` with `body` as it is (Content-Type: application/json).
    pub fn post_raw(&self, token: Option<&str>, path: &str, body: &[u8]) -> (u16, Value) {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Server::answer(req.send(body))
    }

    /// `run-now` of `job_id` with `params`; the run id.
    pub fn run_now(&self, token: &str, job_id: u64, params: Value, idempotency: Option<&str>) -> u64 {
        let mut body = json!({ "job_id": job_id, "job_parameters": params });
        if let Some(t) = idempotency {
            body["idempotency_token"] = json!(t);
        }
        let (status, v) = self.post(Some(token), "/api/2.2/jobs/run-now", &body);
        assert_eq!(status, 200, "{v}");
        v["run_id"].as_u64().expect("run_id")
    }

    /// The id of the job named `name` (jobs/list).
    pub fn job_id(&self, token: &str, name: &str) -> u64 {
        let (status, v) = self.get(Some(token), "/api/2.2/jobs/list?limit=100");
        assert_eq!(status, 200, "{v}");
        v["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["settings"]["name"] == name))
            .and_then(|j| j["job_id"].as_u64())
            .unwrap_or_else(|| panic!("no job {name} in {v:#}"))
    }

    /// `runs/get` of `run`.
    pub fn run(&self, token: &str, run: u64) -> Value {
        let (status, v) = self.get(Some(token), &format!("/api/2.2/jobs/runs/get?run_id={run}"));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Poll `runs/get` until the run is TERMINATED or SKIPPED; the run.
    pub fn wait_terminal(&self, token: &str, run: u64) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.run(token, run);
            let life = v["state"]["life_cycle_state"].as_str().unwrap_or("");
            if life == "TERMINATED" || life == "SKIPPED" {
                return v;
            }
            assert!(Instant::now() < deadline, "run {run} never ended: {v:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll `runs/get` until `pred` holds for the run.
    pub fn wait_until(&self, token: &str, run: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.run(token, run);
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "run {run} never became {what}: {v:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM and wait for the process; its exit code.
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the server and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
