//! `sluice new task` and `sluice build`: a task scaffolded from the SDK's templates, built from
//! source (Python through componentize-py, Rust through cargo), content-addressed, and refused
//! by `run`, `validate` and `deploy` while its artifact is missing or older than its sources.

use std::path::Path;

use serde_json::Value;
use sluice_tests::{Out, Sluice, last_attempt, repo};

fn bundle_with(dir: &Path, component: &str) {
    let text = format!(
        "[bundle]\nname = \"built\"\n\n[components]\n{component}\n\n[jobs.hello]\n\n\
         [[jobs.hello.tasks]]\nkey = \"greet\"\ncomponent = \"greet\"\nparams = {{ name = \"ada\", times = 2 }}\n"
    );
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
}

fn build(s: &Sluice, dir: &Path) -> (Out, Value) {
    let out = s.run_in(dir, &["build", ".", "--json"], &[("CARGO_TARGET_DIR", rust_target().to_str().unwrap())]);
    let line = out.stdout.lines().last().unwrap_or("null").to_string();
    (out, serde_json::from_str(&line).unwrap_or(Value::Null))
}

/// Rust tasks built by the tests share one cargo target directory (not the one `cargo test`
/// holds locked).
fn rust_target() -> std::path::PathBuf {
    repo().join("target").join("sluice-test-task-builds")
}

fn greeting(s: &Sluice, dir: &Path) -> String {
    let out = s.run_in(dir, &["run", ".", "--json"], &[]);
    out.assert_exit(0);
    let output: Value = serde_json::from_str(last_attempt(&out.json(), "greet")["output"].as_str().unwrap()).unwrap();
    output["greeting"].as_str().unwrap().to_string()
}

#[test]
fn a_python_task_is_scaffolded_built_once_and_refused_when_stale() {
    let s = Sluice::new();
    let dir = s.dir.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    let out = s.run_in(&dir, &["new", "task", "greet", "--lang", "python"], &[]);
    out.assert_exit(0);
    assert!(out.stdout.contains("tasks/greet/task.py") && out.stderr.contains("lang = \"python\""), "{out:?}");
    bundle_with(&dir, "greet = { path = \"tasks/greet\", lang = \"python\" }");

    // not built yet: every loader says what to do
    for args in [&["run", "."][..], &["validate", "."][..]] {
        let out = s.run_in(&dir, args, &[]);
        out.assert_exit(2);
        assert!(out.stderr.contains("has not been built: run `sluice build`"), "{args:?}: {}", out.stderr);
    }

    let (out, first) = build(&s, &dir);
    out.assert_exit(0);
    assert_eq!(first["outcome"], "built", "{out:?}");
    assert!(dir.join("build/greet.wasm").is_file());
    let (_, again) = build(&s, &dir);
    assert_eq!(again["outcome"], "up to date");
    assert_eq!(again["hash"], first["hash"]);
    assert_eq!(greeting(&s, &dir), "hello ada from greet (attempt 0)");

    // changed sources: refused until rebuilt, then the new code runs
    let task = dir.join("tasks/greet/task.py");
    let code = std::fs::read_to_string(&task).unwrap().replace("f\"hello {name}", "f\"good day {name}");
    std::fs::write(&task, code).unwrap();
    let out = s.run_in(&dir, &["run", "."], &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("changed since the last `sluice build`"), "{}", out.stderr);
    let (out, rebuilt) = build(&s, &dir);
    out.assert_exit(0);
    assert_eq!(rebuilt["outcome"], "built");
    assert_ne!(rebuilt["hash"], first["hash"]);
    assert_eq!(greeting(&s, &dir), "good day ada from greet (attempt 0)");

    // a module the code imports inside a function, missing: the build fails naming it
    let code = std::fs::read_to_string(&task)
        .unwrap()
        .replace("    name = params", "    import no_such_mod\n    name = params");
    std::fs::write(&task, code).unwrap();
    let (out, _) = build(&s, &dir);
    out.assert_exit(1);
    assert!(out.stderr.contains("no_such_mod"), "{}", out.stderr);
    s.run_in(&dir, &["run", "."], &[]).assert_exit(2);
}

#[test]
fn a_rust_task_is_scaffolded_and_built_with_cargo() {
    let s = Sluice::new();
    let dir = s.dir.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    s.run_in(&dir, &["new", "task", "greet", "--lang", "rust", "--dir", "src/greet"], &[]).assert_exit(0);
    bundle_with(&dir, "greet = { path = \"src/greet\", lang = \"rust\" }");
    let (out, built) = build(&s, &dir);
    out.assert_exit(0);
    assert_eq!(built["outcome"], "built", "{out:?}");
    assert_eq!(built["lang"], "rust");
    assert_eq!(greeting(&s, &dir), "hello ada from greet (attempt 0)");
    // cargo wrote Cargo.lock during the build: still up to date
    assert_eq!(build(&s, &dir).1["outcome"], "up to date");
}

#[test]
fn bad_input_to_new_and_build_is_named() {
    let s = Sluice::new();
    let dir = s.dir.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    let out = s.run_in(&dir, &["new", "task", "Greet", "--lang", "python"], &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("bad task name `Greet`"), "{}", out.stderr);
    s.run_in(&dir, &["new", "task", "greet", "--lang", "python"], &[]).assert_exit(0);
    let out = s.run_in(&dir, &["new", "task", "greet", "--lang", "python"], &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);

    bundle_with(&dir, "greet = { path = \"tasks/greet\", lang = \"go\" }");
    let out = s.run_in(&dir, &["build", "."], &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("sluice.toml:5") && out.stderr.contains("unknown lang `go`"), "{}", out.stderr);

    bundle_with(&dir, "greet = { path = \"tasks/greet\", lang = \"python\" }");
    let out = s.run_in(&dir, &["build", ".", "--component", "nope"], &[]);
    out.assert_exit(2);
    assert!(out.stderr.contains("no component named `nope`"), "{}", out.stderr);
}
