//! Command tasks (`kind = "command"`): args, env, stdin, stdout, and what they refuse.

use std::collections::BTreeMap;

use super::sandbox::dirs;
use super::*;
use crate::spec::{CommandSpec, MountMode, Stdin, TaskKind};

/// Task `a` (component) and a task `t` after it written as `lines`, in a job with
/// parameters `who` and `level`.
fn after_a(lines: &str) -> String {
    with_job(&format!(
        "[jobs.hello]\nparameters = {{ who = \"x\", level = \"1\" }}\n\n{TASK_A}\n\
         [[jobs.hello.tasks]]\nkey = \"t\"\ndepends_on = [\"a\"]\n{lines}\n"
    ))
}

fn command(lines: &str) -> String {
    after_a(&format!("kind = \"command\"\ncomponent = \"clean\"\n{lines}"))
}

const T: &str = "jobs.hello.tasks[1]";

#[test]
fn a_command_task_with_every_field() {
    let text = command(
        "args = [\"--name\", \"{{ job.parameters.who }}\", 3, true]\n\
         env = { GREETING = \"hi\", LEVEL = \"{{ job.parameters.level }}\", _rows = \"{{ tasks.a.values.rows }}\" }\n\
         stdin = \"text fed to {{ task.key }}\"\nstdout = \"output\"",
    );
    let t = task_of(&text, "t");
    let env: BTreeMap<String, String> =
        [("GREETING", "hi"), ("LEVEL", "{{ job.parameters.level }}"), ("_rows", "{{ tasks.a.values.rows }}")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(
        t.kind,
        TaskKind::Command(CommandSpec {
            component: "clean".into(),
            args: vec!["--name".into(), "{{ job.parameters.who }}".into(), "3".into(), "true".into()],
            env,
            stdin: Some(Stdin::Text("text fed to {{ task.key }}".into())),
            stdout_is_output: true,
            stdout_file: None,
            success_exit_codes: Vec::new(),
            script: None,
        })
    );
    assert_eq!(t.component(), Some("clean"));
    assert_eq!(t.kind.name(), "command");
    assert!(t.exec.params.is_empty());
}

#[test]
fn a_bare_command_task_logs_stdout_and_reads_nothing() {
    let t = task_of(&command(""), "t");
    assert_eq!(
        t.kind,
        TaskKind::Command(CommandSpec {
            component: "clean".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: None,
            stdout_is_output: false,
            stdout_file: None,
            success_exit_codes: Vec::new(),
            script: None,
        })
    );
    let t = task_of(&command("stdout = \"log\""), "t");
    assert!(matches!(t.kind, TaskKind::Command(CommandSpec { stdout_is_output: false, .. })));
    let text = after_a("kind = \"component\"\ncomponent = \"clean\"\nparams = { x = \"1\" }");
    assert_eq!(
        task_of(&text, "t").kind,
        TaskKind::Component { component: "clean".into() },
        "`kind = \"component\"` changes nothing"
    );
}

#[test]
fn stdin_file_is_resolved_and_checked() {
    let d = dirs();
    let t = d.task(&command("stdin_file = \"data/input.txt\""), "t");
    let expected = d.root.join("data/input.txt");
    assert!(
        matches!(t.kind, TaskKind::Command(CommandSpec { stdin: Some(Stdin::File(path)), .. }) if path == expected)
    );
    let text = HEAD.replace("name = \"hello\"", "name = \"hello\"\ndata_roots = [\"../shared\"]");
    let text = format!("{text}{}", &command("stdin_file = \"../shared/in.txt\"")[HEAD.len()..]);
    let t = d.task(&text, "t");
    let expected = d.base.join("shared/in.txt");
    assert!(
        matches!(t.kind, TaskKind::Command(CommandSpec { stdin: Some(Stdin::File(path)), .. }) if path == expected)
    );

    let key = format!("{T}.stdin_file");
    let cases = [
        ("data/missing.txt", "stdin_file `data/missing.txt` does not exist (looked for `"),
        ("data", "stdin_file `data` is a directory, not a file"),
        ("../outside/secret.txt", "stdin_file `../outside/secret.txt` resolves to"),
        ("escape/secret.txt", "leads through a symlink to"),
    ];
    for (file, needle) in cases {
        let text = command(&format!("stdin_file = \"{file}\""));
        let shown = d.error(&text, "stdin_file", &key, needle);
        if file.contains("secret") {
            assert!(shown.contains("[bundle] data_roots"), "{shown}");
        }
    }
}

#[test]
fn command_tasks_take_the_sandbox_keys() {
    let d = dirs();
    let text = command(
        "mounts = [{ host = \"data/scratch\", guest = \"/work\", mode = \"rw\" }]\n\
         allow_hosts = [\"http://localhost:8080\"]\ntimeout = \"5s\"\nlimits = { fuel = 10 }\n\
         retries = { max = 1 }\nsecrets = [\"s/k\"]",
    );
    let t = d.task(&text, "t");
    assert_eq!(t.exec.mounts[0].mode, MountMode::Rw);
    assert_eq!(t.exec.allow_hosts[0].port, Some(8080));
    assert_eq!(t.exec.limits.fuel, Some(10));
    assert!(t.timeout.is_some() && t.retries.is_some() && t.exec.secrets == ["s/k"]);
}

#[test]
fn kind_accepts_only_command() {
    let text = after_a("kind = \"comand\"\ncomponent = \"clean\"");
    let shown = assert_error(
        &text,
        line_of(&text, "comand"),
        &format!("{T}.kind"),
        "unknown kind `comand` (did you mean `command`?)",
    );
    assert!(shown.contains("the accepted values are `command`") && shown.contains("`python`"), "{shown}");
    let text = after_a("kind = \"python\"\ncomponent = \"clean\"");
    assert_error(
        &text,
        line_of(&text, "component = \"clean\""),
        &format!("{T}.component"),
        "is `kind = \"python\"`: it runs `script` in the Python runner, so it takes no `component`",
    );
    let text = after_a("kind = 1\ncomponent = \"clean\"");
    assert_error(&text, line_of(&text, "kind = 1"), &format!("{T}.kind"), "expected a string");
    let text = after_a("kind = \"command\"\ncondition = { op = \"equal_to\", left = \"a\", right = \"b\" }");
    assert_error(
        &text,
        line_of(&text, "kind ="),
        &format!("{T}.kind"),
        "`kind = \"command\"` needs `component = \"…\"`, but task `t` is a condition task",
    );
    let text = after_a("kind = \"command\"\ncomponent = \"clen\"");
    assert_error(
        &text,
        line_of(&text, "clen"),
        &format!("{T}.component"),
        "unknown component `clen` (did you mean `clean`?)",
    );
    let text = after_a("knd = \"command\"\ncomponent = \"clean\"");
    assert_error(&text, line_of(&text, "knd"), &format!("{T}.knd"), "did you mean `kind`?");
}

#[test]
fn command_keys_only_on_command_tasks() {
    let cases = [
        (
            "component = \"clean\"\nargs = [\"-v\"]",
            "args",
            "`args` applies only to command tasks, not to component task `t`; add `kind = \"command\"`",
        ),
        ("component = \"clean\"\nstdin_file = \"x\"", "stdin_file", "`stdin_file` applies only to command tasks"),
        (
            "condition = { op = \"equal_to\", left = \"a\", right = \"b\" }\nstdout = \"output\"",
            "stdout",
            "`stdout` applies only to command tasks, not to condition task `t`",
        ),
        (
            "for_each = { inputs = \"[]\", task = { component = \"clean\" } }\nenv = { A = \"1\" }",
            "env",
            "`env` applies only to command tasks, not to for_each task `t`",
        ),
    ];
    for (lines, key, needle) in cases {
        let text = after_a(lines);
        assert_error(&text, line_of(&text, &format!("{key} =")), &format!("{T}.{key}"), needle);
    }
    let text = after_a("for_each = { inputs = \"[]\", task = { component = \"clean\", args = [] } }");
    assert_error(
        &text,
        line_of(&text, "for_each"),
        &format!("{T}.for_each.task.args"),
        "`args` applies only to command tasks, not to component template (for_each.task of `t`)",
    );
    let text = command("params = { x = \"1\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        &format!("{T}.params"),
        "`params` does not apply to command task `t`; a command task takes its inputs from `args`, `env` and `stdin`",
    );
}

#[test]
fn command_values_are_checked() {
    let cases = [
        (
            "stdin = \"a\"\nstdin_file = \"b\"",
            "stdin_file",
            ".stdin_file",
            "task `t` has both `stdin` and `stdin_file`; give one",
        ),
        (
            "stdout = \"json\"",
            "stdout",
            ".stdout",
            "unknown stdout `json`; use `log` (the default: stdout is the task's log), `output`",
        ),
        ("stdout = \"ouput\"", "stdout", ".stdout", "(did you mean `output`?)"),
        ("args = [[\"a\"]]", "args", ".args[0]", "each arg is one string"),
        ("args = \"-v\"", "args", ".args", "expected an array"),
        (
            "env = { 1X = \"a\" }",
            "env",
            ".env.1X",
            "bad environment variable name `1X`: use letters, digits and `_`, not starting with a digit",
        ),
        ("env = { A-B = \"a\" }", "env", ".env.A-B", "bad environment variable name `A-B`"),
        ("env = { A = { b = 1 } }", "env", ".env.A", "found a nested value"),
        ("stdin = 5", "stdin", ".stdin", "expected a string"),
        ("arg = []", "arg =", ".arg", "did you mean `args`?"),
    ];
    for (lines, at, key, needle) in cases {
        let text = command(lines);
        assert_error(&text, line_of(&text, at), &format!("{T}{key}"), needle);
    }
}

#[test]
fn command_templates_are_checked_like_params() {
    let cases = [
        (
            "args = [\"-n\", \"{{ job.parameters.nope }}\"]",
            "args",
            ".args[1]",
            "task `t`, args[1]: `{{ job.parameters.nope }}` names no parameter of job `hello`",
        ),
        (
            "env = { LEVEL = \"{{ tasks.t.values.x }}\" }",
            "env",
            ".env.LEVEL",
            "task `t`, env `LEVEL`: `{{ tasks.t.values.x }}`: a task cannot read its own values",
        ),
        (
            "stdin = \"{{ input }}\"",
            "stdin",
            ".stdin",
            "task `t`, stdin: `{{ input }}` is only available in a for_each task template",
        ),
        ("stdin = \"{{ job.nam }}\"", "stdin", ".stdin", "did you mean `job.name`?"),
    ];
    for (lines, at, key, needle) in cases {
        let text = command(lines);
        assert_error(&text, line_of(&text, at), &format!("{T}{key}"), needle);
    }
}

#[test]
fn stdout_files_stdin_from_and_success_exit_codes_are_read() {
    let t = task_of(
        &command("stdout = \"file:rg/hits.txt\"\nstdin_from = \"a:emit/out.json\"\nsuccess_exit_codes = [0, 1]"),
        "t",
    );
    let TaskKind::Command(c) = t.kind else { panic!("not a command") };
    assert_eq!(c.stdout_file.as_deref(), Some("rg/hits.txt"));
    assert!(!c.stdout_is_output);
    assert_eq!(c.stdin, Some(Stdin::Upstream { task: "a".into(), file: Some("emit/out.json".into()) }));
    assert_eq!(c.success_exit_codes, [0, 1]);
    let t = task_of(&command("stdin_from = \"a\""), "t");
    assert!(matches!(t.kind, TaskKind::Command(CommandSpec { stdin: Some(Stdin::Upstream { file: None, .. }), .. })));
}
