//! `[targets.NAME]`: mode, variables, job overrides, run_as, permissions, git and the
//! promotion gates; and job-level `permissions`.

use super::*;
use crate::spec::{GitSpec, Permission, PermissionLevel, Principal, TargetMode, level_of};

/// HEAD, `targets`, and a job `hello` with parameter `day` and task `a`.
fn with_targets(targets: &str) -> String {
    format!("{HEAD}\n{targets}\n[jobs.hello]\nparameters = {{ day = \"today\" }}\n{TASK_A}")
}

#[test]
fn every_target_key_reads_into_plain_types() {
    let text = with_targets(
        r#"[variables]
lake = { default = "lake" }
n = { default = 1 }
[targets.dev]
default = true
mode = "development"
[targets.test]
[targets.prod]
mode = "production"
variables = { lake = "/lake", n = 3 }
run_as = "svc-etl"
git = { branch = "main" }
promote_from = "test"
require_tests = true
require_approval = 2
permissions = [{ level = "CAN_VIEW", group_name = "analysts" }, { level = "IS_OWNER", user_name = "ana" }]
[targets.prod.jobs.hello]
parameters = { day = "yesterday" }
permissions = [{ level = "CAN_MANAGE_RUN", service_principal_name = "ops-bot" }]
"#,
    );
    let bundle = bundle_of(&text);
    assert_eq!(bundle.targets["dev"].mode, Some(TargetMode::Development));
    assert_eq!(bundle.targets["test"].mode, None, "absent mode is no mode, as in Databricks");
    let prod = &bundle.targets["prod"];
    assert_eq!(prod.mode, Some(TargetMode::Production));
    assert_eq!(prod.variables["lake"], "/lake");
    assert_eq!(prod.variables["n"], "3");
    assert_eq!(prod.run_as.as_deref(), Some("svc-etl"));
    assert_eq!(prod.git, Some(GitSpec { branch: Some("main".into()) }));
    assert_eq!(prod.promote_from.as_deref(), Some("test"));
    assert!(prod.require_tests && !bundle.targets["test"].require_tests);
    assert_eq!((prod.require_approval, bundle.targets["dev"].require_approval), (2, 0));
    assert_eq!(
        prod.permissions[0],
        Permission { level: PermissionLevel::CanView, principal: Principal::Group("analysts".into()) }
    );
    assert_eq!(prod.jobs["hello"].parameters["day"], "yesterday");
    assert_eq!(prod.jobs["hello"].permissions[0].principal, Principal::ServicePrincipal("ops-bot".into()));
}

#[test]
fn job_permissions_and_levels_compare() {
    let text = format!(
        "{HEAD}\n[jobs.hello]\npermissions = [{{ level = \"CAN_MANAGE\", user_name = \"bo\" }}, \
         {{ level = \"CAN_VIEW\", group_name = \"all\" }}]\n{TASK_A}"
    );
    let job = &bundle_of(&text).jobs["hello"];
    let bo = Principal::User("bo".into());
    let all = Principal::Group("all".into());
    assert_eq!(level_of(&job.permissions, [&bo, &all]), Some(PermissionLevel::CanManage));
    assert_eq!(level_of(&job.permissions, [&all]), Some(PermissionLevel::CanView));
    assert_eq!(level_of(&job.permissions, [&Principal::User("eve".into())]), None);
    assert!(PermissionLevel::CanManage.allows(PermissionLevel::CanManageRun));
    assert!(!PermissionLevel::CanView.allows(PermissionLevel::CanManageRun));
    assert!(PermissionLevel::IsOwner > PermissionLevel::CanManage);
}

#[test]
fn bad_target_keys_say_where() {
    let text = with_targets("[targets.prod]\nmode = \"prod\"\n");
    assert_error(&text, line_of(&text, "mode ="), "targets.prod.mode", "use \"development\" or \"production\"");
    let text = with_targets("[targets.prod]\nrun_ass = \"x\"\n");
    assert_error(&text, line_of(&text, "run_ass"), "targets.prod.run_ass", "did you mean `run_as`?");
    let text = with_targets("[targets.prod]\ngit = { brnch = \"main\" }\n");
    assert_error(&text, line_of(&text, "brnch"), "targets.prod.git.brnch", "did you mean `branch`?");
    let text = with_targets("[targets.prod]\nrequire_approval = -1\n");
    assert_error(&text, line_of(&text, "require_approval"), "targets.prod.require_approval", "from 0 to 100");
    let text = with_targets("[targets.prod]\npromote_from = \"tset\"\n[targets.test]\n");
    assert_error(&text, line_of(&text, "promote_from"), "targets.prod.promote_from", "did you mean `test`?");
    let text = with_targets("[targets.prod]\npromote_from = \"prod\"\n");
    assert_error(&text, line_of(&text, "promote_from"), "targets.prod.promote_from", "from itself");
    let text = with_targets("[targets.prod]\nvariables = { lake = [1] }\n");
    assert_error(&text, line_of(&text, "lake ="), "targets.prod.variables.lake", "string, number or boolean");
}

#[test]
fn job_overrides_name_existing_jobs_and_parameters() {
    let text = with_targets("[targets.prod.jobs.helo]\nparameters = { day = \"x\" }\n");
    assert_error(&text, line_of(&text, "helo"), "targets.prod.jobs.helo", "did you mean `hello`?");
    let text = with_targets("[targets.prod.jobs.hello]\nparameters = { dya = \"x\" }\n");
    assert_error(&text, line_of(&text, "dya"), "targets.prod.jobs.hello.parameters.dya", "did you mean `day`?");
    let text = with_targets("[targets.prod.jobs.hello]\nschedule = \"x\"\n");
    assert_error(&text, line_of(&text, "schedule"), "targets.prod.jobs.hello.schedule", "unknown key");
}

#[test]
fn bad_permissions_say_why() {
    let perms = |list: &str| with_targets(&format!("[targets.prod]\npermissions = [{list}]\n"));
    let text = perms("{ level = \"CAN_RUN\", user_name = \"a\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[0].level", "CAN_MANAGE_RUN");
    let text = perms("{ level = \"CAN_VIEW\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[0]", "needs one of `user_name`");
    let text = perms("{ level = \"CAN_VIEW\", user_name = \"a\", group_name = \"g\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[0].group_name", "exactly one");
    let text = perms("{ level = \"IS_OWNER\", group_name = \"g\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[0].level", "group cannot be IS_OWNER");
    let text = perms("{ level = \"IS_OWNER\", user_name = \"a\" }, { level = \"IS_OWNER\", user_name = \"b\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[1].level", "only one");
    let text = perms("{ level = \"CAN_VIEW\", user_name = \"a\" }, { level = \"CAN_MANAGE\", user_name = \"a\" }");
    assert_error(&text, line_of(&text, "permissions"), "targets.prod.permissions[1].user_name", "listed twice");
    let text = perms("{ level = \"CAN_VIEW\", user_nam = \"a\" }");
    assert_error(
        &text,
        line_of(&text, "permissions"),
        "targets.prod.permissions[0].user_nam",
        "did you mean `user_name`?",
    );
}

#[test]
fn secret_scopes_declare_acls_never_values() {
    use crate::secrets::{AclEntry, Permission as Acl};
    let text = format!(
        "{HEAD}\n[secret_scopes.storage]\nacls = [{{ principal = \"ana\", permission = \"MANAGE\" }}, \
         {{ principal = \"svc\", permission = \"read\" }}]\n[secret_scopes.empty]\n"
    );
    let bundle = bundle_of(&text);
    assert_eq!(
        bundle.secret_scopes["storage"].acls,
        [
            AclEntry { principal: "ana".into(), permission: Acl::Manage },
            AclEntry { principal: "svc".into(), permission: Acl::Read }
        ]
    );
    assert!(bundle.secret_scopes["empty"].acls.is_empty());
    let text = format!("{HEAD}\n[secret_scopes.storage]\nvalue = \"hunter2\"\n");
    let shown = assert_error(&text, line_of(&text, "value"), "secret_scopes.storage.value", "never go in the bundle");
    assert!(shown.contains("sluice secrets put") && !shown.contains("hunter2"), "{shown}");
    let text = format!("{HEAD}\n[secret_scopes.storage]\nacls = [{{ principal = \"a\", permission = \"OWN\" }}]\n");
    assert_error(&text, line_of(&text, "acls"), "secret_scopes.storage.acls[0].permission", "READ, WRITE or MANAGE");
    let text = format!("{HEAD}\n[secret_scopes.\"a b\"]\n");
    assert_error(&text, line_of(&text, "a b"), "secret_scopes.\"a b\"", "letters, digits");
}
