//! Table-update triggers and named datasets inside `sluice serve`, on a clock the test
//! moves (`SLUICE_TEST_CLOCK=FILE`): producers publish `datasets` from `/out` (a command
//! task writing its stdout there), consumers start on a changed content hash only — never
//! on an identical rewrite — after the quiet period and minimum interval, `ALL_UPDATED`
//! waits for every table, `{{ trigger.tables }}` reaches the run, a restart fires nothing
//! twice, and `sluice datasets show` tells the lineage. Bad input is refused by name.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::{Server, Sluice};

/// 2026-03-28T12:00:00Z
const T0: u64 = 1_774_699_200_000;
const WAIT: Duration = Duration::from_secs(60);
/// Long enough for the engine (which looks every second, and when a run ends) to act.
const SETTLE: Duration = Duration::from_millis(1500);

const BUNDLE: &str = "[bundle]\nname = \"tb\"\n[components]\ncmd = \"{guest:cmd}\"\nprobe = \"{guest:probe}\"\n\
[jobs.orders]\nparameters = { v = \"1\" }\n\
[[jobs.orders.tasks]]\nkey = \"write\"\nkind = \"command\"\ncomponent = \"cmd\"\nargs = [\"{{ job.parameters.v }}\"]\n\
stdout = \"file:orders.json\"\ndatasets = { \"sales.orders\" = \"orders.json\" }\n\
[jobs.customers]\nparameters = { v = \"1\" }\n\
[[jobs.customers.tasks]]\nkey = \"write\"\nkind = \"command\"\ncomponent = \"cmd\"\nargs = [\"{{ job.parameters.v }}\"]\n\
stdout = \"file:c/customers.json\"\ndatasets = { \"sales.customers\" = \"c\" }\n\
[jobs.consume]\ntrigger = { table_update = { tables = [\"sales.orders\"], wait_after_last_change = \"30s\", \
min_time_between_triggers = \"60s\" } }\n\
[[jobs.consume.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { tables = \"{{ trigger.tables }}\" }\n\
[jobs.both]\ntrigger = { table_update = { tables = [\"sales.orders\", \"sales.customers\"], condition = \"ALL_UPDATED\" } }\n\
[[jobs.both.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { tables = \"{{ trigger.tables }}\" }\n";

struct Clock(PathBuf);

impl Clock {
    fn set(&self, at: u64) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, at.to_string()).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

fn start(s: &Sluice, bundle: &std::path::Path, clock: &Clock) -> Server {
    let env = [("SLUICE_TEST_CLOCK", clock.0.to_str().unwrap()), ("SLUICE_PRINCIPAL", "ops")];
    let server = s.serve_env(&[bundle.to_str().unwrap()], &env);
    let deadline = Instant::now() + WAIT;
    loop {
        let out = s.run(&["triggers", "list", "--json"]);
        let n = if out.code == 0 { out.json()["triggers"].as_array().map_or(0, Vec::len) } else { 0 };
        if n == 2 {
            return server;
        }
        assert!(Instant::now() < deadline, "the triggers never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Jobs<'a> {
    server: &'a Server,
    token: String,
}

impl Jobs<'_> {
    fn runs(&self, job: &str) -> Vec<u64> {
        let id = self.server.job_id(&self.token, job);
        let (status, v) = self.server.get(Some(&self.token), &format!("/api/2.2/jobs/runs/list?job_id={id}&limit=25"));
        assert_eq!(status, 200, "{v}");
        v["runs"].as_array().map(|r| r.iter().filter_map(|x| x["run_id"].as_u64()).collect()).unwrap_or_default()
    }

    fn wait_runs(&self, job: &str, n: usize) -> Vec<u64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = self.runs(job);
            if r.len() >= n {
                return r;
            }
            assert!(Instant::now() < deadline, "{job} has {} runs, never {n}", r.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run producer `job` with `v` to the end (it succeeds).
    fn produce(&self, job: &str, v: &str) -> u64 {
        let id = self.server.job_id(&self.token, job);
        let run = self.server.run_now(&self.token, id, json!({ "v": v }), None);
        let done = self.server.wait_terminal(&self.token, run);
        assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
        run
    }

    /// What `{{ trigger.tables }}` rendered to in the probe task of `run`.
    fn tables(&self, run: u64) -> Vec<Value> {
        let done = self.server.wait_terminal(&self.token, run);
        assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
        let task = done["tasks"][0]["run_id"].as_u64().unwrap();
        let (_, out) = self.server.get(Some(&self.token), &format!("/api/2.2/jobs/runs/get-output?run_id={task}"));
        let value: Value = serde_json::from_str(out["notebook_output"]["result"].as_str().unwrap()).unwrap();
        serde_json::from_str(value["params"]["tables"].as_str().unwrap()).unwrap()
    }
}

fn names_and_versions(tables: &[Value]) -> Vec<(String, u64)> {
    tables.iter().map(|t| (t["name"].as_str().unwrap().to_string(), t["version"].as_u64().unwrap())).collect()
}

#[test]
fn a_changed_hash_fires_once_an_identical_rewrite_never_and_lineage_is_shown() {
    let s = Sluice::new();
    let dir = s.bundle("tb", BUNDLE);
    let clock = Clock(s.dir.path().join("clock"));
    clock.set(T0);
    let server = start(&s, &dir, &clock);
    let jobs = Jobs { server: &server, token: s.token("alice", "default", None) };

    let first = jobs.produce("orders", "1");
    std::thread::sleep(SETTLE);
    assert!(jobs.runs("consume").is_empty(), "wait_after_last_change (30 s) has not passed");
    assert!(jobs.runs("both").is_empty(), "ALL_UPDATED: sales.customers has no version yet");
    clock.set(T0 + 31_000);
    let consumed = jobs.wait_runs("consume", 1);
    let tables = jobs.tables(consumed[0]);
    assert_eq!(names_and_versions(&tables), [("sales.orders".to_string(), 1)]);
    assert_eq!((tables[0]["run"].as_u64(), tables[0]["task"].as_str()), (Some(first), Some("write")));
    assert_eq!(tables[0]["hash"].as_str().map(str::len), Some(64), "{tables:?}");

    // the same bytes again: no new version, nothing fires
    jobs.produce("orders", "1");
    clock.set(T0 + 200_000);
    std::thread::sleep(SETTLE);
    assert_eq!(jobs.runs("consume").len(), 1, "an identical rewrite never fires");

    // new bytes: a new version, started once quiet for 30 s
    let second = jobs.produce("orders", "2");
    std::thread::sleep(SETTLE);
    assert_eq!(jobs.runs("consume").len(), 1, "not quiet long enough yet");
    clock.set(T0 + 231_000);
    let consumed = jobs.wait_runs("consume", 2);
    let tables = jobs.tables(consumed[0]);
    assert_eq!(names_and_versions(&tables), [("sales.orders".to_string(), 2)]);
    assert_eq!(tables[0]["run"].as_u64(), Some(second));

    // min_time_between_triggers: a third version right after waits for the minute
    jobs.produce("orders", "3");
    clock.set(T0 + 262_000);
    std::thread::sleep(SETTLE);
    assert_eq!(jobs.runs("consume").len(), 2, "60 s have not passed since the last run");
    clock.set(T0 + 292_000);
    jobs.wait_runs("consume", 3);

    // ALL_UPDATED fires once every table has a new version
    assert!(jobs.runs("both").is_empty());
    jobs.produce("customers", "1");
    let both = jobs.wait_runs("both", 1);
    let tables = jobs.tables(both[0]);
    let expected = [("sales.orders".to_string(), 3), ("sales.customers".to_string(), 1)];
    assert_eq!(names_and_versions(&tables), expected);

    // a restart fires nothing twice
    let token = jobs.token.clone();
    drop(jobs);
    assert_eq!(server.terminate(), 0);
    let server = start(&s, &dir, &clock);
    let jobs = Jobs { server: &server, token };
    clock.set(T0 + 900_000);
    std::thread::sleep(SETTLE);
    assert_eq!((jobs.runs("consume").len(), jobs.runs("both").len()), (3, 1), "nothing fired again");

    // lineage: who produced each version, who consumed it
    let out = s.run(&["datasets", "show", "sales.orders", "--json"]);
    out.assert_exit(0);
    let shown = out.json();
    let versions = shown[0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{shown:#}");
    assert_eq!((versions[0]["run"].as_u64(), versions[0]["task"].as_str()), (Some(first), Some("write")));
    assert_eq!(versions[1]["run"].as_u64(), Some(second));
    let consumers = |v: &Value| -> Vec<String> {
        v["consumed_by"].as_array().unwrap().iter().map(|u| u["job"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(consumers(&versions[0]), ["consume"]);
    assert_eq!(consumers(&versions[2]), ["consume", "both"]);
    let text = s.run(&["datasets", "list"]);
    text.assert_exit(0);
    assert!(text.stdout.contains("sales.orders") && text.stdout.contains("sales.customers"), "{}", text.stdout);
    let missing = s.run(&["datasets", "show", "sales.ordrs"]);
    missing.assert_exit(2);
    assert!(missing.stderr.contains("sales.ordrs") && missing.stderr.contains("sales.orders"), "{}", missing.stderr);
}

#[test]
fn bad_datasets_and_triggers_are_refused_by_name() {
    let s = Sluice::new();
    let validate = |name: &str, text: &str| {
        let dir = s.bundle(name, text);
        s.run(&["validate", dir.to_str().unwrap()])
    };
    let unknown = validate("unknown", &BUNDLE.replace("tables = [\"sales.orders\"]", "tables = [\"sales.ordrs\"]"));
    unknown.assert_exit(2);
    for needle in ["consume", "sales.ordrs", "sales.orders", "sluice.toml:"] {
        assert!(unknown.stderr.contains(needle), "{needle}: {}", unknown.stderr);
    }
    let absolute = validate("absolute", &BUNDLE.replace("= \"orders.json\" }", "= \"/out/orders.json\" }"));
    absolute.assert_exit(2);
    for needle in ["write", "sales.orders", "absolute"] {
        assert!(absolute.stderr.contains(needle), "{needle}: {}", absolute.stderr);
    }
    let escapes = validate("escapes", &BUNDLE.replace("= \"orders.json\" }", "= \"../orders.json\" }"));
    escapes.assert_exit(2);
    assert!(escapes.stderr.contains("sales.orders") && escapes.stderr.contains("leaves"), "{}", escapes.stderr);

    // declared but not written: the task fails, naming the dataset, and nothing is published
    let dir = s.bundle("missing", &BUNDLE.replace("= \"orders.json\" }", "= \"nope.json\" }"));
    let out = s.run(&["run", dir.to_str().unwrap(), "--job", "orders", "--json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("sales.orders") && out.stdout.contains("nope.json"), "{}", out.stdout);
    let listed = s.run(&["datasets", "list", "--json"]);
    listed.assert_exit(0);
    assert_eq!(listed.json(), json!([]));
}
