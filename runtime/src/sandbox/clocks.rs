//! Capability: virtual clocks.
//!
//! Owns the wall and monotonic clocks a guest sees, and its sleeps. Guests never read the
//! host clock: the wall clock starts at the run's logical start time, both clocks advance
//! by a fixed step per reading, and by the length of every sleep the guest completes
//! (`time.sleep(0.3)` really waits 0.3 s, and afterwards the clocks read 0.3 s later, not
//! one step later). What a sleep adds is what the guest asked for, never what the host
//! measured, so a rerun reads the same times. Timers fire in real time; it never reads the
//! host's clock for the guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::{Capability, HostState, Prepare};

/// How far a virtual clock advances per reading: small enough to look like a
/// real clock to code that measures elapsed time, large enough that two
/// readings always differ.
pub const VIRTUAL_TICK: Duration = Duration::from_micros(1);

/// The WASI interface whose timers are replaced (the version wasmtime-wasi links).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

#[derive(Debug, Default)]
struct Counters {
    /// Readings so far (each advances both clocks by [`VIRTUAL_TICK`]).
    reads: AtomicU64,
    /// Nanoseconds of completed sleeps.
    slept: AtomicU64,
}

/// The virtual time both clocks of one attempt share, so wall and monotonic time move
/// together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ticks(Arc<Counters>);

impl Ticks {
    /// Nanoseconds since the attempt's start, advancing one tick.
    fn next(&self) -> u64 {
        let reads = self.0.reads.fetch_add(1, Ordering::Relaxed) + 1;
        self.at(reads)
    }

    /// Nanoseconds since the attempt's start, without reading.
    fn peek(&self) -> u64 {
        self.at(self.0.reads.load(Ordering::Relaxed))
    }

    fn at(&self, reads: u64) -> u64 {
        let tick = VIRTUAL_TICK.as_nanos() as u64;
        reads.saturating_mul(tick).saturating_add(self.0.slept.load(Ordering::Relaxed))
    }

    /// A sleep of `nanos` completed.
    fn slept(&self, nanos: u64) {
        self.0.slept.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Wall clock fixed at a logical start, advancing by [`VIRTUAL_TICK`] per reading and by
/// every completed sleep.
pub(crate) struct VirtualWallClock {
    start: Duration,
    ticks: Ticks,
}

impl VirtualWallClock {
    pub(crate) fn new(start: SystemTime, ticks: Ticks) -> Self {
        VirtualWallClock { start: start.duration_since(UNIX_EPOCH).unwrap_or_default(), ticks }
    }
}

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        VIRTUAL_TICK
    }

    fn now(&self) -> Duration {
        self.start + Duration::from_nanos(self.ticks.next())
    }
}

/// Monotonic clock starting at zero, advancing like [`VirtualWallClock`].
pub(crate) struct VirtualMonotonicClock {
    ticks: Ticks,
}

impl VirtualMonotonicClock {
    pub(crate) fn new(ticks: Ticks) -> Self {
        VirtualMonotonicClock { ticks }
    }
}

impl HostMonotonicClock for VirtualMonotonicClock {
    fn resolution(&self) -> u64 {
        VIRTUAL_TICK.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        self.ticks.next()
    }
}

/// The clocks capability: the attempt's virtual time (both clocks live in WASI).
pub(crate) struct Clocks {
    ticks: Ticks,
}

impl Capability for Clocks {
    /// Every guest gets virtual clocks from its run's logical start: nothing to grant.
    type Grant = ();

    fn prepare((): (), cx: &mut Prepare<'_>) -> Result<Self, String> {
        let ticks = Ticks::default();
        cx.wasi
            .wall_clock(VirtualWallClock::new(cx.context.logical_start, ticks.clone()))
            .monotonic_clock(VirtualMonotonicClock::new(ticks.clone()));
        Ok(Clocks { ticks })
    }

    /// Replaces wasmtime-wasi's timers (`subscribe-duration`, `subscribe-instant`; the
    /// preview1 adapter's `poll_oneoff` sleeps through them too) with ones that advance the
    /// virtual clocks by what they slept.
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        linker.allow_shadowing(true);
        let mut clock = linker.instance(MONOTONIC_CLOCK)?;
        clock.func_wrap("subscribe-duration", |mut cx, (nanos,): (u64,)| {
            let state: &mut HostState = cx.data_mut();
            let sleep = Sleep::new(state.caps.clocks.ticks.clone(), nanos);
            Ok((sleep.subscribe(&mut state.table)?,))
        })?;
        clock.func_wrap("subscribe-instant", |mut cx, (when,): (u64,)| {
            let state: &mut HostState = cx.data_mut();
            let ticks = state.caps.clocks.ticks.clone();
            let sleep = Sleep::new(ticks.clone(), when.saturating_sub(ticks.peek()));
            Ok((sleep.subscribe(&mut state.table)?,))
        })?;
        linker.allow_shadowing(false);
        Ok(())
    }
}

/// A guest's timer: ready once `nanos` really passed; then the virtual clocks have
/// advanced by `nanos` (once, however often it is polled).
struct Sleep {
    deadline: Option<tokio::time::Instant>,
    nanos: u64,
    ticks: Ticks,
    done: bool,
}

impl Sleep {
    fn new(ticks: Ticks, nanos: u64) -> Sleep {
        let deadline = tokio::time::Instant::now().checked_add(Duration::from_nanos(nanos));
        Sleep { deadline, nanos, ticks, done: false }
    }

    fn subscribe(self, table: &mut ResourceTable) -> wasmtime::Result<Resource<DynPollable>> {
        let sleep = table.push(self)?;
        subscribe(table, sleep)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        match self.deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            // beyond what the host can represent: never
            None => std::future::pending::<()>().await,
        }
        if !self.done {
            self.done = true;
            self.ticks.slept(self.nanos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_are_reproducible_and_advance() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let read = || {
            let ticks = Ticks::default();
            let wall = VirtualWallClock::new(start, ticks.clone());
            let mono = VirtualMonotonicClock::new(ticks);
            (wall.now(), mono.now(), wall.now())
        };
        let a = read();
        assert_eq!(a, read());
        assert!(a.2 > a.0);
        assert_eq!(a.0, Duration::from_secs(1_000) + VIRTUAL_TICK);
    }

    #[tokio::test]
    async fn a_completed_sleep_advances_both_clocks_by_what_was_asked_once() {
        let ticks = Ticks::default();
        let mono = VirtualMonotonicClock::new(ticks.clone());
        let wall = VirtualWallClock::new(UNIX_EPOCH, ticks.clone());
        let before = mono.now();
        let mut sleep = Sleep::new(ticks.clone(), 300_000_000);
        let real = std::time::Instant::now();
        sleep.ready().await;
        sleep.ready().await;
        assert!(real.elapsed() >= Duration::from_millis(300), "the sleep really waited");
        let after = mono.now();
        assert_eq!(after - before, 300_000_000 + VIRTUAL_TICK.as_nanos() as u64, "exactly the sleep, plus one tick");
        assert_eq!(wall.now(), Duration::from_nanos(after + VIRTUAL_TICK.as_nanos() as u64));
    }
}
