//! Notifications end to end: the real binary delivering to a real webhook receiver (an
//! HTTP server on 127.0.0.1 in this test) and a real SMTP server (Python's `aiosmtpd`
//! from the project's venv, `scripts/setup`), retried while the receiver is down, never
//! carrying a secret, quiet for canceled runs when asked, warning about long runs.

use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{Out, Sluice, repo};

/// The task's secret, the webhook's HMAC key and the SMTP password: none may be seen.
const TASK_SECRET: &str = "pA55/w0rd+task?e2e";
const HOOK_KEY: &str = "hmac-key-9f8e7d";
const SMTP_PASSWORD: &str = "smtp-pw-5c4b3a";
/// How long a test waits for a delivery.
const WAIT: Duration = Duration::from_secs(60);

/// One request a receiver got: its head (request line and headers) and its body.
#[derive(Clone, Debug)]
struct Got {
    head: String,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

/// A webhook receiver: answers every POST 200 and keeps it.
struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Hook {
    fn new() -> Hook {
        Hook::on(TcpListener::bind("127.0.0.1:0").expect("bind"))
    }

    fn on(listener: TcpListener) -> Hook {
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some(request) = read_request(&mut stream) {
                    seen.lock().expect("lock").push(request);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Hook { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }

    /// The generic payloads received, by `event`.
    fn events(&self) -> Vec<Value> {
        self.got().iter().filter(|g| g.head.starts_with("POST /generic")).map(Got::json).collect()
    }

    /// Wait until `count` requests came.
    fn wait_for(&self, count: usize) -> Vec<Got> {
        wait_until(&format!("{count} webhook requests"), || self.got().len() >= count);
        self.got()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Got> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    Some(Got { head, body: String::from_utf8_lossy(&data[head_end..]).into_owned() })
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free port on 127.0.0.1 (nothing listens on it when this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `aiosmtpd` on 127.0.0.1, requiring AUTH with `password`; each mail a file in `dir`.
struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
}

const SMTP_SERVER: &str = r#"
import os, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, out, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(out))
        path = os.path.join(out, "%04d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.password.decode() == password
    return AuthResult(success=ok)
c = Controller(Keep(), hostname="127.0.0.1", port=port, authenticator=check,
               auth_required=True, auth_require_tls=False)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let python = repo().join("target/pyenv/bin/python");
        assert!(python.exists(), "{} is missing: run scripts/setup (it installs aiosmtpd)", python.display());
        std::fs::create_dir_all(dir).expect("mail dir");
        let port = free_port();
        let mut child = Command::new(python)
            .args(["-W", "ignore", "-c", SMTP_SERVER, &port.to_string(), dir.to_str().expect("utf-8"), SMTP_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting aiosmtpd");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("aiosmtpd");
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtp { child, port, dir: dir.to_path_buf() }
    }

    fn mails(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("mail dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| std::fs::read_to_string(p).expect("mail")).collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice ARGS` as alice.
fn alice(s: &Sluice, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
    let mut all = vec![("SLUICE_PRINCIPAL", "alice")];
    all.extend_from_slice(env);
    s.run_with(args, &all, stdin)
}

fn put_secret(s: &Sluice, scope: &str, key: &str, value: &str) {
    let _ = alice(s, &["secrets", "scopes", "create", scope], &[], None);
    alice(s, &["secrets", "put", scope, key], &[], Some(value.as_bytes())).assert_exit(0);
}

/// Every form of `value` a leak could take (as the secrets tests check).
fn forms(value: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let hex: String = value.bytes().map(|c| format!("{c:02x}")).collect();
    vec![value.to_string(), STANDARD.encode(value), URL_SAFE_NO_PAD.encode(value), hex.to_uppercase(), hex]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [TASK_SECRET, HOOK_KEY, SMTP_PASSWORD] {
        for form in forms(secret) {
            assert!(!text.contains(&form), "{what} holds a secret ({form}):\n{text}");
        }
    }
}

fn run_id(out: &Out) -> u64 {
    out.json()["run_id"].as_u64().unwrap_or_else(|| panic!("no run id: {}", out.stdout))
}

#[test]
fn every_notification_reaches_the_webhook_and_the_mail_server_signed_linked_and_without_secrets() {
    let s = Sluice::new();
    let hook = Hook::new();
    let smtp = Smtp::start(&s.dir.path().join("mail"));
    put_secret(&s, "db", "pw", TASK_SECRET);
    put_secret(&s, "notify", "hook", HOOK_KEY);
    put_secret(&s, "notify", "smtp", SMTP_PASSWORD);
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"notify/hook\"\n\
         [destinations.slack]\nkind = \"webhook\"\nurl = \"{}\"\nformat = \"slack\"\n\
         [destinations.teams]\nkind = \"webhook\"\nurl = \"{}\"\nformat = \"teams\"\n\
         [destinations.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"sluice@example.com\"\n\
         to = [\"ops@example.com\"]\nusername = \"sluice\"\npassword = \"notify/smtp\"\n\
         [jobs.j]\nnotifications = {{ on_start = [\"hook\", \"mail\"], on_success = [\"hook\"], \
         on_failure = [\"hook\", \"slack\", \"teams\", \"mail\"] }}\n\
         [[jobs.j.tasks]]\nkey = \"fine\"\ncomponent = \"probe\"\nnotifications = {{ on_success = [\"hook\"] }}\n\
         [[jobs.j.tasks]]\nkey = \"leak\"\ncomponent = \"probe\"\nsecrets = [\"db/pw\"]\n\
         params = {{ secret = \"db/pw\", echo_secret = \"1\", fail = \"permanent\" }}\n",
        hook.url("/generic"),
        hook.url("/slack"),
        hook.url("/teams"),
        smtp.port
    );
    let dir = s.bundle("b", &text);
    let env = [("SLUICE_DASHBOARD_URL", "http://dash.example/")];
    let out = alice(&s, &["run", dir.to_str().expect("utf-8"), "--json"], &env, None);
    assert_eq!(out.code, 1, "the run fails (not the notifications): {}", out.stderr);
    let run = run_id(&out);

    // `sluice run` delivered before it exited: start, the task's success, the failure ×3
    let got = hook.wait_for(5);
    assert_eq!(got.len(), 5, "{got:#?}");
    let events = hook.events();
    let kinds: Vec<(&str, Option<&str>)> =
        events.iter().map(|e| (e["event"].as_str().unwrap(), e["task"].as_str())).collect();
    for expected in [("on_start", None), ("on_success", Some("fine")), ("on_failure", None)] {
        assert!(kinds.contains(&expected), "{expected:?} missing from {kinds:?}");
    }
    let failure = events.iter().find(|e| e["event"] == "on_failure").expect("failure");
    assert_eq!((failure["job"].as_str(), failure["run_id"].as_u64()), (Some("j"), Some(run)));
    assert_eq!(failure["state"], "failed");
    assert!(failure["duration_seconds"].as_f64().is_some());
    assert_eq!(failure["url"], format!("http://dash.example/runs/{run}"));
    assert_eq!(failure["failed_tasks"][0]["task"], "leak");
    let error = failure["failed_tasks"][0]["error"].as_str().expect("error");
    assert!(error.contains("[REDACTED]"), "the task's error, redacted: {error}");

    // signed: sha256=HMAC(key, "TIMESTAMP.BODY"), as the receiver recomputes it
    for g in got.iter().filter(|g| g.head.starts_with("POST /generic")) {
        let stamp: u64 = g.header("x-sluice-timestamp").expect("timestamp").parse().expect("number");
        let expected = sluice::notify::sign(HOOK_KEY.as_bytes(), stamp, &g.body);
        assert_eq!(g.header("x-sluice-signature"), Some(expected));
    }
    let slack = got.iter().find(|g| g.head.starts_with("POST /slack")).expect("slack").json();
    assert!(slack["text"].as_str().unwrap().contains("leak") && slack["blocks"].is_array(), "{slack}");
    let teams = got.iter().find(|g| g.head.starts_with("POST /teams")).expect("teams").json();
    assert_eq!(teams["@type"], "MessageCard");

    // the mails: the start and the failure, sent with the password from the secret scope
    wait_until("2 mails", || smtp.mails().len() >= 2);
    let mails = smtp.mails();
    assert!(mails.iter().any(|m| m.contains("Subject: Run") && m.contains("started")), "{mails:#?}");
    assert!(mails.iter().any(|m| m.contains("failed") && m.contains("leak:")), "{mails:#?}");

    for g in &got {
        assert_no_secret("a webhook request", &format!("{}{}", g.head, g.body));
    }
    for mail in &mails {
        assert_no_secret("a mail", mail);
    }

    // runs show: each notification with its delivery state
    let shown = s.show(run);
    let notices = shown["notifications"].as_array().expect("notifications");
    assert_eq!(notices.len(), 7, "{notices:#?}");
    for n in notices {
        assert_eq!((n["state"].as_str(), n["attempts"].as_u64()), (Some("delivered"), Some(1)), "{n}");
    }
    let human = s.run(&["runs", "show", &run.to_string()]);
    assert!(human.stdout.contains("notify    on_failure → mail · delivered · 1 attempt"), "{}", human.stdout);
}

#[test]
fn a_notification_waits_for_a_receiver_that_is_down_and_a_later_owner_delivers_it() {
    let s = Sluice::new();
    let port = free_port();
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/generic\"\n\
         [jobs.j]\nnotifications = {{ on_success = [\"hook\"] }}\ntasks = [{{ key = \"t\", component = \"probe\" }}]\n"
    );
    let dir = s.bundle("b", &text);
    let started = Instant::now();
    let out = s.run(&["run", dir.to_str().expect("utf-8"), "--json"]);
    out.assert_exit(0);
    assert!(started.elapsed() < Duration::from_secs(30), "a dead receiver does not hold the run up");
    let run = run_id(&out);
    let pending = &s.show(run)["notifications"][0];
    assert_eq!(pending["state"], "pending", "{pending}");
    assert!(pending["attempts"].as_u64() >= Some(1), "{pending}");
    assert!(pending["last_error"].as_str().unwrap_or_default().contains("cannot connect"), "{pending}");

    // the receiver comes up; the next owner (any command) delivers what was left pending
    let hook = Hook::on(TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port"));
    let mut shown = Value::Null;
    wait_until("the delivery", || {
        shown = s.show(run)["notifications"][0].clone();
        shown["state"] == "delivered"
    });
    assert!(shown["attempts"].as_u64() >= Some(2), "retried: {shown}");
    let got = hook.wait_for(1);
    assert_eq!(got[0].json()["event"], "on_success");
    assert_eq!(got[0].json()["run_id"], run);
}

#[test]
fn a_serving_owner_retries_with_backoff_until_the_receiver_is_up() {
    let s = Sluice::new();
    let port = free_port();
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/generic\"\n\
         [jobs.j]\nnotifications = {{ on_failure = [\"hook\"] }}\n\
         tasks = [{{ key = \"t\", component = \"probe\", params = {{ fail = \"permanent\" }} }}]\n"
    );
    let dir = s.bundle("b", &text);
    let token = s.token("alice", "default", None);
    let server = s.serve(&[dir.to_str().expect("utf-8")]);
    let job = server.job_id(&token, "j");
    let run = server.run_now(&token, job, serde_json::json!({}), None);
    server.wait_terminal(&token, run);
    let view = |server: &sluice_tests::Server| {
        let (status, view) = server.get(Some(&token), &format!("/api/sluice/v1/runs/{run}"));
        assert_eq!(status, 200, "{view}");
        view["notifications"][0].clone()
    };
    wait_until("a failed attempt", || view(&server)["attempts"].as_u64() >= Some(1));
    assert_eq!(view(&server)["state"], "pending");
    let hook = Hook::on(TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver's port"));
    wait_until("the delivery", || view(&server)["state"] == "delivered");
    let got = hook.wait_for(1);
    let payload = got[0].json();
    assert_eq!((payload["event"].as_str(), payload["state"].as_str()), (Some("on_failure"), Some("failed")));
    assert_eq!(payload["url"], format!("{}/runs/{run}", server.base), "linked to the server");
    server.kill();
}

#[test]
fn canceled_runs_are_quiet_when_the_job_says_so() {
    let s = Sluice::new();
    let hook = Hook::new();
    let job = |name: &str, settings: &str| {
        format!(
            "[jobs.{name}]\nnotifications = {{ on_start = [\"hook\"], on_failure = [\"hook\"] }}\n{settings}\
             tasks = [{{ key = \"nap\", component = \"probe\", params = {{ sleep_ms = \"60000\" }} }}]\n"
        )
    };
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\n{}{}",
        hook.url("/generic"),
        job("quiet", "notification_settings = { no_alert_for_canceled_runs = true }\n"),
        job("loud", "")
    );
    let dir = s.bundle("b", &text);
    for (n, name) in ["quiet", "loud"].into_iter().enumerate() {
        let running = s.spawn(&["run", dir.to_str().expect("utf-8"), "--job", name]);
        hook.wait_for(n + 1); // its on_start: it runs
        s.run(&["runs", "cancel", &(n + 1).to_string()]).assert_exit(0);
        assert_eq!(running.wait(), 1);
    }
    let seen: Vec<(String, String)> = hook
        .events()
        .iter()
        .map(|e| (e["job"].as_str().unwrap().to_string(), e["event"].as_str().unwrap().to_string()))
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(seen, [pair("quiet", "on_start"), pair("loud", "on_start"), pair("loud", "on_failure")]);
    assert_eq!(hook.events()[2]["state"], "canceled");
}

#[test]
fn a_run_longer_than_its_health_rule_warns_while_it_runs() {
    let s = Sluice::new();
    let hook = Hook::new();
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\n\
         [jobs.slow]\nnotifications = {{ on_duration_warning_threshold_exceeded = [\"hook\"] }}\n\
         health = {{ rules = [{{ metric = \"RUN_DURATION_SECONDS\", op = \"GREATER_THAN\", value = 1 }}] }}\n\
         tasks = [{{ key = \"nap\", component = \"probe\", params = {{ sleep_ms = \"3000\" }} }}]\n\
         [jobs.quick]\nnotifications = {{ on_duration_warning_threshold_exceeded = [\"hook\"] }}\n\
         health = {{ rules = [{{ metric = \"RUN_DURATION_SECONDS\", op = \"GREATER_THAN\", value = 600 }}] }}\n\
         tasks = [{{ key = \"nap\", component = \"probe\" }}]\n",
        hook.url("/generic")
    );
    let dir = s.bundle("b", &text);
    let slow = s.run(&["run", dir.to_str().expect("utf-8"), "--job", "slow", "--json"]);
    slow.assert_exit(0);
    s.run(&["run", dir.to_str().expect("utf-8"), "--job", "quick", "--json"]).assert_exit(0);
    let events = hook.events();
    assert_eq!(events.len(), 1, "only the slow run warns: {events:#?}");
    let warning = &events[0];
    assert_eq!(
        (warning["event"].as_str(), warning["job"].as_str()),
        (Some("on_duration_warning_threshold_exceeded"), Some("slow"))
    );
    assert_eq!(warning["state"], "running", "sent while the run ran");
    let finished = slow.json()["finished_at"].as_u64().expect("finished");
    assert!(warning["at"].as_u64().expect("at") < finished, "before the run ended");
}

#[test]
fn an_unknown_destination_is_refused_at_its_line_and_nothing_runs() {
    let s = Sluice::new();
    let dir = s.bundle(
        "b",
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{guest:probe}\"\n\
         [destinations.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         [jobs.j]\ntasks = [{ key = \"t\", component = \"probe\" }]\nnotifications = { on_failure = [\"opps\"] }\n",
    );
    let out = s.run(&["run", dir.to_str().expect("utf-8")]);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("sluice.toml:10:") && out.stderr.contains("unknown destination `opps`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `ops`"), "{}", out.stderr);
    let listed = s.run(&["runs", "list", "--json"]);
    if listed.code == 0 {
        assert_eq!(listed.json(), serde_json::json!([]), "no run was created");
    }
}

/// Databricks' `alert_on_last_attempt`: a task's retries announce no start, and only the
/// failure no retry follows is sent; a task without the flag hears of every attempt.
#[test]
fn alert_on_last_attempt_sends_only_the_first_start_and_the_last_failure() {
    let s = Sluice::new();
    let hook = Hook::new();
    let text = format!(
        "[bundle]\nname = \"n\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\n\
         [jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"flagged\"\ncomponent = \"probe\"\nparams = {{ fail = \"transient\" }}\n\
         retries = {{ max = 1, initial = \"10ms\" }}\n\
         notifications = {{ on_start = [\"hook\"], on_failure = [\"hook\"] }}\n\
         notification_settings = {{ alert_on_last_attempt = true }}\n\
         [[jobs.j.tasks]]\nkey = \"plain\"\ncomponent = \"probe\"\nparams = {{ fail = \"transient\" }}\n\
         retries = {{ max = 1, initial = \"10ms\" }}\n\
         notifications = {{ on_start = [\"hook\"], on_failure = [\"hook\"] }}\n",
        hook.url("/generic"),
    );
    let dir = s.bundle("b", &text);
    let out = alice(&s, &["run", dir.to_str().expect("utf-8"), "--json"], &[], None);
    assert_eq!(out.code, 1, "both tasks fail twice: {}", out.stderr);
    hook.wait_for(6);
    std::thread::sleep(Duration::from_millis(500));
    let mut seen: Vec<(String, String, u64)> = hook
        .events()
        .iter()
        .map(|e| {
            let task = e["task"].as_str().unwrap_or_default().to_string();
            (task, e["event"].as_str().unwrap_or_default().to_string(), e["attempt"].as_u64().unwrap_or(99))
        })
        .collect();
    seen.sort();
    let expected = [
        ("flagged", "on_failure", 1),
        ("flagged", "on_start", 0),
        ("plain", "on_failure", 0),
        ("plain", "on_failure", 1),
        ("plain", "on_start", 0),
        ("plain", "on_start", 1),
    ];
    assert_eq!(seen, expected.map(|(t, e, a)| (t.to_string(), e.to_string(), a)), "{seen:?}");

    // the flag belongs to a task: on a job it is refused, naming it
    let bad = text.replace("[jobs.j]\n", "[jobs.j]\nnotification_settings = { alert_on_last_attempt = true }\n");
    let dir = s.bundle("bad", &bad);
    let out = alice(&s, &["validate", dir.to_str().expect("utf-8")], &[], None);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("alert_on_last_attempt") && out.stderr.contains("sluice.toml:"), "{}", out.stderr);
}
