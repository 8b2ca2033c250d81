//! The behaviour every [`Store`] backend must show, as one test suite.
//!
//! Owns one function per behaviour, each taking `&dyn Store` and knowing
//! nothing about the backend behind it, and the [`conformance!`] macro that
//! turns the whole list into `#[test]`s for one backend. Backend-specific
//! tests (reopen, corruption, kills) live beside their backend, not here.
//! Test-only: compiled under `#[cfg(test)]`.

use std::collections::{BTreeMap, BTreeSet};

use super::{MAX_NAME_LEN, MemoryStore, SledStore, Store, StoreError};
use crate::model::{Event, PlannedTask, RunId, RunResult, RunSummary, TaskResult};

// ---- fixtures, also used by backend-specific tests ----

/// A distinct, cheap event: the `i`-th of a log.
pub(super) fn numbered_event(i: u64) -> Event {
    Event::AttemptStarted { task: format!("t{i}"), attempt: 0, at: i }
}

pub(super) fn running_summary(run: RunId) -> RunSummary {
    RunSummary {
        run_id: run,
        job: format!("job{run}"),
        source: "./bundle".into(),
        created_at: 1_000 + run,
        finished_at: None,
        result: None,
        workspace: "default".into(),
        job_id: None,
        status: None,
    }
}

pub(super) fn finished_summary(run: RunId) -> RunSummary {
    RunSummary { finished_at: Some(2_000 + run), result: Some(RunResult::Success), ..running_summary(run) }
}

/// One event of every kind, with text that JSON must escape.
fn every_kind_of_event(run: RunId) -> Vec<Event> {
    vec![
        Event::RunCreated {
            run_id: run,
            job: "nightly".into(),
            source: "/bundles/lake \"quoted\"".into(),
            target: "dev".into(),
            parameters: BTreeMap::from([("day".into(), "2024-01-01".into())]),
            tasks: vec![PlannedTask {
                key: "a".into(),
                component: "ingest".into(),
                component_hash: "ab".repeat(32),
                depends_on: vec![],
            }],
            at: 1,
            plan: None,
        },
        Event::TaskQueued { task: "a".into(), at: 2 },
        Event::AttemptStarted { task: "a".into(), attempt: 0, at: 2 },
        Event::AttemptFinished {
            task: "a".into(),
            attempt: 0,
            at: 3,
            result: TaskResult::Failed,
            output: None,
            error: Some("boom\nline two\u{0}".into()),
            log: "ünïcødé log".into(),
            log_truncated: true,
            elapsed_us: 1234,
            outcome: Some(true),
            cache: None,
            error_code: Some("permanent".into()),
        },
        Event::RetryScheduled { task: "a".into(), next_attempt: 1, not_before: 9, at: 3 },
        Event::IterationsPlanned { task: "a".into(), inputs: vec!["x".into()], at: 3 },
        Event::ChildRunStarted { task: "a".into(), child: 2, at: 3 },
        Event::CancelRequested { reason: "why".into(), timed_out: false, at: 3, stop_cleanup: false },
        Event::RunResumed { at: 3 },
        Event::RepairStarted {
            repair: 1,
            tasks: vec!["a".into()],
            parameters: BTreeMap::new(),
            at: 3,
            by: "p".into(),
            plan_version: 1,
            pinned: false,
        },
        Event::TaskSkipped { task: "a".into(), result: TaskResult::UpstreamFailed, reason: "x".into(), at: 4 },
        Event::RunFinished { result: RunResult::Failed, at: 5 },
    ]
}

fn is_invalid_name<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::InvalidName { .. }))
}

// ---- behaviours ----

pub(super) fn run_ids_start_at_one_and_increase(store: &dyn Store) {
    let ids: Vec<RunId> = (0..5).map(|_| store.next_run_id().unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
}

pub(super) fn run_ids_are_unique_across_threads(store: &dyn Store) {
    let ids: Vec<RunId> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..4).map(|_| scope.spawn(|| (0..10).map(|_| store.next_run_id().unwrap()).collect::<Vec<_>>())).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let unique: BTreeSet<RunId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an id was handed out twice: {ids:?}");
    assert_eq!(unique, (1..=40).collect(), "ids are dense from 1");
}

pub(super) fn append_keeps_order(store: &dyn Store) {
    let events: Vec<Event> = (0..300).map(numbered_event).collect();
    store.append(1, &events).unwrap();
    assert_eq!(store.events(1).unwrap(), events);
}

pub(super) fn append_continues_across_calls(store: &dyn Store) {
    store.append(1, &[numbered_event(0)]).unwrap();
    store.append(1, &[]).unwrap();
    store.append(1, &[numbered_event(1), numbered_event(2)]).unwrap();
    store.flush().unwrap();
    store.append(1, &[numbered_event(3)]).unwrap();
    assert_eq!(store.events(1).unwrap(), (0..4).map(numbered_event).collect::<Vec<_>>());
}

/// What a reader that folded a log's start reads next: its count and the events after it.
pub(super) fn event_count_and_events_from_read_a_log_s_tail(store: &dyn Store) {
    assert_eq!(store.event_count(1).unwrap(), 0);
    assert_eq!(store.events_from(1, 0).unwrap(), vec![]);
    store.append(1, &(0..5).map(numbered_event).collect::<Vec<_>>()).unwrap();
    store.append(2, &[numbered_event(9)]).unwrap();
    assert_eq!(store.event_count(1).unwrap(), 5);
    assert_eq!(store.event_count(2).unwrap(), 1);
    assert_eq!(store.events_from(1, 3).unwrap(), vec![numbered_event(3), numbered_event(4)]);
    assert_eq!(store.events_from(1, 0).unwrap(), store.events(1).unwrap());
    assert_eq!(store.events_from(1, 5).unwrap(), vec![]);
    assert_eq!(store.events_from(1, 99).unwrap(), vec![]);
}

pub(super) fn every_event_kind_round_trips(store: &dyn Store) {
    let events = every_kind_of_event(3);
    store.append(3, &events).unwrap();
    assert_eq!(store.events(3).unwrap(), events);
}

pub(super) fn events_from_a_position_are_the_log_s_tail(store: &dyn Store) {
    store.append(1, &(0..5).map(numbered_event).collect::<Vec<_>>()).unwrap();
    store.append(2, &[numbered_event(9)]).unwrap();
    assert_eq!(store.events_from(1, 0).unwrap(), store.events(1).unwrap());
    assert_eq!(store.events_from(1, 3).unwrap(), vec![numbered_event(3), numbered_event(4)]);
    assert_eq!(store.events_from(1, 5).unwrap(), vec![]);
    assert_eq!(store.events_from(1, u64::MAX).unwrap(), vec![], "past the end: nothing, not the next run's");
    assert_eq!(store.events_from(3, 0).unwrap(), vec![]);
}

pub(super) fn events_of_unknown_run_are_empty(store: &dyn Store) {
    store.append(2, &[numbered_event(0)]).unwrap();
    assert_eq!(store.events(1).unwrap(), vec![]);
    assert_eq!(store.events(3).unwrap(), vec![]);
    assert_eq!(store.events(RunId::MAX).unwrap(), vec![]);
}

/// Runs whose ids share bytes (1, 256, 257, 2^32) keep separate logs.
pub(super) fn event_logs_of_runs_stay_apart(store: &dyn Store) {
    let runs: [RunId; 4] = [1, 256, 257, 1 << 32];
    for (n, run) in runs.iter().enumerate() {
        let events: Vec<Event> = (0..=n as u64).map(|i| numbered_event(*run + i)).collect();
        store.append(*run, &events).unwrap();
    }
    for (n, run) in runs.iter().enumerate() {
        let expected: Vec<Event> = (0..=n as u64).map(|i| numbered_event(*run + i)).collect();
        assert_eq!(store.events(*run).unwrap(), expected, "run {run}");
    }
}

/// Threads appending to one run lose nothing and keep each thread's order.
pub(super) fn concurrent_appends_to_one_run_keep_everything(store: &dyn Store) {
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            scope.spawn(move || {
                for i in 0..25 {
                    store.append(1, &[numbered_event(thread * 1000 + i)]).unwrap();
                }
            });
        }
    });
    let events = store.events(1).unwrap();
    assert_eq!(events.len(), 100);
    for thread in 0..4u64 {
        let own: Vec<&Event> =
            events.iter().filter(|e| matches!(e, Event::AttemptStarted { at, .. } if at / 1000 == thread)).collect();
        let expected: Vec<Event> = (0..25).map(|i| numbered_event(thread * 1000 + i)).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "thread {thread}");
    }
}

pub(super) fn summary_round_trips_and_is_replaced(store: &dyn Store) {
    assert_eq!(store.summary(1).unwrap(), None);
    store.put_summary(&running_summary(1)).unwrap();
    assert_eq!(store.summary(1).unwrap(), Some(running_summary(1)));
    store.put_summary(&finished_summary(1)).unwrap();
    assert_eq!(store.summary(1).unwrap(), Some(finished_summary(1)));
    assert_eq!(store.list_summaries(10).unwrap(), vec![finished_summary(1)]);
}

pub(super) fn summaries_list_newest_first_within_limit(store: &dyn Store) {
    for run in [3, 1, 300, 2] {
        store.put_summary(&running_summary(run)).unwrap();
    }
    let ids = |limit| store.list_summaries(limit).unwrap().into_iter().map(|s| s.run_id).collect::<Vec<_>>();
    assert_eq!(ids(10), vec![300, 3, 2, 1]);
    assert_eq!(ids(2), vec![300, 3]);
    assert_eq!(ids(0), Vec::<RunId>::new());
    assert_eq!(store.list_summaries(usize::MAX).unwrap().len(), 4);
}

pub(super) fn unfinished_runs_are_the_in_flight_ones_oldest_first(store: &dyn Store) {
    assert_eq!(store.unfinished_runs().unwrap(), Vec::<RunId>::new());
    for run in [4, 1, 2, 3] {
        store.put_summary(&running_summary(run)).unwrap();
    }
    store.put_summary(&finished_summary(2)).unwrap();
    assert_eq!(store.unfinished_runs().unwrap(), vec![1, 3, 4]);
    // A repair puts a finished run back in flight.
    store.put_summary(&running_summary(2)).unwrap();
    store.put_summary(&finished_summary(4)).unwrap();
    assert_eq!(store.unfinished_runs().unwrap(), vec![1, 2, 3]);
}

/// Values of different runs and tasks never see each other, including the
/// names that would collide under a naive concatenation ("a"+"bc" vs "ab"+"c").
pub(super) fn values_are_isolated_between_runs_and_tasks(store: &dyn Store) {
    store.put_value(1, "a", "bc", "1").unwrap();
    store.put_value(1, "ab", "c", "2").unwrap();
    store.put_value(2, "a", "bc", "3").unwrap();
    store.put_value(256, "a", "bc", "4").unwrap();
    assert_eq!(store.value(1, "a", "bc").unwrap().as_deref(), Some("1"));
    assert_eq!(store.value(1, "ab", "c").unwrap().as_deref(), Some("2"));
    assert_eq!(store.value(2, "a", "bc").unwrap().as_deref(), Some("3"));
    assert_eq!(store.value(256, "a", "bc").unwrap().as_deref(), Some("4"));
    assert_eq!(store.value(1, "a", "b").unwrap(), None);
    assert_eq!(store.value(3, "a", "bc").unwrap(), None);
    assert_eq!(store.values(1, "a").unwrap(), vec![("bc".to_string(), "1".to_string())]);
    assert_eq!(store.values(1, "ab").unwrap(), vec![("c".to_string(), "2".to_string())]);
    assert_eq!(store.values(1, "b").unwrap(), vec![]);
    assert_eq!(store.values(4, "a").unwrap(), vec![]);
}

pub(super) fn values_are_sorted_by_key_and_overwritten(store: &dyn Store) {
    for (key, json) in [("zeta", "1"), ("alpha", "\"x\""), ("Beta", "null"), ("alpha", "{\"y\":[1,2]}")] {
        store.put_value(1, "task", key, json).unwrap();
    }
    let expected = [("Beta", "null"), ("alpha", "{\"y\":[1,2]}"), ("zeta", "1")];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(store.values(1, "task").unwrap(), expected);
}

pub(super) fn checkpoints_are_overwritten_and_isolated(store: &dyn Store) {
    assert_eq!(store.load_checkpoint(1, "t", "cp").unwrap(), None);
    store.save_checkpoint(1, "t", "cp", b"first").unwrap();
    store.save_checkpoint(1, "t", "cp", &[0, 255, 7]).unwrap();
    store.save_checkpoint(1, "t", "empty", &[]).unwrap();
    store.save_checkpoint(1, "t2", "cp", b"other task").unwrap();
    store.save_checkpoint(2, "t", "cp", b"other run").unwrap();
    assert_eq!(store.load_checkpoint(1, "t", "cp").unwrap(), Some(vec![0, 255, 7]));
    assert_eq!(store.load_checkpoint(1, "t", "empty").unwrap(), Some(vec![]), "empty is not absent");
    assert_eq!(store.load_checkpoint(1, "t2", "cp").unwrap(), Some(b"other task".to_vec()));
    assert_eq!(store.load_checkpoint(2, "t", "cp").unwrap(), Some(b"other run".to_vec()));
    let all = store.checkpoints(1, "t").unwrap();
    assert_eq!(all, [("cp".to_string(), vec![0, 255, 7]), ("empty".to_string(), vec![])], "one task's, sorted");
    assert!(store.checkpoints(3, "t").unwrap().is_empty());
    // Checkpoints and values are separate namespaces.
    assert_eq!(store.value(1, "t", "cp").unwrap(), None);
}

pub(super) fn invalid_names_are_refused(store: &dyn Store) {
    let too_long = "x".repeat(MAX_NAME_LEN + 1);
    for bad in ["", "a\0b", "line\nbreak", too_long.as_str()] {
        assert!(is_invalid_name(store.put_value(1, bad, "k", "1")), "task {bad:?}");
        assert!(is_invalid_name(store.put_value(1, "t", bad, "1")), "key {bad:?}");
        assert!(is_invalid_name(store.value(1, bad, "k")), "task {bad:?}");
        assert!(is_invalid_name(store.value(1, "t", bad)), "key {bad:?}");
        assert!(is_invalid_name(store.values(1, bad)), "task {bad:?}");
        assert!(is_invalid_name(store.save_checkpoint(1, bad, "k", b"")), "task {bad:?}");
        assert!(is_invalid_name(store.save_checkpoint(1, "t", bad, b"")), "key {bad:?}");
        assert!(is_invalid_name(store.load_checkpoint(1, bad, "k")), "task {bad:?}");
        assert!(is_invalid_name(store.load_checkpoint(1, "t", bad)), "key {bad:?}");
    }
    // Nothing was written on the way.
    assert_eq!(store.values(1, "t").unwrap(), vec![]);
    // The longest allowed names, and any printable Unicode, are fine.
    let longest = "y".repeat(MAX_NAME_LEN);
    store.put_value(1, &longest, &longest, "true").unwrap();
    assert_eq!(store.value(1, &longest, &longest).unwrap().as_deref(), Some("true"));
    store.save_checkpoint(1, "tâche/ü", "clé:1.2", b"ok").unwrap();
    assert_eq!(store.load_checkpoint(1, "tâche/ü", "clé:1.2").unwrap(), Some(b"ok".to_vec()));
}

pub(super) fn flush_succeeds_with_and_without_writes(store: &dyn Store) {
    store.flush().unwrap();
    store.append(1, &[numbered_event(0)]).unwrap();
    store.flush().unwrap();
    store.flush().unwrap();
    assert_eq!(store.events(1).unwrap().len(), 1);
}

// ---- the suite, per backend ----

/// `#[test]` per behaviour for one backend; `$fixture()` returns the store and
/// whatever must live as long as it (a temporary directory, say).
pub(super) fn cache_entries_are_replaced_listed_and_removed(store: &dyn Store) {
    let entry = |component: &str, output: &str| {
        let parts = crate::cache::KeyParts::new(component, 1);
        crate::cache::CacheEntry {
            attempt: Some(0),
            key: parts.key(),
            parts,
            run: 1,
            task: "t".into(),
            output: Some(output.into()),
            values: vec![("n".into(), "1".into())],
            out_tree: None,
            created_at: 7,
            quality: Vec::new(),
        }
    };
    let (ab, cd) = (entry("ab", "1"), entry("cd", "2"));
    assert_eq!(store.cache_entry(&ab.key).unwrap(), None);
    store.put_cache_entry(&ab).unwrap();
    store.put_cache_entry(&cd).unwrap();
    let replaced = crate::cache::CacheEntry { output: Some("3".into()), ..ab.clone() };
    store.put_cache_entry(&replaced).unwrap();
    assert_eq!(store.cache_entry(&ab.key).unwrap(), Some(replaced.clone()));
    let mut both = vec![replaced, cd.clone()];
    both.sort_by_key(|e| e.key);
    assert_eq!(store.cache_entries().unwrap(), both, "sorted by key");
    store.remove_cache_entry(&ab.key).unwrap();
    assert_eq!(store.cache_entries().unwrap(), vec![cd.clone()]);
    store.put_key_parts(&cd.key, &cd.parts).unwrap();
    assert_eq!(store.key_parts(&cd.key).unwrap(), Some(cd.parts.clone()));
    assert_eq!(store.key_parts(&ab.key).unwrap(), None);
}

macro_rules! conformance {
    ($backend:ident, $fixture:path) => {
        conformance!(@cases $backend, $fixture, [
            run_ids_start_at_one_and_increase,
            run_ids_are_unique_across_threads,
            append_keeps_order,
            append_continues_across_calls,
            event_count_and_events_from_read_a_log_s_tail,
            every_event_kind_round_trips,
            events_of_unknown_run_are_empty,
            events_from_a_position_are_the_log_s_tail,
            event_logs_of_runs_stay_apart,
            concurrent_appends_to_one_run_keep_everything,
            summary_round_trips_and_is_replaced,
            summaries_list_newest_first_within_limit,
            unfinished_runs_are_the_in_flight_ones_oldest_first,
            values_are_isolated_between_runs_and_tasks,
            values_are_sorted_by_key_and_overwritten,
            checkpoints_are_overwritten_and_isolated,
            invalid_names_are_refused,
            flush_succeeds_with_and_without_writes,
            cache_entries_are_replaced_listed_and_removed,
        ]);
    };
    (@cases $backend:ident, $fixture:path, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $case() {
                    let (store, _keep) = $fixture();
                    super::$case(&store);
                }
            )*
        }
    };
}

fn memory_fixture() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

fn sled_fixture() -> (SledStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SledStore::open(dir.path()).expect("open sled store");
    (store, dir)
}

conformance!(on_memory, super::memory_fixture);
conformance!(on_sled, super::sled_fixture);
