//! JUnit XML, as CI systems read it: `testsuites` > `testsuite` (one per bundle) >
//! `testcase` (one per test, `classname` = `BUNDLE.JOB`), a failed test holding one
//! `failure` element per failed assertion (`message` and `type` attributes, the diff as
//! its text). Times are seconds.
//!
//! A pure rendering of a [`SuiteReport`]: it must never read or write files.

use std::fmt::Write as _;

use super::{SuiteReport, TestStatus};

/// The report as a JUnit XML document.
pub fn render(report: &SuiteReport) -> String {
    let (tests, failures) = (report.tests.len(), report.failed());
    let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"sluice test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        seconds(report.elapsed_ms)
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
        escape(&report.bundle),
        seconds(report.elapsed_ms),
        timestamp(report.started_at),
        escape(&report.host)
    );
    let _ = writeln!(
        xml,
        "    <properties><property name=\"bundle_hash\" value=\"{}\"/></properties>",
        escape(&report.bundle_hash)
    );
    for test in &report.tests {
        let _ = write!(
            xml,
            "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{}\" file=\"{}\" line=\"{}\"",
            escape(&test.name),
            escape(&report.bundle),
            escape(&test.job),
            seconds(test.elapsed_ms),
            escape(&report.file),
            test.line
        );
        if test.status == TestStatus::Passed {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        for failure in &test.failures {
            let body = format!(
                "{}:{}: {}\n{}",
                report.file,
                failure.line,
                failure.message,
                failure.diff.as_deref().unwrap_or("")
            );
            let _ = writeln!(
                xml,
                "      <failure message=\"{}\" type=\"assertion\">{}</failure>",
                escape(&failure.message),
                escape(body.trim_end())
            );
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// ISO 8601 in UTC without a zone, as the JUnit schema's `timestamp` wants it.
fn timestamp(millis: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_seconds(at).to_string().trim_end_matches('Z').to_string()
}

/// Text safe in an attribute or element: the five entities escaped, characters XML 1.0
/// forbids (most control characters) replaced.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(super::escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{fffd}");
    }
}
