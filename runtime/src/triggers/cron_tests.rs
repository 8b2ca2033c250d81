use super::*;
use chrono::NaiveDate;
use proptest::prelude::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Millis {
    (NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, 0).unwrap().and_utc().timestamp() * 1000) as Millis
}

fn ticks(pattern: &str, tz: &str, skipped: Skipped, repeated: Repeated) -> CronTicks {
    CronTicks::new(pattern, tz, DstPolicy { skipped, repeated }).unwrap()
}

fn firings(t: &CronTicks, from: Millis, to: Millis) -> Vec<Millis> {
    let mut out = Vec::new();
    let mut at = from;
    while let Some(next) = t.next_after(at) {
        if next > to {
            break;
        }
        out.push(next);
        at = next;
    }
    out
}

#[test]
fn a_tick_in_the_skipped_hour_shifts_to_the_jump_or_is_skipped() {
    // Europe/Amsterdam jumps from 02:00 CET to 03:00 CEST on 2026-03-29 (01:00 UTC)
    let shift = ticks("0 30 2 * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::First);
    let day = firings(&shift, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0));
    assert_eq!(day, vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]);
    let skip = ticks("0 30 2 * * ?", "Europe/Amsterdam", Skipped::Skip, Repeated::First);
    let day = firings(&skip, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0));
    assert_eq!(day, vec![utc(2026, 3, 30, 0, 30)]);
    // every 15 minutes: the four ticks in the gap fire once, merged with 03:00's
    let quarter = ticks("0 */15 * * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::First);
    let around = firings(&quarter, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 20));
    assert_eq!(around, vec![utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 15)]);
}

#[test]
fn a_tick_in_the_repeated_hour_fires_first_last_or_both() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens at 00:30 and 01:30 UTC
    let from = utc(2026, 10, 24, 12, 0);
    let to = utc(2026, 10, 25, 12, 0);
    let first = ticks("0 30 2 * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::First);
    assert_eq!(firings(&first, from, to), vec![utc(2026, 10, 25, 0, 30)]);
    let last = ticks("0 30 2 * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::Last);
    assert_eq!(firings(&last, from, to), vec![utc(2026, 10, 25, 1, 30)]);
    let both = ticks("0 30 2 * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::Both);
    assert_eq!(firings(&both, from, to), vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)]);
    // every 20 minutes with `both`: the repeated hour's ticks interleave in time order
    let often = ticks("0 */20 2 * * ?", "Europe/Amsterdam", Skipped::Shift, Repeated::Both);
    let hour = firings(&often, from, to);
    let expected: Vec<Millis> =
        [(0, 0), (0, 20), (0, 40), (1, 0), (1, 20), (1, 40)].iter().map(|&(h, m)| utc(2026, 10, 25, h, m)).collect();
    assert_eq!(hour, expected);
}

#[test]
fn quartz_day_fields_work_in_the_zone() {
    // 2#1: the first Monday (Quartz counts 1 = Sunday); December 2026 starts on a Tuesday
    let t = ticks("0 0 12 ? * 2#1", "UTC", Skipped::Shift, Repeated::First);
    assert_eq!(t.next_after(utc(2026, 12, 1, 0, 0)), Some(utc(2026, 12, 7, 12, 0)));
    // L: the last day of the month, in New York (UTC−5 in February)
    let t = ticks("0 0 9 L * ?", "America/New_York", Skipped::Shift, Repeated::First);
    assert_eq!(t.next_after(utc(2027, 2, 1, 0, 0)), Some(utc(2027, 2, 28, 14, 0)));
    // 15W: the weekday nearest the 15th (2026-08-15 is a Saturday: Friday the 14th)
    let t = ticks("0 0 9 15W * ?", "UTC", Skipped::Shift, Repeated::First);
    assert_eq!(t.next_after(utc(2026, 8, 1, 0, 0)), Some(utc(2026, 8, 14, 9, 0)));
}

#[test]
fn periodic_ticks_are_aligned_to_the_epoch() {
    let t = Ticks::Every(Duration::from_secs(4 * 3600));
    assert_eq!(t.next_after(utc(2026, 1, 1, 1, 0)), Some(utc(2026, 1, 1, 4, 0)));
    assert_eq!(t.next_after(utc(2026, 1, 1, 4, 0)), Some(utc(2026, 1, 1, 8, 0)));
}

/// The instants at which local time `naive` occurs in `tz`, found independently of
/// `CronTicks::instants`: every offset seen near it, tried.
fn occurrences(tz: Tz, naive: NaiveDateTime) -> Vec<i64> {
    let base = naive.and_utc().timestamp();
    let mut out: Vec<i64> = (-20..=20)
        .filter_map(|h| {
            let probe = DateTime::<Utc>::from_timestamp(base + h * 3600, 0)?;
            let off = i64::from(tz.offset_from_utc_datetime(&probe.naive_utc()).fix().local_minus_utc());
            let at = base - off;
            let back = tz.timestamp_opt(at, 0).single()?.naive_local();
            (back == naive).then_some(at)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn local(tz: Tz, s: i64) -> NaiveDateTime {
    tz.timestamp_opt(s, 0).single().unwrap().naive_local()
}

/// Checks the firings of `t` in (from, to] against every local tick of the pattern.
fn check_window(t: &CronTicks, from_s: i64, to_s: i64) -> Result<(), String> {
    let tz = t.timezone();
    let got = firings(t, (from_s * 1000) as Millis, (to_s * 1000) as Millis);
    if got.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("{tz}: not strictly increasing: {got:?}"));
    }
    let mut expected = Vec::new();
    let mut naive = utc_naive(from_s - MAX_OFFSET).unwrap();
    while let Some(n) = t.next_local(naive) {
        if secs(n) > to_s + MAX_OFFSET {
            break;
        }
        naive = n;
        let at = occurrences(tz, n);
        let fire: Vec<i64> = match (at.as_slice(), t.dst.skipped, t.dst.repeated) {
            ([], Skipped::Skip, _) => vec![],
            ([], Skipped::Shift, _) => {
                // the jump: the first instant whose local time is past n
                let mut search = (secs(n) - MAX_OFFSET, secs(n) + MAX_OFFSET);
                while search.1 - search.0 > 1 {
                    let mid = search.0 + (search.1 - search.0) / 2;
                    if local(tz, mid) > n { search.1 = mid } else { search.0 = mid }
                }
                if !(local(tz, search.1 - 1) < n && local(tz, search.1) > n) {
                    return Err(format!("{tz}: no jump found for skipped {n}"));
                }
                vec![search.1]
            }
            ([one], _, _) => vec![*one],
            ([a, _], _, Repeated::First) => vec![*a],
            ([_, b], _, Repeated::Last) => vec![*b],
            ([a, b], _, Repeated::Both) => vec![*a, *b],
            (more, _, _) => return Err(format!("{tz}: {n} occurs {} times", more.len())),
        };
        expected.extend(fire.into_iter().filter(|&s| s > from_s && s <= to_s).map(|s| (s * 1000) as Millis));
    }
    expected.sort_unstable();
    expected.dedup();
    if got != expected {
        return Err(format!("{tz}: fired {got:?}, the policy says {expected:?}"));
    }
    Ok(())
}

/// The instants (s) in `year` at which `tz`'s offset changes (to the day).
fn transitions(tz: Tz, year: i32) -> Vec<i64> {
    let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let off = |s: i64| tz.offset_from_utc_datetime(&DateTime::from_timestamp(s, 0).unwrap().naive_utc()).fix();
    (0..366).map(|d| start + d * 86_400).filter(|&s| off(s) != off(s + 86_400)).collect()
}

const PATTERNS: [&str; 6] =
    ["0 30 2 * * ?", "0 0 * * * ?", "0 */15 * * * ?", "0 0 0 * * ?", "0 45 1,2,3 ? * 1-7", "30 59 23 L * ?"];

fn policies() -> impl Strategy<Value = DstPolicy> {
    (
        prop_oneof![Just(Skipped::Shift), Just(Skipped::Skip)],
        prop_oneof![Just(Repeated::First), Just(Repeated::Last), Just(Repeated::Both)],
    )
        .prop_map(|(skipped, repeated)| DstPolicy { skipped, repeated })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any zone of the tz database, any of ten years, any pattern and policy: around every
    /// transition of that year the firings increase strictly and are exactly what the
    /// policy says of every local tick.
    #[test]
    fn firings_follow_the_policy_at_every_transition(
        zone in 0..chrono_tz::TZ_VARIANTS.len(),
        year in 2020i32..2030,
        pattern in 0..PATTERNS.len(),
        dst in policies(),
    ) {
        let tz = chrono_tz::TZ_VARIANTS[zone];
        let t = CronTicks::new(PATTERNS[pattern], tz.name(), dst).unwrap();
        for at in transitions(tz, year) {
            check_window(&t, at - 86_400, at + 2 * 86_400).map_err(TestCaseError::fail)?;
        }
        // and a quiet stretch of the same year
        let mid = NaiveDate::from_ymd_opt(year, 5, 10).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
        check_window(&t, mid, mid + 2 * 86_400).map_err(TestCaseError::fail)?;
    }
}

/// Every zone of the tz database across ten years, for the classic nightly schedule.
#[test]
fn every_zone_across_ten_years_fires_the_nightly_schedule_by_the_policy() {
    for tz in chrono_tz::TZ_VARIANTS {
        for (i, year) in (2020..2030).enumerate() {
            let dst = [
                DstPolicy { skipped: Skipped::Shift, repeated: Repeated::First },
                DstPolicy { skipped: Skipped::Skip, repeated: Repeated::Last },
                DstPolicy { skipped: Skipped::Shift, repeated: Repeated::Both },
            ][i % 3];
            let t = CronTicks::new("0 30 2 * * ?", tz.name(), dst).unwrap();
            for at in transitions(tz, year) {
                check_window(&t, at - 86_400, at + 86_400).unwrap();
            }
        }
    }
}
