//! Progress of `sluice run`, `runs resume`, `runs repair` and `runs cancel`: the
//! [`Progress`] observer.
//!
//! On a terminal it keeps a live board (one line per top-level task, see `board`) and
//! redraws it in place: at most every [`REDRAW_EVERY`], only when events arrived (the
//! scheduler announces them in group-commit batches), plus a slow tick so elapsed
//! times move while tasks run. The board of a run is drawn a last time when the run
//! finishes and stays on screen. Anywhere else (pipes, CI, tests, `TERM=dumb`) it
//! prints plain lines as events arrive: one per finished or skipped task (`  ✓ key
//! success   123 µs`, the shape tests grep), one per retry and per cancel request.
//!
//! It owns only presentation. It must never hold logic a library user would need,
//! never touch the store, and never block the scheduler for long: `event` is called
//! from scheduler tasks (any tokio worker), for every run this process drives,
//! including the child runs of `run_job` tasks.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::board::RunBoard;
use super::frame::frame;
use super::style::{self, Paint, clean, first_line, mark, plural, reused_note};
use crate::model::{Event, Millis, RunId};
use crate::scheduler::Observer;
use crate::util::{human_duration, stopwatch};

/// The fastest the live board redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// How often the board redraws with no new events while tasks run (elapsed times).
const TICK_EVERY: Duration = Duration::from_secs(1);

/// The progress observer. `Send + Sync`: all state sits behind one mutex.
pub struct Progress {
    shared: Arc<Mutex<State>>,
}

struct State {
    /// The plain format pads keys to at least this.
    width: usize,
    live: bool,
    paint: Paint,
    runs: BTreeMap<RunId, RunBoard>,
    /// The run whose board is on screen (live mode).
    root: Option<RunId>,
    /// Lines of the board currently on screen, to move back over.
    drawn: usize,
    dirty: bool,
    last_draw: Option<Instant>,
    ticker: bool,
}

impl Progress {
    /// `width`: the longest task key of the job (keys are padded to it in plain lines).
    pub fn new(width: usize) -> Self {
        let live = style::is_terminal(style::Stream::Stderr);
        let paint = if live && !style::no_color() { Paint { color: true } } else { Paint::PLAIN };
        Progress::with_mode(width, live, paint)
    }

    fn with_mode(width: usize, live: bool, paint: Paint) -> Self {
        let state = State {
            width: width.max(4),
            live,
            paint,
            runs: BTreeMap::new(),
            root: None,
            drawn: 0,
            dirty: false,
            last_draw: None,
            ticker: false,
        };
        Progress { shared: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redraws the live board from its own thread, which ends with the observer.
    fn start_ticker(&self) {
        let weak: Weak<Mutex<State>> = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new().name("sluice-progress".into()).spawn(move || {
            loop {
                std::thread::sleep(REDRAW_EVERY);
                let Some(shared) = weak.upgrade() else { return };
                let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                st.tick();
            }
        });
        // without the thread the board still redraws, on events only
        if spawned.is_err() {
            self.lock().ticker = false;
        }
    }
}

impl Observer for Progress {
    fn attached(&self, run: RunId, history: &[Event]) {
        self.lock().runs.entry(run).or_insert_with(|| RunBoard::new(run)).attach(history);
    }

    fn event(&self, run: RunId, event: &Event) {
        let start_ticker = {
            let mut st = self.lock();
            st.runs.entry(run).or_insert_with(|| RunBoard::new(run)).apply(event);
            if st.live {
                st.live_event(run, event)
            } else {
                st.plain_event(run, event)
            }
            // claimed under the lock: one ticker, however many threads report at once
            let start = st.live && !st.ticker;
            st.ticker |= start;
            start
        };
        if start_ticker {
            self.start_ticker();
        }
    }
}

impl Drop for Progress {
    /// A run that ended without `RunFinished` (an error): leave its board as it was.
    fn drop(&mut self) {
        let mut st = self.lock();
        if st.live && st.root.is_some() {
            st.draw();
            st.close();
        }
    }
}

impl State {
    fn live_event(&mut self, run: RunId, event: &Event) {
        if self.root.is_none() && !self.is_child(run) {
            self.root = Some(run);
        }
        self.dirty = true;
        if self.root == Some(run) && matches!(event, Event::RunFinished { .. }) {
            self.draw();
            self.close();
        } else if self.root == Some(run)
            && matches!(event, Event::CancelRequested { reason, .. } if reason.starts_with("canceled by"))
        {
            // the Ctrl-C handler printed a line below the board: keep it, leave the board
            // as it was, and draw the next one underneath (only cosmetic if this misses)
            self.drawn = 0;
            self.draw();
        } else if !self.ticker && self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY) {
            self.draw();
        }
    }

    /// Whether `run` was started by a `run_job` task: its plan says so, or a run this
    /// process follows started it (child runs resumed by their parent carry no
    /// `RunCreated` here).
    fn is_child(&self, run: RunId) -> bool {
        self.runs.get(&run).is_some_and(|b| b.parent().is_some())
            || self.runs.values().any(|b| b.top().iter().any(|l| l.child == Some(run)))
    }

    fn tick(&mut self) {
        if self.root.is_none() {
            return;
        }
        let running = self
            .root
            .and_then(|r| self.runs.get(&r))
            .is_some_and(|b| b.top().iter().any(|l| !l.done() && l.first_start.is_some()));
        let stale = self.last_draw.is_none_or(|t| t.elapsed() >= TICK_EVERY);
        if self.dirty || (running && stale) {
            self.draw();
        }
    }

    /// Replace the board on screen with the current one.
    fn draw(&mut self) {
        let Some(root) = self.root.and_then(|r| self.runs.get(&r)) else { return };
        let (cols, rows) = style::terminal_size();
        let lines = frame(root, &self.runs, now_millis(), cols, rows.saturating_sub(1).max(2), self.paint);
        let mut buf = String::new();
        if self.drawn > 0 {
            buf.push_str(&format!("\r\x1b[{}A", self.drawn));
        }
        // overwrite line by line, then clear what a taller previous board left below:
        // no whole-screen clear (terminals may push the screen into scrollback for it)
        for l in &lines {
            buf.push_str("\x1b[2K");
            buf.push_str(l);
            buf.push('\n');
        }
        buf.push_str("\x1b[J");
        let mut out = std::io::stderr().lock();
        let _ = out.write_all(buf.as_bytes()).and_then(|()| out.flush());
        self.drawn = lines.len();
        self.dirty = false;
        self.last_draw = Some(Instant::now());
    }

    /// The board on screen is final: what follows is printed below it. Runs still going
    /// (another run this process drives, a resumed one) keep their boards: the next of
    /// them to report is drawn underneath.
    fn close(&mut self) {
        let root = self.root.take();
        self.drawn = 0;
        self.dirty = false;
        self.runs.retain(|_, b| b.finished().is_none() && b.parent().is_none_or(|(p, _)| Some(*p) != root));
    }

    fn plain_event(&mut self, run: RunId, event: &Event) {
        if let Some(line) = self.runs.get(&run).and_then(|b| plain_line(b, self.width, event)) {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        if let Event::RunFinished { .. } = event {
            self.runs.remove(&run);
        }
    }
}

/// The plain-format line for `event` of `board`'s run, if it gets one. Keys are padded
/// to `width` or the run's longest key.
fn plain_line(board: &RunBoard, width: usize, event: &Event) -> Option<String> {
    let (run, w) = (board.run, width.max(board.key_width()));
    Some(match event {
        Event::RunCreated { job, tasks, .. } => {
            let from = board.parent().map(|(r, t)| format!(" (started by task {t} of run {r})")).unwrap_or_default();
            format!("run {run} · job {job} · {} task{}{from}", tasks.len(), plural(tasks.len()))
        }
        Event::AttemptFinished { task, result, cache: Some(cache), .. } if cache.reused_from.is_some() => {
            let from = crate::state::reused_from(cache).map(|f| reused_note(task, &f)).unwrap_or_default();
            format!("  {} {task:<w$}  {:<9} {from}", mark(*result), result.as_str())
        }
        Event::AttemptFinished { task, result, error, elapsed_us, .. } => {
            // tasks the scheduler runs itself (condition, for_each, run_job) have no sandbox time
            let wall = board.line(task).and_then(|l| Some(l.end?.saturating_sub(l.first_start?)));
            let took = match (*elapsed_us, wall) {
                (0, Some(ms)) => human_duration(Duration::from_millis(ms)),
                (us, _) => human_duration(Duration::from_micros(us)),
            };
            match error {
                Some(e) => format!(
                    "  {} {task:<w$}  {:<9} {took:>9}  {}",
                    mark(*result),
                    result.as_str(),
                    clean(first_line(e))
                ),
                None => format!("  {} {task:<w$}  {:<9} {took:>9}", mark(*result), result.as_str()),
            }
        }
        Event::TaskSkipped { task, result, reason, .. } => {
            format!("  {} {task:<w$}  {} ({reason})", mark(*result), result.as_str())
        }
        Event::QualityChecked { task, results, .. } if results.iter().any(|r| !r.success) => {
            let failed: Vec<&crate::model::ExpectationResult> = results.iter().filter(|r| !r.success).collect();
            let first = format!("[{}] {}", failed[0].on_failure.as_str(), failed[0].describe());
            format!("  ⚠ {task:<w$}  {} of {} expectations failed: {}", failed.len(), results.len(), clean(&first))
        }
        Event::RetryScheduled { task, next_attempt, not_before, at } => {
            let wait = stopwatch(Duration::from_millis(not_before.saturating_sub(*at)));
            let failed = board.max_attempts(task).fraction(*next_attempt);
            format!("  ↻ {task:<w$}  attempt {failed} failed, retrying in {wait}")
        }
        Event::CancelRequested { reason, stop_cleanup: true, .. } => {
            format!("  ○ run {run}: cleanup stopped ({reason})")
        }
        Event::CancelRequested { reason, .. } => format!("  ○ run {run}: cancel requested ({reason})"),
        Event::ChildRunStarted { task, child, .. } => format!("  ↳ {task:<w$}  started run {child}"),
        Event::IterationsPlanned { task, inputs, .. } => {
            format!("  ⋯ {task:<w$}  {} iteration{}", inputs.len(), plural(inputs.len()))
        }
        Event::RunResumed { .. } => format!("run {run} · resumed"),
        Event::RunQueued { reason, .. } => format!("run {run} · queued: {reason}"),
        Event::RunDequeued { .. } => format!("run {run} · its turn came: starting"),
        Event::RepairStarted { repair, tasks, .. } => {
            format!("run {run} · repair {repair} · rerunning {}", tasks.join(", "))
        }
        // queued, started, finished runs (the footer says how) and any later event: no line
        _ => return None,
    })
}

fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Progress>();
    }

    fn board(events: &[Event]) -> RunBoard {
        let mut b = RunBoard::new(7);
        for e in events {
            b.apply(e);
        }
        b
    }

    fn created() -> Event {
        let task = |key: &str| crate::model::PlannedTask {
            key: key.into(),
            component: "c".into(),
            component_hash: "h".into(),
            depends_on: vec![],
        };
        Event::RunCreated {
            run_id: 7,
            job: "j".into(),
            source: "s".into(),
            target: "dev".into(),
            parameters: Default::default(),
            tasks: vec![task("extract"), task("fib")],
            at: 0,
            plan: None,
        }
    }

    #[test]
    fn plain_lines_keep_the_format_tests_grep() {
        let b = board(&[created()]);
        assert_eq!(plain_line(&b, 4, &created()).unwrap(), "run 7 · job j · 2 tasks");
        let finished = |result, error: Option<&str>| Event::AttemptFinished {
            task: "fib".into(),
            attempt: 0,
            at: 1,
            result,
            output: None,
            error: error.map(str::to_string),
            log: String::new(),
            log_truncated: false,
            elapsed_us: 123,
            outcome: None,
            cache: None,
            error_code: None,
        };
        assert_eq!(
            plain_line(&b, 4, &finished(crate::model::TaskResult::Success, None)).unwrap(),
            "  ✓ fib      success      123 µs"
        );
        let failed =
            plain_line(&b, 4, &finished(crate::model::TaskResult::Failed, Some("trap: boom\nbacktrace"))).unwrap();
        assert_eq!(failed, "  ✗ fib      failed       123 µs  trap: boom");
        let retry = Event::RetryScheduled { task: "fib".into(), next_attempt: 1, not_before: 1_250, at: 50 };
        assert_eq!(plain_line(&b, 4, &retry).unwrap(), "  ↻ fib      attempt 1 failed, retrying in 1.2 s");
        let cancel = Event::CancelRequested { reason: "Ctrl-C".into(), timed_out: false, at: 2, stop_cleanup: false };
        assert_eq!(plain_line(&b, 4, &cancel).unwrap(), "  ○ run 7: cancel requested (Ctrl-C)");
        assert!(plain_line(&b, 4, &Event::TaskQueued { task: "fib".into(), at: 0 }).is_none());
        let mut reused = finished(crate::model::TaskResult::Success, None);
        if let Event::AttemptFinished { cache, .. } = &mut reused {
            let from = crate::model::AttemptCache {
                reused_from: Some("3/fib".into()),
                reused_attempt: Some(1),
                ..Default::default()
            };
            *cache = Some(Box::new(from));
        }
        assert_eq!(plain_line(&b, 4, &reused).unwrap(), "  ✓ fib      success   reused from run 3 (attempt 1)");
        let stop = Event::CancelRequested { reason: "again".into(), timed_out: false, at: 3, stop_cleanup: true };
        assert_eq!(plain_line(&b, 4, &stop).unwrap(), "  ○ run 7: cleanup stopped (again)");
    }

    #[test]
    fn a_plain_run_is_let_go_when_it_finishes() {
        let p = Progress::with_mode(4, false, Paint::PLAIN);
        p.event(1, &Event::RunResumed { at: 0 });
        assert_eq!(p.lock().runs.len(), 1);
        p.event(1, &Event::RunFinished { result: crate::model::RunResult::Success, at: 0 });
        assert!(p.lock().runs.is_empty());
    }
}
