//! Human-readable output: progress lines, run listings, run details.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::model::{Event, Millis, RunId, RunSummary, RunView, TaskResult};
use crate::scheduler::Observer;
use crate::util::human_duration;

/// Longest log excerpt `runs show` prints per attempt before pointing at `--json`.
const SHOW_LOG_LINES: usize = 40;

/// Prints one line per finished or skipped task.
pub struct Progress {
    width: usize,
}

impl Progress {
    pub fn new(width: usize) -> Self {
        Progress { width: width.max(4) }
    }
}

impl Observer for Progress {
    fn event(&self, run: RunId, event: &Event) {
        let mut out = std::io::stdout().lock();
        let w = self.width;
        let _ = match event {
            Event::RunCreated { job, tasks, .. } => writeln!(out, "run {run} · job {job} · {} task{}", tasks.len(), plural(tasks.len())),
            Event::AttemptFinished { task, result, error, elapsed_us, .. } => {
                let took = human_duration(Duration::from_micros(*elapsed_us));
                match error {
                    Some(e) => writeln!(out, "  {} {task:<w$}  {:<9} {took:>9}  {}", mark(*result), result.as_str(), first_line(e)),
                    None => writeln!(out, "  {} {task:<w$}  {:<9} {took:>9}", mark(*result), result.as_str()),
                }
            }
            Event::TaskSkipped { task, result, reason, .. } => writeln!(out, "  {} {task:<w$}  {} ({reason})", mark(*result), result.as_str()),
            _ => Ok(()),
        };
    }
}

/// The closing lines of `sluice run`.
pub fn run_footer(view: &RunView, state: &Path) {
    let result = view.result.map(|r| r.as_str()).unwrap_or("unfinished");
    let took = view.finished_at.map(|f| human_duration(ms(f.saturating_sub(view.created_at)))).unwrap_or_default();
    println!("run {} {result} in {took}", view.run_id);
    for t in &view.tasks {
        if let Some(out) = t.attempts.last().and_then(|a| a.output.as_deref()) {
            println!("  {}: {}", t.key, ellipsize(out, 200));
        }
    }
    println!("details: sluice runs show {} --state {}", view.run_id, state.display());
}

pub fn run_list(runs: &[RunSummary]) {
    if runs.is_empty() {
        println!("no runs yet");
        return;
    }
    println!("{:>6}  {:<20}  {:<22}  {:>10}  SOURCE", "RUN", "JOB", "RESULT", "DURATION");
    for r in runs {
        let result = r.result.map(|x| x.as_str()).unwrap_or("running");
        let took = r.finished_at.map(|f| human_duration(ms(f.saturating_sub(r.created_at)))).unwrap_or_else(|| "-".into());
        println!("{:>6}  {:<20}  {:<22}  {:>10}  {}", r.run_id, ellipsize(&r.job, 20), result, took, r.source);
    }
}

pub fn run_details(v: &RunView) {
    let result = v.result.map(|x| x.as_str()).unwrap_or("running");
    println!("run {} · job {} · {result}", v.run_id, v.job);
    println!("  started   {}", stamp(v.created_at));
    if let Some(f) = v.finished_at {
        println!("  finished  {} (took {})", stamp(f), human_duration(ms(f.saturating_sub(v.created_at))));
    }
    println!("  target    {}", v.target);
    println!("  source    {}", v.source);
    for (k, val) in &v.parameters {
        println!("  param     {k} = {val}");
    }
    let w = v.tasks.iter().map(|t| t.key.len()).max().unwrap_or(4).max(4);
    println!();
    println!("  {:<w$}  {:<12}  {:<17}  {:>8}  {:>10}  DEPENDS ON", "TASK", "STATE", "RESULT", "ATTEMPTS", "DURATION");
    for t in &v.tasks {
        let dur = t.attempts.last().and_then(|a| a.duration()).map(human_duration).unwrap_or_else(|| "-".into());
        println!(
            "  {:<w$}  {:<12}  {:<17}  {:>8}  {:>10}  {}",
            t.key,
            t.state.as_str(),
            t.result.map(TaskResult::as_str).unwrap_or("-"),
            t.attempts.len(),
            dur,
            t.depends_on.join(", ")
        );
    }
    for t in &v.tasks {
        if let Some(reason) = &t.skipped_reason {
            println!("\n── {} — {}: {reason}", t.key, t.result.map(TaskResult::as_str).unwrap_or("-"));
        }
        for a in &t.attempts {
            let res = a.result.map(TaskResult::as_str).unwrap_or("running");
            let dur = a.duration().map(human_duration).unwrap_or_default();
            println!("\n── {} · attempt {} · {res} · {dur}", t.key, a.attempt);
            if let Some(o) = &a.output {
                println!("  output: {}", ellipsize(o, 2000));
            }
            if let Some(e) = &a.error {
                println!("  error:  {e}");
            }
            print_log(&a.log, a.log_truncated);
        }
    }
}

fn print_log(log: &str, truncated: bool) {
    if log.is_empty() {
        return;
    }
    let lines: Vec<&str> = log.lines().collect();
    println!("  log:");
    let skip = lines.len().saturating_sub(SHOW_LOG_LINES);
    if skip > 0 {
        println!("    … {skip} earlier lines (see --json for all)");
    }
    for l in &lines[skip..] {
        println!("    | {l}");
    }
    if truncated {
        println!("    … log truncated at its size limit");
    }
}

fn mark(r: TaskResult) -> &'static str {
    match r {
        TaskResult::Success => "✓",
        TaskResult::Excluded => "-",
        TaskResult::Canceled | TaskResult::UpstreamCanceled => "○",
        _ => "✗",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

fn ms(m: Millis) -> Duration {
    Duration::from_millis(m)
}

fn stamp(m: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + ms(m)).to_string()
}
