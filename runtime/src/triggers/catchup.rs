//! Which ticks fire when the engine looks: the ones due since it last looked, by the
//! trigger's `catch_up` policy and window — never a storm.
//!
//! Of the ticks due inside `catch_up_window`, `last` fires the latest, `all` fires each (at
//! most [`MAX_CATCH_UP_RUNS`], the latest ones) and `none` fires the latest only if it is on
//! time (within [`ON_TIME`]: the engine wakes a moment after a tick). Every tick not fired —
//! older than the window, or passed over by the policy — is reported missed.

use std::time::Duration;

use super::cron::Ticks;
use crate::model::Millis;
use crate::spec::triggers::CatchUp;

/// How late a tick may be looked at and still count as on time (the engine wakes a
/// moment after a tick; a busy process may be late by seconds).
pub const ON_TIME: Duration = Duration::from_secs(60);

/// The most runs one catch-up starts (`catch_up = "all"`): a server down for a week with
/// a minutely schedule must not start ten thousand runs.
pub const MAX_CATCH_UP_RUNS: usize = 10;

/// The most ticks counted one by one when deciding what was missed; beyond, the engine
/// skips to the window's start and says how many it counted (a cron that matches every
/// second, down for a day, is 86,400 ticks).
pub const MAX_TICKS_COUNTED: u64 = 100_000;

/// What to do with the ticks due since the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Ticks to fire, in time order.
    pub fire: Vec<Millis>,
    /// Ticks not fired: (first, last, how many), if any.
    pub missed: Option<(Millis, Millis, u64)>,
    /// The latest tick at or before now: where the next look starts.
    pub cursor: Millis,
}

/// The ticks in (`cursor`, `now`] and what becomes of them.
pub fn due(ticks: &Ticks, cursor: Millis, now: Millis, catch_up: CatchUp, window: Duration) -> Due {
    let mut out = Due { cursor, ..Due::default() };
    // ticks before the horizon are outside the catch-up window
    let horizon = now.saturating_sub(window.as_millis() as Millis);
    let on_time = now.saturating_sub(ON_TIME.as_millis() as Millis);
    let mut missed = Missed::default();
    let mut candidates = Vec::new();
    let mut at = cursor;
    let mut counted = 0u64;
    while let Some(next) = ticks.next_after(at) {
        if next > now {
            break;
        }
        counted += 1;
        out.cursor = next;
        if next < horizon {
            if counted >= MAX_TICKS_COUNTED {
                // too many to count one by one: jump to the window (all of them missed)
                missed.add_range(next, horizon, 1);
                out.cursor = horizon;
                at = horizon;
                continue;
            }
            missed.add(next);
        } else {
            candidates.push(next);
        }
        at = next;
    }
    let fire: Vec<Millis> = match catch_up {
        CatchUp::All => candidates.iter().rev().take(MAX_CATCH_UP_RUNS).rev().copied().collect(),
        CatchUp::Last => candidates.last().copied().into_iter().collect(),
        CatchUp::None => candidates.last().copied().filter(|&t| t >= on_time).into_iter().collect(),
    };
    for &t in candidates.iter().filter(|t| !fire.contains(t)) {
        missed.add(t);
    }
    out.fire = fire;
    out.missed = missed.0;
    out
}

#[derive(Default)]
struct Missed(Option<(Millis, Millis, u64)>);

impl Missed {
    fn add(&mut self, t: Millis) {
        self.add_range(t, t, 1);
    }

    fn add_range(&mut self, first: Millis, last: Millis, n: u64) {
        self.0 = Some(match self.0 {
            None => (first, last, n),
            Some((f, l, c)) => (f.min(first), l.max(last), c + n),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn hourly() -> Ticks {
        Ticks::Every(Duration::from_secs(3600))
    }

    #[test]
    fn a_tick_on_time_fires_alone() {
        let d = due(&hourly(), 10 * H, 11 * H + 5_000, CatchUp::None, Duration::from_secs(3600));
        assert_eq!(d.fire, vec![11 * H]);
        assert_eq!(d.missed, None);
        assert_eq!(d.cursor, 11 * H);
    }

    #[test]
    fn after_downtime_last_fires_the_latest_and_records_the_rest_missed() {
        // down from 10:00 to 15:30; window 3h: 11, 12 outside the window, 13, 14, 15 inside
        let window = Duration::from_secs(3 * 3600);
        let now = 15 * H + 30 * 60_000;
        let d = due(&hourly(), 10 * H, now, CatchUp::Last, window);
        assert_eq!(d.fire, vec![15 * H]);
        assert_eq!(d.missed, Some((11 * H, 14 * H, 4)));
        assert_eq!(d.cursor, 15 * H);
        let d = due(&hourly(), 10 * H, now, CatchUp::All, window);
        assert_eq!(d.fire, vec![13 * H, 14 * H, 15 * H]);
        assert_eq!(d.missed, Some((11 * H, 12 * H, 2)));
        let d = due(&hourly(), 10 * H, now, CatchUp::None, window);
        assert!(d.fire.is_empty());
        assert_eq!(d.missed, Some((11 * H, 15 * H, 5)));
    }

    #[test]
    fn catching_up_all_never_starts_a_storm() {
        let minutely = Ticks::Every(Duration::from_secs(60));
        let d = due(&minutely, 0, 24 * H, CatchUp::All, Duration::from_secs(24 * 3600));
        assert_eq!(d.fire.len(), MAX_CATCH_UP_RUNS);
        assert_eq!(d.fire.last(), Some(&(24 * H)));
        let (_, _, missed) = d.missed.unwrap();
        assert_eq!(missed as usize + MAX_CATCH_UP_RUNS, 24 * 60);
    }

    #[test]
    fn an_enormous_gap_is_skipped_not_counted_tick_by_tick() {
        let every_second = Ticks::Every(Duration::from_secs(1));
        let year = 365 * 24 * H;
        let d = due(&every_second, 0, year, CatchUp::Last, Duration::from_secs(60));
        assert_eq!(d.fire, vec![year]);
        assert_eq!(d.cursor, year);
        assert!(d.missed.unwrap().2 >= MAX_TICKS_COUNTED);
    }
}
