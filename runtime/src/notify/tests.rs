//! The notifier as an observer: notices are written when their event is appended and
//! handed on only once it is flushed; a resumed run notes nothing twice.

use super::*;
use crate::model::{RunResult, SystemClock};
use crate::store::{MemoryNoticeStore, MemoryStore};

fn notifier() -> (Arc<MemoryNoticeStore>, Notifier) {
    let notices = Arc::new(MemoryNoticeStore::default());
    let n = Notifier::new(notices.clone(), Arc::new(MemoryStore::new()), Arc::new(SystemClock), None);
    (notices, n)
}

fn created() -> Event {
    let bundle = crate::spec::parse(
        "[bundle]\nname = \"b\"\n[components]\nc = \"c.wasm\"\n\
         [destinations.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         [jobs.j]\nnotifications = { on_failure = [\"ops\"] }\ntasks = [{ key = \"t\", component = \"c\" }]\n",
        std::path::Path::new("sluice.toml"),
        std::path::Path::new("/b"),
    )
    .unwrap();
    let plan = crate::model::RunPlan {
        bundle_root: "/b".into(),
        bundle: "b".into(),
        job: bundle.jobs["j"].clone(),
        jobs: Default::default(),
        components: Default::default(),
        parent: None,
        principal: "p".into(),
        workspace: "default".into(),
        trigger: None,
        target_limits: Default::default(),
        job_id: None,
    };
    Event::RunCreated {
        run_id: 4,
        job: "j".into(),
        source: "s".into(),
        target: "dev".into(),
        parameters: Default::default(),
        tasks: vec![],
        at: 0,
        plan: Some(Box::new(plan)),
    }
}

#[test]
fn a_notice_is_written_with_its_event_and_queued_once_the_event_is_durable() {
    let (notices, n) = notifier();
    let end = Event::RunFinished { result: RunResult::Failed, at: 10 };
    n.appended(4, &created());
    n.appended(4, &end);
    assert_eq!(notices.notices(4).unwrap().len(), 1, "written (unflushed) with the event");
    assert!(n.lock().ready.is_empty(), "not delivered before the event is durable");
    n.event(4, &created());
    assert_eq!(n.lock().ready.len(), 1);
    assert_eq!(n.views(4).unwrap()[0].destination, "ops");
}

#[test]
fn a_resumed_run_does_not_note_its_history_again() {
    let (notices, n) = notifier();
    let end = Event::RunFinished { result: RunResult::Failed, at: 10 };
    n.attached(4, &[created(), end]);
    assert!(notices.notices(4).unwrap().is_empty());
    assert!(n.lock().staged.is_empty() && n.lock().ready.is_empty());
}
