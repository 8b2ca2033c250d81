//! What a guest can reach: its params and context, upstream values only,
//! granted secrets only, its own log.

use serde_json::{Value, json};
use sluice_tests::{Sluice, last_attempt};

fn output(run: &Value, key: &str) -> Value {
    let a = last_attempt(run, key);
    serde_json::from_str(a["output"].as_str().unwrap_or_else(|| panic!("{key} has no output: {a:#}"))).unwrap()
}

const HEAD: &str = "[bundle]\nname = \"caps\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.caps]\nparameters = { colour = \"blue\" }\n";

#[test]
fn values_flow_to_dependents_only() {
    let s = Sluice::new();
    let dir = s.bundle(
        "values",
        &format!(
            "{HEAD}\
             [[jobs.caps.tasks]]\nkey = \"up\"\ncomponent = \"probe\"\nparams = {{ set_colour = \"{{{{ job.parameters.colour }}}}\" }}\n\
             [[jobs.caps.tasks]]\nkey = \"down\"\ncomponent = \"probe\"\ndepends_on = [\"up\"]\nparams = {{ read_value = \"up.colour\", seen = \"{{{{ tasks.up.values.colour }}}}\" }}\n\
             [[jobs.caps.tasks]]\nkey = \"stranger\"\ncomponent = \"probe\"\nparams = {{ read_value = \"up.colour\" }}\n"
        ),
    );
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let run = out.json();
    let down = output(&run, "down");
    assert_eq!(down["read"], "blue", "{down:#}");
    assert_eq!(down["params"]["seen"], "blue", "template reference resolved before start: {down:#}");
    let stranger = output(&run, "stranger");
    assert_eq!(
        stranger["read"],
        Value::Null,
        "a task that does not depend on `up` cannot read its values: {stranger:#}"
    );
}

#[test]
fn only_granted_secrets_resolve_and_the_rest_are_denied() {
    let s = Sluice::new();
    let dir = s.bundle(
        "secrets",
        &format!(
            "{HEAD}\
             [[jobs.caps.tasks]]\nkey = \"granted\"\ncomponent = \"probe\"\nsecrets = [\"storage/key\"]\nparams = {{ secret = \"storage/key\" }}\n\
             [[jobs.caps.tasks]]\nkey = \"denied\"\ncomponent = \"probe\"\nsecrets = [\"storage/key\"]\nparams = {{ secret = \"billing/key\" }}\n"
        ),
    );
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let run = out.json();
    let denied = output(&run, "denied")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(denied.contains("not granted to task `denied`"), "{denied}");
    let granted = output(&run, "granted")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(
        granted.contains("no scope `storage` for target `dev`"),
        "the grant check passed, the scope does not exist: {granted}"
    );
}

#[test]
fn the_guest_sees_its_context_and_its_stdout_and_stderr_become_the_log() {
    let s = Sluice::new();
    let (out, run) = s.task_run(
        &sluice_tests::guest("probe"),
        &["--param", "print=to stdout", "--param", "eprint=to stderr", "--param", "n=7"],
    );
    out.assert_exit(0);
    let o = output(&run, "probe");
    assert_eq!(o["params"]["n"], "7");
    assert_eq!(o["ctx"]["task_key"], "probe");
    assert_eq!(o["ctx"]["attempt"], 0);
    assert_eq!(o["ctx"]["run_id"], run["run_id"].to_string());
    let log = last_attempt(&run, "probe")["log"].as_str().unwrap().to_string();
    assert!(log.contains("to stdout") && log.contains("to stderr"), "{log}");
}

#[test]
fn task_errors_are_recorded_with_their_kind() {
    let s = Sluice::new();
    for kind in ["transient", "permanent"] {
        let (out, run) = s.task_run(
            &sluice_tests::guest("probe"),
            &["--param", &format!("fail={kind}"), "--param", "message=disk on fire"],
        );
        out.assert_exit(1);
        let a = last_attempt(&run, "probe");
        assert_eq!(a["result"], "failed");
        assert_eq!(a["error"], json!(format!("{kind} error: disk on fire")));
    }
}

/// The hostile-guest suite for caps: every per-attempt structure a guest can grow on the
/// host stops at its named limit, and what the host adds to a log counts against `max_log`.
#[test]
fn denied_requests_are_counted_and_the_host_lines_stay_within_max_log() {
    let s = Sluice::new();
    let text = "[bundle]\nname = \"caps\"\n[components]\nnet = \"{guest:netprobe}\"\n[jobs.caps]\n\
         [[jobs.caps.tasks]]\nkey = \"deny\"\ncomponent = \"net\"\nlimits = { max_log = \"4KiB\" }\n\
         params = { get = \"http://example.com/x\", times = \"2000\" }\n";
    let dir = s.bundle("deny", text);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let run = out.json();
    assert_eq!(output(&run, "deny")["failed"], 2000, "every request was denied");
    let a = last_attempt(&run, "deny");
    let log = a["log"].as_str().unwrap();
    assert!(log.len() <= 4096, "the log is {} bytes under a 4 KiB cap", log.len());
    let listed = log.lines().filter(|l| l.starts_with("[sluice] outbound HTTP denied: http://")).count();
    assert_eq!(listed, sluice::sandbox::http::MAX_DENIALS_LISTED, "{log}");
    let more = 2001 - sluice::sandbox::http::MAX_DENIALS_LISTED;
    assert!(log.contains(&format!("denied: {more} more requests (not listed)")), "{log}");
    let warned = out.stderr.lines().filter(|l| l.contains("outbound HTTP denied")).count();
    assert!(warned <= sluice::sandbox::http::MAX_DENIALS_LISTED + 1, "{warned} WARN lines:\n{}", out.stderr);
}

#[test]
fn checkpoint_keys_and_open_handles_stop_at_their_caps() {
    let s = Sluice::new();
    let text = format!(
        "{HEAD}[[jobs.caps.tasks]]\nkey = \"cps\"\ncomponent = \"probe\"\nparams = {{ checkpoints = \"100\" }}\n\
         [[jobs.caps.tasks]]\nkey = \"files\"\ncomponent = \"probe\"\nparams = {{ open_files = \"5000\" }}\n"
    );
    let dir = s.bundle("caps", &text);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    let run = out.json();
    let cps = output(&run, "cps");
    let max = sluice::sandbox::checkpoint::MAX_CHECKPOINT_KEYS_PER_ATTEMPT;
    assert_eq!(cps["checkpoints"]["saved"], max, "{cps:#}");
    assert!(cps["checkpoints"]["err"].as_str().unwrap().contains(&format!("at most {max} checkpoint keys")));
    // past the handle cap an open fails (or the guest traps): it never holds 5000
    let files = last_attempt(&run, "files");
    let cap = sluice::sandbox::MAX_HOST_HANDLES as u64;
    match files["output"].as_str() {
        Some(o) => {
            let o: Value = serde_json::from_str(o).unwrap();
            let opened = o["open_files"]["opened"].as_u64().unwrap();
            assert!(opened < cap && o["open_files"]["err"].is_string(), "{o:#}");
        }
        None => assert_eq!(files["result"], "failed", "{files:#}"),
    }
}

#[test]
fn published_values_stop_at_their_count_and_size_caps() {
    let s = Sluice::new();
    let max = sluice::sandbox::values::MAX_VALUES_PER_TASK;
    let mut params: Vec<String> = (0..max + 10).map(|i| format!("set_v{i:04} = \"{i}\"")).collect();
    params.push(format!("setraw_big = \"\\\"{}\\\"\"", "x".repeat(sluice::sandbox::values::MAX_VALUE_BYTES)));
    let text = format!(
        "{HEAD}[[jobs.caps.tasks]]\nkey = \"many\"\ncomponent = \"probe\"\nparams = {{ {} }}\n",
        params.join(", ")
    );
    let dir = s.bundle("values", &text);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let set = output(&out.json(), "many")["set"].clone();
    let set = set.as_object().unwrap();
    let ok = set.values().filter(|r| r["ok"] == true).count();
    assert_eq!(ok, max, "{set:?}");
    let refused: Vec<&str> = set.values().filter_map(|r| r["err"].as_str()).collect();
    assert!(refused.iter().any(|e| e.contains(&format!("at most {max} values"))), "{refused:?}");
    assert!(set["big"]["err"].as_str().unwrap().contains("over the limit"), "{:?}", set["big"]);
}
