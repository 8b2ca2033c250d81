//! A NATS server that an older sluice used: its durable consumers have other settings (the
//! work consumers filtered `sluice.work.<route>`, before attempt ids joined the subject).
//! The server brings them to its own settings instead of waiting forever on a consumer
//! that never matches what it publishes.

use super::security::nats_request;
use super::{Nats, ran, repo_example, worker};
use sluice_tests::{Sluice, task_of};

#[test]
fn consumers_an_older_sluice_left_are_brought_to_this_ones_settings() {
    let nats = Nats::start();
    let stream = r#"{"name":"SLUICE_WORK","subjects":["sluice.work.>"],"retention":"workqueue","storage":"file"}"#;
    let made = nats_request(&nats.url, "$JS.API.STREAM.CREATE.SLUICE_WORK", stream);
    assert!(!made.contains("\"error\""), "{made}");
    let old = r#"{"stream_name":"SLUICE_WORK","config":{"durable_name":"work-any","filter_subject":"sluice.work.any","ack_policy":"explicit"}}"#;
    let made = nats_request(&nats.url, "$JS.API.CONSUMER.DURABLE.CREATE.SLUICE_WORK.work-any", old);
    assert!(!made.contains("\"error\""), "{made}");

    let s = Sluice::new();
    let pipeline = repo_example("pipeline");
    let server = s.serve(&["--nats", &nats.url, pipeline.to_str().unwrap()]);
    let mut w = worker(&s, &nats, "w1", &[], false);
    let (code, run) = s.run_json(&pipeline, &["--job", "nightly"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(task_of(&run, "extract")["result"], "success", "{run:#}");
    assert!(ran(&mut w, "extract"), "the worker never ran `extract`");
    let info = nats_request(&nats.url, "$JS.API.CONSUMER.INFO.SLUICE_WORK.work-any", "");
    assert!(info.contains("sluice.work.any.*"), "the consumer keeps the old filter: {info}");
    w.kill();
    server.kill();
}
