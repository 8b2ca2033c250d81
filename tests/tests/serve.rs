//! `sluice serve` end to end: the Databricks-compatible Jobs API over HTTP, tokens and
//! workspaces, bad input, idempotency across a restart, SIGTERM and SIGKILL.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::{Server, Sluice};

/// Jobs for the API: `etl` (two tasks, a parameter), `flaky` (fails unless repaired with
/// `fail = ""`), `long` (spins until canceled), `slow` (two 300 ms tasks; an attempt cut
/// short by a killed server is retried).
const BUNDLE: &str = "[bundle]\nname = \"svc\"\n[components]\nprobe = \"{guest:probe}\"\nspin = \"{guest:spin}\"\n\
[jobs.etl]\nparameters = { date = \"2024-01-01\" }\nmax_concurrent_runs = 100\n\
[[jobs.etl.tasks]]\nkey = \"extract\"\ncomponent = \"probe\"\nparams = { day = \"{{ job.parameters.date }}\" }\n\
[[jobs.etl.tasks]]\nkey = \"load\"\ncomponent = \"probe\"\ndepends_on = [\"extract\"]\n\
[jobs.flaky]\nparameters = { fail = \"permanent\" }\n\
[[jobs.flaky.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
[[jobs.flaky.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\nparams = { fail = \"{{ job.parameters.fail }}\" }\n\
[[jobs.flaky.tasks]]\nkey = \"c\"\ncomponent = \"probe\"\ndepends_on = [\"b\"]\n\
[jobs.long]\n[[jobs.long.tasks]]\nkey = \"spin\"\ncomponent = \"spin\"\ntimeout = \"10m\"\n\
[jobs.slow]\nmax_concurrent_runs = 100\n\
[[jobs.slow.tasks]]\nkey = \"one\"\ncomponent = \"probe\"\nparams = { sleep_ms = 300 }\nretries = { max = 2, initial = \"10ms\" }\n\
[[jobs.slow.tasks]]\nkey = \"two\"\ncomponent = \"probe\"\ndepends_on = [\"one\"]\nparams = { sleep_ms = 300 }\nretries = { max = 2, initial = \"10ms\" }\n";

/// A served bundle and a token of `alice` in workspace `default`.
fn serve(s: &Sluice, extra: &[&str]) -> (Server, String, std::path::PathBuf) {
    let dir = s.bundle("svc", BUNDLE);
    let mut args = vec![dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = s.serve(&args);
    let token = s.token("alice", "default", None);
    (server, token, dir)
}

/// An absent or empty list.
fn empty(list: &Value) -> bool {
    list.as_array().is_none_or(Vec::is_empty)
}

/// Send `head` (a request without its body) on a new connection and read until the
/// server closes it or `wait` passes: what came back.
fn raw(base: &str, head: &str, wait: Duration) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn life(run: &Value) -> &str {
    run["state"]["life_cycle_state"].as_str().unwrap_or("")
}

fn result(run: &Value) -> &str {
    run["state"]["result_state"].as_str().unwrap_or("")
}

#[test]
fn the_jobs_api_runs_a_job_with_parameters_and_shows_its_task_runs() {
    let s = Sluice::new();
    let (server, token, _) = serve(&s, &[]);
    let etl = server.job_id(&token, "etl");
    let (status, job) = server.get(Some(&token), &format!("/api/2.2/jobs/get?job_id={etl}"));
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["settings"]["tasks"][1]["depends_on"][0]["task_key"], "extract");
    assert_eq!(job["settings"]["parameters"][0], json!({ "name": "date", "default": "2024-01-01" }));

    let run = server.run_now(&token, etl, json!({ "date": "2024-05-01" }), None);
    let done = server.wait_terminal(&token, run);
    assert_eq!((life(&done), result(&done)), ("TERMINATED", "SUCCESS"), "{done:#}");
    assert_eq!(done["status"]["state"], "TERMINATED");
    assert_eq!(done["job_id"], etl);
    assert_eq!(done["creator_user_name"], "alice", "the token's principal started the run");
    let used: Vec<&Value> = done["job_parameters"].as_array().unwrap().iter().collect();
    assert_eq!(used[0]["value"], "2024-05-01");
    let tasks = done["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    let ids: BTreeSet<u64> = tasks.iter().map(|t| t["run_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "each task run has an id of its own");
    assert!(ids.iter().all(|&id| id < (1 << 53) && id != run), "{ids:?}");

    // a task run's output, by its task run id
    let extract = tasks.iter().find(|t| t["task_key"] == "extract").unwrap();
    let id = extract["run_id"].as_u64().unwrap();
    let (status, out) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/get-output?run_id={id}"));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["metadata"]["run_id"], id);
    assert_eq!(out["metadata"]["job_run_id"], run);
    let value: Value = serde_json::from_str(out["notebook_output"]["result"].as_str().unwrap()).unwrap();
    assert_eq!(value["params"]["day"], "2024-05-01");
    // runs/get takes a task run id too
    let (status, one) = server.get(Some(&token), &format!("/api/2.1/jobs/runs/get?run_id={id}"));
    assert_eq!((status, one["tasks"][0]["task_key"].as_str()), (200, Some("extract")), "{one}");
    // a multi-task job run has no single output
    let (status, err) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/get-output?run_id={run}"));
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");

    // listing: newest first, by job, active only
    let second = server.run_now(&token, etl, json!({}), None);
    server.wait_terminal(&token, second);
    let (_, listed) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/list?job_id={etl}"));
    let order: Vec<u64> = listed["runs"].as_array().unwrap().iter().map(|r| r["run_id"].as_u64().unwrap()).collect();
    assert_eq!(order, vec![second, run]);
    assert!(listed.get("next_page_token").is_none(), "no more pages: no token");
    let (_, page) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/list?job_id={etl}&limit=1"));
    assert_eq!(page["next_page_token"], "1");
    let (_, active) = server.get(Some(&token), "/api/2.2/jobs/runs/list?active_only=true");
    assert!(empty(&active["runs"]), "nothing active: {active}");

    // job ids are stable across a restart
    assert_eq!(server.terminate(), 0);
    let again = s.serve(&[s.dir.path().join("svc").to_str().unwrap()]);
    assert_eq!(again.job_id(&token, "etl"), etl);
    assert_eq!(again.run(&token, run)["state"]["result_state"], "SUCCESS");
}

#[test]
fn fifty_runs_at_once_through_the_api() {
    let s = Sluice::new();
    let (server, token, _) = serve(&s, &[]);
    let etl = server.job_id(&token, "etl");
    let runs: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|t| {
                let (server, token) = (&server, &token);
                scope.spawn(move || {
                    (0..5)
                        .map(|i| server.run_now(token, etl, json!({ "date": format!("d{t}-{i}") }), None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs.iter().collect::<BTreeSet<_>>().len(), 50, "fifty distinct runs");
    for &run in &runs {
        let done = server.wait_terminal(&token, run);
        assert_eq!(result(&done), "SUCCESS", "{done:#}");
    }
    let (_, listed) = server.get(Some(&token), "/api/sluice/v1/runs?limit=100");
    assert_eq!(listed.as_array().unwrap().len(), 50);
}

#[test]
fn tokens_authenticate_and_workspaces_do_not_see_each_other() {
    let s = Sluice::new();
    let (server, alice, _) = serve(&s, &["--workspace", "default", "--workspace", "other"]);
    let bob = s.token("bob", "other", None);
    let etl = server.job_id(&alice, "etl");
    let run = server.run_now(&alice, etl, json!({}), None);
    server.wait_terminal(&alice, run);

    // no token, a wrong one, an expired one, a revoked one: 401
    let (status, err) = server.get(None, "/api/2.2/jobs/list");
    assert_eq!((status, err["error_code"].as_str()), (401, Some("UNAUTHENTICATED")), "{err}");
    let (status, _) = server.get(Some("sluice_0123456789abcdef0123456789abcdef01234567"), "/api/2.2/jobs/list");
    assert_eq!(status, 401);
    let brief = s.token("carol", "default", Some("1s"));
    assert_eq!(server.get(Some(&brief), "/api/2.2/jobs/list").0, 200);
    std::thread::sleep(Duration::from_millis(1_100));
    let (status, err) = server.get(Some(&brief), "/api/2.2/jobs/list");
    assert_eq!(status, 401, "{err}");
    assert!(err["message"].as_str().unwrap().contains("expired"), "{err}");
    let listed = s.run(&["tokens", "list", "--json"]);
    listed.assert_exit(0);
    let tokens = listed.json();
    assert!(!listed.stdout.contains(&alice), "tokens are never shown again");
    let carol = tokens.as_array().unwrap().iter().find(|t| t["principal"] == "carol").unwrap();
    s.run(&["tokens", "revoke", carol["id"].as_str().unwrap()]).assert_exit(0);
    let dave = s.token("dave", "default", None);
    let dave_id = s
        .run(&["tokens", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["principal"] == "dave")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.run(&["tokens", "revoke", &dave_id]).assert_exit(0);
    assert_eq!(server.get(Some(&dave), "/api/2.2/jobs/list").0, 401, "a revoked token");

    // another workspace's runs and jobs do not exist for bob
    let (status, err) = server.get(Some(&bob), &format!("/api/2.2/jobs/runs/get?run_id={run}"));
    assert_eq!((status, err["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")), "{err}");
    let (status, _) = server.post(Some(&bob), "/api/2.2/jobs/runs/cancel", &json!({ "run_id": run }));
    assert_eq!(status, 404);
    let body = json!({ "run_id": run, "rerun_all_failed_tasks": true });
    assert_eq!(server.post(Some(&bob), "/api/2.2/jobs/runs/repair", &body).0, 404);
    let (status, _) = server.post(Some(&bob), "/api/2.2/jobs/run-now", &json!({ "job_id": etl }));
    assert_eq!(status, 404, "alice's job id is not bob's");
    let (_, bobs) = server.get(Some(&bob), "/api/2.2/jobs/runs/list");
    assert!(empty(&bobs["runs"]), "{bobs}");
    // bob has the same jobs, with ids of his own workspace
    let bob_etl = server.job_id(&bob, "etl");
    assert_ne!(bob_etl, etl);
    let bobs_run = server.run_now(&bob, bob_etl, json!({}), None);
    let done = server.wait_terminal(&bob, bobs_run);
    assert_eq!(done["creator_user_name"], "bob");
    assert_eq!(server.get(Some(&alice), &format!("/api/2.2/jobs/runs/get?run_id={bobs_run}")).0, 404);
    // health and metrics need no token
    assert_eq!(server.get(None, "/healthz").0, 200);
}

#[test]
fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let s = Sluice::new();
    let (server, token, _) = serve(&s, &[]);
    let etl = server.job_id(&token, "etl");
    let t = Some(token.as_str());
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"job_id\": ".to_vec(), 400, "Malformed request body"),
        ("job_id of the wrong type", br#"{"job_id": "etl"}"#.to_vec(), 400, "job_id"),
        ("no job_id", b"{}".to_vec(), 400, "Missing required field: job_id"),
        ("unknown job", br#"{"job_id": 999}"#.to_vec(), 404, "Job 999 does not exist."),
        (
            "a parameter that is not a string",
            format!(r#"{{"job_id": {etl}, "job_parameters": {{"date": 5}}}}"#).into_bytes(),
            400,
            "job_parameters.date",
        ),
        (
            "an unknown parameter",
            format!(r#"{{"job_id": {etl}, "job_parameters": {{"dat": "x"}}}}"#).into_bytes(),
            400,
            "no parameter `dat`",
        ),
        (
            "legacy parameters",
            format!(r#"{{"job_id": {etl}, "notebook_params": {{"a": "b"}}}}"#).into_bytes(),
            400,
            "notebook_params",
        ),
    ];
    for (what, body, status, needle) in cases {
        let (got, err) = server.post_raw(t, "/api/2.2/jobs/run-now", &body);
        assert_eq!(got, status, "{what}: {err}");
        assert!(err["error_code"].is_string(), "{what}: {err}");
        assert!(err["message"].as_str().unwrap().contains(needle), "{what}: {err}");
    }
    // a body over the cap is refused from its Content-Length, before it is read
    let head = format!(
        "POST /api/2.2/jobs/run-now HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    );
    let answer = raw(&server.base, &head, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error_code\":\"INVALID_PARAMETER_VALUE\""), "{answer}");
    // a client that never finishes its headers is cut off
    let began = Instant::now();
    let answer = raw(&server.base, "GET /healthz HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(30));
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(began.elapsed() < Duration::from_secs(20), "the slow client was cut off after the header timeout");
    let (status, err) = server.get(t, "/api/2.2/jobs/runs/get?run_id=abc");
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("run_id"), "{err}");
    let (status, err) = server.get(t, "/api/2.2/jobs/runs/get?run_id=9007199254740991");
    assert_eq!((status, err["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")), "{err}");
    let (status, err) = server.get(t, "/api/2.2/no/such/thing");
    assert_eq!((status, err["error_code"].as_str()), (404, Some("ENDPOINT_NOT_FOUND")), "{err}");
    let (status, err) = server.get(t, "/api/2.2/jobs/run-now");
    assert_eq!(status, 405, "{err}");
    assert!(err["error_code"].is_string());
    let (status, err) = server.post(t, "/api/2.2/jobs/runs/repair", &json!({ "run_id": 1, "rerun_tasks": ["a", "a"] }));
    assert!(status == 400 && err["message"].as_str().unwrap().contains("duplicate"), "{err}");
    // nothing was written
    let (_, listed) = server.get(t, "/api/sluice/v1/runs?limit=100");
    assert_eq!(listed, json!([]), "no run was created by bad input");
}

#[test]
fn an_idempotency_token_returns_the_same_run_across_a_restart() {
    let s = Sluice::new();
    let (server, token, dir) = serve(&s, &[]);
    let etl = server.job_id(&token, "etl");
    let first = server.run_now(&token, etl, json!({}), Some("nightly-2024-05-01"));
    assert_eq!(server.run_now(&token, etl, json!({}), Some("nightly-2024-05-01")), first);
    server.kill();
    let server = s.serve(&[dir.to_str().unwrap()]);
    assert_eq!(
        server.run_now(&token, etl, json!({}), Some("nightly-2024-05-01")),
        first,
        "the same run after a restart"
    );
    let other = server.run_now(&token, etl, json!({}), Some("nightly-2024-05-02"));
    assert_ne!(other, first);
    let (_, listed) = server.get(Some(&token), "/api/sluice/v1/runs?limit=100");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    assert_eq!(result(&server.wait_terminal(&token, first)), "SUCCESS");
}

#[test]
fn sigterm_stops_gracefully_and_the_run_resumes_on_the_next_start() {
    let s = Sluice::new();
    let (server, token, dir) = serve(&s, &["--grace", "10s"]);
    let slow = server.job_id(&token, "slow");
    let run = server.run_now(&token, slow, json!({}), None);
    server.wait_until(&token, run, "running", |r| life(r) == "RUNNING");
    let began = Instant::now();
    let code = server.terminate();
    assert_eq!(code, 0, "a graceful stop exits 0");
    assert!(began.elapsed() < Duration::from_secs(10), "running attempts ended within the grace period");
    let left = s.run(&["runs", "show", &run.to_string(), "--json"]);
    // the show made this command the owner; it does not resume runs
    let left = left.json();
    assert_eq!(left["result"], Value::Null, "the run was left unfinished, to resume: {left:#}");
    let server = s.serve(&[dir.to_str().unwrap()]);
    let done = server.wait_terminal(&token, run);
    assert_eq!(result(&done), "SUCCESS", "{done:#}");
    let view = s.run(&["runs", "show", &run.to_string(), "--json"]);
    drop(server);
    let view = view.json();
    assert_eq!(view["resumed"], 1, "{view:#}");
}

#[test]
fn sigkill_during_twenty_runs_loses_nothing_and_duplicates_nothing() {
    let s = Sluice::new();
    let (server, token, dir) = serve(&s, &[]);
    let slow = server.job_id(&token, "slow");
    let submit = |server: &Server| -> Vec<u64> {
        (0..20).map(|i| server.run_now(&token, slow, json!({}), Some(&format!("batch-{i}")))).collect()
    };
    let acknowledged = submit(&server);
    server.wait_until(&token, acknowledged[0], "running", |r| life(r) == "RUNNING");
    server.kill();
    let server = s.serve(&[dir.to_str().unwrap()]);
    assert_eq!(submit(&server), acknowledged, "every token names the run it created before the kill");
    for &run in &acknowledged {
        assert_eq!(result(&server.wait_terminal(&token, run)), "SUCCESS");
    }
    let (_, listed) = server.get(Some(&token), "/api/sluice/v1/runs?limit=100");
    assert_eq!(listed.as_array().unwrap().len(), 20, "no second run for any token");
}

#[test]
fn a_failed_run_is_repaired_and_a_running_one_canceled() {
    let s = Sluice::new();
    let (server, token, _) = serve(&s, &[]);
    let flaky = server.job_id(&token, "flaky");
    let run = server.run_now(&token, flaky, json!({}), None);
    let failed = server.wait_terminal(&token, run);
    assert_eq!(result(&failed), "FAILED");
    assert!(failed["state"]["state_message"].as_str().unwrap().contains("Task b failed"), "{failed:#}");
    let c = failed["tasks"].as_array().unwrap().iter().find(|t| t["task_key"] == "c").unwrap();
    assert_eq!((life(c), result(c)), ("SKIPPED", "UPSTREAM_FAILED"));

    let body = json!({ "run_id": run, "rerun_all_failed_tasks": true, "job_parameters": { "fail": "" } });
    let (status, repaired) = server.post(Some(&token), "/api/2.2/jobs/runs/repair", &body);
    assert_eq!(status, 200, "{repaired}");
    let repair_id = repaired["repair_id"].as_u64().unwrap();
    // the repair is durable (and visible) before it answers: whether or not its quick tasks
    // have already finished, the run's history holds it at once
    let url = format!("/api/2.2/jobs/runs/get?run_id={run}&include_history=true");
    let (_, now) = server.get(Some(&token), &url);
    let ids: Vec<&Value> = now["repair_history"].as_array().unwrap().iter().map(|h| &h["id"]).collect();
    assert!(ids.contains(&&json!(repair_id)), "{now:#}");
    let done = server.wait_terminal(&token, run);
    assert_eq!(result(&done), "SUCCESS", "{done:#}");
    let (_, history) = server.get(Some(&token), &format!("/api/2.2/jobs/runs/get?run_id={run}&include_history=true"));
    let items = history["repair_history"].as_array().unwrap();
    assert_eq!(items.iter().map(|h| h["type"].as_str().unwrap()).collect::<Vec<_>>(), ["ORIGINAL", "REPAIR"]);
    assert_eq!(items[1]["id"], repair_id);
    assert_eq!(result(&items[0]), "FAILED");
    let b_runs: Vec<&Value> = done["tasks"].as_array().unwrap().iter().filter(|t| t["task_key"] == "b").collect();
    assert_eq!(b_runs.len(), 2, "one task entry per attempt");
    assert_ne!(b_runs[0]["run_id"], b_runs[1]["run_id"], "a repaired task runs with a new id");
    // repairing it again with a stale latest_repair_id is refused
    let stale = json!({ "run_id": run, "rerun_tasks": ["c"], "latest_repair_id": repair_id + 1 });
    assert_eq!(server.post(Some(&token), "/api/2.2/jobs/runs/repair", &stale).1["error_code"], "INVALID_STATE");

    let long = server.job_id(&token, "long");
    let spinning = server.run_now(&token, long, json!({}), None);
    server.wait_until(&token, spinning, "running", |r| life(r) == "RUNNING");
    let (status, _) = server.post(Some(&token), "/api/2.2/jobs/runs/cancel", &json!({ "run_id": spinning }));
    assert_eq!(status, 200);
    let canceled = server.wait_terminal(&token, spinning);
    assert_eq!(result(&canceled), "CANCELED", "{canceled:#}");
    assert_eq!(canceled["state"]["user_cancelled_or_timedout"], true);
    let (status, _) = server.post(Some(&token), "/api/2.2/jobs/runs/cancel", &json!({ "run_id": spinning }));
    assert_eq!(status, 200, "canceling a finished run is a no-op");
    // metrics count what happened
    let (status, metrics) = server.get(None, "/metrics");
    assert_eq!(status, 200);
    let text = metrics["raw"].as_str().unwrap();
    assert!(text.contains("sluice_task_attempts_total{result=\"failed\"} 1"), "{text}");
    assert!(text.contains("sluice_runs_finished_total{result=\"canceled\"} 1"), "{text}");
    assert!(text.contains("sluice_sandbox_instantiate_seconds_count"), "{text}");
}

#[test]
fn an_edited_bundle_is_served_as_edited_and_a_broken_edit_is_refused_clearly() {
    let s = Sluice::new();
    let (server, token, dir) = serve(&s, &[]);
    let file = dir.join("sluice.toml");
    let names = |server: &Server| -> Vec<String> {
        let (status, list) = server.get(Some(&token), "/api/2.2/jobs/list?limit=100");
        assert_eq!(status, 200, "{list}");
        list["jobs"].as_array().unwrap().iter().map(|j| j["settings"]["name"].as_str().unwrap().to_string()).collect()
    };
    assert!(!names(&server).contains(&"added".to_string()));
    let text = std::fs::read_to_string(&file).unwrap();
    let added = "\n[jobs.added]\n[[jobs.added.tasks]]\nkey = \"only\"\ncomponent = \"probe\"\n";
    std::fs::write(&file, format!("{text}{added}")).unwrap();
    assert!(names(&server).contains(&"added".to_string()), "the edit is served");
    let job = server.job_id(&token, "added");
    let run = server.run_now(&token, job, json!({}), None);
    assert_eq!(result(&server.wait_terminal(&token, run)), "SUCCESS");

    std::fs::write(&file, format!("{text}\n[jobs.broken\n")).unwrap();
    let (status, body) = server.get(Some(&token), "/api/2.2/jobs/list");
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no longer loads"), "{body}");
    std::fs::write(&file, &text).unwrap();
    assert!(!names(&server).contains(&"added".to_string()), "the bundle as it is again");
}
