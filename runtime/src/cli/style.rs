//! How human output looks: glyphs, colours, short durations, fitting text to a width,
//! and the questions asked of the terminal (is it one, how big, may we colour).
//!
//! Owns the visual vocabulary shared by live progress and `runs show`. It must never
//! hold logic a library user would need, never touch the store, and never print: it
//! only builds strings (the terminal queries are the one exception to "pure").

use std::io::IsTerminal;

use crate::model::{TaskResult, TaskState};

/// Whether (and how) to colour text. `Paint::PLAIN` adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paint {
    pub color: bool,
}

/// ANSI SGR codes used by the CLI.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tone {
    Good,
    Bad,
    Warn,
    Busy,
    Dim,
    Bold,
}

impl Tone {
    fn sgr(self) -> &'static str {
        match self {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
            Tone::Busy => "36",
            Tone::Dim => "2",
            Tone::Bold => "1",
        }
    }
}

impl Paint {
    pub const PLAIN: Paint = Paint { color: false };

    /// Colour when `stream` is a terminal and `NO_COLOR` is not set (https://no-color.org).
    pub fn for_stream(stream: Stream) -> Paint {
        Paint { color: is_terminal(stream) && !no_color() }
    }

    pub fn paint(self, tone: Tone, text: &str) -> String {
        if self.color && !text.is_empty() { format!("\x1b[{}m{text}\x1b[0m", tone.sgr()) } else { text.to_string() }
    }
}

/// `NO_COLOR` set to anything but the empty string.
pub(super) fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Where output goes: results and `--json` to stdout, progress to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// Whether `stream` is a terminal that understands cursor movement (not `TERM=dumb`).
pub(super) fn is_terminal(stream: Stream) -> bool {
    let tty = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    tty && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The size (columns, rows) of the terminal progress is drawn on (stderr); `COLUMNS`/`LINES`
/// or 80×24 when it cannot be asked.
pub(super) fn terminal_size() -> (usize, usize) {
    #[cfg(unix)]
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stderr())
        && ws.ws_col > 0
        && ws.ws_row > 0
    {
        return (ws.ws_col as usize, ws.ws_row as usize);
    }
    let env = |name: &str, default: usize| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
    };
    (env("COLUMNS", 80), env("LINES", 24))
}

/// The mark of a terminated task (the plain progress format: tests grep `✓ key`).
pub(super) fn mark(r: TaskResult) -> &'static str {
    match r {
        TaskResult::Success => "✓",
        TaskResult::Excluded => "-",
        TaskResult::Canceled | TaskResult::UpstreamCanceled => "○",
        TaskResult::Interrupted => "↯",
        _ => "✗",
    }
}

pub(super) fn result_tone(r: TaskResult) -> Tone {
    match r {
        TaskResult::Success => Tone::Good,
        TaskResult::Excluded => Tone::Dim,
        TaskResult::Canceled | TaskResult::UpstreamCanceled | TaskResult::Interrupted => Tone::Warn,
        _ => Tone::Bad,
    }
}

/// Glyph and tone of a task in any state.
pub(super) fn task_glyph(state: TaskState, result: Option<TaskResult>) -> (&'static str, Tone) {
    match (state, result) {
        (TaskState::Terminated, Some(r)) => (mark(r), result_tone(r)),
        (TaskState::Running, _) => ("●", Tone::Busy),
        (TaskState::WaitingForRetry, _) => ("↻", Tone::Warn),
        (TaskState::Queued, _) => ("◦", Tone::Busy),
        _ => ("·", Tone::Dim),
    }
}

/// The word for a task's state: its result once terminated.
pub(super) fn state_word(state: TaskState, result: Option<TaskResult>) -> &'static str {
    match (state, result) {
        (TaskState::Terminated, Some(r)) => r.as_str(),
        (s, _) => s.as_str(),
    }
}

/// "reused from run 3 (attempt 0)" — or "(task x, attempt 0)" when it came from another task.
pub(super) fn reused_note(key: &str, from: &crate::model::ReusedFrom) -> String {
    let mut what = Vec::new();
    if from.task != key {
        what.push(format!("task {}", from.task));
    }
    if let Some(a) = from.attempt {
        what.push(format!("attempt {a}"));
    }
    match what.is_empty() {
        true => format!("reused from run {}", from.run),
        false => format!("reused from run {} ({})", from.run, what.join(", ")),
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Text a guest wrote, safe to put on a terminal: control characters (escape sequences
/// that could move the cursor or recolour the screen, carriage returns) become `?`, a
/// tab becomes a space. Newlines are the caller's business: pass single lines.
pub(super) fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c == '\t' {
                    ' '
                } else if c.is_control() {
                    '?'
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// At most `max` characters, ending in `…` when cut.
pub(super) fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Counts per word, in first-seen order: "9 success, 1 failed".
pub(super) fn tally<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for w in words {
        match counts.iter_mut().find(|(k, _)| *k == w) {
            Some((_, n)) => *n += 1,
            None => counts.push((w, 1)),
        }
    }
    counts.iter().map(|(w, n)| format!("{n} {w}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsize_counts_characters_not_bytes() {
        assert_eq!(ellipsize("µµµµ", 4), "µµµµ");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
    }

    #[test]
    fn guest_text_cannot_drive_the_terminal() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("\x1b[2Jgone\r\tx"), "?[2Jgone? x");
    }

    #[test]
    fn tally_keeps_first_seen_order() {
        assert_eq!(tally(["success", "failed", "success"]), "2 success, 1 failed");
        assert_eq!(tally([]), "");
    }

    #[test]
    fn plain_paint_adds_no_escapes() {
        assert_eq!(Paint::PLAIN.paint(Tone::Bad, "x"), "x");
        assert_eq!(Paint { color: true }.paint(Tone::Bad, "x"), "\x1b[31mx\x1b[0m");
    }
}
