//! Deployments end to end: dev → test → prod with variables and per-target secrets,
//! promotion gates (tests, approvals) and identical hashes, rollback, production's Git
//! rules, permissions on deployed jobs, remote deploy to a `sluice serve`, plan output and
//! exit codes, and a deploy killed at its write.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sluice_tests::{Out, Sluice};

/// `etl` greets with `${var.greeting}` (each target its own) and reads secret `db/pw`
/// (each target its own scope). prod is production, promoted from test behind both gates,
/// viewable by `viewer`, managed by `carol`.
const BUNDLE: &str = r#"[bundle]
name = "shop"

[variables]
greeting = { default = "hello", description = "what etl says" }

[targets.dev]
mode = "development"
default = true
variables = { greeting = "hi-dev" }

[targets.test]
variables = { greeting = "hi-test" }

[targets.prod]
mode = "production"
promote_from = "test"
require_tests = true
require_approval = 1
variables = { greeting = "hi-prod" }
permissions = [{ level = "CAN_VIEW", user_name = "viewer" }, { level = "CAN_MANAGE", user_name = "carol" }]

[components]
probe = "{guest:probe}"

[jobs.etl]
[[jobs.etl.tasks]]
key = "greet"
component = "probe"
params = { greeting = "${var.greeting}", secret = "db/pw" }
secrets = ["db/pw"]
"#;

fn as_user(s: &Sluice, who: &str, args: &[&str]) -> Out {
    s.run_with(args, &[("SLUICE_PRINCIPAL", who)], None)
}

fn bundle_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

/// `deployments show --target T --json` (which must succeed).
fn show(s: &Sluice, dir: &Path, target: &str) -> Value {
    let out = s.run(&["deployments", "show", "--bundle", &bundle_arg(dir), "--target", target, "--json"]);
    out.assert_exit(0);
    out.json()
}

fn put_secret(s: &Sluice, target: &str, value: &str) {
    as_user(s, "alice", &["secrets", "scopes", "create", "db", "--target", target]).assert_exit(0);
    s.run_with(
        &["secrets", "put", "db", "pw", "--target", target],
        &[("SLUICE_PRINCIPAL", "alice")],
        Some(value.as_bytes()),
    )
    .assert_exit(0);
}

/// The greet task's output of a finished run record.
fn greet(run: &Value) -> Value {
    let attempt = sluice_tests::last_attempt(run, "greet");
    serde_json::from_str(attempt["output"].as_str().unwrap_or_else(|| panic!("no output: {run:#}"))).unwrap()
}

#[test]
fn dev_test_prod_with_variables_secrets_gates_identical_hashes_and_rollback() {
    let s = Sluice::new();
    let dir = s.bundle("shop", BUNDLE);
    let b = bundle_arg(&dir);
    put_secret(&s, "test", "t-secret");
    put_secret(&s, "prod", "prod-secret-value");

    // dev: the development prefix and pauses
    as_user(&s, "alice", &["deploy", "--bundle", &b]).assert_exit(0);
    let dev = show(&s, &dir, "dev");
    assert_eq!(dev["jobs"]["etl"], json!({ "display_name": "[dev alice] etl", "paused": true }), "{dev:#}");
    assert_eq!(dev["principal"], "alice");

    // test: its variables and its secrets, from the deployment
    let deployed = as_user(&s, "alice", &["deploy", "--bundle", &b, "--target", "test", "--json"]);
    deployed.assert_exit(0);
    let test = deployed.json();
    let promote = ["promote", "--bundle", &b, "--from", "test", "--to", "prod"];
    let refused = as_user(&s, "alice", &promote);
    refused.assert_exit(2);
    assert!(refused.stderr.contains("require_tests") && refused.stderr.contains("`etl`"), "{}", refused.stderr);
    assert!(refused.stderr.contains("require_approval = 1: 0 approvals"), "{}", refused.stderr);

    let ran = as_user(&s, "alice", &["run", "--deployment", "test/etl", "--json"]);
    ran.assert_exit(0);
    let out = greet(&ran.json());
    assert_eq!(out["params"]["greeting"], "hi-test", "{out:#}");
    assert_eq!(out["secret_len"], 8, "test's secret: {out:#}");

    let refused = as_user(&s, "alice", &promote);
    refused.assert_exit(2);
    assert!(!refused.stderr.contains("require_tests"), "the run passed the tests gate: {}", refused.stderr);
    assert!(refused.stderr.contains("require_approval"), "{}", refused.stderr);
    let own = as_user(&s, "alice", &["approve", "test/1", "--bundle", &b]);
    own.assert_exit(2);
    assert!(own.stderr.contains("cannot approve their own"), "{}", own.stderr);
    as_user(&s, "carol", &["approve", "test/1", "--bundle", &b]).assert_exit(0);

    let promoted = as_user(&s, "alice", &[&promote[..], &["--json"]].concat());
    promoted.assert_exit(0);
    let prod = promoted.json();
    assert_eq!(prod["bundle_hash"], test["bundle_hash"], "prod holds exactly the tested bundle");
    assert_eq!(prod["components"], test["components"], "and exactly its components");
    assert_eq!(prod["origin"], json!({ "kind": "promote", "from": "test", "number": 1 }));

    let ran = as_user(&s, "alice", &["run", "--deployment", "prod/etl", "--json"]);
    ran.assert_exit(0);
    let out = greet(&ran.json());
    assert_eq!(out["params"]["greeting"], "hi-prod", "prod's variables apply: {out:#}");
    assert_eq!(out["secret_len"], 17, "and prod's secrets: {out:#}");

    // CAN_VIEW sees but cannot run
    let viewer = as_user(&s, "viewer", &["run", "--deployment", "prod/etl", "--json"]);
    viewer.assert_exit(2);
    assert!(
        viewer.stderr.contains("needs CAN_MANAGE_RUN") && viewer.stderr.contains("holds CAN_VIEW"),
        "{}",
        viewer.stderr
    );

    // a second test deployment, then back to the first in one command
    std::fs::write(
        dir.join("sluice.toml"),
        std::fs::read_to_string(dir.join("sluice.toml")).unwrap().replace("hi-test", "hey-test"),
    )
    .unwrap();
    as_user(&s, "alice", &["deploy", "--bundle", &b, "--target", "test"]).assert_exit(0);
    assert_eq!(show(&s, &dir, "test")["number"], 2);
    let started = std::time::Instant::now();
    as_user(&s, "alice", &["rollback", "--bundle", &b, "--target", "test"]).assert_exit(0);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(2), "rollback took {took:?}");
    assert_eq!(show(&s, &dir, "test")["number"], 1);
    let ran = as_user(&s, "alice", &["run", "--deployment", "test/etl", "--json"]);
    assert_eq!(greet(&ran.json())["params"]["greeting"], "hi-test", "the rolled-back deployment runs");

    let listed = s.run(&["deployments", "list", "--bundle", &b, "--target", "test", "--json"]);
    listed.assert_exit(0);
    let listed = listed.json();
    let actions: Vec<&str> =
        listed["journal"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deploy", "approve", "deploy", "rollback"], "{listed:#}");
    let rollback = &listed["journal"][3];
    assert_eq!((rollback["from"].as_u64(), rollback["to"].as_u64()), (Some(2), Some(1)));
    assert_eq!(rollback["to_hash"], test["bundle_hash"]);
    let prod_journal = s.run(&["deployments", "list", "--bundle", &b, "--target", "prod", "--json"]).json();
    assert_eq!(prod_journal["journal"][0]["action"], "promote");
    assert_eq!(prod_journal["journal"][0]["source"], "test/1");
}

/// A bundle with one target and one job of conditions only (no components) or probes.
const SMALL: &str = "[bundle]\nname = \"small\"\n[components]\nprobe = \"{guest:probe}\"\n\
[jobs.a]\n[[jobs.a.tasks]]\nkey = \"one\"\ncomponent = \"probe\"\nparams = { n = \"1\" }\n";

#[test]
fn plan_shows_changes_with_exit_codes_and_is_empty_right_after_a_deploy() {
    let s = Sluice::new();
    let dir = s.bundle("small", SMALL);
    let b = bundle_arg(&dir);
    let first = s.run(&["plan", "--bundle", &b]);
    first.assert_exit(3);
    assert!(first.stdout.contains("+ job a") && first.stdout.contains("+ component probe"), "{}", first.stdout);
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    let after = s.run(&["plan", "--bundle", &b]);
    after.assert_exit(0);
    assert!(after.stdout.contains("no changes"), "{}", after.stdout);

    let text = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    std::fs::write(
        dir.join("sluice.toml"),
        text.replace("n = \"1\"", "n = \"2\"") + "[jobs.b]\n[[jobs.b.tasks]]\nkey = \"x\"\ncomponent = \"probe\"\n",
    )
    .unwrap();
    let changed = s.run(&["plan", "--bundle", &b, "--json"]);
    changed.assert_exit(3);
    let items = changed.json()["items"].clone();
    assert_eq!(
        items,
        json!([
            { "action": "change", "kind": "job", "name": "a", "detail": "tasks" },
            { "action": "add", "kind": "job", "name": "b" }
        ])
    );
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    s.run(&["plan", "--bundle", &b]).assert_exit(0);
    let diff = s.run(&["deployments", "diff", "1", "2", "--bundle", &b, "--json"]);
    diff.assert_exit(0);
    assert_eq!(diff.json()["items"], items, "diff of the two deployments is the plan that was applied");

    // bad input: nothing written, exit 2, the problem named
    std::fs::write(dir.join("sluice.toml"), text.replace("probe = ", "probe = \"/nowhere/gone.wasm\"\nother = "))
        .unwrap();
    let missing = s.run(&["deploy", "--bundle", &b]);
    missing.assert_exit(2);
    assert!(
        missing.stderr.contains("component `probe`") && missing.stderr.contains("/nowhere/gone.wasm"),
        "{}",
        missing.stderr
    );
    std::fs::write(dir.join("sluice.toml"), "[bundle]\nname = \"small\"\n[jobs.a]\nbogus = 1\n").unwrap();
    s.run(&["plan", "--bundle", &b]).assert_exit(2);
    s.run(&["deploy", "--bundle", &b]).assert_exit(2);
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
    let listed = s.run(&["deployments", "list", "--bundle", &b, "--json"]).json();
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 2, "the refused deploys wrote nothing");
    let other = s.run(&["promote", "--bundle", &b, "--from", "dev", "--to", "staging"]);
    other.assert_exit(2);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn production_refuses_a_dirty_tree_and_another_branch() {
    let s = Sluice::new();
    let text =
        SMALL.to_string() + "[targets.prod]\nmode = \"production\"\ndefault = true\ngit = { branch = \"main\" }\n";
    let dir = s.bundle("small", &text);
    let b = bundle_arg(&dir);
    let outside = s.run(&["deploy", "--bundle", &b]);
    outside.assert_exit(2);
    assert!(outside.stderr.contains("from a Git work tree"), "{}", outside.stderr);
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "sluice.toml"]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    let clean = s.run(&["deploy", "--bundle", &b, "--json"]);
    clean.assert_exit(0);
    let d = clean.json();
    assert_eq!(d["git"]["branch"], "main");
    assert_eq!(d["git"]["dirty"], false);
    assert_eq!(d["git"]["commit"].as_str().map(str::len), Some(40));

    let committed = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    std::fs::write(dir.join("sluice.toml"), committed + "# edited\n").unwrap();
    let dirty = s.run(&["deploy", "--bundle", &b]);
    dirty.assert_exit(2);
    assert!(dirty.stderr.contains("uncommitted changes"), "{}", dirty.stderr);
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    git(&dir, &["commit", "-q", "-am", "two"]);
    let branch = s.run(&["deploy", "--bundle", &b]);
    branch.assert_exit(2);
    assert!(
        branch.stderr.contains("only from branch `main`") && branch.stderr.contains("branch `feature`"),
        "{}",
        branch.stderr
    );
    assert_eq!(show(&s, &dir, "prod")["number"], 1, "nothing was deployed by the refused attempts");
}

#[test]
fn a_deploy_killed_at_its_write_leaves_old_or_new_and_the_next_deploy_succeeds() {
    let s = Sluice::new();
    let dir = s.bundle("small", SMALL);
    let b = bundle_arg(&dir);
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    let text = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    for (n, (from, to)) in [(1, ("\"1\"", "\"2\"")), (2, ("\"2\"", "\"3\""))] {
        std::fs::write(
            dir.join("sluice.toml"),
            std::fs::read_to_string(dir.join("sluice.toml")).unwrap().replace(from, to),
        )
        .unwrap();
        let killed = s.run_with(&["deploy", "--bundle", &b], &[("SLUICE_FAILPOINT", &format!("deploy:{n}"))], None);
        assert_ne!(killed.code, 0, "the failpoint aborted the deploy");
        assert!(killed.stderr.contains(&format!("failpoint deploy:{n}")), "{}", killed.stderr);
        let now = show(&s, &dir, "dev");
        let number = now["number"].as_u64().unwrap();
        assert!(number == 1 || (n == 2 && number == 2), "old or new, never a mix: {now:#}");
        s.run(&["store", "check"]).assert_exit(0);
    }
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    s.run(&["plan", "--bundle", &b]).assert_exit(0);
    let _ = text;
}

/// A target `shared` whose job alice manages and viewer may only see.
const REMOTE: &str = "[bundle]\nname = \"remote\"\n[targets.shared]\ndefault = true\n\
permissions = [{ level = \"CAN_VIEW\", user_name = \"viewer\" }]\n\
[components]\nprobe = \"{guest:probe}\"\n[jobs.etl]\n[[jobs.etl.tasks]]\nkey = \"one\"\ncomponent = \"probe\"\n";

#[test]
fn remote_deploy_uploads_only_missing_components_and_serves_the_jobs_with_permissions() {
    let s = Sluice::new();
    let dir = s.bundle("remote", REMOTE);
    let b = bundle_arg(&dir);
    let server = s.serve(&[]);
    let alice = s.token("alice", "default", None);
    let viewer = s.token("viewer", "default", None);
    let remote = |token: &str, extra: &[&str]| {
        let mut args = vec!["deploy", "--bundle", &b, "--server", &server.base];
        args.extend_from_slice(extra);
        let mut cmd = Command::new(sluice_tests::sluice_bin());
        cmd.args(&args).env("SLUICE_TOKEN", token).env_remove("SLUICE_STATE");
        sluice_tests::output_within(&mut cmd, None, sluice_tests::COMMAND_TIMEOUT)
    };
    let first = remote(&alice, &[]);
    first.assert_exit(0);
    assert!(first.stderr.contains("uploading"), "{}", first.stderr);
    assert!(first.stdout.contains("1 stored new"), "{}", first.stdout);
    let second = remote(&alice, &[]);
    second.assert_exit(0);
    assert!(!second.stderr.contains("uploading") && second.stdout.contains("0 stored new"), "{}", second.stdout);

    let job = server.job_id(&alice, "etl");
    let run = server.run_now(&alice, job, json!({}), None);
    let done = server.wait_terminal(&alice, run);
    assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
    assert_eq!(server.job_id(&viewer, "etl"), job, "a viewer sees the job");
    let (status, err) = server.post(Some(&viewer), "/api/2.2/jobs/run-now", &json!({ "job_id": job }));
    assert_eq!((status, err["error_code"].as_str()), (403, Some("PERMISSION_DENIED")), "{err}");
    let (status, listed) = server.get(Some(&alice), "/api/sluice/v1/deployments?bundle=remote&target=shared");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 2);
    assert_eq!(listed["journal"][0]["principal"], "alice", "the token's principal deployed");
    let bad = remote("sluice_nope", &[]);
    bad.assert_exit(2);
}

/// `etl` lives in an included file; prod requires tests; the bundle's own `[[tests]]`
/// pin the word `etl` says.
const GATED: &str = r#"include = ["jobs/*.toml"]

[bundle]
name = "gated"

[targets.test]
default = true

[targets.prod]
promote_from = "test"
require_tests = true

[components]
probe = "{guest:probe}"

[[tests]]
name = "etl says one"
job = "etl"
assert = [{ run = "success" }, { task = "greet", output = "$.params.word", "==" = "one" }]
"#;

const ETL: &str = "[jobs.etl]\ntasks = [{ key = \"greet\", component = \"probe\", params = { word = \"one\" } }]\n";

#[test]
fn promotion_needs_a_passing_sluice_test_on_exactly_the_deployed_files_includes_too() {
    let s = Sluice::new();
    let dir = s.bundle("gated", GATED);
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(dir.join("jobs/etl.toml"), ETL).unwrap();
    let b = bundle_arg(&dir);
    let test = s.run(&["deploy", "--bundle", &b, "--json"]);
    test.assert_exit(0);
    let test = test.json();
    let promote = ["promote", "--bundle", &b, "--from", "test", "--to", "prod", "--json"];
    let refused = s.run(&promote);
    refused.assert_exit(2);
    assert!(refused.stderr.contains("no passing `sluice test` recorded on bundle"), "{}", refused.stderr);

    let tested = s.run(&["test", &b, "--json"]);
    tested.assert_exit(0);
    assert_eq!(tested.json()["report"]["bundle_hash"], test["bundle_hash"], "sluice test and deploy hash alike");

    // the working tree moves on; the promotion carries what was deployed and tested
    std::fs::write(dir.join("jobs/etl.toml"), ETL.replace("\"one\"", "\"two\"")).unwrap();
    let plan = s.run(&["plan", "--bundle", &b, "--json"]);
    plan.assert_exit(3);
    let promoted = s.run(&promote);
    promoted.assert_exit(0);
    assert_eq!(promoted.json()["bundle_hash"], test["bundle_hash"]);
    let ran = s.run(&["run", "--deployment", "prod/etl", "--json"]);
    ran.assert_exit(0);
    assert_eq!(greet(&ran.json())["params"]["word"], "one", "prod runs the deployed include, not the edited file");

    // the edited files fail their tests: that verdict blocks their promotion
    s.run(&["test", &b, "--json"]).assert_exit(1);
    s.run(&["deploy", "--bundle", &b]).assert_exit(0);
    let refused = s.run(&promote);
    refused.assert_exit(2);
    assert!(
        refused.stderr.contains("`sluice test` failed on bundle") && refused.stderr.contains("etl says one"),
        "{}",
        refused.stderr
    );

    // a bad included file: named with its line, once, and nothing deployed
    std::fs::write(dir.join("jobs/etl.toml"), "[jobs.etl]\ntasks = [{ key = \"greet\", nope = 1 }]\n").unwrap();
    let bad = s.run(&["deploy", "--bundle", &b]);
    bad.assert_exit(2);
    assert_eq!(bad.stderr.matches("jobs/etl.toml:2:").count(), 1, "{}", bad.stderr);
    std::fs::write(dir.join("jobs/etl.toml"), ETL).unwrap();
    assert_eq!(show(&s, &dir, "test")["number"], 2, "nothing was deployed");
}

/// A job scheduled every minute, deployed to dev (development: paused) and prod (runs as
/// `svc-etl`).
const SCHEDULED: &str = r#"[bundle]
name = "sched"

[targets.dev]
mode = "development"
default = true

[targets.prod]
run_as = "svc-etl"

[components]
probe = "{guest:probe}"

[jobs.tick]
schedule = { cron = "0 * * * * ?", timezone = "UTC" }
tasks = [{ key = "t", component = "probe", params = { at = "{{ trigger.time }}" } }]
"#;

#[test]
fn deployed_schedules_fire_in_serve_paused_in_development_and_run_as_the_target_says() {
    let s = Sluice::new();
    let dir = s.bundle("sched", SCHEDULED);
    let b = bundle_arg(&dir);
    // 2026-03-28T12:00:00Z on the clock the server's triggers read
    let clock = s.dir.path().join("clock");
    std::fs::write(&clock, "1774699200000").unwrap();
    let env = [("SLUICE_TEST_CLOCK", clock.to_str().unwrap()), ("SLUICE_PRINCIPAL", "ops")];
    let server = s.serve_env(&[], &env);
    as_user(&s, "alice", &["deploy", "--bundle", &b]).assert_exit(0);
    as_user(&s, "alice", &["deploy", "--bundle", &b, "--target", "prod"]).assert_exit(0);
    let listed = || {
        let out = s.run(&["triggers", "list", "--json"]);
        out.assert_exit(0);
        out.json()["triggers"].as_array().cloned().unwrap_or_default()
    };
    let of = |list: &[Value], job: &str| list.iter().find(|t| t["job"] == job).cloned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let list = loop {
        let list = listed();
        if of(&list, "sched@dev.tick").is_some() && of(&list, "sched@prod.tick").is_some() {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "the deployed triggers never showed: {list:#?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(of(&list, "sched@dev.tick").unwrap()["paused"], true, "development mode pauses schedules");
    assert_eq!(of(&list, "sched@prod.tick").unwrap()["paused"], false);

    // a minute later: prod fires once, as svc-etl; dev does not
    std::fs::write(&clock, "1774699260500").unwrap();
    let token = s.token("alice", "default", None);
    let prod_job = of(&list, "sched@prod.tick").unwrap()["job_id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run = loop {
        let (_, v) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/list?job_id={prod_job}"));
        if let Some(run) = v["runs"][0]["run_id"].as_u64() {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "prod's schedule never fired");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let done = server.wait_terminal(&token, run);
    assert_eq!(done["state"]["result_state"], "SUCCESS", "{done:#}");
    assert_eq!(done["creator_user_name"], "svc-etl", "the run runs as the target's run_as");
    let list = listed();
    assert_eq!(of(&list, "sched@prod.tick").unwrap()["fired"], 1);
    assert_eq!(of(&list, "sched@dev.tick").unwrap()["fired"], 0, "{list:#?}");
}
