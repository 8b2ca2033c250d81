//! Human-readable output of finished commands: the closing lines of a run, run
//! listings, and `runs show` (the task graph by level, every attempt, iterations,
//! child runs, repairs, outputs and logs). Live progress is `progress`/`board`.
//!
//! It only formats what a `RunView` or `RunSummary` already says. It must never hold
//! logic a library user would need and never touch the store.

use super::out::{out, outln};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::dag::{layers, pick_iterations, upstream_list};
use super::style::{
    Paint, Stream, Tone, clean, ellipsize, first_line, plural, result_tone, reused_note, state_word, tally, task_glyph,
};
use crate::model::{AttemptView, Millis, RunResult, RunStatus, RunSummary, RunView, TaskResult, TaskState, TaskView};
use crate::util::human_duration;

/// Longest log excerpt `runs show` prints per attempt before pointing at `--json`.
const SHOW_LOG_LINES: usize = 40;
/// Upstream tasks named in a row of the task table (the rest are counted).
const UPSTREAM_SHOWN: usize = 6;

/// How a run ended, in a word (`unfinished` while it has not).
pub fn result_word(view: &RunView) -> &'static str {
    view.result.map(|r| r.as_str()).unwrap_or("unfinished")
}

/// `run 7 success`: how a run ended, in one line.
pub fn run_line(view: &RunView) -> String {
    format!("run {} {}", view.run_id, view.result.map(|r| r.as_str()).unwrap_or("unfinished"))
}

/// The closing lines of `sluice run`.
pub fn run_footer(view: &RunView, state: &Path) {
    let result = view.result.map(|r| r.as_str()).unwrap_or("unfinished");
    let took = view.finished_at.map(|f| human_duration(ms(f.saturating_sub(view.created_at)))).unwrap_or_default();
    outln!("run {} {result} in {took}: {}", view.run_id, work_done(view));
    for t in &view.tasks {
        if let Some(out) = t.attempts.last().and_then(|a| a.output.as_deref()) {
            outln!("  {}: {}", t.key, ellipsize(out, 200));
        }
    }
    outln!("details: sluice runs show {} --state {}", view.run_id, state.display());
}

/// "12 executed, 28 reused": how many tasks (iterations included) ran in a sandbox, and
/// how many took an earlier identical result instead.
pub fn work_done(view: &RunView) -> String {
    let reused = view.tasks.iter().filter(|t| t.reused_from.is_some()).count();
    let executed = view.tasks.iter().filter(|t| t.attempts.iter().any(|a| a.elapsed_us > 0)).count();
    format!("{executed} executed, {reused} reused")
}

pub fn run_list(runs: &[RunSummary]) {
    if runs.is_empty() {
        outln!("no runs yet");
        return;
    }
    outln!("{:>6}  {:<20}  {:<22}  {:>10}  SOURCE", "RUN", "JOB", "RESULT", "DURATION");
    for r in runs {
        let status = r.status.unwrap_or(RunStatus::Running);
        let result = r.result.map(|x| x.as_str()).unwrap_or(status.as_str());
        let took =
            r.finished_at.map(|f| human_duration(ms(f.saturating_sub(r.created_at)))).unwrap_or_else(|| "-".into());
        outln!("{:>6}  {:<20}  {:<22}  {:>10}  {}", r.run_id, ellipsize(&r.job, 20), result, took, r.source);
    }
}

/// `sluice runs show RUN`.
pub fn run_details(v: &RunView) {
    let mut out = String::new();
    details(&mut out, v, Paint::for_stream(Stream::Stdout));
    out!("{out}");
}

fn details(out: &mut String, v: &RunView, paint: Paint) {
    let status = v.status.unwrap_or(RunStatus::Running);
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let result = v.result.map(RunResult::as_str).unwrap_or(status.as_str());
    let tone = match v.result {
        Some(r) if r.is_success() => Tone::Good,
        Some(_) => Tone::Bad,
        None => Tone::Busy,
    };
    line(format!("run {} · job {} · {}", v.run_id, v.job, paint.paint(tone, result)));
    line(format!("  started   {}", stamp(v.created_at)));
    if let Some(f) = v.finished_at {
        line(format!("  finished  {} (took {})", stamp(f), human_duration(ms(f.saturating_sub(v.created_at)))));
    }
    line(format!("  target    {}", v.target));
    line(format!("  source    {}", v.source));
    for (k, val) in &v.parameters {
        line(format!("  param     {k} = {val}"));
    }
    if status == RunStatus::Interrupted {
        line(format!("  status    interrupted: the process running it stopped (`sluice runs resume {}`)", v.run_id));
    }
    if v.resumed > 0 {
        line(format!("  resumed   {} time{} (the process running it stopped)", v.resumed, plural(v.resumed as usize)));
    }
    if v.result.is_some() {
        line(format!("  work      {}", work_done(v)));
    }
    for p in v.plans.iter().filter(|_| v.plans.len() > 1) {
        let when = if p.version == 1 { "the run's own".to_string() } else { format!("recorded {}", stamp(p.at)) };
        line(format!("  plan {:<4} blake3 {} · {when}", p.version, &p.hash[..p.hash.len().min(12)]));
        for c in &p.changes {
            line(format!("              {}", clean(c)));
        }
    }
    for r in &v.repairs {
        let by = if r.by.is_empty() { String::new() } else { format!(" · by {}", r.by) };
        let pinned = if r.pinned { " (--pinned)" } else { "" };
        let params: Vec<String> = r.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let params = if params.is_empty() { String::new() } else { format!(" · {}", params.join(" ")) };
        line(format!(
            "  repair {:<2} {} · plan {}{pinned}{by} · reran {}{params}",
            r.repair,
            stamp(r.at),
            r.plan_version,
            r.tasks.join(", ")
        ));
    }
    if v.cancel_requested {
        line("  cancel    requested".into());
    }
    for n in &v.notifications {
        let about = n.task.as_deref().map_or_else(String::new, |t| format!(" (task {t})"));
        let error = n.last_error.as_deref().map_or_else(String::new, |e| format!(" · last error: {}", clean(e)));
        let tries = format!("{} attempt{}", n.attempts, plural(n.attempts as usize));
        line(format!("  notify    {}{about} → {} · {} · {tries}{error}", n.event, n.destination, n.state.as_str()));
    }
    let top: Vec<&TaskView> = v.tasks.iter().filter(|t| t.parent.is_none()).collect();
    let order = graph_table(out, v, &top, paint);
    for t in order.into_iter().map(|i| top[i]) {
        let its: Vec<&TaskView> = v.tasks.iter().filter(|i| i.parent.as_deref() == Some(t.key.as_str())).collect();
        task_section(out, t, &its, "", paint);
    }
}

/// The table of top-level tasks by topological level; returns the order it used.
fn graph_table(out: &mut String, v: &RunView, top: &[&TaskView], paint: Paint) -> Vec<usize> {
    let graph: Vec<(&str, &[String])> = top.iter().map(|t| (t.key.as_str(), t.depends_on.as_slice())).collect();
    let layers = layers(&graph);
    let kw = top.iter().map(|t| t.key.chars().count()).max().unwrap_or(4).max(4);
    out.push_str(&format!(
        "\n  {:<5}  {:<w$}  {:<10}  {:<17}  {:>8}  {:>9}  DEPENDS ON\n",
        "LEVEL",
        "TASK",
        "STATE",
        "RESULT",
        "ATTEMPTS",
        "DURATION",
        w = kw + 2
    ));
    for (level, members) in layers.iter().enumerate() {
        for (n, &i) in members.iter().enumerate() {
            let t = top[i];
            let (glyph, tone) = task_glyph(t.state, t.result);
            let lvl = if n == 0 { level.to_string() } else { String::new() };
            let dur = task_duration(t).map(human_duration).unwrap_or_else(|| "-".into());
            let result = t.result.map(TaskResult::as_str).unwrap_or("-");
            let mut notes: Vec<String> = Vec::new();
            if !t.depends_on.is_empty() {
                notes.push(format!("← {}", upstream_list(&t.depends_on, UPSTREAM_SHOWN)));
            }
            notes.extend(task_notes(v, t));
            let row = format!(
                "  {lvl:<5}  {} {:<kw$}  {:<10}  {}  {:>8}  {dur:>9}  {}",
                paint.paint(tone, glyph),
                t.key,
                t.state.as_str(),
                paint.paint(tone, &format!("{result:<17}")),
                t.attempts.len(),
                notes.join(" · ")
            );
            out.push_str(row.trim_end());
            out.push('\n');
        }
    }
    layers.into_iter().flatten().collect()
}

/// What a task's row adds after its upstream tasks: outcome, iterations, child run.
fn task_notes(v: &RunView, t: &TaskView) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(o) = t.outcome {
        notes.push(format!("outcome {o}"));
    }
    let its: Vec<&TaskView> = v.tasks.iter().filter(|i| i.parent.as_deref() == Some(t.key.as_str())).collect();
    if !its.is_empty() {
        notes.push(format!(
            "{} iteration{}: {}",
            its.len(),
            plural(its.len()),
            tally(its.iter().map(|i| state_word(i.state, i.result)))
        ));
    }
    if let Some(c) = t.child_run {
        notes.push(format!("child run {c}"));
    }
    if let Some(from) = &t.reused_from {
        notes.push(reused_note(&t.key, from));
    }
    notes
}

/// A task's section: its attempts (with output, error and log), then its iterations.
fn task_section(out: &mut String, t: &TaskView, its: &[&TaskView], indent: &str, paint: Paint) {
    if t.attempts.is_empty() && t.skipped_reason.is_none() && its.is_empty() {
        return;
    }
    let (glyph, tone) = task_glyph(t.state, t.result);
    let mut head = format!("{} {}", paint.paint(tone, glyph), t.key);
    head.push_str(&format!(" · {}", paint.paint(tone, state_word(t.state, t.result))));
    if t.attempts.len() > 1 {
        head.push_str(&format!(" · {} attempts", t.attempts.len()));
    }
    if let Some(o) = t.outcome {
        head.push_str(&format!(" · outcome {o}"));
    }
    if let Some(c) = t.child_run {
        head.push_str(&format!(" · child run {c} (sluice runs show {c})"));
    }
    out.push_str(&format!("\n{indent}── {head}\n"));
    if let Some(reason) = &t.skipped_reason {
        out.push_str(&format!("{indent}  skipped: {}\n", clean(reason)));
    }
    for a in &t.attempts {
        attempt(out, &t.key, a, &format!("{indent}  "), paint);
    }
    if its.is_empty() {
        return;
    }
    let (shown, hidden) = pick_iterations(its);
    out.push_str(&format!(
        "{indent}  iterations: {} ({})\n",
        its.len(),
        tally(its.iter().map(|i| state_word(i.state, i.result)))
    ));
    let inner = format!("{indent}    ");
    for i in shown {
        task_section(out, i, &[], &inner, paint);
    }
    if !hidden.is_empty() {
        let results = tally(hidden.iter().map(|i| state_word(i.state, i.result)));
        out.push_str(&format!(
            "\n{inner}… {} more iteration{} not detailed: {results} (see --json)\n",
            hidden.len(),
            plural(hidden.len())
        ));
    }
}

/// One attempt: number, result, duration (or where a reused result came from) and first
/// line of its error, then the rest.
fn attempt(out: &mut String, key: &str, a: &AttemptView, indent: &str, paint: Paint) {
    let (res, tone) = match a.result {
        Some(r) => (r.as_str(), result_tone(r)),
        None => ("running", Tone::Busy),
    };
    let mut head = format!("{indent}attempt {} · {}", a.attempt, paint.paint(tone, res));
    let reused = a.cache.as_ref().and_then(crate::state::reused_from);
    match (reused, a.duration()) {
        (Some(from), _) => head.push_str(&format!(" · {}", reused_note(key, &from))),
        (None, Some(d)) => head.push_str(&format!(" · {}", human_duration(d))),
        (None, None) => {}
    }
    if let Some(e) = &a.error {
        head.push_str(&format!(" · {}", clean(first_line(e))));
    }
    out.push_str(&head);
    out.push('\n');
    if let Some(o) = &a.output {
        out.push_str(&format!("{indent}  output: {}\n", ellipsize(o, 2000)));
    }
    expectations(out, &a.quality, indent, paint);
    if let Some(e) = &a.error
        && e.lines().count() > 1
    {
        out.push_str(&format!("{indent}  error:\n"));
        for l in e.lines() {
            out.push_str(&format!("{indent}    {}\n", clean(l)));
        }
    }
    log(out, &a.log, a.log_truncated, indent);
}

/// A task's production expectations on one attempt: each with its result, the failing
/// ones with their sample of offending rows.
fn expectations(out: &mut String, results: &[crate::model::ExpectationResult], indent: &str, paint: Paint) {
    if results.is_empty() {
        return;
    }
    let failed = results.iter().filter(|r| !r.success).count();
    out.push_str(&format!("{indent}  expectations: {} passed, {failed} failed\n", results.len() - failed));
    for r in results {
        let (mark, tone) = if r.success { ("✓", Tone::Good) } else { ("✗", Tone::Bad) };
        let on_failure = match (r.success, r.blocks.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!(" [{}]", r.on_failure.as_str()),
            (false, false) => format!(" [blocks {}]", r.blocks.join(", ")),
        };
        out.push_str(&format!("{indent}    {}{on_failure} {}\n", paint.paint(tone, mark), clean(&r.describe())));
        for row in &r.rows {
            out.push_str(&format!("{indent}      {}\n", clean(row)));
        }
    }
}

fn log(out: &mut String, log: &str, truncated: bool, indent: &str) {
    if log.is_empty() {
        return;
    }
    let lines: Vec<&str> = log.lines().collect();
    out.push_str(&format!("{indent}  log:\n"));
    let skip = lines.len().saturating_sub(SHOW_LOG_LINES);
    if skip > 0 {
        out.push_str(&format!("{indent}    … {skip} earlier lines (see --json for all)\n"));
    }
    for l in &lines[skip..] {
        out.push_str(&format!("{indent}    | {}\n", clean(l)));
    }
    if truncated {
        out.push_str(&format!("{indent}    … log truncated at its size limit\n"));
    }
}

/// The last attempt's duration; for tasks run by the scheduler itself (for_each,
/// run_job) the time from their first start to their end.
fn task_duration(t: &TaskView) -> Option<Duration> {
    let last = t.attempts.last()?;
    if last.elapsed_us > 0 || t.state != TaskState::Terminated {
        return last.duration();
    }
    let first = t.attempts.first()?.started_at;
    last.finished_at.map(|f| ms(f.saturating_sub(first)))
}

fn ms(m: Millis) -> Duration {
    Duration::from_millis(m)
}

fn stamp(m: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + ms(m)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, PlannedTask};

    fn run() -> RunView {
        let task = |k: &str, d: &[&str]| PlannedTask {
            key: k.into(),
            component: "c".into(),
            component_hash: "h".into(),
            depends_on: d.iter().map(|s| s.to_string()).collect(),
        };
        let finished =
            |task: &str, attempt, result, error: Option<&str>, output: Option<&str>| Event::AttemptFinished {
                task: task.into(),
                attempt,
                at: 10,
                result,
                output: output.map(str::to_string),
                error: error.map(str::to_string),
                log: if result == TaskResult::Success { String::new() } else { "line one\nline two".into() },
                log_truncated: false,
                elapsed_us: 1_500,
                outcome: None,
                cache: None,
                error_code: None,
            };
        let started = |task: &str, attempt| Event::AttemptStarted { task: task.into(), attempt, at: 1 };
        let mut events = vec![
            Event::RunCreated {
                run_id: 3,
                job: "diamond".into(),
                source: "s".into(),
                target: "dev".into(),
                parameters: Default::default(),
                tasks: vec![task("a", &[]), task("b", &["a"]), task("each", &["a"]), task("d", &["b", "each"])],
                at: 0,
                plan: None,
            },
            started("a", 0),
            finished("a", 0, TaskResult::Success, None, Some("{\"rows\":4}")),
            started("b", 0),
            finished("b", 0, TaskResult::Failed, Some("transient error: 503\ndetails"), None),
            Event::RetryScheduled { task: "b".into(), next_attempt: 1, not_before: 20, at: 10 },
            started("b", 1),
            finished("b", 1, TaskResult::Success, None, Some("{}")),
            started("each", 0),
            Event::IterationsPlanned { task: "each".into(), inputs: vec!["x".into(); 25], at: 2 },
        ];
        for i in 0..25 {
            let key = format!("each[{i}]");
            events.push(started(&key, 0));
            let result = if i == 7 { TaskResult::Failed } else { TaskResult::Success };
            events.push(finished(&key, 0, result, (i == 7).then_some("permanent error: bad row"), None));
        }
        events.push(finished("each", 0, TaskResult::Failed, Some("1 of 25 iterations did not succeed"), None));
        events.push(Event::TaskSkipped {
            task: "d".into(),
            result: TaskResult::UpstreamFailed,
            reason: "upstream `each` failed".into(),
            at: 11,
        });
        events.push(Event::RunFinished { result: RunResult::Failed, at: 12 });
        events.push(Event::RepairStarted {
            repair: 1,
            tasks: vec!["d".into()],
            parameters: Default::default(),
            at: 13,
            by: "p".into(),
            plan_version: 1,
            pinned: false,
        });
        events.push(Event::TaskSkipped {
            task: "d".into(),
            result: TaskResult::UpstreamFailed,
            reason: "upstream `each` failed".into(),
            at: 14,
        });
        events.push(Event::RunFinished { result: RunResult::Failed, at: 15 });
        crate::state::RunState::from_events(&events).unwrap().into_view()
    }

    #[test]
    fn runs_show_lays_the_graph_out_by_level_and_lists_every_attempt() {
        let mut out = String::new();
        details(&mut out, &run(), Paint::PLAIN);
        let has = |needle: &str| assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
        has("run 3 · job diamond · failed");
        has("  repair 1  ");
        has(" · plan 1 · by p · reran d\n");
        has("  work      28 executed, 0 reused\n");
        has("  0      ✓ a     terminated  success");
        has("  1      ✓ b     terminated  success                   2       1 ms  ← a\n");
        has(
            "         ✗ each  terminated  failed                    1       1 ms  ← a · 25 iterations: 24 success, 1 failed\n",
        );
        has("  2      ✗ d     terminated  upstream_failed           0          -  ← b, each\n");
        has("── ✓ b · success · 2 attempts\n  attempt 0 · failed · 1 ms · transient error: 503\n");
        has("    error:\n      transient error: 503\n      details\n");
        has("  attempt 1 · success · 1 ms\n    output: {}\n");
        has("    output: {\"rows\":4}");
        has("    log:\n      | line one\n      | line two\n");
        has("  iterations: 25 (24 success, 1 failed)\n");
        has("    ── ✗ each[7] · failed\n      attempt 0 · failed · 1 ms · permanent error: bad row\n");
        has("… 24 more iterations not detailed: 24 success (see --json)");
        has("── ✗ d · upstream_failed\n  skipped: upstream `each` failed\n");
        assert!(!out.contains("each[3]"), "successful iterations beyond the limit are collapsed:\n{out}");
        assert!(!out.contains('\x1b'), "no colour when asked for none");
    }
}
