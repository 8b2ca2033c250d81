//! Bad input and hostile guests: each a clear error or a recorded failure,
//! a non-zero exit, nothing half-written, and a host that stays healthy.

use sluice_tests::{Sluice, guest, last_attempt, task};

/// A run that was refused before it started leaves no run behind.
fn assert_no_runs(s: &Sluice) {
    let list = s.run(&["runs", "list", "--json"]);
    if list.code == 0 {
        assert_eq!(list.json(), serde_json::json!([]), "a refused run was recorded");
    }
}

#[test]
fn a_corrupt_wasm_file_is_refused_by_name() {
    let s = Sluice::new();
    let bad = s.dir.path().join("garbage.wasm");
    std::fs::write(&bad, b"this is not webassembly at all").unwrap();
    let out = s.run(&["task", "run", bad.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("garbage.wasm") && out.stderr.contains("not a WebAssembly file"), "{}", out.stderr);
    assert_no_runs(&s);

    let truncated = s.dir.path().join("truncated.wasm");
    let bytes = std::fs::read(task("fib")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = s.run(&["task", "run", truncated.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("truncated.wasm") && out.stderr.contains("not a valid WebAssembly component"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_core_module_is_refused_with_a_hint() {
    let s = Sluice::new();
    let core = s.dir.path().join("core.wasm");
    // the smallest valid core module: magic + version 1
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = s.run(&["task", "run", core.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("core WebAssembly module") && out.stderr.contains("wasm32-wasip2"), "{}", out.stderr);
}

#[test]
fn a_component_of_another_world_is_refused() {
    let s = Sluice::new();
    let out = s.run(&["task", "run", guest("cli").to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("does not implement the sluice task world"), "{}", out.stderr);
    assert_no_runs(&s);
}

#[test]
fn a_missing_component_file_is_named() {
    let s = Sluice::new();
    let out = s.run(&["task", "run", "/nonexistent/x.wasm"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("/nonexistent/x.wasm") && out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn a_trapping_guest_fails_its_attempt_with_the_panic_message() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&guest("trap"), &[]);
    out.assert_exit(1);
    assert_eq!(run["result"], "failed");
    let a = last_attempt(&run, "trap");
    assert_eq!(a["result"], "failed");
    let err = a["error"].as_str().unwrap();
    assert!(err.contains("trap") && err.contains("boom"), "{err}");
}

#[test]
fn runaway_recursion_traps_without_hurting_the_host() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&guest("trap"), &["--param", "mode=recursion"]);
    out.assert_exit(1);
    let err = last_attempt(&run, "trap")["error"].as_str().unwrap().to_string();
    // a Rust guest overflows its shadow stack in linear memory before the wasm
    // call stack: either way it is a trap confined to the guest
    assert!(err.starts_with("trap: guest trapped"), "{err}");
    // the host is fine: the same process state serves the next run
    let (out, _) = s.task_run(&task("fib"), &["--param", "n=3"]);
    out.assert_exit(0);
}

#[test]
fn a_guest_that_loops_forever_is_killed_at_its_timeout() {
    let s = Sluice::new();
    let started = std::time::Instant::now();
    let (out, run) = s.task_run(&guest("spin"), &["--timeout", "1s"]);
    out.assert_exit(1);
    assert_eq!(run["result"], "timed_out");
    let a = last_attempt(&run, "spin");
    assert_eq!(a["result"], "timed_out");
    assert!(a["error"].as_str().unwrap().contains("timed out after 1.00 s"), "{a:#}");
    // generous bound (the process also compiles the guest): the loop did not run on
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_guest_allocating_past_its_memory_limit_is_stopped() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&guest("membomb"), &["--memory", "32MiB"]);
    out.assert_exit(1);
    let a = last_attempt(&run, "membomb");
    assert_eq!(a["result"], "failed");
    assert!(a["error"].as_str().unwrap().contains("memory limit of 32.0 MiB exceeded"), "{a:#}");

    // within its limit the same guest succeeds
    let (out, run) = s.task_run(&guest("membomb"), &["--memory", "64MiB", "--param", "mb=8"]);
    out.assert_exit(0);
    assert_eq!(run["result"], "success");
}

#[test]
fn a_chatty_guest_has_its_log_capped_and_marked_truncated() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&guest("chatty"), &["--param", "bytes=5000000"]);
    out.assert_exit(0);
    let a = last_attempt(&run, "chatty");
    assert_eq!(a["result"], "success");
    assert_eq!(a["log_truncated"], true);
    let log = a["log"].as_str().unwrap();
    assert!(log.len() <= 1 << 20 && log.len() > 1000, "log is {} bytes", log.len());

    let (_, run) = s.task_run(&guest("chatty"), &["--param", "bytes=1000"]);
    assert_eq!(last_attempt(&run, "chatty")["log_truncated"], false);
}

#[test]
fn a_missing_bundle_is_named() {
    let s = Sluice::new();
    let out = s.run(&["run", "/nonexistent/bundle"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("/nonexistent/bundle") && out.stderr.contains("does not exist"), "{}", out.stderr);

    let empty = s.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = s.run(&["run", empty.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("no sluice.toml"), "{}", out.stderr);
}

#[test]
fn bundle_errors_name_file_line_and_key() {
    let s = Sluice::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown-key",
            "[bundle]\nname = \"b\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fib\"\ntimout = \"1s\"\n",
            &["sluice.toml:9:", "timout", "did you mean `timeout`"],
        ),
        (
            "missing-component",
            "[bundle]\nname = \"b\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fibb\"\n",
            &["sluice.toml:8:", "fibb"],
        ),
        (
            "cycle",
            "[bundle]\nname = \"b\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fib\"\ndepends_on = [\"b\"]\n[[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"fib\"\ndepends_on = [\"a\"]\n",
            &["sluice.toml:", "cycle", "a -> b -> a"],
        ),
        (
            "bad-duration",
            "[bundle]\nname = \"b\"\n[components]\nfib = \"{task:fib}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"fib\"\ntimeout = \"10 parsecs\"\n",
            &["sluice.toml:9:", "timeout"],
        ),
        ("syntax", "[bundle\nname = \"b\"\n", &["sluice.toml:1:", "syntax"]),
    ];
    for (name, text, needles) in cases {
        let dir = s.bundle(name, text);
        let out = s.run(&["run", dir.to_str().unwrap()]);
        out.assert_exit(2);
        for n in *needles {
            assert!(out.stderr.contains(n), "{name}: `{n}` missing from:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert_no_runs(&s);
}

#[test]
fn a_bundle_whose_component_was_not_built_says_so() {
    let s = Sluice::new();
    let dir = s.bundle("unbuilt", "[bundle]\nname = \"b\"\n[components]\nx = \"missing/x.wasm\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"x\"\n");
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("missing/x.wasm") && out.stderr.contains("did you build the tasks?"), "{}", out.stderr);
    assert_no_runs(&s);
}

#[test]
fn a_failed_task_fails_its_dependents_without_running_them() {
    let s = Sluice::new();
    let dir = s.bundle(
        "chain",
        "[bundle]\nname = \"b\"\n[components]\ntrap = \"{guest:trap}\"\nfib = \"{task:fib}\"\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"boom\"\ncomponent = \"trap\"\n\
         [[jobs.j.tasks]]\nkey = \"after\"\ncomponent = \"fib\"\ndepends_on = [\"boom\"]\nparams = { n = 3 }\n\
         [[jobs.j.tasks]]\nkey = \"side\"\ncomponent = \"fib\"\nparams = { n = 3 }\n",
    );
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    let run = out.json();
    assert_eq!(run["result"], "failed");
    assert_eq!(sluice_tests::task_of(&run, "after")["result"], "upstream_failed");
    assert_eq!(sluice_tests::task_of(&run, "after")["attempts"], serde_json::json!([]));
    assert_eq!(sluice_tests::task_of(&run, "side")["result"], "success");
}

#[test]
fn a_gigabyte_of_stdout_is_capped_and_the_host_stays_small() {
    let s = Sluice::new();
    let (out, run) = s.task_run(&guest("chatty"), &["--param", "bytes=1073741824"]);
    out.assert_exit(0);
    let a = last_attempt(&run, "chatty");
    assert_eq!(a["log_truncated"], true);
    assert_eq!(a["log"].as_str().unwrap().len(), 1 << 20, "exactly the default 1 MiB cap is kept");
}
