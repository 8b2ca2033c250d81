//! Task kinds: component, condition, for_each and run_job, and how conditions evaluate.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::spec::{ConditionOp, ExecSpec, ForEachTemplate, Limits, RetryPolicy, TaskKind};

/// Task `a` (component) and a task `t` after it written as `lines`.
fn after_a(lines: &str) -> String {
    with_job(&format!(
        "[jobs.hello]\nparameters = {{ day = \"x\" }}\n\n{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"t\"\ndepends_on = [\"a\"]\n{lines}\n"
    ))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn component_task() {
    let a = task_of(&task("key = \"a\"\ncomponent = \"ingest\""), "a");
    assert_eq!(a.kind, TaskKind::Component { component: "ingest".into() });
    assert_eq!(a.component(), Some("ingest"));
}

#[test]
fn condition_task() {
    let text = after_a("condition = { op = \"greater_than\", left = \"{{ tasks.a.values.rows }}\", right = 100 }");
    let t = task_of(&text, "t");
    assert_eq!(
        t.kind,
        TaskKind::Condition {
            op: ConditionOp::GreaterThan,
            left: "{{ tasks.a.values.rows }}".into(),
            right: "100".into(),
        }
    );
    assert_eq!(t.component(), None);
    assert!(t.exec.params.is_empty() && t.exec.secrets.is_empty() && t.timeout.is_none());
}

#[test]
fn every_condition_op_is_read() {
    let names = ["equal_to", "not_equal", "greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"];
    for (op, name) in ConditionOp::ALL.into_iter().zip(names) {
        let text = after_a(&format!("condition = {{ op = \"{name}\", left = \"1\", right = \"2\" }}"));
        assert!(matches!(task_of(&text, "t").kind, TaskKind::Condition { op: read, .. } if read == op), "{name}");
        assert_eq!(op.as_str(), name);
        assert_eq!(name.parse::<ConditionOp>(), Ok(op));
    }
}

#[test]
fn for_each_task_full_form() {
    let text = after_a(
        "timeout = \"1h\"\n\
         for_each = { inputs = \"{{ tasks.a.values.files }}\", concurrency = 2, task = { component = \"clean\", \
         params = { file = \"{{ input }}\", day = \"{{ job.parameters.day }}\" }, timeout = \"1m\", \
         limits = { memory = \"1MiB\" }, retries = { max = 2 }, secrets = [\"s/k\"] } }",
    );
    let t = task_of(&text, "t");
    let template = ForEachTemplate {
        kind: TaskKind::Component { component: "clean".into() },
        timeout: Some(Duration::from_secs(60)),
        retries: Some(RetryPolicy::new(Some(2))),
        rerun_on_resume: true,
        exec: ExecSpec {
            params: map(&[("day", "{{ job.parameters.day }}"), ("file", "{{ input }}")]),
            limits: Limits { memory: Some(1 << 20), ..Limits::default() },
            secrets: vec!["s/k".into()],
            ..ExecSpec::default()
        },
    };
    let expected =
        TaskKind::ForEach { inputs: "{{ tasks.a.values.files }}".into(), concurrency: 2, template: Box::new(template) };
    assert_eq!(t.kind, expected);
    assert_eq!(t.timeout, Some(Duration::from_secs(3600)), "the whole loop");
}

#[test]
fn for_each_defaults_and_literal_inputs() {
    let text = after_a("for_each = { inputs = [\"a\", 2], task = { component = \"clean\" } }");
    let TaskKind::ForEach { inputs, concurrency, template } = task_of(&text, "t").kind else {
        panic!("not a for_each task");
    };
    assert_eq!(inputs, r#"["a",2]"#);
    assert_eq!(concurrency, 4);
    assert_eq!(template.component(), Some("clean"));
    assert!(template.exec.params.is_empty() && template.retries.is_none());
    let text = after_a("for_each = { inputs = \"[]\", task = { component = \"clean\" } }");
    assert!(matches!(task_of(&text, "t").kind, TaskKind::ForEach { .. }));
}

#[test]
fn a_for_each_template_grants_what_a_task_grants_inject_included() {
    let exec = "allow_hosts = [\"https://api.example.com\"], \
                secrets = [\"s/plain\", { name = \"s/token\", inject = \"header:Authorization\" }]";
    let task = task_of(&after_a(&format!("component = \"clean\"\n{}", exec.replace(", s", "\ns"))), "t");
    let text = after_a(&format!("for_each = {{ inputs = \"[1]\", task = {{ component = \"clean\", {exec} }} }}"));
    let TaskKind::ForEach { template, .. } = task_of(&text, "t").kind else { panic!("not a for_each task") };
    assert_eq!(template.exec.inject, map(&[("s/token", "authorization")]));
    assert_eq!(template.exec, task.exec, "one reader: the template's grants are a task's");
    let iteration = template.iteration("t", 3);
    assert_eq!((iteration.key.as_str(), &iteration.exec), ("t[3]", &task.exec));

    let no_hosts = after_a(
        "for_each = { inputs = \"[1]\", task = { component = \"clean\", \
         secrets = [{ name = \"s/k\", inject = \"header:X-Key\" }] } }",
    );
    assert!(error_of(&no_hosts).to_string().contains("needs `allow_hosts`"));
}

#[test]
fn run_job_task() {
    let text = format!(
        "{HEAD}\n[jobs.hello]\nparameters = {{ day = \"x\" }}\n\n[[jobs.hello.tasks]]\nkey = \"go\"\n\
         run_job = {{ job = \"publish\", parameters = {{ who = \"{{{{ job.parameters.day }}}}\" }} }}\n\
         retries = {{ max = 1 }}\n\n\
         [jobs.publish]\nparameters = {{ who = \"nobody\" }}\ntasks = [{{ key = \"send\", component = \"ingest\" }}]\n"
    );
    let go = task_of(&text, "go");
    assert_eq!(
        go.kind,
        TaskKind::RunJob { job: "publish".into(), parameters: map(&[("who", "{{ job.parameters.day }}")]) }
    );
    assert_eq!(go.retries, Some(RetryPolicy::new(Some(1))));
    let text = text.replace(", parameters = { who = \"{{ job.parameters.day }}\" }", "");
    assert!(matches!(task_of(&text, "go").kind, TaskKind::RunJob { parameters, .. } if parameters.is_empty()));
}

#[test]
fn a_task_must_have_one_kind() {
    let text = task("key = \"a\"\ndepends_on = []");
    assert_error(
        &text,
        line_of(&text, "[[jobs"),
        "jobs.hello.tasks[0]",
        "task `a` does not say what it does; give exactly one of `component`, `condition`, `for_each`, `run_job`",
    );
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nrun_job = { job = \"x\" }");
    assert_error(
        &text,
        line_of(&text, "run_job"),
        "jobs.hello.tasks[0].run_job",
        "task `a` has both `component` and `run_job`; give exactly one of `component`, `condition`",
    );
}

#[test]
fn keys_that_do_not_apply_to_the_kind() {
    let text = after_a("condition = { op = \"equal_to\", left = \"a\", right = \"b\" }\nparams = { x = \"1\" }");
    let shown = assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[1].params",
        "`params` does not apply to condition task `t`",
    );
    assert!(shown.contains("compares `left` with `right`"), "{shown}");
    let text = after_a("for_each = { inputs = \"[]\", task = { component = \"clean\" } }\nsecrets = [\"s/k\"]");
    assert_error(
        &text,
        line_of(&text, "secrets"),
        "jobs.hello.tasks[1].secrets",
        "`secrets` does not apply to for_each task `t`; put it in `for_each.task`",
    );
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"t\"\nrun_job = {{ job = \"other\" }}\ntimeout = \"1m\"\n\n\
         [[jobs.other.tasks]]\nkey = \"x\"\ncomponent = \"clean\"\n"
    ));
    assert_error(
        &text,
        line_of(&text, "timeout"),
        "jobs.hello.tasks[1].timeout",
        "`timeout` does not apply to run_job task `t`",
    );
}

#[test]
fn condition_errors() {
    let text = after_a("condition = { op = \"greater_then\", left = \"1\", right = \"2\" }");
    let shown = assert_error(
        &text,
        line_of(&text, "condition"),
        "jobs.hello.tasks[1].condition.op",
        "unknown op `greater_then` (did you mean `greater_than`?)",
    );
    assert!(shown.contains("expected one of `equal_to`, `not_equal`"), "{shown}");
    let text = after_a("condition = { op = \"equal_to\", left = \"1\", rigth = \"2\" }");
    assert_error(&text, line_of(&text, "condition"), "jobs.hello.tasks[1].condition.rigth", "did you mean `right`?");
    let text = after_a("condition = { op = \"equal_to\", left = \"1\" }");
    assert_error(
        &text,
        line_of(&text, "condition"),
        "jobs.hello.tasks[1].condition.right",
        "missing required key `right`",
    );
    let text = after_a("condition = { op = \"equal_to\", left = [1], right = \"2\" }");
    assert_error(
        &text,
        line_of(&text, "condition"),
        "jobs.hello.tasks[1].condition.left",
        "expected a string, number or boolean",
    );
}

#[test]
fn condition_operands_are_checked_like_params() {
    let text = with_job(&format!(
        "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"t\"\n\
         condition = {{ op = \"equal_to\", left = \"{{{{ tasks.a.values.n }}}}\", right = \"1\" }}\n"
    ));
    assert_error(
        &text,
        line_of(&text, "condition"),
        "jobs.hello.tasks[1].condition.left",
        "task `t`, condition `left`: `{{ tasks.a.values.n }}`: task `a` is not upstream of `t`",
    );
}

#[test]
fn input_only_inside_a_for_each_template() {
    let text = task("key = \"a\"\ncomponent = \"ingest\"\nparams = { f = \"{{ input }}\" }");
    assert_error(
        &text,
        line_of(&text, "params"),
        "jobs.hello.tasks[0].params.f",
        "task `a`, param `f`: `{{ input }}` is only available in a for_each task template",
    );
    let text = after_a("for_each = { inputs = \"{{ input }}\", task = { component = \"clean\" } }");
    assert_error(
        &text,
        line_of(&text, "for_each"),
        "jobs.hello.tasks[1].for_each.inputs",
        "task `t`, for_each `inputs`: `{{ input }}` is only available",
    );
}

#[test]
fn for_each_errors() {
    let err = |for_each: &str, key: &str, needle: &str| {
        let text = after_a(&format!("for_each = {for_each}"));
        assert_error(&text, line_of(&text, "for_each"), &format!("jobs.hello.tasks[1].for_each{key}"), needle)
    };
    err("{ inputs = \"a,b\", task = { component = \"clean\" } }", ".inputs", "inputs must be a JSON array");
    err("{ inputs = { a = 1 }, task = { component = \"clean\" } }", ".inputs", "inputs must be a JSON array");
    let shown = err(
        "{ inputs = \"[]\", task = { component = \"clen\" } }",
        ".task.component",
        "unknown component `clen` (did you mean `clean`?)",
    );
    assert!(shown.contains("components: `clean`, `ingest`"), "{shown}");
    err("{ inputs = \"[]\", task = { component = \"clean\", parms = {} } }", ".task.parms", "did you mean `params`?");
    err(
        "{ inputs = \"[]\", concurency = 2, task = { component = \"clean\" } }",
        ".concurency",
        "did you mean `concurrency`?",
    );
    err("{ inputs = \"[]\" }", ".task", "missing required key `task`");
    for bad in ["0", "1001"] {
        err(
            &format!("{{ inputs = \"[]\", concurrency = {bad}, task = {{ component = \"clean\" }} }}"),
            ".concurrency",
            &format!("concurrency must be from 1 to 1000, found {bad}"),
        );
    }
    err(
        "{ inputs = \"[]\", task = { component = \"clean\", retries = { max = -5 } } }",
        ".task.retries.max",
        "max must be -1",
    );
}

#[test]
fn equality_ops_compare_strings_exactly() {
    assert_eq!(ConditionOp::EqualTo.evaluate("1.0", "1.0"), Ok(true));
    assert_eq!(ConditionOp::EqualTo.evaluate("1.0", "1"), Ok(false));
    assert_eq!(ConditionOp::EqualTo.evaluate("abc", "abc"), Ok(true));
    assert_eq!(ConditionOp::NotEqual.evaluate("a", "A"), Ok(true));
    assert_eq!(ConditionOp::NotEqual.evaluate("a", "a"), Ok(false));
}

#[test]
fn ordering_ops_compare_numbers() {
    use ConditionOp::*;
    let cases = [
        (GreaterThan, "10", "9", true),
        (GreaterThan, "9", "9", false),
        (GreaterThanOrEqual, "9", "9.0", true),
        (GreaterThanOrEqual, "-1", "0", false),
        (LessThan, "2.5", "10", true),
        (LessThan, "3", "3", false),
        (LessThanOrEqual, " 3 ", "3", true),
        (LessThanOrEqual, "1e3", "999", false),
    ];
    for (op, left, right, expected) in cases {
        assert_eq!(op.evaluate(left, right), Ok(expected), "{left} {op} {right}");
    }
}

#[test]
fn ordering_ops_name_the_side_that_is_not_a_number() {
    let err = ConditionOp::GreaterThan.evaluate("abc", "1").unwrap_err();
    assert!(err.contains("left side `abc` is not a number"), "{err}");
    assert!(err.contains("`greater_than` compares numbers"), "{err}");
    let err = ConditionOp::LessThanOrEqual.evaluate("1", "").unwrap_err();
    assert!(err.contains("right side `` is not a number"), "{err}");
    let err = ConditionOp::LessThan.evaluate("NaN", "1").unwrap_err();
    assert!(err.contains("left side `NaN`"), "{err}");
}

#[test]
fn cache_false_opts_a_task_out_of_reuse() {
    let text = "[bundle]\nname = \"b\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\ncache = false\n[[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\n";
    let bundle = crate::spec::parse(text, std::path::Path::new("sluice.toml"), std::path::Path::new(".")).unwrap();
    let job = bundle.job(None).unwrap();
    assert!(!job.task("a").unwrap().exec.cache);
    assert!(job.task("b").unwrap().exec.cache, "reuse is the default");
    let bad = text.replace("cache = false", "cache = \"no\"");
    let err = crate::spec::parse(&bad, std::path::Path::new("sluice.toml"), std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sluice.toml:9:") && err.contains("cache"), "{err}");
}

#[test]
fn a_for_each_template_may_run_a_command_or_a_job() {
    let text = after_a(
        "for_each = { inputs = \"[1]\", task = { kind = \"command\", component = \"clean\", \
         args = [\"--n\", \"{{ input }}\"], env = { N = \"{{ input }}\" }, stdout = \"output\", rerun_on_resume = false } }",
    );
    let TaskKind::ForEach { template, .. } = task_of(&text, "t").kind else { panic!("not a for_each task") };
    let TaskKind::Command(c) = &template.kind else { panic!("not a command template: {template:?}") };
    assert_eq!((c.args.clone(), c.stdout_is_output), (vec!["--n".to_string(), "{{ input }}".to_string()], true));
    assert!(!template.rerun_on_resume);
    let it = template.iteration("t", 0);
    assert!(it.command().is_some() && !it.rerun_on_resume, "an iteration is a command task of its own");

    let jobs = "\n[jobs.publish]\nparameters = { who = \"x\" }\ntasks = [{ key = \"send\", component = \"ingest\" }]\n";
    let text = format!(
        "{}{jobs}",
        after_a(
            "for_each = { inputs = '[{\"w\": 1}]', task = { run_job = { job = \"publish\", parameters = { who = \"{{ input.w }}\" } } } }"
        )
    );
    let TaskKind::ForEach { template, .. } = task_of(&text, "t").kind else { panic!("not a for_each task") };
    assert!(matches!(&template.kind, TaskKind::RunJob { job, .. } if job == "publish"));
    let bad = text.replace("who = \"{{ input.w }}\"", "whom = \"1\"");
    assert!(error_of(&bad).to_string().contains("declares no parameter `whom`"), "the called job is checked");
    let both = after_a("for_each = { inputs = \"[1]\", task = { component = \"clean\", run_job = { job = \"x\" } } }");
    assert!(error_of(&both).to_string().contains("both `component` and `run_job`"));
    let params = format!(
        "{}{jobs}",
        after_a("for_each = { inputs = \"[1]\", task = { run_job = { job = \"publish\" }, params = { a = \"1\" } } }")
    );
    assert!(
        error_of(&params).to_string().contains("`params` does not apply to run_job template"),
        "{}",
        error_of(&params)
    );
}

#[test]
fn rerun_on_resume_is_for_tasks_that_run_code() {
    assert!(!task_of(&after_a("component = \"clean\"\nrerun_on_resume = false"), "t").rerun_on_resume);
    assert!(task_of(&after_a("component = \"clean\""), "t").rerun_on_resume, "true unless written");
    let text = after_a("condition = { op = \"equal_to\", left = \"1\", right = \"1\" }\nrerun_on_resume = false");
    assert!(error_of(&text).to_string().contains("`rerun_on_resume` does not apply to condition task `t`"));
}

#[test]
fn templates_recorded_before_kinds_still_read() {
    let old = r#"{"component":"clean","timeout":null,"retries":null,"params":{},"limits":{"memory":null,"max_log":null,"max_output":null,"fuel":null,"max_out":null},"secrets":[],"mounts":[],"allow_hosts":[],"cache":true}"#;
    let t: ForEachTemplate = serde_json::from_str(old).unwrap();
    assert_eq!((t.component(), t.rerun_on_resume), (Some("clean"), true));
    let text = after_a("for_each = { inputs = \"[1]\", task = { kind = \"command\", component = \"clean\" } }");
    let TaskKind::ForEach { template, .. } = task_of(&text, "t").kind else { panic!("not a for_each task") };
    let again: ForEachTemplate = serde_json::from_str(&serde_json::to_string(&template).unwrap()).unwrap();
    assert_eq!(&again, template.as_ref(), "round trip");
}

#[test]
fn worker_labels_route_a_task() {
    let t = task_of(
        &task("key = \"a\"\ncomponent = \"ingest\"\nworker = { labels = { pool = \"gpu\", zone = \"eu-1\" } }"),
        "a",
    );
    assert_eq!(t.exec.worker_labels, map(&[("pool", "gpu"), ("zone", "eu-1")]));
    let plain = task_of(&task("key = \"a\"\ncomponent = \"ingest\""), "a");
    assert!(plain.exec.worker_labels.is_empty());
    // an unlabelled task serialises as before: plans pinned by earlier versions hash the same
    assert!(!serde_json::to_string(&plain.exec).unwrap().contains("worker"));
    let e =
        error_of(&task("key = \"a\"\ncomponent = \"ingest\"\nworker = { labels = { pool = \"g.pu\" } }")).to_string();
    assert!(e.contains("worker label `pool`") && e.contains("letters"), "{e}");
    let e = error_of(&task("key = \"a\"\ncomponent = \"ingest\"\nworker = { lables = {} }")).to_string();
    assert!(e.contains("lables"), "{e}");
}

#[test]
fn an_expectation_bound_may_be_a_string_holding_a_number() {
    use crate::spec::expect::ExpectKind;
    let lines = |min: &str| {
        format!(
            "key = \"a\"\ncomponent = \"ingest\"\nexpectations = [{{ dataset = \"r.csv\", \
             expect = \"expect_table_row_count_to_be_between\", min_value = {min} }}]"
        )
    };
    let t = task_of(&task(&lines("\"1500\"")), "a");
    assert_eq!(t.expectations[0].expectation.kind, ExpectKind::RowCountBetween { min: Some(1500.0), max: None });
    let e = error_of(&task(&lines("\"many\""))).to_string();
    assert!(e.contains("expected a number (or a string holding one") && e.contains("`many`"), "{e}");
}
