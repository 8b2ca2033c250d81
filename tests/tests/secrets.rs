//! Secrets end to end: the real binary, a real sled store, the probe guest.
//!
//! Scopes are per workspace and target, values are sealed at rest, reveals go
//! through grants, ACLs and the audit trail, and nothing a task revealed
//! reaches the state directory, a log, an output or a `--json` view, in any
//! encoding, even when the guest tries to print, return, publish or checkpoint it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;
use sluice_tests::{Out, Sluice, last_attempt};

/// The value every test stores (version 2); version 1 was [`OLD`].
const VALUE: &str = "pA55/w0rd+sluice?e2e";
const OLD: &str = "first-value";

fn key_hex(fill: u8) -> String {
    format!("{fill:02x}").repeat(32)
}

/// `sluice ARGS` as `principal` with master key `key`.
fn as_user(s: &Sluice, principal: &str, key: &str, args: &[&str], stdin: Option<&[u8]>) -> Out {
    s.run_with(args, &[("SLUICE_PRINCIPAL", principal), ("SLUICE_MASTER_KEY", key)], stdin)
}

/// alice creates scope `db` for `target` and puts `pw` twice: OLD, then VALUE.
fn setup(s: &Sluice, target: &str, key: &str) {
    as_user(s, "alice", key, &["secrets", "scopes", "create", "db", "--target", target], None).assert_exit(0);
    let first = as_user(
        s,
        "alice",
        key,
        &["secrets", "put", "db", "pw", "--target", target],
        Some(format!("{OLD}\n").as_bytes()),
    );
    first.assert_exit(0);
    assert!(first.stdout.contains("version 1"), "{}", first.stdout);
    let second = as_user(s, "alice", key, &["secrets", "put", "db", "pw", "--target", target], Some(VALUE.as_bytes()));
    second.assert_exit(0);
    assert!(second.stdout.contains("version 2"), "{}", second.stdout);
}

/// A bundle of probe tasks, each `(key, secrets, params)`.
fn bundle(s: &Sluice, tasks: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("[bundle]\nname = \"sec\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.sec]\n");
    for (key, secrets, params) in tasks {
        text.push_str(&format!("[[jobs.sec.tasks]]\nkey = \"{key}\"\ncomponent = \"probe\"\nsecrets = [{secrets}]\nparams = {{ {params} }}\n"));
    }
    s.bundle("b", &text).to_str().expect("utf-8").to_string()
}

fn output(run: &Value, key: &str) -> Value {
    let a = last_attempt(run, key);
    serde_json::from_str(a["output"].as_str().unwrap_or_else(|| panic!("{key} has no output: {a:#}")))
        .expect("output is JSON")
}

/// Every form of `value` that must never be seen.
fn forms(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let pct: String = b
        .iter()
        .map(|&c| {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                char::from(c).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect();
    let hex: String = b.iter().map(|c| format!("{c:02x}")).collect();
    vec![
        value.to_string(),
        hex.to_uppercase(),
        hex,
        STANDARD.encode(b),
        STANDARD_NO_PAD.encode(b),
        URL_SAFE.encode(b),
        URL_SAFE_NO_PAD.encode(b),
        pct,
    ]
}

fn assert_clean(what: &str, text: &str) {
    for (value, name) in [(VALUE, "value"), (OLD, "old value")] {
        for form in forms(value) {
            assert!(!text.contains(&form), "{what} holds the {name} as `{form}`:\n{text}");
        }
    }
}

/// Every byte of every file under the state directory.
fn assert_state_dir_clean(s: &Sluice) {
    let mut stack = vec![s.state()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("read");
            for value in [VALUE, OLD] {
                for form in forms(value) {
                    let hit = bytes.windows(form.len()).any(|w| w == form.as_bytes());
                    assert!(!hit, "{} holds `{form}`", path.display());
                }
            }
        }
    }
    assert!(files >= 2, "the scan saw the store's files ({files})");
}

fn audit(s: &Sluice, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = as_user(s, "alice", "", &all, None);
    out.assert_exit(0);
    out.json().as_array().expect("array").clone()
}

#[test]
fn a_granted_secret_is_revealed_and_every_leak_of_it_is_redacted() {
    let s = Sluice::new();
    let key = key_hex(7);
    setup(&s, "prod", &key);
    let dir = bundle(
        &s,
        &[
            ("leaky", "\"db/pw\"", "secret = \"db/pw\", echo_secret = \"1\""),
            (
                "failing",
                "\"db/pw\"",
                "secret = \"db/pw\", echo_secret = \"1\", fail = \"permanent\", message = \"could not log in\"",
            ),
        ],
    );
    let text = std::fs::read_to_string(format!("{dir}/sluice.toml")).unwrap();
    let text = text
        + "[[jobs.sec.tasks]]\nkey = \"reader\"\ncomponent = \"probe\"\ndepends_on = [\"leaky\"]\nparams = { read_value = \"leaky.leak\" }\n";
    std::fs::write(format!("{dir}/sluice.toml"), text).unwrap();
    let out = as_user(&s, "alice", &key, &["run", &dir, "--target", "prod", "--json"], None);
    out.assert_exit(1);
    assert_clean("the run's --json record", &out.stdout);
    assert_clean("stderr", &out.stderr);
    let run = out.json();

    let leaky = output(&run, "leaky");
    assert_eq!(
        leaky["secret_result"]["ok"], "[REDACTED]",
        "the guest got the value; the record shows it redacted: {leaky:#}"
    );
    assert_eq!(leaky["secret_len"], VALUE.len(), "reveal returns the newest version");
    for form in ["raw", "b64", "b64url", "pct"] {
        assert_eq!(leaky["echo"][form], "[REDACTED]", "{form}: {leaky:#}");
    }
    assert!(leaky["echo"]["basic"].as_str().unwrap().contains("[REDACTED]"), "inside a Basic header too: {leaky:#}");
    assert!(leaky["checkpoint_secret"]["err"].as_str().unwrap().contains("holds a secret value"), "{leaky:#}");
    let log = last_attempt(&run, "leaky")["log"].as_str().unwrap().to_string();
    assert!(
        log.contains("secret=[REDACTED] b64=[REDACTED]") && log.contains("b64url=[REDACTED] pct=[REDACTED]"),
        "{log}"
    );
    assert_eq!(output(&run, "reader")["read"], "[REDACTED]", "the published value was stored redacted");
    let failing = last_attempt(&run, "failing");
    assert_eq!(failing["error"], "permanent error: could not log in: [REDACTED]");

    let shown = as_user(&s, "alice", "", &["runs", "show", &run["run_id"].to_string(), "--json"], None);
    shown.assert_exit(0);
    assert_clean("runs show --json", &shown.stdout);
    let listed = as_user(&s, "alice", "", &["secrets", "list", "db", "--target", "prod", "--json"], None);
    listed.assert_exit(0);
    assert_clean("secrets list", &listed.stdout);
    assert_eq!(listed.json()[0]["version"], 2);
    let trail = audit(&s, &["--run", &run["run_id"].to_string()]);
    assert_eq!(trail.len(), 2, "{trail:#?}");
    assert!(trail.iter().all(|r| r["granted"] == true && r["version"] == 2 && r["principal"] == "alice"), "{trail:#?}");
    assert_state_dir_clean(&s);
}

#[test]
fn ungranted_names_are_denied_and_audited() {
    let s = Sluice::new();
    let key = key_hex(1);
    setup(&s, "dev", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/other\""), ("none", "", "secret = \"db/pw\"")]);
    let out = as_user(&s, "alice", &key, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    let run = out.json();
    let err = output(&run, "t")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(err.contains("secret `db/other` is not granted to task `t`"), "{err}");
    let err = output(&run, "none")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(err.contains("not granted to task `none`"), "{err}");
    let denied = audit(&s, &["--run", &run["run_id"].to_string(), "--denied"]);
    assert_eq!(denied.len(), 2, "{denied:#?}");
    let t = denied.iter().find(|r| r["task"] == "t").expect("t's denial");
    assert_eq!(
        (t["scope"].as_str(), t["key"].as_str(), t["action"].as_str()),
        (Some("db"), Some("other"), Some("reveal"))
    );
    assert!(t["reason"].as_str().unwrap().contains("not granted"), "{t:#}");
    let human = as_user(&s, "alice", "", &["secrets", "audit", "--scope", "db", "--task", "t"], None);
    human.assert_exit(0);
    assert!(human.stdout.contains("DENIED") && human.stdout.contains("db/other"), "{}", human.stdout);
}

#[test]
fn a_scope_of_another_target_is_denied() {
    let s = Sluice::new();
    let key = key_hex(2);
    setup(&s, "prod", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\"")]);
    let out = as_user(&s, "alice", &key, &["run", &dir, "--target", "test", "--json"], None);
    out.assert_exit(0);
    let run = out.json();
    let err = output(&run, "t")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(err.contains("scope `db` belongs to target prod, not to this run's target `test`"), "{err}");
    let denied = audit(&s, &["--run", &run["run_id"].to_string(), "--denied"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["target"], "test");
}

#[test]
fn a_principal_without_read_is_denied_until_granted() {
    let s = Sluice::new();
    let key = key_hex(3);
    setup(&s, "dev", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\"")]);
    let out = as_user(&s, "mallory", &key, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    let err = output(&out.json(), "t")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(err.contains("principal `mallory`") && err.contains("no read permission on scope `db`"), "{err}");
    let denied = audit(&s, &["--principal", "mallory", "--denied"]);
    assert_eq!(denied.len(), 1, "{denied:#?}");

    let put = as_user(&s, "mallory", &key, &["secrets", "put", "db", "pw"], Some(b"overwrite"));
    put.assert_exit(2);
    assert!(put.stderr.contains("permission denied: principal `mallory` needs write"), "{}", put.stderr);
    as_user(&s, "mallory", &key, &["secrets", "acl", "put", "db", "mallory", "manage"], None).assert_exit(2);

    as_user(&s, "alice", &key, &["secrets", "acl", "put", "db", "mallory", "read"], None).assert_exit(0);
    let acl = as_user(&s, "alice", "", &["secrets", "acl", "list", "db", "--json"], None);
    acl.assert_exit(0);
    assert_eq!(acl.json().as_array().unwrap().len(), 2);
    let out = as_user(&s, "mallory", &key, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    assert_eq!(output(&out.json(), "t")["secret_result"]["ok"], "[REDACTED]");
    let last = as_user(&s, "alice", &key, &["secrets", "acl", "delete", "db", "alice"], None);
    last.assert_exit(2);
    assert!(last.stderr.contains("last manager"), "{}", last.stderr);
}

#[test]
fn a_repaired_run_reveals_as_the_principal_who_started_it() {
    let s = Sluice::new();
    let key = key_hex(4);
    setup(&s, "dev", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\", fail_below_attempt = \"1\"")]);
    let out = as_user(&s, "alice", &key, &["run", &dir, "--json"], None);
    out.assert_exit(1);
    let run = out.json()["run_id"].to_string();
    let repaired = as_user(&s, "mallory", &key, &["runs", "repair", &run, "--json"], None);
    repaired.assert_exit(0);
    let trail = audit(&s, &["--run", &run]);
    assert_eq!(trail.len(), 2, "{trail:#?}");
    assert!(trail.iter().all(|r| r["principal"] == "alice" && r["granted"] == true), "{trail:#?}");
    assert_eq!(trail[1]["attempt"], 1);
}

#[test]
fn a_wrong_master_key_fails_clearly_and_changes_nothing() {
    let s = Sluice::new();
    // no SLUICE_MASTER_KEY: the first put makes <state>/master.key, owner-only
    let none = s.run_with(&["secrets", "scopes", "create", "db"], &[("SLUICE_PRINCIPAL", "alice")], None);
    none.assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &[("SLUICE_PRINCIPAL", "alice")], Some(VALUE.as_bytes()))
        .assert_exit(0);
    let key_file = s.state().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let before = std::fs::read(&key_file).unwrap();

    let wrong = key_hex(9);
    let put = as_user(&s, "alice", &wrong, &["secrets", "put", "db", "pw"], Some(b"other"));
    put.assert_exit(2);
    assert!(
        put.stderr.contains("SLUICE_MASTER_KEY is not the key") && put.stderr.contains("nothing was changed"),
        "{}",
        put.stderr
    );
    let bad = as_user(&s, "alice", "not-a-key", &["secrets", "put", "db", "pw"], Some(b"other"));
    bad.assert_exit(2);
    assert!(bad.stderr.contains("SLUICE_MASTER_KEY is neither 64 hex digits nor base64"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("not-a-key"), "the key is not repeated: {}", bad.stderr);

    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\"")]);
    let out = as_user(&s, "alice", &wrong, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    let err = output(&out.json(), "t")["secret_result"]["err"].as_str().unwrap().to_string();
    assert!(err.contains("not the key the secrets in this store were sealed with"), "{err}");

    // the right key (the file) still opens everything, and nothing moved
    assert_eq!(std::fs::read(&key_file).unwrap(), before);
    let listed = s.run_with(&["secrets", "list", "db", "--json"], &[("SLUICE_PRINCIPAL", "alice")], None);
    listed.assert_exit(0);
    assert_eq!(listed.json()[0]["version"], 1, "the refused put added no version");
    let out = s.run_with(&["run", &dir, "--json"], &[("SLUICE_PRINCIPAL", "alice")], None);
    out.assert_exit(0);
    let t = output(&out.json(), "t");
    assert_eq!(
        (t["secret_result"]["ok"].as_str(), t["secret_len"].as_u64()),
        (Some("[REDACTED]"), Some(VALUE.len() as u64))
    );
}

#[test]
fn values_come_from_stdin_or_a_file_never_an_argument() {
    let s = Sluice::new();
    let key = key_hex(5);
    as_user(&s, "alice", &key, &["secrets", "scopes", "create", "db"], None).assert_exit(0);
    let arg = as_user(&s, "alice", &key, &["secrets", "put", "db", "pw", VALUE], None);
    arg.assert_exit(2);
    assert!(!arg.stderr.contains("stored"), "{}", arg.stderr);
    let file = s.dir.path().join("value.txt");
    std::fs::write(&file, VALUE).unwrap();
    let put = as_user(&s, "alice", &key, &["secrets", "put", "db", "pw", "--from-file", file.to_str().unwrap()], None);
    put.assert_exit(0);
    let scopes = as_user(&s, "alice", "", &["secrets", "scopes", "list", "--json"], None);
    scopes.assert_exit(0);
    assert_eq!(scopes.json()[0]["permission"], "manage");
    let list = as_user(&s, "alice", "", &["secrets", "list", "db"], None);
    list.assert_exit(0);
    assert!(list.stdout.contains("pw") && list.stdout.contains("alice"), "{}", list.stdout);
    assert_clean("secrets list", &list.stdout);
    as_user(&s, "alice", &key, &["secrets", "delete", "db", "pw"], None).assert_exit(0);
    as_user(&s, "alice", &key, &["secrets", "scopes", "delete", "db"], None).assert_exit(0);
    let trail = audit(&s, &["--scope", "db"]);
    let actions: Vec<&str> = trail.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["scope_create", "put", "delete", "scope_delete"]);
    assert_state_dir_clean(&s);
}

#[test]
fn a_command_task_gets_secrets_in_its_env_and_they_are_redacted_from_what_it_prints() {
    let s = Sluice::new();
    let key = key_hex(6);
    setup(&s, "dev", &key);
    let dir = s.bundle(
        "cmd",
        "[bundle]\nname = \"sec\"\n[components]\ncmd = \"{guest:cmd}\"\n[jobs.sec]\n\
         [[jobs.sec.tasks]]\nkey = \"c\"\nkind = \"command\"\ncomponent = \"cmd\"\nstdout = \"output\"\n\
         env = { PGPASSWORD = \"{{ secrets/db/pw }}\", URL = \"postgres://app:{{ secrets/db/pw }}@db/{{ task.key }}\", PLAIN = \"x\" }\n",
    );
    let dir = dir.to_str().unwrap();
    let out = as_user(&s, "alice", &key, &["run", dir, "--json"], None);
    out.assert_exit(0);
    assert_clean("the run's --json record", &out.stdout);
    let run = out.json();
    let pairs: Vec<(String, String)> = serde_json::from_value(output(&run, "c")["env"].clone()).expect("env pairs");
    let env: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
    assert_eq!(env["PGPASSWORD"], "[REDACTED]", "the program saw the value; its output shows it redacted");
    assert_eq!(env["URL"], "postgres://app:[REDACTED]@db/c");
    assert_eq!(env["PLAIN"], "x");
    let trail = audit(&s, &["--run", &run["run_id"].to_string()]);
    assert_eq!(trail.len(), 2, "one audited reveal per reference: {trail:#?}");
    assert!(trail.iter().all(|r| r["granted"] == true && r["task"] == "c" && r["version"] == 2), "{trail:#?}");

    let denied = as_user(&s, "mallory", &key, &["run", dir, "--json"], None);
    denied.assert_exit(1);
    let a = last_attempt(&denied.json(), "c").clone();
    let error = a["error"].as_str().unwrap();
    assert!(
        error.contains("env `") && error.contains("principal `mallory`") && error.contains("no read permission"),
        "{error}"
    );
    assert_eq!(audit(&s, &["--principal", "mallory", "--denied"]).len(), 1);
    assert_state_dir_clean(&s);
}

#[test]
fn an_injected_secret_reaches_the_allowed_host_but_never_the_guest() {
    let s = Sluice::new();
    let key = key_hex(9);
    setup(&s, "dev", &key);
    let (port, _served, heads) = sluice_tests::http_server_recording("ok");
    let text = format!(
        "[bundle]\nname = \"inj\"\n[components]\nnet = \"{{guest:netprobe}}\"\n[jobs.sec]\n\
         [[jobs.sec.tasks]]\nkey = \"call\"\ncomponent = \"net\"\nallow_hosts = [\"http://127.0.0.1:{port}\"]\n\
         secrets = [{{ name = \"db/pw\", inject = \"header:Authorization\" }}]\n\
         params = {{ auth_secret = \"db/pw\", get = \"http://127.0.0.1:{port}/api\" }}\n"
    );
    let dir = s.bundle("inj", &text);
    let out = as_user(&s, "alice", &key, &["run", dir.to_str().unwrap(), "--json"], None);
    out.assert_exit(0);
    let run = out.json();
    let o = output(&run, "call");
    assert_eq!(o["get"]["status"], 200, "{o:#}");
    let saw = o["saw"].as_str().unwrap();
    assert!(saw.starts_with("sluice-injected-") && !saw.contains(VALUE), "the guest holds only a placeholder: {saw}");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].to_ascii_lowercase().contains(&format!("authorization: bearer {}", VALUE.to_ascii_lowercase())),
        "the host put the value into the request: {}",
        heads[0]
    );
    assert_clean("the run's --json record", &out.stdout);
    assert_state_dir_clean(&s);
}

#[test]
fn a_for_each_iteration_gets_its_templates_injected_secret_like_a_task_does() {
    let s = Sluice::new();
    let key = key_hex(10);
    setup(&s, "dev", &key);
    let (port, _served, heads) = sluice_tests::http_server_recording("ok");
    let text = format!(
        "[bundle]\nname = \"inj\"\n[components]\nnet = \"{{guest:netprobe}}\"\n[jobs.sec]\n\
         [[jobs.sec.tasks]]\nkey = \"calls\"\n\
         for_each = {{ inputs = \"[\\\"a\\\"]\", task = {{ component = \"net\", allow_hosts = [\"http://127.0.0.1:{port}\"], \
         secrets = [{{ name = \"db/pw\", inject = \"header:Authorization\" }}], \
         params = {{ auth_secret = \"db/pw\", get = \"http://127.0.0.1:{port}/api\" }} }} }}\n"
    );
    let dir = s.bundle("inj-each", &text);
    let out = as_user(&s, "alice", &key, &["run", dir.to_str().unwrap(), "--json"], None);
    out.assert_exit(0);
    let run = out.json();
    let o = output(&run, "calls[0]");
    assert_eq!(o["get"]["status"], 200, "{o:#}");
    let saw = o["saw"].as_str().unwrap();
    assert!(
        saw.starts_with("sluice-injected-") && !saw.contains(VALUE),
        "the iteration holds only a placeholder: {saw}"
    );
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].to_ascii_lowercase().contains(&format!("authorization: bearer {}", VALUE.to_ascii_lowercase())),
        "the host put the value into the iteration's request: {}",
        heads[0]
    );
    assert_state_dir_clean(&s);
}

#[test]
fn inject_needs_an_allowlist() {
    let s = Sluice::new();
    let dir = s.bundle(
        "noinj",
        "[bundle]\nname = \"inj\"\n[components]\nnet = \"{guest:netprobe}\"\n[jobs.sec]\n[[jobs.sec.tasks]]\nkey = \"call\"\ncomponent = \"net\"\nsecrets = [{ name = \"db/pw\", inject = \"header:Authorization\" }]\n",
    );
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("needs `allow_hosts`"), "{}", out.stderr);
}

#[test]
fn a_revealed_value_written_to_out_fails_the_attempt_and_nothing_of_it_is_stored() {
    let s = Sluice::new();
    let key = key_hex(4);
    setup(&s, "dev", &key);
    for form in ["raw", "hex"] {
        let text = format!(
            "[bundle]\nname = \"out\"\n[components]\nprobe = \"{{guest:probe}}\"\nfs = \"{{guest:fsprobe}}\"\n[jobs.sec]\n\
             [[jobs.sec.tasks]]\nkey = \"leak\"\ncomponent = \"probe\"\nsecrets = [\"db/pw\"]\nretries = {{ max = 2, initial = \"1ms\" }}\n\
             params = {{ secret = \"db/pw\", out_secret = \"{form}\" }}\n\
             [[jobs.sec.tasks]]\nkey = \"reader\"\ncomponent = \"fs\"\ndepends_on = [\"leak\"]\n\
             params = {{ read = \"/in/leak/report.txt\" }}\n"
        );
        let dir = s.bundle(&format!("out-{form}"), &text);
        let out = as_user(&s, "alice", &key, &["run", dir.to_str().unwrap(), "--json"], None);
        out.assert_exit(1);
        assert_clean("the run's --json record", &out.stdout);
        assert_clean("stderr", &out.stderr);
        let run = out.json();
        let leak = last_attempt(&run, "leak");
        let error = leak["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("permanent error: /out/report.txt holds a secret value this task revealed"),
            "{form}: {leak:#}"
        );
        let tasks = run["tasks"].as_array().unwrap();
        let leak_task = tasks.iter().find(|t| t["key"] == "leak").unwrap();
        assert_eq!(leak_task["attempts"].as_array().unwrap().len(), 1, "{form}: not retried: {leak_task:#}");
        let reader = tasks.iter().find(|t| t["key"] == "reader").unwrap();
        assert!(reader["attempts"].as_array().is_none_or(|a| a.is_empty()), "{form}: the reader never ran: {reader:#}");
    }
    assert_state_dir_clean(&s);
    // the attempts' /out directories were given back empty
    for entry in std::fs::read_dir(s.state().join("staging")).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            assert_eq!(std::fs::read_dir(entry.path()).unwrap().count(), 0, "{} is not empty", entry.path().display());
        }
    }
}

#[test]
fn a_checkpoint_whose_key_holds_a_revealed_value_is_refused() {
    let s = Sluice::new();
    let key = key_hex(5);
    setup(&s, "dev", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\", checkpoint_key_secret = \"1\"")]);
    let out = as_user(&s, "alice", &key, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    assert_clean("stderr", &out.stderr);
    let o = output(&out.json(), "t");
    let err = o["checkpoint_key"]["err"].as_str().unwrap_or_else(|| panic!("the save was refused: {o:#}"));
    assert!(err.contains("checkpoint key holds a secret value"), "{err}");
    assert_state_dir_clean(&s);
}

#[test]
fn a_denied_url_is_logged_without_its_query_and_redacted() {
    let s = Sluice::new();
    let key = key_hex(6);
    setup(&s, "dev", &key);
    let text = "[bundle]\nname = \"url\"\n[components]\nnet = \"{guest:netprobe}\"\n[jobs.sec]\n\
         [[jobs.sec.tasks]]\nkey = \"call\"\ncomponent = \"net\"\nsecrets = [\"db/pw\"]\n\
         params = { url_secret = \"db/pw\", get = \"http://example.com/api\" }\n";
    let dir = s.bundle("url", text);
    let out = as_user(&s, "alice", &key, &["run", dir.to_str().unwrap(), "--json"], None);
    out.assert_exit(0);
    assert!(out.stderr.contains("outbound HTTP denied"), "the host warned: {}", out.stderr);
    assert!(!out.stderr.contains("token="), "no query string in the host's log: {}", out.stderr);
    assert!(out.stderr.contains("http://example.com/api/[REDACTED]"), "the path is redacted: {}", out.stderr);
    assert_clean("stderr", &out.stderr);
    let log = last_attempt(&out.json(), "call")["log"].as_str().unwrap().to_string();
    assert!(log.contains("outbound HTTP denied: http://example.com/api/[REDACTED] ("), "{log}");
    assert!(!log.contains("token="), "{log}");
}

#[test]
fn a_principal_reads_only_its_own_audit_records_and_those_of_scopes_it_manages() {
    let s = Sluice::new();
    let key = key_hex(8);
    setup(&s, "dev", &key);
    as_user(&s, "alice", &key, &["secrets", "acl", "put", "db", "mallory", "read"], None).assert_exit(0);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\"")]);
    as_user(&s, "mallory", &key, &["run", &dir, "--json"], None).assert_exit(0);
    as_user(&s, "alice", &key, &["run", &dir, "--json"], None).assert_exit(0);

    let mine = as_user(&s, "mallory", "", &["audit", "--json"], None);
    mine.assert_exit(0);
    let mine = mine.json().as_array().unwrap().clone();
    assert_eq!(mine.len(), 1, "mallory sees her one reveal, nothing of alice's: {mine:#?}");
    assert_eq!((mine[0]["principal"].as_str(), mine[0]["action"].as_str()), (Some("mallory"), Some("reveal")));

    let scope = as_user(&s, "mallory", "", &["audit", "--scope", "db"], None);
    scope.assert_exit(2);
    assert!(scope.stderr.contains("needs manage on scope `db` to read its audit records"), "{}", scope.stderr);
    let other = as_user(&s, "nobody", "", &["audit", "--principal", "alice"], None);
    other.assert_exit(2);
    assert!(other.stderr.contains("may read only its own audit records"), "{}", other.stderr);

    let all = audit(&s, &["--scope", "db"]);
    assert!(all.iter().any(|r| r["principal"] == "mallory") && all.iter().any(|r| r["principal"] == "alice"));
    assert!(all.len() >= 6, "alice manages db: she sees every record of it: {all:#?}");
}

#[test]
fn reveals_stop_at_their_cap_and_so_do_their_audit_records() {
    let s = Sluice::new();
    let key = key_hex(10);
    setup(&s, "dev", &key);
    let dir = bundle(&s, &[("t", "\"db/pw\"", "secret = \"db/pw\", reveals = \"400\"")]);
    let out = as_user(&s, "alice", &key, &["run", &dir, "--json"], None);
    out.assert_exit(0);
    let run = out.json();
    let o = output(&run, "t");
    let max = sluice::sandbox::secrets::MAX_REVEALS_PER_ATTEMPT;
    assert_eq!(o["reveals"]["answered"], max - 1, "{o:#}");
    assert!(o["reveals"]["err"].as_str().unwrap().contains(&format!("at most {max} secrets")), "{o:#}");
    assert_eq!(audit(&s, &["--run", &run["run_id"].to_string()]).len(), max);
}
