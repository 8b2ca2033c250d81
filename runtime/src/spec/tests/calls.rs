//! `run_job` tasks name other jobs, pass only their parameters, and never loop.

use super::*;

/// HEAD, job `hello` with a run_job task `go` written as `run_job`, and job `publish`.
fn calling(run_job: &str) -> String {
    format!(
        "{HEAD}\n[[jobs.hello.tasks]]\nkey = \"go\"\nrun_job = {run_job}\n\n\
         [jobs.publish]\nparameters = {{ who = \"nobody\", day = \"x\" }}\n\
         tasks = [{{ key = \"send\", component = \"ingest\" }}]\n"
    )
}

#[test]
fn run_job_names_a_known_job() {
    let text = calling("{ job = \"publsh\" }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job.job",
        "unknown job `publsh` (did you mean `publish`?); jobs: `hello`, `publish`",
    );
}

#[test]
fn run_job_cannot_run_its_own_job() {
    let text = calling("{ job = \"hello\" }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job.job",
        "task `go` runs its own job `hello`; a job cannot run itself",
    );
}

#[test]
fn run_job_passes_only_declared_parameters() {
    let text = calling("{ job = \"publish\", parameters = { whom = \"me\" } }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job.parameters.whom",
        "job `publish` declares no parameter `whom` (did you mean `who`?); its parameters: `day`, `who`",
    );
}

#[test]
fn run_job_parameters_are_checked_like_params() {
    let text = calling("{ job = \"publish\", parameters = { who = \"{{ job.parameters.who }}\" } }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job.parameters.who",
        "task `go`, run_job parameter `who`: `{{ job.parameters.who }}` names no parameter of job `hello`",
    );
}

#[test]
fn run_job_table_rejects_unknown_keys() {
    let text = calling("{ job = \"publish\", params = {} }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job.params",
        "unknown key; expected one of `job`, `parameters`",
    );
    let text = calling("{ parameters = {} }");
    assert_error(&text, line_of(&text, "run_job"), "jobs.hello.tasks[0].run_job.job", "missing required key `job`");
}

#[test]
fn jobs_running_each_other_form_a_cycle() {
    let text = format!(
        "{HEAD}\n[jobs.start]\ntasks = [{{ key = \"s\", run_job = {{ job = \"b\" }} }}]\n\
         [jobs.b]\ntasks = [{{ key = \"x\", component = \"ingest\" }}, {{ key = \"to_c\", run_job = {{ job = \"c\" }} }}]\n\
         [jobs.c]\ntasks = [{{ key = \"to_a\", run_job = {{ job = \"a\" }} }}]\n\
         [jobs.a]\ntasks = [{{ key = \"to_b\", run_job = {{ job = \"b\" }} }}]\n"
    );
    assert_error(
        &text,
        line_of(&text, "[jobs.a]") + 1,
        "jobs.a.tasks[0].run_job.job",
        "job cycle: a -> b -> c -> a (each job runs the next with `run_job`)",
    );
}

#[test]
fn jobs_may_share_a_callee_without_a_cycle() {
    let text = format!(
        "{HEAD}\n[jobs.a]\ntasks = [{{ key = \"x\", run_job = {{ job = \"c\" }} }}, {{ key = \"y\", run_job = {{ job = \"b\" }} }}]\n\
         [jobs.b]\ntasks = [{{ key = \"x\", run_job = {{ job = \"c\" }} }}]\n\
         [jobs.c]\ntasks = [{{ key = \"x\", component = \"ingest\" }}]\n"
    );
    assert_eq!(bundle_of(&text).jobs.len(), 3);
}
