//! The web dashboard (`/ui/` of `sluice serve`) in a real headless Chromium: log in with a
//! token, run a job with parameters and watch it go green live, open a failed task's log,
//! repair it, see the runs matrix follow; a CAN_VIEW principal sees no repair button and
//! the API refuses it anyway. Screenshots of each page go to target/dashboard-screenshots/.

use serde_json::json;
use sluice_tests::browser::Browser;
use sluice_tests::{Server, Sluice};

/// `flaky`: `a` (sleeps `sleep` ms) → `b` (fails unless `fail` is empty; prints a line
/// to its log) → `c`. alice may run it, viewer may only look.
const BUNDLE: &str = "[bundle]\nname = \"ui\"\n[components]\nprobe = \"{guest:probe}\"\n\
[jobs.flaky]\nparameters = { fail = \"permanent\", sleep = \"0\" }\nmax_concurrent_runs = 10\n\
permissions = [{ level = \"CAN_MANAGE_RUN\", user_name = \"alice\" }, { level = \"CAN_VIEW\", user_name = \"viewer\" }]\n\
[[jobs.flaky.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\nparams = { sleep_ms = \"{{ job.parameters.sleep }}\" }\ncache = false\n\
[[jobs.flaky.tasks]]\nkey = \"b\"\ncomponent = \"probe\"\ndepends_on = [\"a\"]\ncache = false\n\
params = { fail = \"{{ job.parameters.fail }}\", print = \"hello from b\" }\n\
[[jobs.flaky.tasks]]\nkey = \"c\"\ncomponent = \"probe\"\ndepends_on = [\"b\"]\ncache = false\n";

fn serve(s: &Sluice) -> Server {
    let dir = s.bundle("ui", BUNDLE);
    s.serve(&[dir.to_str().unwrap()])
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio").block_on(f)
}

/// Open the dashboard and log in with `token`; the jobs page is shown.
async fn log_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/ui")).await;
    b.until("document.querySelector('#token')", "the login form").await;
    b.type_into("#token", token).await;
    b.click("#login").await;
    b.until("document.querySelector('#jobs tr[data-job=flaky]')", "the jobs table").await;
}

/// The run page's result once it has one (`data-result` of `#run-state`).
async fn run_result(b: &Browser) -> String {
    let v = b
        .until("document.querySelector('#run-state[data-result]:not([data-result=\"\"])')?.dataset.result", "a result")
        .await;
    v.as_str().unwrap_or_default().to_string()
}

/// The run id the page shows (`#/runs/N`).
async fn run_id(b: &Browser) -> u64 {
    let v = b.until("(location.hash.match(/^#\\/runs\\/(\\d+)/) || [])[1]", "a run page").await;
    v.as_str().and_then(|s| s.parse().ok()).expect("run id")
}

#[test]
fn log_in_run_watch_it_go_green_open_a_failed_log_repair_it_and_see_the_matrix() {
    let s = Sluice::new();
    let server = serve(&s);
    let alice = s.token("alice", "default", None);
    block_on(async {
        let b = Browser::start().await;
        b.goto(&format!("{}/ui/#/login", server.base)).await;
        b.type_into("#token", "sluice_0000000000000000000000000000000000000000").await;
        b.click("#login").await;
        let refused = b.text("form .error").await;
        assert!(refused.contains("Invalid access token"), "{refused}");
        log_in(&b, &server.base, &alice).await;
        assert_eq!(b.text("#who").await, "alice · default");
        b.screenshot("jobs").await;

        // Run now with parameters: a sleeps, so the page shows the run going before it ends
        b.click("tr[data-job=flaky] button.run-now").await;
        b.type_into("#param-fail", "").await;
        b.type_into("#param-sleep", "3000").await;
        b.click("#run-now-submit").await;
        let green = run_id(&b).await;
        b.until("document.querySelector('.node[data-key=a][data-state=r]')", "task a running").await;
        assert_eq!(b.text("#run-state").await, "running");
        b.js("window.stillTheSamePage = true", vec![]).await;
        assert_eq!(run_result(&b).await, "success");
        assert_eq!(
            b.js("return window.stillTheSamePage === true", vec![]).await,
            json!(true),
            "updated live, not reloaded"
        );
        for key in ["a", "b", "c"] {
            b.until(&format!("document.querySelector('.node[data-key={key}][data-state=s]')"), "a green task").await;
        }
        b.screenshot("run-green").await;

        // a run with the defaults fails at b: its log and error are one click away
        b.goto(&format!("{}/ui/#/jobs", server.base)).await;
        b.click("tr[data-job=flaky] button.run-now").await;
        b.click("#run-now-submit").await;
        let failed = run_id(&b).await;
        assert_ne!(failed, green);
        assert_eq!(run_result(&b).await, "failed");
        b.until("document.querySelector('.node[data-key=c][data-state=u]')", "c skipped").await;
        b.click(".node[data-key=b]").await;
        b.until("document.querySelector('#task-title')?.textContent === 'b'", "b's panel").await;
        assert!(b.text("#task-panel pre.log").await.contains("hello from b"));
        assert!(b.text("#task-panel .error").await.contains("probe failed"));
        b.screenshot("run-failed-log").await;
        b.click("#tab-timeline").await;
        b.until("document.querySelectorAll('#timeline .seg').length === 2", "two attempts on the timeline").await;
        b.screenshot("run-timeline").await;

        // repair with an override: the run goes green in place
        b.click("#repair").await;
        b.type_into("#repair-overrides", "fail=").await;
        b.click("#repair-submit").await;
        b.until("document.querySelector('#run-state')?.dataset.result === 'success'", "the repaired run green").await;
        let api = server.run(&alice, failed);
        assert_eq!(api["state"]["result_state"], "SUCCESS", "{api:#}");

        // the matrix: both runs green in every task, each cell a link to its task
        b.click("a[href$='/matrix']").await;
        for (run, key) in [(green, "a"), (failed, "b"), (failed, "c")] {
            let cell = format!("#matrix .cell[data-run='{run}'][data-task='{key}'][data-state=s]");
            b.until(&format!("document.querySelector(\"{cell}\")"), "a green cell").await;
        }
        b.screenshot("matrix").await;
        b.click(&format!("#matrix .cell[data-run='{failed}'][data-task='b']")).await;
        b.until("document.querySelector('#task-title')?.textContent === 'b'", "b's panel from the matrix").await;
        assert_eq!(b.text("#task-panel details.attempt[open] summary").await.split(" · ").nth(1), Some("success"));

        // a phone's width: everything fits without sideways scrolling
        b.client.set_window_size(390, 844).await.expect("resize");
        b.goto(&format!("{}/ui/#/jobs", server.base)).await;
        b.until("document.querySelector('#jobs')", "the jobs table").await;
        let overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth", vec![]).await;
        assert!(overflow.as_i64().unwrap_or(1) <= 0, "the jobs page scrolls sideways by {overflow} px at 390 px");
        b.screenshot("jobs-phone").await;
        b.close().await;
    });
    server.kill();
}

#[test]
fn a_viewer_sees_no_repair_button_and_the_api_refuses_it() {
    let s = Sluice::new();
    let server = serve(&s);
    let alice = s.token("alice", "default", None);
    let viewer = s.token("viewer", "default", None);
    let job = server.job_id(&alice, "flaky");
    let run = server.run_now(&alice, job, json!({}), None);
    assert_eq!(server.wait_terminal(&alice, run)["state"]["result_state"], "FAILED");
    block_on(async {
        let b = Browser::start().await;
        log_in(&b, &server.base, &viewer).await;
        b.goto(&format!("{}/ui/#/jobs", server.base)).await;
        b.until("document.querySelector('#jobs tbody tr .read-only') !== null", "the jobs table").await;
        assert!(!b.exists(".run-now").await, "a viewer is offered no Run now");
        assert!(b.text("#jobs .read-only").await.contains("CAN_VIEW"));
        b.goto(&format!("{}/ui/#/runs/{run}?task=b", server.base)).await;
        assert_eq!(run_result(&b).await, "failed");
        b.until("document.querySelector('#task-title')?.textContent === 'b'", "b's panel").await;
        assert!(b.text("#task-panel pre.log").await.contains("hello from b"), "a viewer reads logs");
        assert!(b.text("#read-only").await.contains("CAN_VIEW"));
        assert!(!b.exists("#repair").await && !b.exists("#cancel").await && !b.exists(".repair-task").await);
        b.screenshot("run-viewer").await;
        // the page's own token is refused by the API: a hidden button is not the boundary
        let status = b
            .js_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/api/sluice/v1/runs/' + arguments[0] + '/repair', { method: 'POST',
                   headers: { Authorization: 'Bearer ' + sessionStorage.getItem('sluice.token'),
                              'Content-Type': 'application/json' }, body: '{}' })
                   .then((r) => done(r.status));",
                vec![json!(run)],
            )
            .await;
        assert_eq!(status, json!(403), "the API refuses the viewer's repair");
        b.close().await;
    });
    let (status, err) = server.post(Some(&viewer), &format!("/api/sluice/v1/runs/{run}/repair"), &json!({}));
    assert_eq!((status, err["error_code"].as_str()), (403, Some("PERMISSION_DENIED")), "{err}");
    let body = json!({ "run_id": run, "rerun_all_failed_tasks": true });
    assert_eq!(server.post(Some(&viewer), "/api/2.2/jobs/runs/repair", &body).0, 403);
    assert_eq!(server.post(Some(&viewer), "/api/2.2/jobs/runs/cancel", &json!({ "run_id": run })).0, 403);
    let run_now = json!({ "job_id": job });
    assert_eq!(server.post(Some(&viewer), "/api/2.2/jobs/run-now", &run_now).0, 403);
    let after = server.wait_terminal(&alice, run);
    let b_entries = after["tasks"].as_array().unwrap().iter().filter(|t| t["task_key"] == "b").count();
    assert_eq!((after["state"]["result_state"].as_str(), b_entries), (Some("FAILED"), 1), "nothing was repaired");
    server.kill();
}

/// The WCAG contrast ratio of the text of every element matching the selectors, against
/// the first opaque background behind it: `[[selector, ratio], …]` of those below 4.5.
const LOW_CONTRAST: &str = r#"
const lum = (c) => {
  const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const bg = (el) => {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    const alpha = (c.match(/[\d.]+/g) || [])[3];
    if (c !== "transparent" && alpha !== "0") return c;
  }
  return "rgb(255, 255, 255)";
};
const low = [];
for (const sel of arguments[0]) {
  for (const el of document.querySelectorAll(sel)) {
    if (!el.textContent.trim() || !el.offsetParent) continue;
    const [a, b] = [lum(getComputedStyle(el).color), lum(bg(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push([sel, el.textContent.trim().slice(0, 30), Math.round(ratio * 100) / 100]);
  }
}
return low;
"#;

#[test]
fn deployments_secrets_audit_and_search_pages_work_by_keyboard_with_readable_contrast() {
    let s = Sluice::new();
    let dir = s.bundle("ui", BUNDLE);
    let server = s.serve(&[dir.to_str().unwrap()]);
    let alice = s.token("alice", "default", None);
    let as_alice = |args: &[&str], stdin: Option<&[u8]>| s.run_with(args, &[("SLUICE_PRINCIPAL", "alice")], stdin);
    as_alice(&["deploy", "--bundle", dir.to_str().unwrap()], None).assert_exit(0);
    as_alice(&["secrets", "scopes", "create", "db"], None).assert_exit(0);
    as_alice(&["secrets", "put", "db", "password"], Some(b"hunter2-very-secret")).assert_exit(0);
    let job = server.job_id(&alice, "flaky");
    let run = server.run_now(&alice, job, json!({}), None);
    assert_eq!(server.wait_terminal(&alice, run)["state"]["result_state"], "FAILED");
    block_on(async {
        let b = Browser::start().await;
        log_in(&b, &server.base, &alice).await;

        b.goto(&format!("{}/ui/#/deployments?bundle=ui&target=dev", server.base)).await;
        b.until("document.querySelector('table[aria-label=Deployments] tbody tr.current')", "the current deployment")
            .await;
        assert!(b.text("table[aria-label=Journal] tbody").await.contains("alice"));
        b.screenshot("deployments").await;

        b.goto(&format!("{}/ui/#/secrets?target=dev", server.base)).await;
        let keys = b.text("table[aria-label='Keys of db'] tbody").await;
        assert!(keys.contains("password") && keys.contains("alice"), "{keys}");
        let page = b.js("return document.body.innerText", vec![]).await;
        assert!(!page.as_str().unwrap().contains("hunter2"), "a secret value is never shown");
        b.screenshot("secrets").await;

        b.goto(&format!("{}/ui/#/audit?scope=db", server.base)).await;
        let audit = b.text("table[aria-label='Audit records'] tbody").await;
        assert!(audit.contains("dev/db") && audit.contains("alice"), "{audit}");
        b.screenshot("audit").await;

        // by keyboard: Tab from the skip link to the Search link, Enter, type, Enter
        b.js("document.querySelector('.skip').focus()", vec![]).await;
        let mut reached = false;
        for _ in 0..20 {
            b.client.active_element().await.expect("focus").send_keys("\u{E004}").await.expect("Tab");
            let here = b.js("return document.activeElement.getAttribute('href')", vec![]).await;
            if here == json!("#/search") {
                reached = true;
                break;
            }
        }
        assert!(reached, "the Search link is reachable with Tab");
        b.client.active_element().await.expect("focus").send_keys("\u{E007}").await.expect("Enter");
        b.until("document.querySelector('#search-form-q')", "the search form").await;
        b.js("document.querySelector('#search-form-q').focus()", vec![]).await;
        b.client.active_element().await.expect("focus").send_keys("HELLO from\u{E007}").await.expect("type");
        let summary = b.text("#search-summary").await;
        assert!(summary.starts_with("1 hits"), "one log line matches, case-insensitively: {summary}");
        let hit = b.text("table[aria-label='Search results'] tbody tr").await;
        assert!(hit.contains("hello from b") && hit.contains("log"), "{hit}");
        b.screenshot("search").await;
        b.click("table[aria-label='Search results'] tbody a").await;
        b.until("document.querySelector('#task-title')?.textContent === 'b'", "the hit's task").await;

        for page in ["jobs", "search?q=hello%20from", "audit", "secrets"] {
            b.goto(&format!("{}/ui/#/{page}", server.base)).await;
            b.until("document.querySelector('main table, main form')", "the page").await;
            let selectors = json!(["nav a", "h1", "h2", ".muted", "th", "td", "code", "button", "label"]);
            let low = b.js(LOW_CONTRAST, vec![selectors]).await;
            assert_eq!(low, json!([]), "text below 4.5:1 contrast on #/{page}");
        }
        b.close().await;
    });
    // the search API: a short query is bad input; another workspace's runs are not searched
    let (status, err) = server.get(Some(&alice), "/api/sluice/v1/dashboard/search?q=he");
    assert_eq!(status, 400, "{err}");
    let viewer = s.token("alice", "elsewhere", None);
    let (status, found) = server.get(Some(&viewer), "/api/sluice/v1/dashboard/search?q=hello%20from");
    assert_eq!((status, found["hits"].as_array().map(Vec::len)), (200, Some(0)), "{found}");
    server.kill();
}
