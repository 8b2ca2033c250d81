//! When a schedule or a periodic trigger fires: [`Ticks::next_after`] gives the first
//! firing strictly after an instant.
//!
//! A Quartz cron pattern names *local* times in a time zone. Daylight saving is spelled
//! out, never left to the cron library: each local time the pattern matches is mapped to
//! instants by the schedule's [`DstPolicy`] — a local time that does not exist (the clocks
//! jump over it) fires once at the first instant after the jump (`shift`; several such
//! ticks in one gap fire once) or not at all (`skip`); a local time that happens twice
//! fires at its first occurrence, its last, or both. The pattern is matched against
//! naive local times (croner in UTC, which has no transitions); the mapping is ours.

use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::TriggerError;
use crate::model::Millis;
use crate::spec::triggers::{DstPolicy, Repeated, Skipped, TriggerKind, parse_cron};

/// Every UTC offset in the tz database lies within this of UTC (−12 h … +14 h, with room
/// for historical local mean times): a local time and its instants are never further apart.
const MAX_OFFSET: i64 = 16 * 3600;

/// The most local ticks one search looks at (a pattern matching every second looks at
/// about 115,000 around a transition): a bound on work, never reached by real schedules.
const MAX_TICKS_SEARCHED: usize = 300_000;

/// How far back skipped local times are looked for (a trigger first seen, or a server
/// down for longer, reports those of the last year and a bit).
const MAX_LOOKBACK_FOR_SKIPS: i64 = 400 * 86_400;

/// How far apart the zone's offset is sampled to tell that no transition is near.
const OFFSET_SAMPLE: i64 = 1800;

/// What a trigger's ticks follow.
#[derive(Debug, Clone)]
pub enum Ticks {
    Cron(Box<CronTicks>),
    /// Every `every`, counted from the Unix epoch.
    Every(Duration),
}

impl Ticks {
    /// The ticks of a schedule or periodic trigger; `None` for the others.
    pub fn of(kind: &TriggerKind) -> Result<Option<Ticks>, TriggerError> {
        Ok(match kind {
            TriggerKind::Schedule { cron, timezone, dst } => {
                Some(Ticks::Cron(Box::new(CronTicks::new(cron, timezone, *dst)?)))
            }
            TriggerKind::Periodic { every } => Some(Ticks::Every(*every)),
            _ => None,
        })
    }

    /// The first firing strictly after `after` (ms since the epoch); `None` if there is none.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match self {
            Ticks::Cron(c) => c.next_after(after),
            Ticks::Every(every) => {
                let step = every.as_millis().max(1) as u64;
                (after / step).checked_add(1)?.checked_mul(step)
            }
        }
    }
}

/// A Quartz cron pattern in a time zone, with its daylight-saving policy.
#[derive(Debug, Clone)]
pub struct CronTicks {
    cron: croner::Cron,
    tz: Tz,
    dst: DstPolicy,
}

impl CronTicks {
    pub fn new(pattern: &str, timezone: &str, dst: DstPolicy) -> Result<CronTicks, TriggerError> {
        let cron = parse_cron(pattern).map_err(TriggerError::Invalid)?;
        let tz =
            timezone.parse::<Tz>().map_err(|_| TriggerError::Invalid(format!("unknown time zone \"{timezone}\"")))?;
        Ok(CronTicks { cron, tz, dst })
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let after_s = (after / 1000) as i64;
        if let Some(found) = self.quiet_next(after, after_s) {
            return Some(found);
        }
        // near a transition: every local tick that could map after `after`, the smallest instant
        let mut naive = utc_naive(after_s - MAX_OFFSET)?;
        let mut best: Option<Millis> = None;
        for _ in 0..MAX_TICKS_SEARCHED {
            naive = self.next_local(naive)?;
            if best.is_some_and(|b| (secs(naive) - MAX_OFFSET) * 1000 > b as i64) {
                break;
            }
            for at in self.instants(naive) {
                if at > after && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
        }
        best
    }

    /// Where no offset change is near: the next local tick at the one offset.
    fn quiet_next(&self, after: Millis, after_s: i64) -> Option<Millis> {
        let offset = self.offset_at(after_s)?;
        let local = utc_naive(after_s + offset)?;
        let next = self.next_local(local)?;
        let at_s = secs(next) - offset;
        let quiet = (after_s - MAX_OFFSET..=at_s + MAX_OFFSET)
            .step_by(OFFSET_SAMPLE as usize)
            .chain([at_s + MAX_OFFSET])
            .all(|s| self.offset_at(s) == Some(offset));
        let at = (at_s * 1000) as Millis;
        (quiet && at > after).then_some(at)
    }

    /// The zone's UTC offset (seconds) at instant `s`.
    fn offset_at(&self, s: i64) -> Option<i64> {
        let dt = DateTime::<Utc>::from_timestamp(s, 0)?;
        Some(i64::from(self.tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc()))
    }

    /// The first local time after `naive` that the pattern matches.
    fn next_local(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&naive);
        self.cron.find_next_occurrence(&as_utc, false).ok().map(|d| d.naive_utc())
    }

    /// The instants (ms) local time `naive` fires at, by the policy.
    pub fn instants(&self, naive: NaiveDateTime) -> Vec<Millis> {
        let ms = |dt: DateTime<Tz>| (dt.timestamp() * 1000) as Millis;
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => vec![ms(dt)],
            LocalResult::Ambiguous(a, b) => match self.dst.repeated {
                Repeated::First => vec![ms(a)],
                Repeated::Last => vec![ms(b)],
                Repeated::Both => vec![ms(a), ms(b)],
            },
            LocalResult::None => match self.dst.skipped {
                Skipped::Shift => self.gap_end(naive).into_iter().collect(),
                Skipped::Skip => vec![],
            },
        }
    }

    /// The local ticks in (`after`, `until`] that a `skip` policy does not fire because
    /// daylight saving removed their local time (empty for `shift`).
    pub fn skipped_between(&self, after: Millis, until: Millis) -> Vec<NaiveDateTime> {
        if self.dst.skipped != Skipped::Skip || until <= after {
            return vec![];
        }
        let until_s = (until / 1000) as i64;
        let after_s = ((after / 1000) as i64).max(until_s - MAX_LOOKBACK_FOR_SKIPS);
        let (Some(from_off), Some(to_off)) = (self.offset_at(after_s), self.offset_at(until_s)) else { return vec![] };
        let quiet = (after_s..=until_s).step_by(OFFSET_SAMPLE as usize).all(|s| self.offset_at(s) == Some(from_off));
        if quiet && from_off == to_off {
            return vec![];
        }
        let (Some(mut naive), Some(end)) = (utc_naive(after_s + from_off), utc_naive(until_s + to_off)) else {
            return vec![];
        };
        let mut out = Vec::new();
        for _ in 0..MAX_TICKS_SEARCHED {
            match self.next_local(naive) {
                Some(n) if n <= end => {
                    if self.is_skipped(n) {
                        out.push(n);
                    }
                    naive = n;
                }
                _ => break,
            }
        }
        out
    }

    /// Whether local time `naive` falls in a gap (the clocks jump over it).
    pub fn is_skipped(&self, naive: NaiveDateTime) -> bool {
        matches!(self.tz.from_local_datetime(&naive), LocalResult::None)
    }

    /// The first instant (ms) whose local time is after `naive`, which lies in a gap:
    /// the moment the clocks jump.
    fn gap_end(&self, naive: NaiveDateTime) -> Option<Millis> {
        let minute = chrono::TimeDelta::minutes(1);
        let (mut before, mut after) = (naive, naive);
        for _ in 0..(2 * MAX_OFFSET / 60) {
            if !self.is_skipped(before) && !self.is_skipped(after) {
                break;
            }
            if self.is_skipped(before) {
                before -= minute;
            }
            if self.is_skipped(after) {
                after += minute;
            }
        }
        let lo = self.tz.from_local_datetime(&before).latest()?.timestamp();
        let hi = self.tz.from_local_datetime(&after).earliest()?.timestamp();
        // the smallest instant in (lo, hi] whose local time is after `naive`
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let local = self.tz.timestamp_opt(mid, 0).single()?.naive_local();
            if local > naive { hi = mid } else { lo = mid }
        }
        Some((hi * 1000) as Millis)
    }
}

fn utc_naive(s: i64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp(s, 0).map(|d| d.naive_utc())
}

fn secs(naive: NaiveDateTime) -> i64 {
    naive.and_utc().timestamp()
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
