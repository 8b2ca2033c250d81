//! The bundle as infrastructure as code: `sluice validate`, variables and their precedence,
//! `include`, and `sluice schema` checked against every bundle in the repository.

use std::path::Path;

use serde_json::Value;
use sluice_tests::{Sluice, last_attempt, repo};

/// The JSON output of task `key` of a finished run.
fn output(run: &Value, key: &str) -> Value {
    let a = last_attempt(run, key);
    serde_json::from_str(a["output"].as_str().unwrap_or_else(|| panic!("{key} has no output: {a:#}"))).unwrap()
}

fn line_of(text: &str, needle: &str) -> u64 {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in text"));
    text[..at].matches('\n').count() as u64 + 1
}

const VARS: &str = r#"[bundle]
name = "vars"

[variables]
colour = { default = "grey", description = "the colour the task echoes" }

[targets.dev]
default = true
[targets.prod]
variables = { colour = "green" }

[components]
probe = "{guest:probe}"

[jobs.j]
[[jobs.j.tasks]]
key = "t"
component = "probe"
params = { colour = "${var.colour}", later = "{{ job.run_id }}" }
"#;

#[test]
fn variables_take_the_flag_then_the_environment_then_the_target_then_the_default() {
    let s = Sluice::new();
    let dir = s.bundle("vars", VARS);
    let dir = dir.to_str().unwrap();
    let colour = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["run", dir, "--json"];
        all.extend_from_slice(args);
        let out = s.run_with(&all, env, None);
        out.assert_exit(0);
        let seen = output(&out.json(), "t")["params"].clone();
        assert!(seen["later"].as_str().is_some_and(|r| r.parse::<u64>().is_ok()), "{{{{…}}}} still rendered: {seen}");
        seen["colour"].as_str().unwrap().to_string()
    };
    let env = [("SLUICE_VAR_colour", "red")];
    assert_eq!(colour(&["--target", "prod", "--var", "colour=blue"], &env), "blue", "--var wins");
    assert_eq!(colour(&["--target", "prod"], &env), "red", "then SLUICE_VAR_colour");
    assert_eq!(colour(&["--target", "prod"], &[]), "green", "then the target's variables");
    assert_eq!(colour(&[], &[]), "grey", "then the default");

    let out = s.run(&["run", dir, "--var", "color=blue"]);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("no variable `color`") && out.stderr.contains("did you mean `colour`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_variable_without_a_value_is_named_where_it_is_used() {
    let s = Sluice::new();
    let text = VARS.replace("{ default = \"grey\", ", "{ ");
    let dir = s.bundle("unset", &text);
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(2);
    let line = line_of(&text, "params = { colour");
    assert!(out.stderr.contains(&format!("sluice.toml:{line}:")), "{}", out.stderr);
    assert!(out.stderr.contains("variable `colour` has no value in target `dev`"), "{}", out.stderr);
    assert_no_runs(&s);
}

fn assert_no_runs(s: &Sluice) {
    let list = s.run(&["runs", "list", "--json"]);
    if list.code == 0 {
        assert_eq!(list.json(), serde_json::json!([]), "a refused run was recorded");
    }
}

#[test]
fn included_files_add_jobs_and_their_errors_name_the_file_and_line() {
    let s = Sluice::new();
    let dir = s.bundle(
        "split",
        "include = [\"jobs/*.toml\"]\n[bundle]\nname = \"split\"\n[components]\nprobe = \"{guest:probe}\"\n",
    );
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let good = "[jobs.a]\n[[jobs.a.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\nparams = { from = \"a.toml\" }\n";
    std::fs::write(dir.join("jobs/a.toml"), good).unwrap();
    let out = s.run(&["run", dir.to_str().unwrap(), "--json", "--job", "a"]);
    out.assert_exit(0);
    assert_eq!(output(&out.json(), "t")["params"]["from"], "a.toml");

    let bad = "[jobs.b]\n[[jobs.b.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\ntimout = \"1s\"\n";
    std::fs::write(dir.join("jobs/b.toml"), bad).unwrap();
    let out = s.run(&["run", dir.to_str().unwrap(), "--job", "a"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("jobs/b.toml:5:1: jobs.b.tasks[0].timout"), "{}", out.stderr);
    let out = s.run(&["validate", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(2);
    let problem = &out.json()["problems"][0];
    assert!(problem["file"].as_str().unwrap().ends_with("jobs/b.toml"), "{problem}");
    assert_eq!((problem["line"].as_u64(), problem["key"].as_str()), (Some(5), Some("jobs.b.tasks[0].timout")));
    assert_eq!(problem["hint"], "did you mean `timeout`?");
}

#[test]
fn validate_lists_every_problem_with_file_and_line_and_exits_2() {
    let s = Sluice::new();
    // a token makes `ana` a known principal of this state directory
    s.run(&["tokens", "create", "--principal", "ana"]).assert_exit(0);
    // and `sluice groups` a known group
    s.run(&["groups", "add", "all", "ana"]).assert_exit(0);
    let text = "[bundle]\nname = \"v\"\n[components]\nprobe = \"{guest:probe}\"\ncli = \"{guest:cli}\"\n\
                gone = \"missing/gone.wasm\"\n\
                [jobs.j]\npermissions = [{ level = \"IS_OWNER\", user_name = \"ana\" }, \
                { level = \"CAN_VIEW\", user_name = \"mallory\" }, { level = \"CAN_VIEW\", group_name = \"all\" }]\n\
                [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n\
                [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"cli\"\n\
                [[jobs.j.tasks]]\nkey = \"c\"\ncomponent = \"gone\"\n";
    let dir = s.bundle("v", text);
    let written = std::fs::read_to_string(dir.join("sluice.toml")).unwrap();
    let out = s.run(&["validate", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(2);
    let report = out.json();
    assert_eq!(report["valid"], false);
    let problems = report["problems"].as_array().unwrap();
    let find = |key: &str| {
        problems.iter().find(|p| p["key"] == key).unwrap_or_else(|| panic!("no problem at {key}: {report:#}"))
    };
    let cli = find("components.cli");
    assert_eq!(cli["line"].as_u64(), Some(line_of(&written, "cli =")));
    let message = cli["message"].as_str().unwrap();
    assert!(message.contains("no export `run`") && message.contains("kind = \"command\""), "{cli}");
    let gone = find("components.gone");
    assert_eq!(gone["line"].as_u64(), Some(line_of(&written, "gone =")));
    assert!(gone["message"].as_str().unwrap().contains("does not exist"), "{gone}");
    let mallory = find("jobs.j.permissions[1].user_name");
    assert_eq!(mallory["line"].as_u64(), Some(line_of(&written, "permissions")));
    assert!(mallory["message"].as_str().unwrap().contains("`mallory` is not a known principal"), "{mallory}");
    assert!(mallory["file"].as_str().unwrap().ends_with("sluice.toml"));
    assert_eq!(problems.len(), 3, "ana (a token), the group (added) and probe are fine: {report:#}");

    let valid = "[bundle]\nname = \"v\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.j]\n\
                 permissions = [{ level = \"IS_OWNER\", user_name = \"ana\" }, { level = \"CAN_VIEW\", group_name = \"all\" }]\n\
                 [[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"probe\"\n";
    let dir = s.bundle("valid", valid);
    let out = s.run(&["validate", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    assert_eq!(out.json(), serde_json::json!({ "valid": true, "target": "dev", "problems": [] }));
    let human = s.run(&["validate", dir.to_str().unwrap()]);
    human.assert_exit(0);
    assert!(human.stdout.contains("valid for target dev"), "{}", human.stdout);
}

#[test]
fn validate_checks_the_named_target_with_its_variables() {
    let s = Sluice::new();
    let text = VARS.replace("{ default = \"grey\", ", "{ ");
    let dir = s.bundle("t", &text);
    let dir = dir.to_str().unwrap();
    let out = s.run(&["validate", dir, "--json"]);
    out.assert_exit(2);
    assert!(out.json()["problems"][0]["message"].as_str().unwrap().contains("no value in target `dev`"));
    s.run(&["validate", dir, "--target", "prod"]).assert_exit(0);
    s.run(&["validate", dir, "--var", "colour=x"]).assert_exit(0);
    let out = s.run(&["validate", dir, "--target", "qa"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("no target named `qa`"), "{}", out.stderr);
}

/// Every bundle in the repository: the examples and the spec module's documented example.
fn repo_bundles() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let file = entry.unwrap().path().join("sluice.toml");
        if file.is_file() {
            out.push((file.display().to_string(), std::fs::read_to_string(&file).unwrap()));
        }
    }
    let docs = std::fs::read_to_string(repo().join("runtime/src/spec/mod.rs")).unwrap();
    let mut example = String::new();
    let mut inside = false;
    for line in docs.lines().filter_map(|l| l.strip_prefix("//!")) {
        let line = line.strip_prefix(' ').unwrap_or(line);
        match (inside, line.trim()) {
            (false, "```toml") => inside = true,
            (true, "```") => break,
            (true, _) => example.push_str(&format!("{line}\n")),
            _ => {}
        }
    }
    out.push(("runtime/src/spec/mod.rs (docs)".into(), example));
    out
}

fn toml_to_json(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).expect("valid TOML");
    serde_json::to_value(value).expect("as JSON")
}

#[test]
fn the_schema_accepts_every_bundle_in_the_repository_and_refuses_unknown_keys() {
    let s = Sluice::new();
    let out = s.run(&["schema"]);
    out.assert_exit(0);
    let schema = out.json();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let bundles = repo_bundles();
    assert!(bundles.len() >= 7, "examples and the docs example: {}", bundles.len());
    for (name, text) in &bundles {
        let errors: Vec<String> = validator.iter_errors(&toml_to_json(text)).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} does not match the schema: {errors:#?}");
    }
    let hello = std::fs::read_to_string(repo().join("examples/hello/sluice.toml")).unwrap();
    let typo = toml_to_json(&format!("{hello}\n[targets.dev]\nmod = \"development\"\n"));
    assert!(!validator.is_valid(&typo), "an unknown key in a target is refused");
    let top = toml_to_json(&format!("unknown = 1\n{hello}"));
    assert!(!validator.is_valid(&top), "an unknown top-level key is refused");
    let level = toml_to_json(&format!(
        "{hello}\n[targets.dev]\npermissions = [{{ level = \"CAN_RUN\", user_name = \"a\" }}]\n"
    ));
    assert!(!validator.is_valid(&level), "an unknown permission level is refused");
    assert!(Path::new(&repo().join("examples/hello/sluice.toml")).is_file());
}
