//! `{{ … }}` references in params and job parameters must name things that will exist.

use super::*;

#[test]
fn unknown_reference_in_params() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { day = \"{{ job.runid }}\" }");
    let shown = assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.day",
        "unknown reference",
    );
    assert!(
        shown.contains("task `a`, param `day`") && shown.contains("did you mean `job.run_id`?"),
        "{shown}"
    );
}

#[test]
fn unclosed_reference_in_params() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { day = \"x {{ job.name\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.day",
        "without a closing `}}`",
    );
}

#[test]
fn reference_to_undeclared_job_parameter() {
    let text = with_job(&format!(
        "[jobs.hello]\nparameters = {{ day = \"x\" }}\n\n{TASK_A}params = {{ d = \"{{{{ job.parameters.dya }}}}\" }}\n"
    ));
    let shown = assert_error(
        &text,
        line_of(&text, "params ="),
        "jobs.hello.tasks[0].params.d",
        "names no parameter",
    );
    assert!(
        shown.contains("did you mean `day`?") && shown.contains("parameters: `day`"),
        "{shown}"
    );
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
    let text =
        task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.a.values.n }}\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.x",
        "cannot read its own values",
    );
    let text =
        task("key = \"a\"\ncomponent = \"ingest\"\nparams = { x = \"{{ tasks.zz.values.n }}\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.x",
        "no task `zz` in job `hello`",
    );
}

#[test]
fn job_parameters_only_use_run_level_references() {
    let text = with_job(&format!(
        "[jobs.hello]\nparameters = {{ k = \"{{{{ task.key }}}}\" }}\n\n{TASK_A}"
    ));
    assert_error(
        &text,
        line_of(&text, "parameters"),
        "jobs.hello.parameters.k",
        "job parameters may only reference",
    );
}
