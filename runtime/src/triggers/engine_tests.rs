use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::spec::triggers::{CatchUp, DstPolicy, FileArrival};
use crate::store::MemoryTriggerStore;
use crate::store::triggers::Consumed;
use crate::triggers::ManualClock;

const H: Millis = 3_600_000;
/// 2030-01-01T00:00:00Z
const T0: Millis = 1_893_456_000_000;

/// Starts "runs" by recording firings as the service does (unless `crash` is set: the
/// process dies before the run's creation is durable, so nothing is recorded).
struct Fake {
    store: Arc<MemoryTriggerStore>,
    next: AtomicU64,
    launched: Mutex<Vec<Firing>>,
    crash: AtomicBool,
    results: Mutex<HashMap<RunId, bool>>,
}

impl Fake {
    fn new(store: Arc<MemoryTriggerStore>) -> Fake {
        Fake {
            store,
            next: AtomicU64::new(1),
            launched: Mutex::new(vec![]),
            crash: AtomicBool::new(false),
            results: Mutex::new(HashMap::new()),
        }
    }

    fn times(&self) -> Vec<Millis> {
        self.launched.lock().unwrap().iter().map(|f| f.context.time).collect()
    }
}

impl Launcher for Fake {
    fn launch<'a>(&'a self, job: &'a TriggerJob, firing: Firing) -> LaunchFuture<'a> {
        Box::pin(async move {
            if let Some(FiringRecord { outcome: Outcome::Fired { run }, .. }) =
                self.store.firing(job.job_id, &firing.key)?
            {
                return Ok(Launched { run, existing: true });
            }
            let run = self.next.fetch_add(1, Ordering::Relaxed);
            if !self.crash.load(Ordering::Relaxed) {
                let rec = FiringRecord { outcome: Outcome::Fired { run }, recorded_at: firing.context.time };
                self.store.put_firing(job.job_id, &firing.key, &rec)?;
                for f in &firing.context.files {
                    self.store.put_consumed(job.job_id, &f.path, &Consumed { version: f.version(), run })?;
                }
            }
            self.launched.lock().unwrap().push(firing);
            Ok(Launched { run, existing: false })
        })
    }

    fn finished(&self, run: RunId) -> Option<bool> {
        self.results.lock().unwrap().get(&run).copied()
    }
}

fn job(kind: TriggerKind, catch_up: CatchUp) -> TriggerJob {
    TriggerJob {
        principal: None,
        job_id: 7,
        workspace: "default".into(),
        name: "b.nightly".into(),
        target: "dev".into(),
        spec: TriggerSpec { kind, paused: false, catch_up, catch_up_window: Duration::from_secs(6 * 3600), line: 1 },
    }
}

fn hourly() -> TriggerKind {
    TriggerKind::Schedule { cron: "0 0 * * * ?".into(), timezone: "Europe/Amsterdam".into(), dst: DstPolicy::default() }
}

fn engine(clock: &Arc<ManualClock>, store: &Arc<MemoryTriggerStore>) -> Engine {
    Engine::new(clock.clone(), store.clone(), Arc::new(crate::model::NoTelemetry))
}

#[tokio::test]
async fn each_tick_fires_once_even_across_a_restart() {
    let clock = Arc::new(ManualClock::new(T0 + 10 * 60_000));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Fake::new(store.clone());
    let e = engine(&clock, &store);
    e.set_jobs(vec![job(hourly(), CatchUp::Last)]).await;
    assert_eq!(e.step(&fake).await, Some(T0 + H), "the next tick is the next hour");
    assert!(fake.times().is_empty(), "a trigger first seen does not fire for ticks before it");
    clock.set(T0 + H + 500);
    e.step(&fake).await;
    e.step(&fake).await;
    assert_eq!(fake.times(), vec![T0 + H]);
    // a new process over the same store, at the same moment: nothing again
    let again = engine(&clock, &store);
    again.set_jobs(vec![job(hourly(), CatchUp::Last)]).await;
    again.step(&fake).await;
    assert_eq!(fake.times(), vec![T0 + H]);
    clock.set(T0 + 2 * H + 10);
    again.step(&fake).await;
    assert_eq!(fake.times(), vec![T0 + H, T0 + 2 * H]);
}

#[tokio::test]
async fn a_tick_whose_run_never_became_durable_fires_after_the_restart() {
    let clock = Arc::new(ManualClock::new(T0 + 10 * 60_000));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Fake::new(store.clone());
    let e = engine(&clock, &store);
    e.set_jobs(vec![job(hourly(), CatchUp::Last)]).await;
    e.step(&fake).await;
    clock.set(T0 + H + 5);
    fake.crash.store(true, Ordering::Relaxed);
    e.step(&fake).await;
    fake.crash.store(false, Ordering::Relaxed);
    let again = engine(&clock, &store);
    again.set_jobs(vec![job(hourly(), CatchUp::Last)]).await;
    clock.set(T0 + H + 30_000);
    again.step(&fake).await;
    assert_eq!(fake.times(), vec![T0 + H, T0 + H], "the lost firing ran again, with the same logical time");
    assert!(matches!(store.firing(7, &FiringKey::Tick(T0 + H)).unwrap().unwrap().outcome, Outcome::Fired { .. }));
}

#[tokio::test]
async fn downtime_is_caught_up_by_the_policy_and_the_rest_recorded_missed() {
    for (policy, fired, missed) in [(CatchUp::Last, 1, 8), (CatchUp::All, 6, 3), (CatchUp::None, 0, 9)] {
        let clock = Arc::new(ManualClock::new(T0 + 10 * 60_000));
        let store = Arc::new(MemoryTriggerStore::default());
        let fake = Fake::new(store.clone());
        let e = engine(&clock, &store);
        e.set_jobs(vec![job(hourly(), policy)]).await;
        e.step(&fake).await;
        // down for nine hours (window six): 01..09 due, 01..03 outside the window
        clock.set(T0 + 9 * H + 20 * 60_000);
        let again = engine(&clock, &store);
        again.set_jobs(vec![job(hourly(), policy)]).await;
        again.step(&fake).await;
        assert_eq!(fake.times().len(), fired, "{policy:?}");
        let status = again.statuses().await.unwrap().remove(0);
        assert_eq!((status.fired, status.missed), (fired as u64, missed), "{policy:?}");
        if policy == CatchUp::Last {
            assert_eq!(fake.times(), vec![T0 + 9 * H]);
        }
    }
}

#[tokio::test]
async fn a_paused_trigger_fires_nothing_and_resuming_does_not_catch_up() {
    let clock = Arc::new(ManualClock::new(T0 + 10 * 60_000));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Fake::new(store.clone());
    let e = engine(&clock, &store);
    e.set_jobs(vec![job(hourly(), CatchUp::All)]).await;
    e.step(&fake).await;
    assert!(e.set_paused(&fake, 7, true).await.unwrap());
    clock.set(T0 + 3 * H + 1);
    e.step(&fake).await;
    assert!(fake.times().is_empty());
    assert!(e.fire(&fake, 7, None).await.is_err(), "firing a paused trigger by hand is refused");
    // the pause is durable: a new engine sees it
    let again = engine(&clock, &store);
    again.set_jobs(vec![job(hourly(), CatchUp::All)]).await;
    assert_eq!(again.is_paused(7).await.unwrap(), Some(true));
    clock.set(T0 + 4 * H + 1);
    again.step(&fake).await;
    again.set_paused(&fake, 7, false).await.unwrap();
    again.step(&fake).await;
    assert!(fake.times().is_empty(), "ticks due while paused are not caught up");
    assert_eq!(again.statuses().await.unwrap()[0].skipped, 4);
    clock.set(T0 + 5 * H + 1);
    again.step(&fake).await;
    assert_eq!(fake.times(), vec![T0 + 5 * H]);
}

#[tokio::test]
async fn periodic_ticks_and_the_run_loop_follow_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Arc::new(Fake::new(store.clone()));
    let e = Arc::new(engine(&clock, &store));
    let every4h = job(TriggerKind::Periodic { every: Duration::from_secs(4 * 3600) }, CatchUp::Last);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = {
        let (e, fake) = (e.clone(), fake.clone());
        tokio::spawn(async move {
            let jobs = move || vec![every4h.clone()];
            e.run(&*fake, &jobs, stop).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    clock.set(T0 + 4 * H);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fake.times().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(fake.times(), vec![T0 + 4 * H]);
    stop_tx.send_replace(true);
    task.await.unwrap();
}

#[tokio::test]
async fn new_files_fire_once_quiet_and_a_crash_before_the_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let spec = FileArrival {
        url: url.clone(),
        min_time_between_triggers: Duration::from_secs(60),
        wait_after_last_change: Duration::from_secs(30),
        credentials: None,
    };
    let landing = job(TriggerKind::FileArrival(spec), CatchUp::Last);
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Fake::new(store.clone());
    let e = engine(&clock, &store);
    e.set_jobs(vec![landing.clone()]).await;
    std::fs::write(dir.path().join("a.csv"), "1").unwrap();
    std::fs::write(dir.path().join("b.csv"), "22").unwrap();
    e.step(&fake).await;
    clock.set(T0 + 20_000);
    e.step(&fake).await;
    assert!(fake.times().is_empty(), "not quiet long enough yet");
    // the process dies between listing and the run's creation
    clock.set(T0 + 31_000);
    fake.crash.store(true, Ordering::Relaxed);
    e.step(&fake).await;
    assert_eq!(fake.times().len(), 1);
    fake.crash.store(false, Ordering::Relaxed);
    let again = engine(&clock, &store);
    again.set_jobs(vec![landing.clone()]).await;
    again.step(&fake).await;
    clock.set(T0 + 62_000);
    again.step(&fake).await;
    let batches: Vec<Vec<String>> = fake
        .launched
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.context.files.iter().map(|x| x.path.clone()).collect())
        .collect();
    assert_eq!(batches, vec![vec!["a.csv", "b.csv"], vec!["a.csv", "b.csv"]], "the lost batch came again, whole");
    // consumed now: nothing more until a new file (or a new version) arrives
    clock.set(T0 + 200_000);
    again.step(&fake).await;
    assert_eq!(fake.times().len(), 2);
    std::fs::write(dir.path().join("b.csv"), "333").unwrap();
    clock.set(T0 + 240_000);
    again.step(&fake).await;
    clock.set(T0 + 280_000);
    again.step(&fake).await;
    let last = fake.launched.lock().unwrap().last().unwrap().context.files.clone();
    assert_eq!(last.iter().map(|f| (f.path.as_str(), f.size)).collect::<Vec<_>>(), [("b.csv", 3)]);
}

#[tokio::test]
async fn a_continuous_job_starts_when_the_last_run_ends_and_backs_off_after_failures() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryTriggerStore::default());
    let fake = Fake::new(store.clone());
    let e = engine(&clock, &store);
    e.set_jobs(vec![job(TriggerKind::Continuous, CatchUp::Last)]).await;
    e.step(&fake).await;
    e.step(&fake).await;
    assert_eq!(fake.times(), vec![T0], "one run at a time");
    fake.results.lock().unwrap().insert(1, true);
    e.step(&fake).await;
    assert_eq!(fake.times().len(), 2, "the next run starts when the previous succeeded");
    fake.results.lock().unwrap().insert(2, false);
    assert_eq!(e.step(&fake).await, Some(T0 + 10_000), "after a failure it waits the base backoff");
    assert_eq!(fake.times().len(), 2);
    clock.set(T0 + 10_000);
    e.step(&fake).await;
    fake.results.lock().unwrap().insert(3, false);
    clock.set(T0 + 11_000);
    assert_eq!(e.step(&fake).await, Some(T0 + 31_000), "two failures in a row: twice as long");
    assert_eq!(backoff(40), CONTINUOUS_BACKOFF_CAP);
}
