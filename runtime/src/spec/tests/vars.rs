//! `[variables]`, `${var.NAME}` and their resolution per target.

use super::*;
use crate::spec::{LoadOptions, VarSource, parse_with};

const VARS: &str = r#"[variables]
lake = { default = "lake", description = "where data lives" }
who = { description = "no default" }

[targets.dev]
default = true
variables = { who = "dev-team" }
[targets.prod]
variables = { lake = "/srv/lake" }
"#;

/// A bundle using `${var.…}` in a parameter, a task param and an allow_hosts entry.
fn using_vars() -> String {
    format!(
        "{HEAD}\n{VARS}\n[jobs.hello]\nparameters = {{ root = \"${{var.lake}}/in\", who = \"${{var.who}}\" }}\n\
         [[jobs.hello.tasks]]\nkey = \"a\"\ncomponent = \"ingest\"\n\
         params = {{ day = \"{{{{ job.parameters.who }}}}\", at = \"${{var.lake}}\" }}\n"
    )
}

fn opts(target: Option<&str>, vars: &[(&str, &str)], env: &[(&str, &str)]) -> LoadOptions {
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    LoadOptions::new(target.map(str::to_string), pairs(vars), pairs(env))
}

fn load_as(text: &str, opts: &LoadOptions) -> Result<crate::spec::Bundle, SpecError> {
    parse_with(text, Path::new(FILE), Path::new("/b"), opts)
}

#[test]
fn precedence_is_flag_then_env_then_target_then_default() {
    let text = using_vars();
    let env = [("SLUICE_VAR_lake", "/env/lake"), ("SLUICE_VAR_other", "ignored"), ("HOME", "/root")];
    // prod sets no `who`: every case gives it by flag, so only `lake` is under test
    let cases = [
        (opts(Some("prod"), &[("lake", "/flag"), ("who", "x")], &env), "/flag", VarSource::Flag),
        (opts(Some("prod"), &[("who", "x")], &env), "/env/lake", VarSource::Env),
        (opts(Some("prod"), &[("who", "x")], &[]), "/srv/lake", VarSource::Target),
        (opts(Some("dev"), &[("who", "x")], &[]), "lake", VarSource::Default),
    ];
    for (options, lake, source) in cases {
        let bundle = load_as(&text, &options).unwrap_or_else(|e| panic!("{e}"));
        let job = &bundle.jobs["hello"];
        assert_eq!(job.parameters["root"], format!("{lake}/in"), "{options:?}");
        assert_eq!(bundle.variables["lake"].value.as_deref(), Some(lake));
        assert_eq!(bundle.variables["lake"].source, Some(source));
        assert_eq!(job.tasks[0].exec.params["at"], lake);
        assert_eq!(job.tasks[0].exec.params["day"], "{{ job.parameters.who }}", "runtime references stay");
    }
}

#[test]
fn a_variable_without_value_is_an_error_where_it_is_used() {
    let text = using_vars();
    let error = load_as(&text, &opts(Some("prod"), &[], &[])).unwrap_err();
    let shown = error.to_string();
    assert_eq!(error.line(), Some(line_of(&text, "who = \"${var.who}")), "{shown}");
    assert_eq!(error.key(), Some("jobs.hello.parameters.who"));
    assert!(shown.contains("variable `who` has no value in target `prod`"), "{shown}");
    assert!(shown.contains("--var who=VALUE") && shown.contains("SLUICE_VAR_who"), "{shown}");
}

#[test]
fn undeclared_references_and_flags_are_refused() {
    let text = using_vars().replace("${var.lake}/in", "${var.laek}/in");
    let error = load_as(&text, &LoadOptions::default()).unwrap_err().to_string();
    assert!(error.contains("`${var.laek}`: no variable `laek` is declared (did you mean `lake`?)"), "{error}");
    let error = load_as(&using_vars(), &opts(None, &[("lakee", "x")], &[])).unwrap_err().to_string();
    assert!(error.contains("--var lakee: the bundle declares no variable `lakee`"), "{error}");
    assert!(error.contains("did you mean `lake`?"), "{error}");
    let text = using_vars().replace("${var.lake}/in", "${var.lake/in");
    assert!(load_as(&text, &LoadOptions::default()).unwrap_err().to_string().contains("is not closed"));
    let text = using_vars().replace("variables = { lake = \"/srv/lake\" }", "variables = { laek = \"/srv\" }");
    assert_error(&text, line_of(&text, "laek"), "targets.prod.variables.laek", "no variable `laek` is declared");
}

#[test]
fn several_unset_uses_are_all_reported() {
    let text = using_vars().replace("lake = { default = \"lake\", ", "lake = { ");
    let error = load_as(&text, &opts(Some("prod"), &[("lake", "l")], &[])).unwrap_err();
    assert_eq!(error.problems().len(), 1, "only `who` lacks a value: {error}");
    let error = load_as(&text, &opts(Some("dev"), &[], &[])).unwrap_err();
    let lines: Vec<_> = error.problems().iter().map(|p| p.line()).collect();
    assert_eq!(lines.len(), 2, "{error}: both uses of `lake`");
    assert!(error.to_string().contains("(and 1 more"), "{error}");
}

#[test]
fn variables_are_literal_tables_and_dollar_braces_of_shells_stay() {
    let text = format!("{HEAD}\n[variables]\nlake = \"x\"\n");
    assert_error(&text, line_of(&text, "lake ="), "variables.lake", "a variable is a table");
    let text = format!("{HEAD}\n[variables]\nlake = {{ default = \"${{var.other}}\" }}\n");
    assert_error(&text, line_of(&text, "lake ="), "variables.lake.default", "values are literal");
    let text = format!("{HEAD}\n[variables]\nlake = {{ defualt = \"x\" }}\n");
    assert_error(&text, line_of(&text, "lake ="), "variables.lake.defualt", "did you mean `default`?");
    let text = task("key = \"a\"\ncomponent = \"clean\"\nkind = \"command\"\nargs = [\"${HOME}\"]");
    assert_eq!(task_of(&text, "a").command().unwrap().args, ["${HOME}"]);
}

#[test]
fn target_parameter_overrides_apply_to_the_loaded_target() {
    let text = format!(
        "{HEAD}\n[targets.dev]\n[targets.prod]\n[targets.prod.jobs.hello]\nparameters = {{ day = \"monday\" }}\n\
         [jobs.hello]\nparameters = {{ day = \"today\" }}\n{TASK_A}"
    );
    let dev = load_as(&text, &opts(None, &[], &[])).unwrap();
    assert_eq!(dev.jobs["hello"].parameters["day"], "today");
    assert_eq!(dev.resolved_target.as_deref(), Some("dev"));
    let prod = load_as(&text, &opts(Some("prod"), &[], &[])).unwrap();
    assert_eq!(prod.jobs["hello"].parameters["day"], "monday");
    let unknown = load_as(&text, &opts(Some("qa"), &[], &[])).unwrap_err().to_string();
    assert!(unknown.contains("no target named `qa`"), "{unknown}");
}
