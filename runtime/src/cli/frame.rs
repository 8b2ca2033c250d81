//! The live board's frame: a run's task lines fitted to the terminal's width and height.
//!
//! Owns what a task's line says on screen (glyph, state, attempt count, elapsed time,
//! detail), the header, and which lines make the cut when there are more tasks than
//! rows (in flight and failed first; the rest become one summary line). Pure: it must
//! never write to the terminal, never touch the store, never decide about a run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::board::{MaxAttempts, RunBoard, TaskLine};
use super::style::{Paint, Tone, ellipsize, reused_note, state_word, tally, task_glyph};
use crate::model::{Millis, RunId, TaskResult, TaskState};
use crate::util::stopwatch;

/// Keys longer than this are cut in the live view.
const MAX_KEY_WIDTH: usize = 32;

/// Render `root` as at most `rows` lines of at most `cols - 1` visible characters.
pub(super) fn frame(
    root: &RunBoard,
    runs: &BTreeMap<RunId, RunBoard>,
    now: Millis,
    cols: usize,
    rows: usize,
    paint: Paint,
) -> Vec<String> {
    let cols = cols.max(20) - 1;
    let top = root.top();
    let done = top.iter().filter(|l| l.done()).count();
    let mut header = format!("run {}", root.run);
    if let Some(job) = root.job() {
        header.push_str(&format!(" · job {job}"));
    }
    for n in &root.notes {
        header.push_str(&format!(" · {n}"));
    }
    let took =
        |end: Millis| root.since().map(|s| stopwatch(Duration::from_millis(end.saturating_sub(s)))).unwrap_or_default();
    let status = match root.finished() {
        Some((r, at)) => format!(" · {} in {} · {}", r.as_str(), took(at), root.work_done().unwrap_or_default()),
        None => format!(" · {done}/{} done · {}", top.len(), took(now)),
    };
    let tone = match root.finished() {
        Some((r, _)) if r.is_success() => Tone::Good,
        Some(_) => Tone::Bad,
        None => Tone::Bold,
    };
    let mut out = vec![paint.paint(tone, &fit(&format!("{header}{status}"), cols))];
    let (shown, hidden) = select(&top, rows.saturating_sub(1));
    let cells: Vec<Cells> = shown.iter().map(|&i| cells(&top[i], root, runs, now)).collect();
    let kw = cells.iter().map(|c| c.key.chars().count()).max().unwrap_or(0);
    let sw = cells.iter().map(|c| c.state.len()).max().unwrap_or(0);
    let aw = cells.iter().map(|c| c.attempt.chars().count()).max().unwrap_or(0);
    let ew = cells.iter().map(|c| c.elapsed.chars().count()).max().unwrap_or(0);
    for c in &cells {
        let prefix = format!("  {} {:<kw$}  ", c.glyph, c.key);
        let mut plain = format!("{prefix}{:<sw$}", c.state);
        if aw > 0 {
            plain.push_str(&format!("  {:<aw$}", c.attempt));
        }
        if ew > 0 {
            plain.push_str(&format!("  {:>ew$}", c.elapsed));
        }
        if !c.detail.is_empty() {
            plain.push_str(&format!("  {}", c.detail));
        }
        let plain = fit(plain.trim_end(), cols);
        out.push(colorize(&plain, &prefix, c, paint));
    }
    if let Some(summary) = hidden {
        out.push(paint.paint(Tone::Dim, &fit(&summary, cols)));
    }
    out
}

struct Cells {
    glyph: &'static str,
    tone: Tone,
    key: String,
    state: &'static str,
    attempt: String,
    elapsed: String,
    detail: String,
}

fn cells(l: &TaskLine, root: &RunBoard, runs: &BTreeMap<RunId, RunBoard>, now: Millis) -> Cells {
    let (glyph, tone) = task_glyph(l.state, l.result);
    let retries = l.attempts > 1
        || l.state == TaskState::WaitingForRetry
        || matches!(l.max, MaxAttempts::Unlimited | MaxAttempts::Upto(2..));
    let attempt =
        if retries && l.attempts > 0 { format!("attempt {}", l.max.fraction(l.attempts)) } else { String::new() };
    let mut detail = Vec::new();
    let (its_done, its, its_bad) = root.iterations(&l.key);
    let has_its = its != 0;
    if has_its {
        let bad = if its_bad > 0 { format!(", {its_bad} not successful") } else { String::new() };
        detail.push(format!("{its_done}/{its} iterations done{bad}"));
    }
    if let Some(child) = l.child {
        detail.push(match runs.get(&child) {
            Some(b) => match b.finished() {
                Some((r, _)) => format!("run {child} {}", r.as_str()),
                None => {
                    let top = b.top();
                    format!("run {child} · {}/{} tasks done", top.iter().filter(|t| t.done()).count(), top.len())
                }
            },
            None => format!("run {child}"),
        });
    }
    if let Some(o) = l.outcome {
        detail.push(format!("outcome {o}"));
    }
    if let Some(from) = &l.reused {
        detail.push(reused_note(&l.key, from));
    }
    if let (TaskState::WaitingForRetry, Some(at)) = (l.state, l.retry_at) {
        detail.push(format!("retry in {}", stopwatch(Duration::from_millis(at.saturating_sub(now)))));
    }
    if let Some(d) = &l.detail
        && l.result != Some(TaskResult::Success)
        && d != state_word(l.state, l.result)
        && !(has_its && l.result == Some(TaskResult::Failed))
    {
        detail.push(d.clone());
    }
    Cells {
        glyph,
        tone,
        key: ellipsize(&l.key, MAX_KEY_WIDTH),
        state: state_word(l.state, l.result),
        attempt,
        elapsed: l.elapsed(now).unwrap_or_default(),
        detail: detail.join(" · "),
    }
}

/// Colour the glyph and the state word of an already fitted plain line.
fn colorize(plain: &str, prefix: &str, c: &Cells, paint: Paint) -> String {
    let head = format!("{prefix}{}", c.state);
    match plain.strip_prefix(&head) {
        Some(rest) if paint.color => {
            let key = &prefix[2 + c.glyph.len()..];
            format!("  {}{key}{}{rest}", paint.paint(c.tone, c.glyph), paint.paint(c.tone, c.state))
        }
        _ => plain.to_string(),
    }
}

/// Which of `tasks` get a line of their own when only `budget` lines are free, and the
/// summary line standing for the others. In flight and failed tasks are kept first, then
/// waiting ones, then successful ones; the kept ones stay in plan order.
pub(super) fn select(tasks: &[TaskLine], budget: usize) -> (Vec<usize>, Option<String>) {
    if tasks.len() <= budget {
        return ((0..tasks.len()).collect(), None);
    }
    let keep = budget.saturating_sub(1);
    let rank = |l: &TaskLine| match (l.state, l.result) {
        (TaskState::Running | TaskState::WaitingForRetry, _) => 0,
        (TaskState::Terminated, Some(TaskResult::Success | TaskResult::Excluded)) => 3,
        (TaskState::Terminated, _) => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (rank(&tasks[i]), i));
    let mut shown = order[..keep].to_vec();
    shown.sort_unstable();
    let hidden = &order[keep..];
    let states = tally(hidden.iter().map(|&i| state_word(tasks[i].state, tasks[i].result)));
    (shown, Some(format!("  … {} more task{}: {states}", hidden.len(), super::style::plural(hidden.len()))))
}

/// Cut a line to `cols` visible characters.
fn fit(s: &str, cols: usize) -> String {
    ellipsize(s, cols)
}

#[cfg(test)]
mod tests {
    use super::super::board::fixtures::{board, created, finished};
    use super::*;
    use crate::model::Event;

    fn render(b: &RunBoard, rows: usize) -> Vec<String> {
        frame(b, &BTreeMap::new(), 2_000, 100, rows, Paint::PLAIN)
    }

    #[test]
    fn a_diamond_in_flight_shows_states_attempts_and_errors() {
        let b = board(&[
            created(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]),
            Event::AttemptStarted { task: "a".into(), attempt: 0, at: 0 },
            finished("a", 0, 500, TaskResult::Success, None),
            Event::AttemptStarted { task: "b".into(), attempt: 0, at: 500 },
            finished("b", 0, 600, TaskResult::Failed, Some("transient error: 503\nmore")),
            Event::RetryScheduled { task: "b".into(), next_attempt: 1, not_before: 2_500, at: 600 },
            Event::AttemptStarted { task: "c".into(), attempt: 0, at: 500 },
        ]);
        let lines = render(&b, 20);
        assert_eq!(lines[0], "run 1 · job j · 1/4 done · 2.0 s");
        let expected = [
            "  ✓ a  success                       500 ms",
            "  ↻ b  waiting_for_retry  attempt 1   1.5 s  retry in 500 ms · transient error: 503",
            "  ● c  running                        1.5 s",
            "  · d  blocked",
        ];
        assert_eq!(lines[1..], expected, "\n{}", lines.join("\n"));
    }

    #[test]
    fn more_tasks_than_rows_collapse_finished_ones_first() {
        let keys: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let spec: Vec<(&str, &[&str])> = keys.iter().map(|k| (k.as_str(), &[][..])).collect();
        let mut events = vec![created(&spec)];
        for (i, k) in keys.iter().enumerate() {
            events.push(Event::AttemptStarted { task: k.clone(), attempt: 0, at: 0 });
            if i != 4 && i != 7 {
                let result = if i == 2 { TaskResult::Failed } else { TaskResult::Success };
                events.push(finished(k, 0, 10, result, None));
            }
        }
        let b = board(&events);
        let lines = render(&b, 5);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[1].contains("t2") && lines[1].contains("failed"), "failures stay: {lines:?}");
        assert!(lines[2].contains("t4") && lines[3].contains("t7"), "running tasks stay: {lines:?}");
        assert_eq!(lines[4], "  … 7 more tasks: 7 success");
        assert_eq!(render(&b, 11).len(), 11, "everything fits: no summary line");
    }

    #[test]
    fn lines_fit_the_width_and_colour_only_when_asked() {
        let b = board(&[
            created(&[("a", &[])]),
            Event::AttemptStarted { task: "a".into(), attempt: 0, at: 0 },
            finished("a", 0, 1, TaskResult::Failed, Some(&"x".repeat(300))),
        ]);
        let plain = frame(&b, &BTreeMap::new(), 5, 40, 10, Paint::PLAIN);
        assert!(plain.iter().all(|l| l.chars().count() <= 39), "{plain:?}");
        let colored = frame(&b, &BTreeMap::new(), 5, 40, 10, Paint { color: true });
        assert!(colored[1].starts_with("  \x1b[31m✗\x1b[0m a  \x1b[31mfailed\x1b[0m"), "{:?}", colored[1]);
    }

    #[test]
    fn for_each_and_resumed_runs_say_what_they_know() {
        let b = board(&[
            created(&[("each", &[])]),
            Event::AttemptStarted { task: "each".into(), attempt: 0, at: 0 },
            Event::IterationsPlanned { task: "each".into(), inputs: vec!["x".into(); 5], at: 1 },
            Event::AttemptStarted { task: "each[1]".into(), attempt: 0, at: 1 },
            finished("each[1]", 0, 5, TaskResult::Failed, Some("boom")),
        ]);
        assert!(render(&b, 10)[1].ends_with("1/5 iterations done, 1 not successful"), "{:?}", render(&b, 10));
        let mut resumed = super::super::board::RunBoard::new(1);
        resumed.attach(&[
            created(&[("each", &[])]),
            Event::AttemptStarted { task: "each".into(), attempt: 0, at: 0 },
            Event::IterationsPlanned { task: "each".into(), inputs: vec!["x".into(); 4], at: 1 },
        ]);
        resumed.apply(&Event::RunResumed { at: 0 });
        let lines = render(&resumed, 10);
        assert_eq!(lines[0], "run 1 · job j · resumed · 0/1 done · 2.0 s");
        assert!(lines[1].ends_with("0/4 iterations done"), "the history says how many: {lines:?}");
    }
}
