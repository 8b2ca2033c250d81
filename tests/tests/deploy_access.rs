//! Who may use deployed jobs, and promoting one job at a time: `group_name` grants reach
//! the members `sluice groups` gives them (locally and over the API), `validate` checks
//! groups against that directory, and `promote --job J` moves one job while the target's
//! other jobs keep running from where they ran.

use std::path::Path;

use serde_json::{Value, json};
use sluice_tests::{Out, Sluice};

fn as_user(s: &Sluice, who: &str, args: &[&str]) -> Out {
    s.run_with(args, &[("SLUICE_PRINCIPAL", who)], None)
}

fn arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

/// Job `etl` that group `ops` may run; everyone else is named nowhere.
const OPS: &str = "[bundle]\nname = \"ops\"\n[targets.shared]\ndefault = true\n\
permissions = [{ level = \"CAN_MANAGE_RUN\", group_name = \"ops\" }]\n\
[components]\nprobe = \"{guest:probe}\"\n[jobs.etl]\n[[jobs.etl.tasks]]\nkey = \"one\"\ncomponent = \"probe\"\n";

#[test]
fn a_group_grant_reaches_its_members_locally_and_over_the_api_and_validate_knows_the_groups() {
    let s = Sluice::new();
    let dir = s.bundle("ops", OPS);
    let b = arg(&dir);
    as_user(&s, "alice", &["deploy", "--bundle", &b]).assert_exit(0);
    let run = ["run", "--deployment", "shared/etl", "--json"];
    let refused = as_user(&s, "bob", &run);
    refused.assert_exit(2);

    let added = s.run(&["groups", "add", "ops", "bob", "cy"]);
    added.assert_exit(0);
    assert_eq!(added.stdout.trim(), "ops: bob, cy");
    let ran = as_user(&s, "bob", &run);
    ran.assert_exit(0);
    assert_eq!(ran.json()["result"], "success", "bob runs as a member of ops");

    // over the API: the token's principal holds the group's level
    let server = s.serve(&[]);
    let dan = s.token("dan", "default", None);
    let job = server.job_id(&s.token("alice", "default", None), "etl");
    let (status, err) = server.post(Some(&dan), "/api/2.2/jobs/run-now", &json!({ "job_id": job }));
    assert_eq!(status, 404, "dan is named nowhere: {err}");
    s.run(&["groups", "add", "ops", "dan"]).assert_exit(0);
    let run = server.run_now(&dan, job, json!({}), None);
    assert_eq!(server.wait_terminal(&dan, run)["state"]["result_state"], "SUCCESS");
    let (status, _) =
        server.post(Some(&dan), "/api/sluice/v1/groups/update", &json!({ "name": "ops", "add": ["eve"] }));
    assert_eq!(status, 403, "only the owner's user changes groups");
    s.run(&["groups", "remove", "ops", "dan"]).assert_exit(0);
    let (status, _) = server.post(Some(&dan), "/api/2.2/jobs/run-now", &json!({ "job_id": job }));
    assert_eq!(status, 404, "out of the group, out of the job");

    let listed = s.run(&["groups", "list", "--json"]);
    listed.assert_exit(0);
    assert_eq!(listed.json()[0]["members"], json!(["bob", "cy"]));
    let not_member = s.run(&["groups", "remove", "ops", "zed"]);
    not_member.assert_exit(2);
    assert!(not_member.stderr.contains("`zed` is not a member of group `ops`"), "{}", not_member.stderr);
    drop(server);

    // validate: a group nobody added is a problem at its line
    let text = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    std::fs::write(dir.join("sluice.toml"), text.replace("group_name = \"ops\"", "group_name = \"opz\"")).unwrap();
    let bad = s.run(&["validate", &b]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("`opz` is not a known group"), "{}", bad.stderr);
    assert!(bad.stderr.contains("sluice.toml:5"), "names the line: {}", bad.stderr);
    assert!(bad.stderr.contains("sluice groups add opz"), "says how to fix it: {}", bad.stderr);
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
    s.run(&["validate", &b]).assert_exit(0);
}

/// Jobs `a` and `b` both say `${var.word}`; prod promotes from test.
const TWO: &str = r#"[bundle]
name = "two"
[variables]
word = { default = "v1" }
[targets.test]
default = true
[targets.stage]
promote_from = "test"
[targets.prod]
promote_from = "test"
[components]
probe = "{guest:probe}"
[jobs.a]
tasks = [{ key = "greet", component = "probe", params = { word = "${var.word}" } }]
[jobs.b]
tasks = [{ key = "greet", component = "probe", params = { word = "${var.word}" } }]
"#;

fn word(s: &Sluice, job: &str) -> Value {
    let ran = s.run(&["run", "--deployment", job, "--json"]);
    ran.assert_exit(0);
    let attempt = sluice_tests::last_attempt(&ran.json(), "greet").clone();
    let out: Value = serde_json::from_str(attempt["output"].as_str().unwrap()).unwrap();
    out["params"]["word"].clone()
}

#[test]
fn promote_one_job_moves_it_alone_and_rollback_brings_both_back() {
    let s = Sluice::new();
    let dir = s.bundle("two", TWO);
    let b = arg(&dir);
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    s.run(&["promote", "--bundle", &b, "--from", "test", "--to", "prod"]).assert_exit(0);
    let text = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    std::fs::write(dir.join("sluice.toml"), text.replace("\"v1\"", "\"v2\"")).unwrap();
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);

    let one = s.run(&["promote", "--bundle", &b, "--from", "test", "--to", "prod", "--job", "a", "--json"]);
    one.assert_exit(0);
    let prod = one.json();
    assert_eq!(prod["number"], 2);
    assert_eq!(prod["pinned"], json!({ "b": 1 }), "b stays on prod/1: {prod:#}");
    assert_eq!(word(&s, "prod/a"), "v2", "a runs the promoted content");
    assert_eq!(word(&s, "prod/b"), "v1", "b runs what it ran before");

    let unknown = s.run(&["promote", "--bundle", &b, "--from", "test", "--to", "prod", "--job", "zz"]);
    unknown.assert_exit(2);
    assert!(unknown.stderr.contains("no job `zz` to promote"), "{}", unknown.stderr);
    let empty = s.run(&["promote", "--bundle", &b, "--from", "test", "--to", "stage", "--job", "a"]);
    empty.assert_exit(2);
    assert!(empty.stderr.contains("promote the whole bundle first"), "{}", empty.stderr);

    let nowhere = s.run(&["promote", "--bundle", &b, "--from", "test", "--to", "nowhere"]);
    nowhere.assert_exit(2);
    assert!(nowhere.stderr.contains("declares no target `nowhere`"), "{}", nowhere.stderr);

    s.run(&["rollback", "--bundle", &b, "--target", "prod"]).assert_exit(0);
    assert_eq!(word(&s, "prod/a"), "v1", "rolled back to prod/1");
    assert_eq!(word(&s, "prod/b"), "v1");
}

#[test]
fn a_component_missing_at_deploy_time_is_named_and_nothing_is_deployed() {
    let s = Sluice::new();
    let dir = s.bundle("two", TWO);
    let text = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    let probe = text.lines().find(|l| l.starts_with("probe = ")).unwrap().to_string();
    std::fs::write(dir.join("sluice.toml"), text.replace(&probe, "probe = \"build/gone.wasm\"")).unwrap();
    let b = arg(&dir);
    let out = s.run(&["deploy", "--bundle", &b]);
    out.assert_exit(2);
    assert!(out.stderr.contains("gone.wasm") && out.stderr.contains("nothing was deployed"), "{}", out.stderr);
    let listed = s.run(&["deployments", "list", "--bundle", &b, "--target", "test", "--json"]);
    listed.assert_exit(0);
    assert_eq!(listed.json()["deployments"], json!([]), "no deployment was written");
}
