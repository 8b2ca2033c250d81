//! Fuzzing as ordinary tests: the bundle parser, the template renderer, the redactor and the
//! store's event decoder (with the fold every reader runs over decoded events) get generated
//! and mutated inputs. The property everywhere: no panic on any input, and what a function
//! promises about its output holds (JSON in, JSON out; a redacted value is gone).
//!
//! CI runs a small fixed budget (`SLUICE_FUZZ_CASES`, default [`CI_CASES`] per harness);
//! `scripts/fuzz` runs the same harnesses longer. Each harness reports its case count on
//! stderr (`--nocapture`). A failing input is shrunk by proptest and printed; fix it and
//! keep it as a plain regression test beside the harness.
#![allow(clippy::print_stderr)] // each harness's execution count is its report

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use sluice::model::{Event, PlannedTask, RunResult, TaskResult};
use sluice::secrets::Redactor;
use sluice::spec::template::{self, Reference};
use sluice::state::RunState;

/// Cases per harness in CI: enough to exercise every mutation kind, a few seconds in all.
const CI_CASES: u32 = 1000;

fn cases() -> u32 {
    std::env::var("SLUICE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(CI_CASES)
}

/// Runs `test` over `strategy` for [`cases`] cases; panics (test failure) with the shrunk
/// input if any case panics or fails; reports the executions and how many inputs were
/// accepted (`test` returned `Ok(true)`: parsed, folded), which shows the inputs reach past
/// the first check.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<bool, TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let (execs, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
    let result = TestRunner::new(config).run(&strategy, |input| {
        execs.fetch_add(1, Ordering::Relaxed);
        let ok = test(input)?;
        accepted.fetch_add(u64::from(ok), Ordering::Relaxed);
        Ok(())
    });
    let (execs, accepted) = (execs.load(Ordering::Relaxed), accepted.load(Ordering::Relaxed));
    eprintln!("fuzz: {name}: {execs} executions, {accepted} inputs accepted");
    if let Err(e) = result {
        panic!("fuzz: {name}: {e}");
    }
}

// ---------------------------------------------------------------- mutation of seed texts

/// Tokens a mutation inserts: the syntax and the vocabulary of bundles and templates.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "{{",
    "}}",
    "=",
    "\"",
    "'",
    "\"\"\"",
    "\n",
    ",",
    ".",
    "#",
    "\\",
    "\\u0000",
    "[jobs.j]",
    "[[jobs.j.tasks]]",
    "[components]",
    "[bundle]",
    "[variables]",
    "[targets.dev]",
    "key = \"t\"",
    "depends_on = [\"t\"]",
    "for_each = { inputs = \"[1,2]\", task = { component = \"c\" } }",
    "condition = { op = \"equal_to\", left = \"a\", right = \"b\" }",
    "run_job = { job = \"j\" }",
    "retries = { max = 99999999999 }",
    "timeout = \"1s\"",
    "timeout = \"99999999999999h\"",
    "limits = { memory = \"1TiB\" }",
    "mounts = [{ host = \"/\", guest = \"/x\" }]",
    "run_if = \"all_done\"",
    "secrets = [\"a/b\"]",
    "allow_hosts = [\"*\"]",
    "schedule = { cron = \"* * *\" }",
    "${var.x}",
    "{{ job.parameters.x }}",
    "{{ tasks.a.values.b }}",
    "{{ secrets/a/b }}",
    "{{ input }}",
    "-9223372036854775808",
    "1e309",
    "nan",
    "inf",
    "true",
    "é",
    "\u{202e}",
    "\u{feff}",
    "😀",
    "0x",
    "..",
    "../..",
    "/",
];

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, &'static str),
    Delete(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Byte(usize, char),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), proptest::sample::select(TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Byte(at, c)),
    ];
    proptest::collection::vec(edit, 1..4)
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut text = seed.to_string();
    for edit in edits {
        match *edit {
            Edit::Insert(at, token) => text.insert_str(boundary(&text, at), token),
            Edit::Delete(at, n) => {
                let start = boundary(&text, at);
                let end = boundary(&text, start + n.min(text.len() - start));
                text.replace_range(start..end.max(start), "");
            }
            Edit::Byte(at, c) => {
                let start = boundary(&text, at);
                let end = text[start..].chars().next().map_or(start, |ch| start + ch.len_utf8());
                text.replace_range(start..end, c.encode_utf8(&mut [0; 4]));
            }
            Edit::DuplicateLine(_) | Edit::SwapLines(..) if text.lines().next().is_none() => {}
            Edit::DuplicateLine(n) => {
                let mut lines: Vec<&str> = text.lines().collect();
                let i = n % lines.len();
                lines.insert(i, lines[i]);
                text = lines.join("\n");
            }
            Edit::SwapLines(a, b) => {
                let mut lines: Vec<&str> = text.lines().collect();
                let len = lines.len();
                lines.swap(a % len, b % len);
                text = lines.join("\n");
            }
        }
    }
    text
}

// ---------------------------------------------------------------- the bundle parser

/// Real bundles as seeds, each with the directory its paths resolve against: the examples
/// (their components are built by scripts/setup) and a bundle with every task kind in
/// `synthetic` (which gets the component file it names).
fn seed_bundles(synthetic: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let mut seeds: Vec<(String, std::path::PathBuf)> = ["hello", "pipeline", "polyglot"]
        .iter()
        .map(|name| sluice_tests::repo().join("examples").join(name))
        .filter_map(|dir| Some((std::fs::read_to_string(dir.join("sluice.toml")).ok()?, dir)))
        .collect();
    std::fs::write(synthetic.join("c.wasm"), b"\0asm").unwrap();
    seeds.push((
        "[bundle]\nname = \"k\"\n[variables]\nlake = { default = \"./lake\" }\n[targets.dev]\ndefault = true\n\
         [components]\nc = \"c.wasm\"\n[jobs.a]\nparameters = { d = \"{{ job.start_time.iso_date }}\" }\n\
         [[jobs.a.tasks]]\nkey = \"cmd\"\ncommand = { component = \"c\", args = [\"-v\", \"{{ job.parameters.d }}\"], env = { T = \"{{ secrets/s/k }}\" }, stdin = \"x\" }\nsecrets = [\"s/k\"]\n\
         [[jobs.a.tasks]]\nkey = \"cond\"\ndepends_on = [\"cmd\"]\ncondition = { op = \"greater_than\", left = \"{{ tasks.cmd.values.n }}\", right = \"3\" }\n\
         [[jobs.a.tasks]]\nkey = \"each\"\ndepends_on = [{ task = \"cond\", outcome = \"true\" }]\nfor_each = { inputs = \"[1,2]\", concurrency = 2, task = { component = \"c\", params = { n = \"{{ input }}\" } } }\n\
         [[jobs.a.tasks]]\nkey = \"child\"\ndepends_on = [\"each\"]\nrun_if = \"all_done\"\nrun_job = { job = \"b\", parameters = { x = \"1\" } }\n\
         [jobs.b]\n[[jobs.b.tasks]]\nkey = \"only\"\ncomponent = \"c\"\nretries = { max = 2, initial = \"1s\" }\ntimeout = \"5m\"\nlimits = { memory = \"64MiB\", fuel = 1000 }\n"
            .into(),
        synthetic.to_path_buf(),
    ));
    seeds
}

#[test]
fn fuzz_bundle_parser() {
    let synthetic = tempfile::tempdir().unwrap();
    let seeds = seed_bundles(synthetic.path());
    assert_eq!(seeds.len(), 4, "the example bundles are seeds");
    let mutated =
        (proptest::sample::select(seeds.clone()), edits()).prop_map(|((seed, root), e)| (apply(&seed, &e), root));
    let random = (any::<String>(), proptest::sample::select(seeds)).prop_map(|(text, (_, root))| (text, root));
    let strategy = prop_oneof![4 => mutated, 1 => random];
    fuzz("bundle parser", strategy, |(text, root)| {
        // an error is fine (and must say something); a panic is not
        match sluice::spec::parse(&text, &root.join("sluice.toml"), &root) {
            Ok(_) => Ok(true),
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                Ok(false)
            }
        }
    });
}

// ---------------------------------------------------------------- the template renderer

fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(&[
            "{{ job.parameters.day }}", "{{job.run_id}}", "{{ tasks.a-1.values.rows }}", "{{ secrets/db/pw }}",
            "{{ input }}", "{{ task.attempt }}", "{{ job.start_time.iso_datetime }}", "{{ job.parameters. }}",
            "{{ tasks.a.rows }}", "{{ secrets/db }}", "{{ nope }}", "{{{{ input }}}}",
        ][..])
        .prop_map(str::to_string),
        3 => proptest::sample::select(&[
            "{{", "}}", "{", "}", " ", ".", "/", "job.parameters.", "tasks.", ".values.", "secrets/", "input",
            "job.run_id", "task.key", "task.attempt", "job.start_time.iso_date", "é", "😀", "\n", "\0",
        ][..])
        .prop_map(str::to_string),
        2 => "[a-z0-9_-]{0,6}",
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

#[test]
fn fuzz_template_renderer() {
    fuzz("template renderer", (template_text(), any::<bool>()), |(text, answer)| {
        let refs = template::references(&text);
        // resolving into text full of braces must not re-expand anything
        let mut resolve = |r: &Reference| answer.then(|| format!("{{{{ {r} }}}}"));
        let rendered = template::render(&text, &mut resolve);
        let parts = template::render_parts(&text, &mut resolve);
        match &refs {
            Err(_) => prop_assert!(rendered.is_err() && parts.is_err(), "a bad template rendered"),
            Ok(found) if answer => prop_assert!(rendered.is_ok() && parts.is_ok(), "resolvable, yet {rendered:?}"),
            Ok(found) => {
                let resolvable = found.iter().all(|r| matches!(r, Reference::Secret { .. }));
                prop_assert_eq!(rendered.is_ok(), found.is_empty());
                prop_assert_eq!(parts.is_ok(), resolvable, "secret references are parts, not resolved");
            }
        }
        if !text.contains("{{") {
            prop_assert_eq!(rendered.as_deref().ok(), Some(text.as_str()), "text without references renders as is");
        }
        Ok(refs.is_ok_and(|found| !found.is_empty()))
    });
}

// ---------------------------------------------------------------- the redactor

/// Encodings a value is inserted in, as a task might print it.
fn encoded(value: &str, how: u8) -> String {
    use base64::Engine as _;
    let bytes = value.as_bytes();
    match how % 6 {
        0 => value.to_string(),
        1 => base64::engine::general_purpose::STANDARD.encode(bytes),
        2 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        3 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        4 => bytes.iter().map(|b| format!("{b:02X}")).collect(),
        _ => serde_json::to_string(value).unwrap(),
    }
}

#[test]
fn fuzz_redactor() {
    let values = proptest::collection::vec(any::<String>(), 0..4);
    let inserts = proptest::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..6);
    let strategy = (values, "[a-z0-9]{4,16}", any::<String>(), inserts, any::<bool>());
    fuzz("redactor", strategy, |(mut values, plain, noise, inserts, truncated)| {
        values.push(plain.clone());
        let r = Redactor::new(&values);
        let mut text = noise;
        for (at, which, how) in inserts {
            let value = &values[which % values.len()];
            text.insert_str(boundary(&text, at), &encoded(value, how));
        }
        let out = r.redact(&text);
        let _ = r.redact_log(&text, truncated);
        let _ = r.found_in(text.as_bytes());
        // a lowercase alphanumeric value (it cannot be spelled across `[REDACTED]`) is gone,
        // as is and as hex
        let hex: String = plain.bytes().map(|b| format!("{b:02x}")).collect();
        prop_assert!(!out.contains(&plain) && !out.contains(&hex), "{plain} left in {out:?}");
        // JSON in, JSON out
        let doc = serde_json::json!({ "text": text, "values": values, "n": values.len() }).to_string();
        let redacted = r.redact_json(&doc);
        prop_assert!(serde_json::from_str::<Value>(&redacted).is_ok(), "not JSON any more: {redacted}");
        let _ = r.redact_json(&text);
        Ok(out != text)
    });
}

// ---------------------------------------------------------------- the event decoder and the fold

fn planned(key: &str, deps: &[&str]) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        component: "c".into(),
        component_hash: "ab".repeat(32),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn task_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(&["a", "b", "each"][..]).prop_map(str::to_string),
        2 => proptest::sample::select(&["each[0]", "each[7]", "nope", ""][..]).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn result() -> impl Strategy<Value = TaskResult> {
    proptest::sample::select(
        &[
            TaskResult::Success,
            TaskResult::Failed,
            TaskResult::TimedOut,
            TaskResult::Canceled,
            TaskResult::Excluded,
            TaskResult::UpstreamFailed,
            TaskResult::UpstreamCanceled,
        ][..],
    )
}

/// Any event, with task names, attempt numbers and times that may make no sense.
fn event() -> impl Strategy<Value = Event> {
    let attempt = prop_oneof![0u32..4, any::<u32>()];
    prop_oneof![
        (task_name(), any::<u64>()).prop_map(|(task, at)| Event::TaskQueued { task, at }),
        (task_name(), attempt.clone(), any::<u64>()).prop_map(|(task, attempt, at)| Event::AttemptStarted {
            task,
            attempt,
            at
        }),
        (task_name(), attempt.clone(), result(), any::<Option<String>>(), any::<bool>()).prop_map(
            |(task, attempt, result, output, outcome)| Event::AttemptFinished {
                task,
                attempt,
                at: 5,
                result,
                output,
                error: None,
                log: String::new(),
                log_truncated: false,
                elapsed_us: 0,
                outcome: outcome.then_some(true),
                cache: None,
                error_code: None,
            }
        ),
        (task_name(), attempt, any::<u64>()).prop_map(|(task, next_attempt, not_before)| Event::RetryScheduled {
            task,
            next_attempt,
            not_before,
            at: 6
        }),
        (task_name(), proptest::collection::vec(any::<String>(), 0..4))
            .prop_map(|(task, inputs)| Event::IterationsPlanned { task, inputs, at: 7 }),
        (task_name(), any::<u64>()).prop_map(|(task, child)| Event::ChildRunStarted { task, child, at: 8 }),
        (any::<bool>(), any::<bool>()).prop_map(|(timed_out, stop_cleanup)| Event::CancelRequested {
            reason: "r".into(),
            timed_out,
            at: 9,
            stop_cleanup
        }),
        Just(Event::RunResumed { at: 10 }),
        (any::<u32>(), proptest::collection::vec(task_name(), 0..3)).prop_map(|(repair, tasks)| Event::RepairStarted {
            repair,
            tasks,
            parameters: BTreeMap::new(),
            at: 11,
            by: "p".into(),
            plan_version: 1,
            pinned: false,
        }),
        any::<u64>().prop_map(|at| Event::RunQueued { reason: "q".into(), at }),
        any::<u64>().prop_map(|at| Event::RunDequeued { at }),
        (task_name(), result()).prop_map(|(task, result)| Event::TaskSkipped {
            task,
            result,
            reason: "x".into(),
            at: 12
        }),
        Just(Event::RunFinished { result: RunResult::Failed, at: 13 }),
    ]
}

fn run_created() -> Event {
    Event::RunCreated {
        run_id: 1,
        job: "j".into(),
        source: "./b".into(),
        target: "dev".into(),
        parameters: BTreeMap::new(),
        tasks: vec![planned("a", &[]), planned("b", &["a"]), planned("each", &["a"])],
        at: 1,
        plan: None,
    }
}

#[test]
fn fuzz_event_decoder_and_fold() {
    let log = proptest::collection::vec(event(), 0..24);
    let json_edits = (proptest::collection::vec(event(), 1..4), edits());
    let strategy = (log, json_edits, proptest::collection::vec(any::<u8>(), 0..64), any::<bool>());
    fuzz("event decoder and fold", strategy, |(events, (to_mangle, mangle), bytes, created)| {
        // decoded logs of any order fold into a state (and its decisions) or a CorruptLog, never a panic
        let mut log = if created { vec![run_created()] } else { Vec::new() };
        log.extend(events);
        let folded = fold_and_decide(&log);
        for e in &log {
            let bytes = serde_json::to_vec(e).unwrap();
            let back = sluice::store::decode_event(&bytes, || "event".into()).ok();
            prop_assert_eq!(back.as_ref(), Some(e), "an event must round-trip");
        }
        // stored bytes that are not quite an event: an error, never a panic
        let _ = sluice::store::decode_event(&bytes, || "bytes".into());
        let text = serde_json::to_string(&to_mangle).unwrap();
        let mangled = apply(&text, &mangle);
        let _ = sluice::store::decode_event(mangled.as_bytes(), || "mangled".into());
        if let Ok(events) = serde_json::from_str::<Vec<Event>>(&mangled) {
            let mut log = vec![run_created()];
            log.extend(events);
            fold_and_decide(&log);
        }
        Ok(folded)
    });
}

/// The clock a fuzzed log is decided at (events carry arbitrary times around it).
const NOW: u64 = 1_764_000_000_000;

/// Folds `log` and asks the state what follows (as resume would): whether it folded.
fn fold_and_decide(log: &[Event]) -> bool {
    let Ok(mut state) = RunState::from_events(log) else { return false };
    let _ = state.settle_interrupted(NOW);
    let _ = state.decide(NOW);
    true
}

#[test]
fn mutations_edit_at_char_boundaries() {
    let seed = "[bundle]\nname = \"é😀\"\n";
    let at_emoji = seed.find('😀').unwrap() + 1; // inside the emoji: moved to its start
    let out = apply(seed, &[Edit::Insert(at_emoji, "{{"), Edit::Byte(0, 'X'), Edit::SwapLines(0, 1)]);
    assert_eq!(out, "name = \"é{{😀\"\nXbundle]");
    assert_eq!(apply("abc", &[Edit::Delete(1, 1000)]), "a");
    assert_eq!(apply("", &[Edit::DuplicateLine(3), Edit::Delete(0, 4)]), "");
}
