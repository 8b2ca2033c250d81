//! Capability: virtual clocks.
//!
//! Owns the wall and monotonic clocks a guest sees. Guests never read the host
//! clock: the wall clock starts at the run's logical start time and both clocks
//! advance by a fixed step per reading, so a rerun reads the same times. It
//! never sleeps or blocks; timers still fire in real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::{Capability, Prepare};

/// How far a virtual clock advances per reading: small enough to look like a
/// real clock to code that measures elapsed time, large enough that two
/// readings always differ.
pub const VIRTUAL_TICK: Duration = Duration::from_micros(1);

/// The reading counter both clocks of one attempt share, so wall and monotonic
/// time move together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ticks(Arc<AtomicU64>);

impl Ticks {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Wall clock fixed at a logical start, advancing by [`VIRTUAL_TICK`] per reading.
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
        self.start + VIRTUAL_TICK * (self.ticks.next() as u32)
    }
}

/// Monotonic clock starting at zero, advancing by [`VIRTUAL_TICK`] per reading.
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
        self.ticks.next() * VIRTUAL_TICK.as_nanos() as u64
    }
}

/// The clocks capability: nothing to keep per attempt, both clocks live in WASI.
pub(crate) struct Clocks;

impl Capability for Clocks {
    /// Every guest gets virtual clocks from its run's logical start: nothing to grant.
    type Grant = ();

    fn prepare((): (), cx: &mut Prepare<'_>) -> Result<Self, String> {
        let ticks = Ticks::default();
        cx.wasi
            .wall_clock(VirtualWallClock::new(cx.context.logical_start, ticks.clone()))
            .monotonic_clock(VirtualMonotonicClock::new(ticks));
        Ok(Clocks)
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
}
