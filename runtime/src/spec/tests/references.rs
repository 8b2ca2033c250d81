//! `{{ … }}` references in params and job parameters must name things that will exist.

use super::*;

#[test]
fn unknown_reference_in_params() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { day = \"{{ job.runid }}\" }");
    let shown = assert_error(&text, line_of(&text, "params"), "jobs.hello.tasks[0].params.day", "unknown reference");
    assert!(shown.contains("task `a`, param `day`") && shown.contains("did you mean `job.run_id`?"), "{shown}");
}

#[test]
fn unclosed_reference_in_params() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { day = \"x {{ job.name\" }");
    assert_error(&text, line_of(&text, "params"), "jobs.hello.tasks[0].params.day", "without a closing `}}`");
}

#[test]
fn reference_to_undeclared_job_parameter() {
    let text = with_job(&format!(
        "[jobs.hello]\nparameters = {{ day = \"x\" }}\n\n{TASK_A}params = {{ d = \"{{{{ job.parameters.dya }}}}\" }}\n"
    ));
    let shown = assert_error(&text, line_of(&text, "params ="), "jobs.hello.tasks[0].params.d", "names no parameter");
    assert!(shown.contains("did you mean `day`?") && shown.contains("parameters: `day`"), "{shown}");
}

#[test]
fn reference_to_task_that_is_not_upstream() {
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\nparams = {{ rows = \"{{{{ tasks.a.values.rows }}}}\" }}\n"
    ));
    let shown = assert_error(
        &text,
        line_of(&text, "rows"),
        "jobs.hello.tasks[1].params.rows",
        "task `a` is not upstream of `b`",
    );
    assert!(shown.contains("add it to `depends_on`"), "{shown}");
}

#[test]
fn reference_to_own_or_missing_task_values() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.a.values.n }}\" }");
    assert_error(&text, line_of(&text, "params"), "jobs.hello.tasks[0].params.x", "cannot read its own values");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.zz.values.n }}\" }");
    assert_error(&text, line_of(&text, "params"), "jobs.hello.tasks[0].params.x", "no task `zz` in job `hello`");
}

#[test]
fn job_parameters_only_use_run_level_references() {
    let text = with_job(&format!("[jobs.hello]\nparameters = {{ k = \"{{{{ task.key }}}}\" }}\n\n{TASK_A}"));
    assert_error(&text, line_of(&text, "parameters"), "jobs.hello.parameters.k", "job parameters may only reference");
}

/// Task `a`, then task `t` after it written as `lines`, in a job with parameter `day`.
fn secret_after_a(lines: &str) -> String {
    with_job(&format!(
        "[jobs.hello]\nparameters = {{ day = \"x\" }}\n\n{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"t\"\ndepends_on = [\"a\"]\n{lines}\n"
    ))
}

const ONLY_ENV: &str = "secret references are allowed only in a command task's `env`";

#[test]
fn secret_references_are_refused_outside_a_command_env() {
    let cases = [
        ("component = \"clean\"\nparams = { pw = \"{{ secrets/db/pw }}\" }", "pw =", "jobs.hello.tasks[1].params.pw"),
        (
            "condition = { op = \"equal_to\", left = \"{{secrets/db/pw}}\", right = \"x\" }",
            "condition",
            "jobs.hello.tasks[1].condition.left",
        ),
        (
            "for_each = { inputs = \"{{ secrets/db/list }}\", task = { component = \"clean\" } }",
            "for_each",
            "jobs.hello.tasks[1].for_each.inputs",
        ),
        (
            "for_each = { inputs = \"[1]\", task = { component = \"clean\", params = { pw = \"{{ secrets/db/pw }}\" } } }",
            "for_each",
            "jobs.hello.tasks[1].for_each.task.params.pw",
        ),
        (
            "kind = \"command\"\ncomponent = \"clean\"\nargs = [\"--password={{ secrets/db/pw }}\"]",
            "args",
            "jobs.hello.tasks[1].args[0]",
        ),
        (
            "kind = \"command\"\ncomponent = \"clean\"\nstdin = \"{{ secrets/db/pw }}\"",
            "stdin",
            "jobs.hello.tasks[1].stdin",
        ),
    ];
    for (lines, line_needle, key) in cases {
        let text = secret_after_a(lines);
        let shown = assert_error(&text, line_of(&text, line_needle), key, ONLY_ENV);
        assert!(shown.contains("`{{ secrets/db/"), "{shown}");
    }
    let text = with_job(
        "[jobs.hello]\nparameters = { pw = \"{{ secrets/db/pw }}\" }\n\n[[jobs.hello.tasks]]\nkey = \"a\"\ncomponent = \"ingest\"\n",
    );
    let shown = assert_error(&text, line_of(&text, "parameters"), "jobs.hello.parameters.pw", ONLY_ENV);
    assert!(shown.contains("`secrets = [\"db/pw\"]`"), "the error says how to read a secret instead: {shown}");
    let text = format!(
        "{HEAD}\n[jobs.hello]\n\n[[jobs.hello.tasks]]\nkey = \"go\"\n\
         run_job = {{ job = \"publish\", parameters = {{ who = \"{{{{ secrets/db/pw }}}}\" }} }}\n\n\
         [jobs.publish]\nparameters = {{ who = \"nobody\" }}\ntasks = [{{ key = \"send\", component = \"ingest\" }}]\n"
    );
    assert_error(&text, line_of(&text, "run_job"), "jobs.hello.tasks[0].run_job.parameters.who", ONLY_ENV);
}

#[test]
fn secret_references_are_accepted_in_a_command_env_and_must_be_well_formed() {
    let text =
        secret_after_a("kind = \"command\"\ncomponent = \"clean\"\nenv = { PGPASSWORD = \"{{ secrets/db/pw }}\" }");
    match task_of(&text, "t").kind {
        crate::spec::TaskKind::Command(c) => assert_eq!(c.env["PGPASSWORD"], "{{ secrets/db/pw }}"),
        other => panic!("not a command: {other:?}"),
    }
    let text = secret_after_a("kind = \"command\"\ncomponent = \"clean\"\nenv = { PGPASSWORD = \"{{ secrets/db }}\" }");
    assert_error(&text, line_of(&text, "env"), "jobs.hello.tasks[1].env.PGPASSWORD", "write `secrets/<scope>/<key>`");
}

#[test]
fn databricks_references_name_upstream_results_and_job_facts() {
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\ndepends_on = [\"a\"]\nrun_if = \"all_done\"\n\
         params = {{ s = \"{{{{ tasks.a.result_state }}}}\", e = \"{{{{ tasks.a.error_code }}}}\", \
         id = \"{{{{ job.id }}}}\", n = \"{{{{ job.repair_count }}}}\", y = \"{{{{ job.start_time.year }}}}\", \
         ms = \"{{{{ job.start_time.timestamp_ms }}}}\" }}\n"
    ));
    assert_eq!(task_of(&text, "b").exec.params.len(), 6);
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"b\"\ncomponent = \"clean\"\nparams = {{ s = \"{{{{ tasks.a.result_state }}}}\" }}\n"
    ));
    assert_error(&text, line_of(&text, "params ="), "jobs.hello.tasks[1].params.s", "task `a` is not upstream of `b`");
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.a.error_code }}\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.x",
        "cannot read its own values or result",
    );
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.a.state }}\" }");
    assert_error(&text, line_of(&text, "params"), "jobs.hello.tasks[0].params.x", "tasks.<task key>.result_state");
    let text = with_job(&format!("[jobs.hello]\nparameters = {{ k = \"{{{{ job.repair_count }}}}\" }}\n\n{TASK_A}"));
    assert_error(&text, line_of(&text, "parameters"), "jobs.hello.parameters.k", "job parameters may only reference");
    let ok = with_job(&format!(
        "[jobs.hello]\nparameters = {{ k = \"{{{{ job.id }}}}-{{{{ job.start_time.month }}}}\" }}\n\n{TASK_A}"
    ));
    assert_eq!(bundle_of(&ok).jobs["hello"].parameters["k"], "{{ job.id }}-{{ job.start_time.month }}");
}

#[test]
fn input_fields_only_inside_a_for_each_template() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ input.name }}\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.x",
        "only available in a for_each task template",
    );
    let text = task(
        "key = \"a\"\nfor_each = { inputs = '[{\"n\": 1}]', task = { component = \"clean\", params = { x = \"{{ input.n }}\", y = \"{{ input.a.b-c }}\" } } }",
    );
    assert_eq!(bundle_of(&text).jobs["hello"].tasks.len(), 1);
    let text = task(
        "key = \"a\"\nfor_each = { inputs = '[1]', task = { component = \"clean\", params = { x = \"{{ input. }}\" } } }",
    );
    assert_error(
        &text,
        line_of(&text, "for_each"),
        "jobs.hello.tasks[0].for_each.task.params.x",
        "should read `input.<field>`",
    );
}
