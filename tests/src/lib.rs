//! The end-to-end test harness: a new test is a few lines.
//!
//! It finds the built `sluice` binary (next to the test executable), builds the
//! task components (`tasks/`) and the hostile/probing test guests
//! (`tests/guests/`) once per test binary, and gives each test its own state
//! directory. Tests drive the real binary, real components and a real sled store.
//!
//! ```no_run
//! let s = sluice_tests::Sluice::new();
//! let out = s.run(&["task", "run", sluice_tests::task("fib").to_str().unwrap(), "--param", "n=10"]);
//! out.assert_exit(0);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod browser;
pub mod faultproxy;
pub mod objstores;
mod server;
pub use server::Server;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `sluice` binary of the same profile as this test executable.
pub fn sluice_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        // target/<profile>/deps/<test> -> target/<profile>/sluice
        let bin = exe.parent().and_then(Path::parent).expect("profile dir").join("sluice");
        assert!(
            bin.is_file(),
            "{} is missing: build it first with `cargo build --release -p sluice` (scripts/test does)",
            bin.display()
        );
        bin
    })
    .clone()
}

fn build_wasm_workspace(dir: &str) {
    let manifest = repo().join(dir).join("Cargo.toml");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(repo().join(dir).join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building {dir} for wasm32-wasip2 failed");
}

fn wasm(dir: &str, name: &str, once: &'static OnceLock<()>) -> PathBuf {
    once.get_or_init(|| build_wasm_workspace(dir));
    let path = repo().join(dir).join("target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A task component from `tasks/` (built once per test binary).
pub fn task(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    wasm("tasks", name, &BUILT)
}

/// A test guest from `tests/guests/` (built once per test binary).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    wasm("tests/guests", name, &BUILT)
}

/// How long one `sluice` command of a test may take before the harness kills it and fails
/// the test naming the command: the slowest command of the suite (500 sandboxes, a
/// for_each of thousands) takes well under a minute on CI's 2 cores, so a command past
/// this hangs, and the suite should say which instead of waiting for CI's own limit.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Spawn `cmd` (stdout and stderr captured, `stdin` fed to it) and wait for it, killing it
/// and failing the test, naming the command, if it takes longer than `timeout`.
pub fn output_within(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Out {
    use std::io::{Read, Write as _};
    let input = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(input).stdout(Stdio::piped()).stderr(Stdio::piped());
    let shown = shown(cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning `{shown}`: {e}"));
    let (input, bytes) = (child.stdin.take(), stdin.map(<[u8]>::to_vec));
    let feeder = std::thread::spawn(move || {
        if let (Some(mut input), Some(bytes)) = (input, bytes) {
            let _ = input.write_all(&bytes);
        }
    });
    let reader = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for sluice") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("`{shown}` took longer than {timeout:?} and was killed\n--- stderr\n{err}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Out::from(Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() })
}

/// `cmd` as a shell line, for messages.
fn shown(cmd: &Command) -> String {
    let args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
    std::iter::once(cmd.get_program().to_string_lossy().into_owned()).chain(args).collect::<Vec<_>>().join(" ")
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n--- stderr\n{}", self.stdout, self.stderr))
    }
}

/// One test's sluice: its own state directory and scratch space.
pub struct Sluice {
    pub dir: tempfile::TempDir,
}

impl Default for Sluice {
    fn default() -> Self {
        Self::new()
    }
}

impl Sluice {
    pub fn new() -> Sluice {
        Sluice { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `sluice ARGS --state <this test's state>`, with no `SLUICE_*` variable of the
    /// environment the tests run in.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(args).arg("--state").arg(self.state());
        clear_sluice_env(&mut cmd);
        cmd
    }

    /// Run `sluice ARGS --state <this test's state>`.
    pub fn run(&self, args: &[&str]) -> Out {
        output_within(&mut self.command(args), None, COMMAND_TIMEOUT)
    }

    /// Run `sluice ARGS --state <this test's state>` with `env` set (and every other
    /// `SLUICE_*` variable cleared) and `stdin` fed to it.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        output_within(&mut cmd, Some(stdin.unwrap_or_default()), COMMAND_TIMEOUT)
    }

    /// Run `sluice ARGS` in `dir` with no `--state` (and no `SLUICE_*` variable but `env`):
    /// the binary finds its state directory itself.
    pub fn run_in(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(args).current_dir(dir);
        clear_sluice_env(&mut cmd);
        cmd.envs(env.iter().copied());
        output_within(&mut cmd, None, COMMAND_TIMEOUT)
    }

    /// `sluice run DIR --json EXTRA…`: its exit code and the run's record.
    pub fn run_json(&self, dir: &Path, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["run", dir.to_str().expect("utf-8 path"), "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json = out.json();
        (out.code, json)
    }

    /// `sluice runs show RUN --json` (which must succeed).
    pub fn show(&self, run: u64) -> Value {
        let out = self.run(&["runs", "show", &run.to_string(), "--json"]);
        out.assert_exit(0);
        out.json()
    }

    /// `sluice task run COMPONENT --json PARAMS...`, returning the run's record.
    pub fn task_run(&self, component: &Path, extra: &[&str]) -> (Out, Value) {
        let mut args = vec!["task", "run", component.to_str().expect("utf-8 path"), "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json = out.json();
        (out, json)
    }

    /// Write a bundle (`sluice.toml` with `text`) into a fresh directory and return it.
    /// `{guest:NAME}` and `{task:NAME}` in `text` become absolute component paths.
    pub fn bundle(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("bundle dir");
        std::fs::write(dir.join("sluice.toml"), expand(text)).expect("write bundle");
        dir
    }
}

/// Remove every `SLUICE_*` variable from `cmd`'s environment, and point the compiled-component
/// cache at the tests' own directory (never the user's).
fn clear_sluice_env(cmd: &mut Command) {
    for (var, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("SLUICE_")) {
        cmd.env_remove(var);
    }
    cmd.env("SLUICE_CACHE_DIR", tests_cache_dir());
}

/// The compiled-component cache every test's `sluice` shares (`SLUICE_CACHE_DIR`): under the
/// build directory, so tests never touch the user's cache but still compile each component once.
pub fn tests_cache_dir() -> PathBuf {
    repo().join("target").join("sluice-test-cache")
}

fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let end = after.find('}');
        let inner = end.map(|e| &after[1..e]);
        match inner.and_then(|i| i.split_once(':')) {
            Some(("guest", n)) => out.push_str(guest(n).to_str().expect("utf-8")),
            Some(("task", n)) => out.push_str(task(n).to_str().expect("utf-8")),
            _ => {
                out.push('{');
                rest = &after[1..];
                continue;
            }
        }
        rest = &after[end.expect("closing brace") + 1..];
    }
    out.push_str(rest);
    out
}

/// `sluice run examples/NAME --json EXTRA…` (exit 0 asserted): the finished run's record.
pub fn run_example(s: &Sluice, name: &str, extra: &[&str]) -> Value {
    let dir = repo().join("examples").join(name);
    let mut args = vec!["run", dir.to_str().expect("utf-8 path"), "--json"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    out.assert_exit(0);
    out.json()
}

/// The run's task record (`tasks[]` entry) with key `key`.
pub fn task_of<'v>(run: &'v Value, key: &str) -> &'v Value {
    run["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["key"] == key))
        .unwrap_or_else(|| panic!("no task `{key}` in {run:#}"))
}

/// The last attempt of task `key`.
pub fn last_attempt<'v>(run: &'v Value, key: &str) -> &'v Value {
    task_of(run, key)["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .unwrap_or_else(|| panic!("task `{key}` has no attempts"))
}

/// Wait (up to 60 s) until `path` exists: what a task with a rw mount creates to say,
/// outside its sandbox, that it has started (probe's `touch`).
pub fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The results of a task's attempts, in order.
pub fn attempt_results(run: &Value, key: &str) -> Vec<String> {
    let attempts = task_of(run, key)["attempts"].as_array().cloned().unwrap_or_default();
    attempts.iter().map(|a| a["result"].as_str().unwrap_or("running").to_string()).collect()
}

/// A `sluice` process running in the background, its progress (stderr) read line by line.
pub struct Background {
    pub child: std::process::Child,
    /// The command, for messages.
    shown: String,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Sluice {
    /// Start `sluice ARGS --state <state>` in the background.
    pub fn spawn(&self, args: &[&str]) -> Background {
        self.spawn_env(args, &[])
    }

    /// [`Sluice::spawn`] with `env` set.
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Background {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let shown = shown(&cmd);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{shown}`: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background { child, shown, lines: rx, seen: Vec::new() }
    }
}

impl Background {
    /// Wait (up to 60 s) for a progress line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            match self.lines.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("`{needle}` never appeared; saw:\n{}", self.seen.join("\n"));
    }

    /// Every line it has printed so far (read without waiting).
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// SIGKILL the process and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the process to exit; its exit code. Past [`COMMAND_TIMEOUT`] it is killed
    /// and the test fails, naming the command.
    pub fn wait(mut self) -> i32 {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for sluice") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` took longer than {COMMAND_TIMEOUT:?} and was killed; saw:\n{}",
                    self.shown,
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 answering every request with `body`
/// (200 OK), in a background thread, until the test process exits. Returns
/// its port and a counter of requests served.
pub fn http_server(body: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (port, served, _) = http_server_recording(body);
    (port, served)
}

/// [`http_server`] that also keeps every request's head (request line and headers).
pub fn http_server_recording(body: &'static str) -> Served {
    http_server_at(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"), body)
}

/// [`http_server`] listening on `ip` instead of 127.0.0.1.
pub fn http_server_on(
    ip: std::net::IpAddr,
    body: &'static str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (port, served, _) = http_server_at(std::net::TcpListener::bind((ip, 0)).expect("bind"), body);
    (port, served)
}

/// A test HTTP server: its port, a counter of requests served, and every request's head.
pub type Served = (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>, std::sync::Arc<std::sync::Mutex<Vec<String>>>);

fn http_server_at(listener: std::net::TcpListener, body: &'static str) -> Served {
    use std::io::{Read, Write};
    let port = listener.local_addr().expect("addr").port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = served.clone();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1000) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if let Ok(mut s) = seen.lock() {
                s.push(String::from_utf8_lossy(&request).into_owned());
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (port, served, heads)
}
