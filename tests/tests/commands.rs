//! Command tasks in pipelines: stdout that flows downstream (`stdout = "file:NAME"`,
//! `stdin_from`, `{{ tasks.KEY.output }}`), programs' own exit codes and
//! `success_exit_codes`, `sluice task run --mount/--allow-host/--stdout-file`, the guest's
//! `/`, sleeps that advance the virtual clocks, and `kind = "python"` scripts.

use std::path::PathBuf;

use serde_json::{Value, json};
use sluice_tests::{Sluice, guest, last_attempt, repo};

fn output(run: &Value, key: &str) -> Value {
    let text = last_attempt(run, key)["output"].as_str().unwrap_or_else(|| panic!("no output of {key}: {run:#}"));
    serde_json::from_str(text).expect("JSON output")
}

/// The C program of examples/polyglot (WASI preview1, adapted at load time): counts stdin,
/// exits 2 when it is empty.
fn wordcount() -> PathBuf {
    let path = repo().join("examples/polyglot/wordcount.wasm");
    assert!(path.is_file(), "{} is missing: scripts/setup builds it", path.display());
    path
}

/// The Python interpreter component (a `wasi:cli/command`) scripts/setup builds.
fn python() -> PathBuf {
    let path = repo().join("examples/python-script/build/python.wasm");
    assert!(path.is_file(), "{} is missing: scripts/setup builds it (componentize-py)", path.display());
    path
}

const HEAD: &str = "[bundle]\nname = \"cmds\"\n[components]\ncmd = \"{guest:cmd}\"\nfs = \"{guest:fsprobe}\"\n";

#[test]
fn command_stdout_flows_downstream_as_a_file_as_stdin_and_as_a_reference() {
    let s = Sluice::new();
    let toml = format!(
        "{HEAD}wc = {:?}\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"emit\"\nkind = \"command\"\ncomponent = \"cmd\"\nargs = [\"a\", \"b\"]\nstdin = \"hello\"\nstdout = \"file:emit/out.json\"\n\
         [[jobs.j.tasks]]\nkey = \"count\"\nkind = \"command\"\ncomponent = \"wc\"\ndepends_on = [\"emit\"]\nstdin_from = \"emit\"\nstdout = \"output\"\n\
         [[jobs.j.tasks]]\nkey = \"count_file\"\nkind = \"command\"\ncomponent = \"wc\"\ndepends_on = [\"emit\"]\nstdin_from = \"emit:emit/out.json\"\nstdout = \"output\"\n\
         [[jobs.j.tasks]]\nkey = \"read\"\ncomponent = \"fs\"\ndepends_on = [\"emit\"]\nparams = {{ read = \"/in/emit/emit/out.json\" }}\n\
         [[jobs.j.tasks]]\nkey = \"echo\"\nkind = \"command\"\ncomponent = \"cmd\"\ndepends_on = [\"count\"]\nargs = [\"{{{{ tasks.count.output }}}}\"]\nstdin_from = \"count\"\nstdout = \"output\"\n",
        wordcount().to_str().unwrap()
    );
    let dir = s.bundle("flow", &toml);
    let (code, run) = s.run_json(&dir, &[]);
    assert_eq!(code, 0, "{run:#}");
    let emitted =
        output(&run, "read")["read"]["ok"].as_str().expect("emit's stdout at /in/emit/emit/out.json").to_string();
    let emitted_json: Value = serde_json::from_str(&emitted).unwrap();
    assert_eq!(emitted_json["args"], json!(["emit", "a", "b"]));
    assert!(!last_attempt(&run, "emit")["log"].as_str().unwrap().contains("\"args\""), "stdout is not in the log");
    let count = output(&run, "count");
    assert_eq!(count["bytes"], emitted.len(), "stdin_from = TASK reads its stdout file: {count:#}");
    assert_eq!(output(&run, "count_file"), count, "stdin_from = TASK:FILE reads the same file");
    let echo = output(&run, "echo");
    let arg: Value = serde_json::from_str(echo["args"][1].as_str().unwrap()).unwrap();
    assert_eq!(arg, count, "{{ tasks.count.output }} is the upstream output");
    let stdin: Value = serde_json::from_str(echo["stdin"].as_str().unwrap().trim()).unwrap();
    assert_eq!(stdin, count, "stdin_from a task without a stdout file reads its output");
}

#[test]
fn a_stdout_file_is_bounded_by_the_out_limit_not_the_output_limit() {
    let s = Sluice::new();
    let big = "x".repeat(3000);
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"big\"\nkind = \"command\"\ncomponent = \"cmd\"\nstdin = \"{big}\"\nstdout = \"file:big.json\"\nlimits = {{ max_output = \"1KiB\" }}\n\
         [[jobs.j.tasks]]\nkey = \"capped\"\nkind = \"command\"\ncomponent = \"cmd\"\nstdin = \"{big}\"\nstdout = \"file:big.json\"\nlimits = {{ max_out = \"2KiB\" }}\n"
    );
    let (code, run) = s.run_json(&s.bundle("cap", &toml), &[]);
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(last_attempt(&run, "big")["result"], "success", "over max_output, under max_out");
    let error = last_attempt(&run, "capped")["error"].as_str().unwrap();
    assert!(error.contains("over the limit of 2.0 KiB") || error.contains("over the limit of 2 KiB"), "{error}");
}

#[test]
fn bad_stdout_and_stdin_from_values_are_refused_naming_file_and_line() {
    let s = Sluice::new();
    let task = |extra: &str| {
        format!(
            "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\nkind = \"command\"\ncomponent = \"cmd\"\n\
             [[jobs.j.tasks]]\nkey = \"b\"\nkind = \"command\"\ncomponent = \"cmd\"\n{extra}\n"
        )
    };
    let cases = [
        ("stdout = \"file:../x\"", "is not a file name inside /out"),
        ("stdout = \"flie:x\"", "unknown stdout `flie:x`"),
        ("stdin_from = \"a\"", "does not depend on `a`; add it to `depends_on`"),
        ("depends_on = [\"a\"]\nstdin_from = \"a:/etc/passwd\"", "is not a file name inside /out"),
        ("stdin = \"x\"\nstdin_from = \"a\"", "has both `stdin` and `stdin_from`"),
        ("success_exit_codes = [0, 256]", "exit code 256 is out of range"),
        ("depends_on = [\"a\"]\nargs = [\"{{ tasks.nope.output }}\"]", "no task `nope`"),
    ];
    for (n, (extra, needle)) in cases.iter().enumerate() {
        let dir = s.bundle(&format!("bad{n}"), &task(extra));
        let out = s.run(&["run", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(needle), "{extra}: {}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:"), "names file and line: {}", out.stderr);
    }
}

#[test]
fn a_programs_own_exit_code_is_recorded_and_success_exit_codes_are_honoured() {
    let s = Sluice::new();
    let toml = format!(
        "[bundle]\nname = \"codes\"\n[components]\npy = {:?}\nwc = {:?}\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"empty\"\nkind = \"command\"\ncomponent = \"wc\"\nstdin = \"\"\n\
         [[jobs.j.tasks]]\nkey = \"two\"\nkind = \"command\"\ncomponent = \"py\"\nargs = [\"-c\", \"import sys; print('nothing found'); sys.exit(2)\"]\n\
         [[jobs.j.tasks]]\nkey = \"one_ok\"\nkind = \"command\"\ncomponent = \"py\"\nargs = [\"-c\", \"import sys; sys.exit(1)\"]\nsuccess_exit_codes = [0, 1]\n",
        python().to_str().unwrap(),
        wordcount().to_str().unwrap()
    );
    let (code, run) = s.run_json(&s.bundle("codes", &toml), &[]);
    let empty = last_attempt(&run, "empty");
    assert!(empty["error"].as_str().unwrap().contains("exited with code 2"), "a C program's exit(2): {empty:#}");
    assert_eq!(code, 1, "{run:#}");
    let two = last_attempt(&run, "two");
    assert!(two["error"].as_str().unwrap().contains("exited with code 2"), "{two:#}");
    let one = last_attempt(&run, "one_ok");
    assert_eq!(one["result"], "success", "{one:#}");
    assert!(one["log"].as_str().unwrap().contains("exited with code 1, a success code"), "{one:#}");
}

#[test]
fn task_run_takes_mounts_allowed_hosts_and_a_stdout_file() {
    let s = Sluice::new();
    let data = s.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("poem.txt"), "one two\nthree\n").unwrap();
    let to = s.dir.path().join("stdout.json");
    let mount = format!("{}:/data:ro", data.display());
    let out = s.run(&[
        "task",
        "run",
        python().to_str().unwrap(),
        "--command",
        "--mount",
        &mount,
        "--allow-host",
        "http://127.0.0.1:9",
        "--stdout-file",
        to.to_str().unwrap(),
        "--",
        "-c",
        "import json; print(json.dumps({'text': open('/data/poem.txt').read()}))",
    ]);
    out.assert_exit(0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&to).expect("the stdout file")).unwrap();
    assert_eq!(saved["text"], "one two\nthree\n");
    let bad = s.run(&["task", "run", python().to_str().unwrap(), "--command", "--mount", "/nonexistent:/data"]);
    bad.assert_exit(2);
    assert!(bad.stderr.contains("/nonexistent"), "{}", bad.stderr);
}

/// The usual Python idioms: `/` lists the mount points, `os.makedirs` of a mount point
/// with `exist_ok` works, and `time.monotonic()` advances by what `time.sleep` slept.
#[test]
fn python_idioms_work_makedirs_root_listing_and_monotonic_time_across_a_sleep() {
    let s = Sluice::new();
    let code = "import json, os, time\n\
                os.makedirs('/out', exist_ok=True)\n\
                os.makedirs('/out/reports/daily', exist_ok=True)\n\
                open('/out/reports/daily/a.txt', 'w').write('x')\n\
                t = time.monotonic(); w = time.time(); time.sleep(0.3)\n\
                print(json.dumps({'root': sorted(os.listdir('/')), 'mono': time.monotonic() - t, 'wall': time.time() - w}))\n";
    let toml = format!(
        "[bundle]\nname = \"idioms\"\n[components]\npy = {:?}\n[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"py\"\nkind = \"command\"\ncomponent = \"py\"\nargs = [\"-c\", {:?}]\nstdout = \"output\"\n\
         mounts = [{{ host = \"data\", guest = \"/data\" }}]\n",
        python().to_str().unwrap(),
        code
    );
    let dir = s.bundle("idioms", &toml);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let (status, run) = s.run_json(&dir, &[]);
    assert_eq!(status, 0, "{run:#}");
    let o = output(&run, "py");
    assert_eq!(o["root"], json!(["data", "out", "tmp"]), "{o:#}");
    let mono = o["mono"].as_f64().unwrap();
    assert!((0.3..0.31).contains(&mono), "monotonic time advanced by the sleep: {mono}");
    let wall = o["wall"].as_f64().unwrap();
    assert!((0.3..0.31).contains(&wall), "wall time too: {wall}");
    let write = s.run(&["task", "run", python().to_str().unwrap(), "--command", "--", "-c", "open('/x', 'w')"]);
    write.assert_exit(1);
}

#[test]
fn a_python_script_task_runs_in_the_runner_with_mounts_and_stdout() {
    let s = Sluice::new();
    let toml = "[bundle]\nname = \"script\"\n[jobs.j]\n\
                [[jobs.j.tasks]]\nkey = \"etl\"\nkind = \"python\"\nscript = \"etl.py\"\nargs = [\"--scale\", \"{{ job.parameters.scale }}\"]\n\
                mounts = [{ host = \"data\", guest = \"/data\" }]\nstdout = \"file:rows.json\"\n\
                [[jobs.j.tasks]]\nkey = \"total\"\nkind = \"python\"\nscript = \"total.py\"\ndepends_on = [\"etl\"]\nstdin_from = \"etl\"\nstdout = \"output\"\n";
    let dir = s.bundle("script", &toml.replace("[jobs.j]\n", "[jobs.j]\nparameters = { scale = \"10\" }\n"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/n.csv"), "1\n2\n3\n").unwrap();
    std::fs::write(
        dir.join("etl.py"),
        "import json, sys\nscale = int(sys.argv[sys.argv.index('--scale') + 1])\n\
         rows = [int(l) * scale for l in open('/data/n.csv')]\nprint(json.dumps({'rows': rows, 'msg': f'{{braces}}'}))\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("total.py"),
        "import json, sys\nprint(json.dumps({'total': sum(json.load(sys.stdin)['rows'])}))\n",
    )
    .unwrap();
    let runner = python();
    let (code, run) = {
        let out = s.run_with(
            &["run", dir.to_str().unwrap(), "--json"],
            &[("SLUICE_PYTHON_RUNNER", runner.to_str().unwrap())],
            None,
        );
        (out.code, out.json())
    };
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(output(&run, "total"), json!({"total": 60}));

    // without a runner: a clear error naming the command that builds it
    let out = s.run_with(
        &["run", dir.to_str().unwrap()],
        &[("SLUICE_PYTHON_RUNNER", s.dir.path().join("none.wasm").to_str().unwrap())],
        None,
    );
    out.assert_exit(2);
    assert!(
        out.stderr.contains("the Python runner is not built") && out.stderr.contains("sluice_sdk.build --runner"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_component_of_the_wrong_kind_is_refused_before_it_is_compiled_with_a_hint() {
    let s = Sluice::new();
    let out = s.run(&["task", "run", guest("cli").to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("no export `run`") && out.stderr.contains("kind = \"command\""), "{}", out.stderr);
    let out = s.run(&["task", "run", guest("probe").to_str().unwrap(), "--command"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("remove `kind = \"command\"`"), "{}", out.stderr);
}
