//! Fair share of sandbox slots, simulated with an injected clock: tasks arrive and end at
//! simulated times, and every grant's wait is measured on the simulated clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::UNIX_EPOCH;

use super::*;

struct FakeClock(Mutex<SystemTime>);

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// Waits per workspace, as the slots report them.
#[derive(Default)]
struct Waits(Mutex<BTreeMap<String, Vec<Duration>>>);

impl Telemetry for Waits {
    fn slot_granted(&self, workspace: &str, waited: Duration) {
        self.0.lock().unwrap().entry(workspace.to_string()).or_default().push(waited);
    }
}

impl Waits {
    fn p99(&self, workspace: &str) -> Duration {
        let mut w = self.0.lock().unwrap().get(workspace).cloned().unwrap_or_default();
        assert!(!w.is_empty(), "{workspace} ran nothing");
        w.sort();
        w[(w.len() * 99).div_ceil(100) - 1]
    }
    fn count(&self, workspace: &str) -> usize {
        self.0.lock().unwrap().get(workspace).map_or(0, Vec::len)
    }
}

/// A workload: every `every_ms`, `burst` tasks of `ms` milliseconds each.
#[derive(Clone, Copy)]
struct Load {
    workspace: &'static str,
    every_ms: u64,
    burst: usize,
    ms: u64,
}

fn poll_now(wait: &mut SlotWait) -> Option<SlotPermit> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(wait).poll(&mut cx) {
        Poll::Ready(p) => Some(p),
        Poll::Pending => None,
    }
}

/// Run `loads` against `total` slots for `until_ms` simulated milliseconds; the waits.
fn simulate(total: usize, share: FairShare, loads: &[Load], until_ms: u64) -> Arc<Waits> {
    let clock = Arc::new(FakeClock(Mutex::new(UNIX_EPOCH)));
    let waits = Arc::new(Waits::default());
    let slots = Slots::with_observer(total, share, clock.clone(), Some(waits.clone()));
    // (end time, permit) of running tasks; (workspace, duration, ticket) of waiting ones
    let mut running: Vec<(u64, SlotPermit)> = Vec::new();
    // per workspace, in ticket order (a line is served first come, first served)
    let mut waiting: BTreeMap<&str, std::collections::VecDeque<(u64, SlotWait)>> = BTreeMap::new();
    for now in 0..until_ms {
        *clock.0.lock().unwrap() = UNIX_EPOCH + Duration::from_millis(now);
        // tasks that end now give their slots back (handed to lines inside `release`)
        running.retain(|(end, _)| *end > now);
        for load in loads.iter().filter(|l| now % l.every_ms == 0) {
            for _ in 0..load.burst {
                match slots.try_acquire(load.workspace) {
                    Some(p) => running.push((now + load.ms, p)),
                    None => waiting.entry(load.workspace).or_default().push_back((load.ms, slots.wait(load.workspace))),
                }
            }
        }
        for line in waiting.values_mut() {
            while let Some((ms, w)) = line.front_mut() {
                let Some(p) = poll_now(w) else { break };
                running.push((now + *ms, p));
                line.pop_front();
            }
        }
    }
    waits
}

const SMALL: Load = Load { workspace: "small", every_ms: 20, burst: 1, ms: 10 };
const FLOOD: Load = Load { workspace: "flood", every_ms: 20, burst: 100, ms: 10 };

#[test]
fn a_flooding_workspace_cannot_starve_another() {
    let alone = simulate(4, FairShare::default(), &[SMALL], 10_000);
    assert_eq!(alone.p99("small"), Duration::ZERO, "alone, the small workspace never waits");
    let shared = simulate(4, FairShare::default(), &[SMALL, FLOOD], 10_000);
    // the flood has a backlog of thousands of tasks; the small workspace's next ticket
    // still gets the next slot given back: at most one task's length
    assert!(shared.p99("small") <= Duration::from_millis(10), "{:?}", shared.p99("small"));
    assert_eq!(shared.count("small"), alone.count("small"), "every small task ran");
    assert!(shared.p99("flood") > Duration::from_secs(1), "the flood waits behind its own backlog");
}

#[test]
fn a_cap_keeps_the_other_workspace_s_p99_wait_unchanged() {
    let alone = simulate(4, FairShare::default(), &[SMALL], 10_000);
    let caps = BTreeMap::from([("flood".to_string(), 3)]);
    let shared = simulate(4, FairShare { caps, ..FairShare::default() }, &[SMALL, FLOOD], 10_000);
    // 100x the load: the small workspace's p99 wait is within 10% of its wait alone
    assert!(shared.p99("small").as_secs_f64() <= alone.p99("small").as_secs_f64() * 1.1);
    assert_eq!(shared.count("small"), alone.count("small"));
}

#[test]
fn slots_are_shared_by_weight_while_both_workspaces_wait() {
    let heavy = Load { workspace: "heavy", every_ms: 10, burst: 50, ms: 5 };
    let light = Load { workspace: "light", every_ms: 10, burst: 50, ms: 5 };
    let weights = BTreeMap::from([("heavy".to_string(), 3), ("light".to_string(), 1)]);
    let waits = simulate(4, FairShare { weights, ..FairShare::default() }, &[heavy, light], 2_000);
    let (h, l) = (waits.count("heavy") as f64, waits.count("light") as f64);
    let share = h / (h + l);
    assert!((share - 0.75).abs() < 0.02, "heavy got {share:.3} of the grants, not 3/4");
}

#[test]
fn a_workspace_never_holds_more_than_its_cap() {
    let clock: Arc<dyn Clock> = Arc::new(FakeClock(Mutex::new(UNIX_EPOCH)));
    let caps = BTreeMap::from([("a".to_string(), 2)]);
    let slots = Slots::new(4, FairShare { caps, ..FairShare::default() }, clock);
    let p1 = slots.try_acquire("a").unwrap();
    let _p2 = slots.try_acquire("a").unwrap();
    assert!(slots.try_acquire("a").is_none(), "a is at its cap");
    assert_eq!(slots.available("a"), 0);
    assert_eq!(slots.available("b"), 2);
    let mut w = slots.wait("a");
    assert!(poll_now(&mut w).is_none(), "free slots, but a is at its cap");
    drop(p1);
    assert!(poll_now(&mut w).is_some(), "a slot a gave back goes to a's line");
}

#[test]
fn a_dropped_ticket_leaves_the_line_and_gives_back_what_it_was_handed() {
    let clock: Arc<dyn Clock> = Arc::new(FakeClock(Mutex::new(UNIX_EPOCH)));
    let slots = Slots::new(1, FairShare::default(), clock);
    let held = slots.try_acquire("a").unwrap();
    let waiting = slots.wait("b");
    assert_eq!(slots.waiting(), 1);
    drop(held); // handed to b's ticket
    drop(waiting); // never taken: given back
    assert_eq!(slots.waiting(), 0);
    assert!(slots.try_acquire("c").is_some(), "the slot is free again");
}
