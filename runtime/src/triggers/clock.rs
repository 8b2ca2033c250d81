//! The trigger engine's clock: [`WakeClock`] is the runtime's [`Clock`] plus a way to
//! sleep until a time, so every trigger test drives time by hand ([`ManualClock`]) and
//! never sleeps through real minutes. [`FileClock`] is the end-to-end tests' clock
//! (`SLUICE_TEST_CLOCK=FILE`: the time is the number of milliseconds written in FILE);
//! it exists for tests only.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{Clock, Millis, SystemClock, time_of};

/// A boxed future a clock's sleep returns.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The longest a real sleep lasts before the time is read again: the wall clock may be
/// set while the engine sleeps (and a trigger may have been paused or resumed).
const MAX_REAL_SLEEP: Duration = Duration::from_secs(30);

/// How often the file clock reads its file while someone sleeps on it (tests only).
const FILE_CLOCK_POLL: Duration = Duration::from_millis(20);

/// A clock that can also wake a sleeper at a time.
pub trait WakeClock: Clock {
    /// A future that is ready at `at` (or a little after; at once if `at` has passed).
    /// It may also return early: callers read the time again.
    fn sleep_until(&self, at: SystemTime) -> Sleep;
}

impl WakeClock for SystemClock {
    fn sleep_until(&self, at: SystemTime) -> Sleep {
        let wait = at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(MAX_REAL_SLEEP);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock only a test moves ([`ManualClock::set`], [`ManualClock::advance`]).
pub struct ManualClock {
    now: Mutex<Millis>,
    moved: tokio::sync::watch::Sender<Millis>,
}

impl ManualClock {
    pub fn new(at: Millis) -> ManualClock {
        ManualClock { now: Mutex::new(at), moved: tokio::sync::watch::channel(at).0 }
    }

    pub fn set(&self, at: Millis) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
        self.moved.send_replace(at);
    }

    pub fn advance(&self, by: Duration) {
        self.set(self.now_millis() + by.as_millis() as Millis);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        time_of(*self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl WakeClock for ManualClock {
    fn sleep_until(&self, at: SystemTime) -> Sleep {
        let mut rx = self.moved.subscribe();
        let at = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as Millis;
        Box::pin(async move {
            let _ = rx.wait_for(|&now| now >= at).await;
        })
    }
}

/// Test only: the time is the number of milliseconds since the epoch written in a file
/// (`SLUICE_TEST_CLOCK=FILE` for `sluice serve`); before the file holds one, the real time.
pub struct FileClock {
    path: PathBuf,
}

impl FileClock {
    pub fn new(path: PathBuf) -> FileClock {
        FileClock { path }
    }

    fn read(path: &std::path::Path) -> Option<Millis> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

impl Clock for FileClock {
    fn now(&self) -> SystemTime {
        Self::read(&self.path).map_or_else(SystemTime::now, time_of)
    }
}

impl WakeClock for FileClock {
    fn sleep_until(&self, _at: SystemTime) -> Sleep {
        // woken often: the test moves time by writing the file
        Box::pin(tokio::time::sleep(FILE_CLOCK_POLL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let clock = std::sync::Arc::new(ManualClock::new(1_000));
        let sleep = clock.sleep_until(time_of(5_000));
        let woke = tokio::spawn(sleep);
        clock.advance(Duration::from_millis(3_000));
        tokio::task::yield_now().await;
        assert!(!woke.is_finished(), "woke before its time");
        clock.set(5_000);
        tokio::time::timeout(Duration::from_secs(5), woke).await.unwrap().unwrap();
        assert_eq!(clock.now_millis(), 5_000);
    }
}
