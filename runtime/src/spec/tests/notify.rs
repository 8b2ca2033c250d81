//! Destinations, notifications, health rules and notification settings in the bundle.

use std::path::Path;

use super::super::{Destination, SmtpTls, SpecError, WebhookFormat, parse};

const HEAD: &str = r#"[bundle]
name = "n"
[components]
c = "c.wasm"
[destinations.ops]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
format = "slack"
secret = "hooks/ops"
[destinations.mail]
kind = "email"
host = "127.0.0.1"
port = 2525
from = "sluice@example.com"
to = ["a@example.com", "b@example.com"]
username = "u"
password = "smtp/pw"
"#;

fn parsed(job: &str) -> Result<super::super::Bundle, SpecError> {
    parse(&format!("{HEAD}{job}"), Path::new("sluice.toml"), Path::new("/b"))
}

#[test]
fn a_job_and_its_tasks_name_destinations_which_are_pinned_with_the_job() {
    let bundle = parsed(
        "[jobs.j]\nnotifications = { on_start = [\"ops\"], on_failure = [\"ops\", \"mail\"] }\n\
         health = { rules = [{ metric = \"RUN_DURATION_SECONDS\", op = \"GREATER_THAN\", value = 3600 }, \
         { metric = \"RUN_DURATION_SECONDS\", op = \"GREATER_THAN\", value = 60 }] }\n\
         notification_settings = { no_alert_for_canceled_runs = true }\n\
         [[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"c\"\nnotifications = { on_success = [\"mail\"] }\n\
         [[jobs.j.tasks]]\nkey = \"quiet\"\ncomponent = \"c\"\n",
    )
    .unwrap();
    let notify = &bundle.jobs["j"].notify;
    assert_eq!(notify.job.on_start, ["ops"]);
    assert_eq!(notify.job.on_failure, ["ops", "mail"]);
    assert_eq!(notify.job.duration_warning_secs, Some(60), "the smallest threshold wins");
    assert!(notify.job.no_alert_for_canceled_runs && !notify.job.no_alert_for_skipped_runs);
    assert_eq!(notify.tasks.keys().collect::<Vec<_>>(), ["t"], "tasks that say nothing are left out");
    assert_eq!(notify.tasks["t"].on_success, ["mail"]);
    assert_eq!(
        notify.destinations["ops"],
        Destination::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret: Some("hooks/ops".into()),
            format: WebhookFormat::Slack
        }
    );
    match &notify.destinations["mail"] {
        Destination::Email { port, tls, to, password, .. } => {
            assert_eq!((*port, *tls, to.len(), password.as_deref()), (2525, SmtpTls::Off, 2, Some("smtp/pw")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_job_without_notifications_serialises_as_before() {
    let bundle = parsed("[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n").unwrap();
    let json = serde_json::to_string(&bundle.jobs["j"]).unwrap();
    assert!(!json.contains("notify"), "plans and their hashes stay the same: {json}");
}

#[test]
fn an_unknown_destination_is_refused_at_its_line() {
    let text = "[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n\
                notifications = { on_failure = [\"opps\"] }\n";
    let error = parsed(text).unwrap_err();
    let line = HEAD.lines().count() + 3;
    assert_eq!(error.line(), Some(line), "{error}");
    let text = error.to_string();
    assert!(text.contains("unknown destination `opps`") && text.contains("did you mean `ops`"), "{text}");
    assert!(text.contains("jobs.j.notifications.on_failure[0]"), "{text}");
    let task_level = parsed(
        "[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"c\"\nnotifications = { on_start = [\"nobody\"] }\n",
    )
    .unwrap_err();
    assert!(task_level.to_string().contains("unknown destination `nobody`"), "{task_level}");
}

#[test]
fn bad_destinations_and_rules_are_refused() {
    let cases = [
        ("[destinations.x]\nkind = \"pager\"\n", "unknown destination kind"),
        ("[destinations.x]\nkind = \"webhook\"\nurl = \"ftp://x\"\n", "http:// or https://"),
        ("[destinations.x]\nkind = \"webhook\"\nurl = \"http://x\"\nformat = \"discord\"\n", "unknown format"),
        ("[destinations.x]\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"nokey\"\n", "scope/key"),
        ("[destinations.x]\nkind = \"email\"\nhost = \"h\"\nfrom = \"me\"\nto = \"a@b\"\n", "not a mail address"),
        ("[destinations.x]\nkind = \"email\"\nhost = \"h\"\nfrom = \"a@b\"\nto = []\n", "at least one recipient"),
        (
            "[destinations.x]\nkind = \"email\"\nhost = \"h\"\nfrom = \"a@b\"\nto = \"a@b\"\ntls = \"ssl\"\n",
            "unknown tls",
        ),
        (
            "[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n\
             health = { rules = [{ metric = \"CPU\", op = \"GREATER_THAN\", value = 1 }] }\n",
            "unknown metric",
        ),
        (
            "[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n\
             health = { rules = [{ metric = \"RUN_DURATION_SECONDS\", op = \"GREATER_THAN\", value = 0 }] }\n",
            "at least 1",
        ),
        (
            "[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n\
             notification_settings = { no_alert_for_skiped_runs = true }\n",
            "did you mean `no_alert_for_skipped_runs`",
        ),
    ];
    for (text, expected) in cases {
        let error = parsed(text).unwrap_err().to_string();
        assert!(error.contains(expected) && error.starts_with("sluice.toml:"), "{text}\n→ {error}");
    }
}
