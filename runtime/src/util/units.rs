//! Sizes and durations as people write and read them, in one place: parsing what the
//! bundle file and flags say (`"10s"`, `"1m30s"`, `"64MiB"`) and formatting what messages,
//! progress and cache keys show (`"1.25 s"`, `"256.0 MiB"`, `"64MiB"`).
//!
//! Pure functions only: no I/O, no state.

use std::time::Duration;

const DURATION_UNITS: &str = "ms, s, m, h or d";

/// Parses a duration such as `"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"1d"` or a compound
/// such as `"1m30s"` (spaces between the parts are allowed). Numbers are whole numbers;
/// a bare number is rejected because its unit would be a guess.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; write a number with a unit ({DURATION_UNITS}), e.g. `10s`"));
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{text}` has no unit; add one of {DURATION_UNITS}, e.g. `{text}s`"));
    }
    let mut total = Duration::ZERO;
    for (number, unit) in parts(text)? {
        let part = duration_part(number, unit, text)?;
        total = total.checked_add(part).ok_or_else(|| format!("duration `{text}` is too large"))?;
    }
    Ok(total)
}

fn duration_part(number: u64, unit: &str, text: &str) -> Result<Duration, String> {
    let too_large = || format!("duration `{text}` is too large");
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "" => {
            return Err(format!("`{text}` has a number without a unit; add one of {DURATION_UNITS}"));
        }
        other => {
            return Err(format!("unknown unit `{other}` in `{text}`; use {DURATION_UNITS}"));
        }
    };
    number.checked_mul(seconds_per_unit).map(Duration::from_secs).ok_or_else(too_large)
}

const SIZE_UNITS: &str = "B, KB, MB, GB, TB, KiB, MiB, GiB or TiB";

/// Parses a size in bytes: `"512B"`, `"64KiB"`, `"256MiB"`, `"1GiB"`, `"1MB"` (10^6),
/// or a plain integer, which counts bytes. Numbers are whole numbers.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty size; write a number of bytes or a number with a unit ({SIZE_UNITS})"));
    }
    let pieces = parts(text)?;
    let [(number, unit)] = pieces.as_slice() else {
        return Err(format!("`{text}` is not a size; write one number and one unit, e.g. `64MiB`"));
    };
    let multiplier = size_unit(unit, text)?;
    number.checked_mul(multiplier).ok_or_else(|| format!("size `{text}` is too large"))
}

fn size_unit(unit: &str, text: &str) -> Result<u64, String> {
    let multiplier = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!("unknown unit `{other}` in `{text}`; use {SIZE_UNITS}"));
        }
    };
    Ok(multiplier)
}

/// Splits `"1m 30s"` into `[(1, "m"), (30, "s")]`. Underscores in numbers are allowed
/// (`"1_000ms"`), fractions are not.
fn parts(text: &str) -> Result<Vec<(u64, &str)>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '_')).unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        if digits.is_empty() {
            return Err(format!("`{text}` should start each part with a number, e.g. `1m30s`"));
        }
        if after.starts_with('.') {
            return Err(format!("`{text}` has a fraction; use whole numbers of a smaller unit"));
        }
        let number = parse_number(digits, text)?;
        let after = after.trim_start();
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        parts.push((number, unit));
        rest = next.trim_start();
    }
    Ok(parts)
}

fn parse_number(digits: &str, text: &str) -> Result<u64, String> {
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return Err(format!("`{text}` has no number"));
    }
    clean.parse::<u64>().map_err(|_| format!("number in `{text}` is too large"))
}

/// "512 B", "64.0 KiB", "256.0 MiB", "1.0 GiB": a size for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// "64MiB", "1GiB", "1000B": a size exactly, in the largest binary unit that divides it
/// (what cache keys record, so it must never change for a given number).
pub fn exact_size(bytes: u64) -> String {
    for (unit, name) in [(1u64 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

/// "850 µs", "12 ms", "1.25 s", "3m 20s", "2h 5m": how long something took.
pub fn human_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        return format!("{micros} µs");
    }
    let millis = d.as_millis();
    if millis < 1_000 {
        return format!("{millis} ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{:.2} s", d.as_secs_f64());
    }
    if secs < 3_600 {
        return format!("{}m {}s", secs / 60, secs % 60);
    }
    format!("{}h {}m", secs / 3_600, (secs % 3_600) / 60)
}

/// "850 ms", "1.2 s", "2m 05s": a wall-clock span for live progress, like a stopwatch.
pub fn stopwatch(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", d.as_secs_f64());
    }
    if ms < 3_600_000 {
        let s = d.as_secs();
        return format!("{}m {:02}s", s / 60, s % 60);
    }
    human_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn compound_durations_add_up() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 2m 3s 4ms"), Ok(Duration::from_millis(3_723_004)));
    }

    #[test]
    fn bare_numbers_ask_for_a_unit() {
        let err = parse_duration("10").unwrap_err();
        assert!(err.contains("add one of"), "{err}");
        assert!(parse_duration("1m30").unwrap_err().contains("without a unit"));
    }

    #[test]
    fn bad_durations_are_explained() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse_duration("1.5s").unwrap_err().contains("fraction"));
        assert!(parse_duration("s").unwrap_err().contains("start each part"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999d").unwrap_err().contains("too large"));
        assert!(parse_duration("999999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_binary_and_decimal() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("256MiB"), Ok(256 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
    }

    #[test]
    fn bad_sizes_are_explained() {
        assert!(parse_size("12XB").unwrap_err().contains("unknown unit `XB`"));
        assert!(parse_size("1MiB2KiB").unwrap_err().contains("one number and one unit"));
        assert!(parse_size("1.5GiB").unwrap_err().contains("fraction"));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(64 << 10), "64.0 KiB");
        assert_eq!(human_bytes(256 << 20), "256.0 MiB");
        assert_eq!(exact_size(64 << 20), "64MiB");
        assert_eq!(exact_size(1000), "1000B");
        assert_eq!(exact_size(3 << 30), "3GiB");
        assert_eq!(human_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(human_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(human_duration(Duration::from_millis(1250)), "1.25 s");
        assert_eq!(human_duration(Duration::from_secs(200)), "3m 20s");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2h 5m");
    }

    #[test]
    fn stopwatch_reads_like_a_stopwatch() {
        assert_eq!(stopwatch(Duration::from_millis(850)), "850 ms");
        assert_eq!(stopwatch(Duration::from_millis(1_240)), "1.2 s");
        assert_eq!(stopwatch(Duration::from_secs(125)), "2m 05s");
    }
}
