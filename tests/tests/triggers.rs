//! Triggers inside `sluice serve`, on a clock the test moves (`SLUICE_TEST_CLOCK=FILE`):
//! a schedule across a daylight-saving jump, exactly once across a restart, pause and
//! resume, catch-up after downtime, a webhook's signature, replay and idempotency, file
//! arrival in a local directory, and `sluice triggers` on the command line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{Server, Sluice};

/// 2026-03-28T12:00:00Z
const T0: u64 = 1_774_699_200_000;
/// 2026-03-29T01:00:00Z: Amsterdam jumps from 02:00 CET to 03:00 CEST, so 02:30 does not
/// exist that night and the schedule's `shift` fires at the jump.
const JUMP: u64 = 1_774_746_000_000;
const DAY: u64 = 86_400_000;
/// 00:30 UTC is 02:30 in Amsterdam in summer time.
const NIGHTLY_CEST: u64 = JUMP + DAY - 30 * 60_000;

const WAIT: Duration = Duration::from_secs(60);

/// The time the server's trigger engine sees.
struct Clock(PathBuf);

impl Clock {
    fn new(s: &Sluice, at: u64) -> Clock {
        let c = Clock(s.dir.path().join("clock"));
        c.set(at);
        c
    }

    fn set(&self, at: u64) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, at.to_string()).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }

    /// The server's environment: the clock, and who it runs as (reads the webhook's secret).
    fn env(&self) -> [(&'static str, &str); 2] {
        [("SLUICE_TEST_CLOCK", self.0.to_str().unwrap()), ("SLUICE_PRINCIPAL", "ops")]
    }
}

fn start(s: &Sluice, bundle: &std::path::Path, clock: &Clock, job: &str) -> Server {
    let server = s.serve_env(&[bundle.to_str().unwrap()], &clock.env());
    // the engine has seen the trigger once `triggers list` shows it
    let deadline = Instant::now() + WAIT;
    while !list(s).iter().any(|t| t["job"].as_str().is_some_and(|j| j.ends_with(job))) {
        assert!(Instant::now() < deadline, "the trigger of {job} never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn list(s: &Sluice) -> Vec<Value> {
    let out = s.run(&["triggers", "list", "--json"]);
    if out.code != 0 {
        return vec![];
    }
    out.json()["triggers"].as_array().cloned().unwrap_or_default()
}

fn status(s: &Sluice, job: &str) -> Value {
    list(s).into_iter().find(|t| t["job"].as_str().is_some_and(|j| j.ends_with(job))).expect("trigger listed")
}

/// The runs of `job_id`, newest first.
fn runs(server: &Server, token: &str, job_id: u64) -> Vec<u64> {
    let (status, v) = server.get(Some(token), &format!("/api/2.2/jobs/runs/list?job_id={job_id}&limit=25"));
    assert_eq!(status, 200, "{v}");
    v["runs"].as_array().map(|r| r.iter().filter_map(|x| x["run_id"].as_u64()).collect()).unwrap_or_default()
}

fn wait_runs(server: &Server, token: &str, job_id: u64, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = runs(server, token, job_id);
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "job {job_id} has {} runs, never {n}", r.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `params` the probe task of `run` saw.
fn params(server: &Server, token: &str, run: u64) -> Value {
    let done = server.wait_terminal(token, run);
    assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
    let task = done["tasks"][0]["run_id"].as_u64().unwrap();
    let (_, out) = server.get(Some(token), &format!("/api/2.2/jobs/runs/get-output?run_id={task}"));
    let value: Value = serde_json::from_str(out["notebook_output"]["result"].as_str().unwrap()).unwrap();
    value["params"].clone()
}

const SCHEDULED: &str = "[bundle]\nname = \"trig\"\n[components]\nprobe = \"{guest:probe}\"\n\
[jobs.nightly]\nschedule = { cron = \"0 30 2 * * ?\", timezone = \"Europe/Amsterdam\" }\n\
[[jobs.nightly.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { at = \"{{ trigger.time }}\" }\n";

#[test]
fn a_schedule_fires_each_tick_once_pauses_and_catches_up_on_the_injected_clock() {
    let s = Sluice::new();
    let dir = s.bundle("trig", SCHEDULED);
    let clock = Clock::new(&s, T0);
    let server = start(&s, &dir, &clock, "nightly");
    let token = s.token("alice", "default", None);
    let job = server.job_id(&token, "nightly");
    assert!(runs(&server, &token, job).is_empty());

    // the night of the jump: 02:30 does not exist; the default `shift` fires at 03:00 CEST
    clock.set(JUMP + 30_000);
    let first = wait_runs(&server, &token, job, 1);
    assert_eq!(params(&server, &token, first[0])["at"], "2026-03-29T01:00:00.000Z");
    let st = status(&s, "nightly");
    assert_eq!((st["fired"].as_u64(), st["next"].as_u64()), (Some(1), Some(NIGHTLY_CEST)), "{st}");

    // a restart at the same moment fires nothing again
    assert_eq!(server.terminate(), 0);
    let server = start(&s, &dir, &clock, "nightly");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&server, &token, job).len(), 1, "the tick fired once, across a restart");

    // paused: the next tick fires nothing, and resuming does not catch it up
    s.run(&["triggers", "pause", "trig.nightly"]).assert_exit(0);
    clock.set(NIGHTLY_CEST + 30_000);
    std::thread::sleep(Duration::from_millis(1500));
    s.run(&["triggers", "resume", "nightly"]).assert_exit(0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs(&server, &token, job).len(), 1, "a paused trigger fires nothing");
    let st = status(&s, "nightly");
    assert_eq!((st["paused"].as_bool(), st["skipped"].as_u64()), (Some(false), Some(1)), "{st}");
    let (_, metrics) = server.get(None, "/metrics");
    let text = metrics["raw"].as_str().unwrap_or_default();
    assert!(text.contains("sluice_trigger_firings_total{kind=\"schedule\",outcome=\"skipped\"} 1"), "{text}");

    clock.set(NIGHTLY_CEST + DAY + 30_000);
    let second = wait_runs(&server, &token, job, 2);
    assert_eq!(params(&server, &token, second[0])["at"], "2026-03-31T00:30:00.000Z");

    // down for two nights and back a minute after the third's tick: the window (1 h)
    // holds only the third; the two before are missed, recorded and counted
    assert_eq!(server.terminate(), 0);
    clock.set(NIGHTLY_CEST + 4 * DAY + 60_000);
    let server = start(&s, &dir, &clock, "nightly");
    let third = wait_runs(&server, &token, job, 3);
    assert_eq!(params(&server, &token, third[0])["at"], "2026-04-03T00:30:00.000Z");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs(&server, &token, job).len(), 3, "catching up never fires the missed ticks");
    assert_eq!(status(&s, "nightly")["missed"].as_u64(), Some(2));

    // by hand, with the same payload shape
    let fired = s.run(&["triggers", "fire", "nightly"]);
    fired.assert_exit(0);
    assert!(fired.stdout.starts_with("run "), "{}", fired.stdout);
    wait_runs(&server, &token, job, 4);
    let missing = s.run(&["triggers", "fire", "nope"]);
    missing.assert_exit(2);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

const HOOKED: &str = "[bundle]\nname = \"hk\"\n[components]\nprobe = \"{guest:probe}\"\n\
[jobs.hook]\ntrigger = { webhook = { secret = \"hooks/key\" } }\nmax_concurrent_runs = 10\n\
[[jobs.hook.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { day = \"{{ trigger.payload.day }}\" }\n";

fn hook(server: &Server, job: u64, body: &[u8], ts: u64, secret: &[u8], idem: Option<&str>) -> (u16, Value) {
    let sig = sluice::triggers::webhook::sign(secret, ts, body);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent
        .post(format!("{}/api/sluice/v1/hooks/{job}", server.base))
        .header("Content-Type", "application/json")
        .header("X-Sluice-Timestamp", &ts.to_string())
        .header("X-Sluice-Signature", &sig);
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn a_webhook_starts_a_run_only_when_signed_fresh_and_new() {
    let s = Sluice::new();
    let ops = [("SLUICE_PRINCIPAL", "ops")];
    s.run_with(&["secrets", "scopes", "create", "hooks"], &ops, None).assert_exit(0);
    s.run_with(&["secrets", "put", "hooks", "key"], &ops, Some(b"hook-secret")).assert_exit(0);
    let dir = s.bundle("hk", HOOKED);
    let clock = Clock::new(&s, T0);
    let server = start(&s, &dir, &clock, "hook");
    let token = s.token("alice", "default", None);
    let job = server.job_id(&token, "hook");
    let ts = T0 / 1000;
    let body = br#"{"day": "2027-01-15"}"#;

    let (status, v) = hook(&server, job, body, ts, b"wrong", None);
    assert_eq!((status, v["error_code"].as_str()), (401, Some("UNAUTHENTICATED")), "{v}");
    let (status, _) = hook(&server, job, body, ts - 301, b"hook-secret", None);
    assert_eq!(status, 401, "a timestamp over five minutes old is refused");
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let (status, _) = hook(&server, job, big.as_bytes(), ts, b"hook-secret", None);
    assert_eq!(status, 413);
    assert!(runs(&server, &token, job).is_empty(), "nothing started");

    let (status, v) = hook(&server, job, body, ts, b"hook-secret", None);
    assert_eq!(status, 201, "{v}");
    let run = v["run_id"].as_u64().unwrap();
    assert_eq!(params(&server, &token, run)["day"], "2027-01-15");
    let (status, v) = hook(&server, job, body, ts, b"hook-secret", None);
    assert_eq!((status, v["error_code"].as_str()), (400, Some("INVALID_STATE")), "a replay is refused: {v}");

    let (status, v) = hook(&server, job, body, ts + 1, b"hook-secret", Some("order-17"));
    assert_eq!(status, 201, "{v}");
    let (status, again) = hook(&server, job, body, ts + 2, b"hook-secret", Some("order-17"));
    assert_eq!((status, &again["run_id"], again["existing"].as_bool()), (200, &v["run_id"], Some(true)));
    assert_eq!(runs(&server, &token, job).len(), 2);

    // by hand, with a payload of the same shape; paused, nothing fires
    let fired = s.run(&["triggers", "fire", "hook", "--payload", r#"{"day": "by-hand"}"#]);
    fired.assert_exit(0);
    let by_hand: u64 = fired.stdout.trim().trim_start_matches("run ").parse().unwrap();
    assert_eq!(params(&server, &token, by_hand)["day"], "by-hand");
    s.run(&["triggers", "pause", "hook"]).assert_exit(0);
    let (status, v) = hook(&server, job, body, ts + 3, b"hook-secret", None);
    assert_eq!((status, v["error_code"].as_str()), (400, Some("INVALID_STATE")), "{v}");
    assert_eq!(runs(&server, &token, job).len(), 3);
}

#[test]
fn new_files_start_one_run_once_the_location_is_quiet() {
    let s = Sluice::new();
    let landing = s.dir.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let bundle = format!(
        "[bundle]\nname = \"fa\"\n[components]\nprobe = \"{{guest:probe}}\"\n\
         [jobs.landing]\ntrigger = {{ file_arrival = {{ url = \"{}\", wait_after_last_change = \"30s\", min_time_between_triggers = \"60s\" }} }}\n\
         [[jobs.landing.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = {{ files = \"{{{{ trigger.files }}}}\" }}\n",
        landing.display()
    );
    let dir = s.bundle("fa", &bundle);
    let clock = Clock::new(&s, T0);
    let server = start(&s, &dir, &clock, "landing");
    let token = s.token("alice", "default", None);
    let job = server.job_id(&token, "landing");
    std::fs::write(landing.join("a.csv"), "1,2\n").unwrap();
    std::fs::write(landing.join("b.csv"), "3\n").unwrap();
    clock.set(T0 + 10_000);
    std::thread::sleep(Duration::from_millis(500));
    clock.set(T0 + 25_000);
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&server, &token, job).is_empty(), "not quiet for 30 s yet");
    clock.set(T0 + 45_000);
    let first = wait_runs(&server, &token, job, 1);
    let files: Value = serde_json::from_str(params(&server, &token, first[0])["files"].as_str().unwrap()).unwrap();
    let paths: Vec<&str> = files.as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["a.csv", "b.csv"]);
    assert_eq!(files[0]["size"], 4);
    // nothing new: nothing more, also after a restart
    clock.set(T0 + 200_000);
    assert_eq!(server.terminate(), 0);
    let server = start(&s, &dir, &clock, "landing");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(runs(&server, &token, job).len(), 1, "consumed files never start a run again");
}
