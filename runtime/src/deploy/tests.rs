//! Deployments on a real state directory (sled, blobs): concurrent deploys conflict,
//! numbering, rollback and destroy, the plan after a deploy.

use std::sync::{Arc, Barrier};

use super::*;
use crate::scheduler::{Runtime, RuntimeOptions};

const TEXT: &str = "[bundle]\nname = \"b\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"c\"\n\
condition = { op = \"equal_to\", left = \"1\", right = \"1\" }\n";

fn snapshot(dir: &std::path::Path, text: &str) -> Snapshot {
    std::fs::write(dir.join("sluice.toml"), text).unwrap();
    snapshot_of(dir)
}

fn snapshot_of(dir: &std::path::Path) -> Snapshot {
    super::snapshot(dir, None).unwrap().0
}

fn actor(who: &str) -> Actor {
    Actor { principal: who.into(), workspace: DEFAULT_WORKSPACE.into(), groups: vec![] }
}

#[test]
fn concurrent_deploys_to_one_target_one_wins_the_other_conflicts() {
    let state = tempfile::tempdir().unwrap();
    let bundle = tempfile::tempdir().unwrap();
    let rt = Runtime::open(state.path(), RuntimeOptions::default()).unwrap();
    let first = snapshot(bundle.path(), TEXT);
    Deployments::new(&rt).commit(&actor("a"), first.clone(), None, Origin::Deploy).unwrap();
    // two deploys planned against deployment 1, committed at once
    let barrier = Arc::new(Barrier::new(2));
    let results: Vec<Result<Deployment, DeployError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["x", "y"]
            .into_iter()
            .map(|who| {
                let (rt, barrier, snap) = (&rt, barrier.clone(), first.clone());
                scope.spawn(move || {
                    barrier.wait();
                    Deployments::new(rt).commit(&actor(who), snap, Some(Some(1)), Origin::Deploy)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one wins: {results:?}");
    assert_eq!(won[0].number, 2);
    let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap().to_string();
    assert!(lost.contains("conflict") && lost.contains("deployment 2, not 1"), "{lost}");
    let key = Deployments::key(DEFAULT_WORKSPACE, "b", "dev");
    assert_eq!(Deployments::new(&rt).list(&key).unwrap().len(), 2, "the loser wrote nothing");
    // and the next deploy succeeds
    Deployments::new(&rt).commit(&actor("a"), first, None, Origin::Deploy).unwrap();
}

#[test]
fn plan_after_deploy_is_empty_rollback_and_destroy_move_the_pointer() {
    let state = tempfile::tempdir().unwrap();
    let bundle = tempfile::tempdir().unwrap();
    let rt = Runtime::open(state.path(), RuntimeOptions::default()).unwrap();
    let d = Deployments::new(&rt);
    let key = Deployments::key(DEFAULT_WORKSPACE, "b", "dev");
    let one = snapshot(bundle.path(), TEXT);
    assert_eq!(plan::diff(&one, None).items.len(), 1, "a new job");
    d.commit(&actor("a"), one.clone(), None, Origin::Deploy).unwrap();
    assert!(plan::diff(&snapshot_of(bundle.path()), d.current(&key).unwrap().as_ref()).is_empty());
    let two = snapshot(bundle.path(), &TEXT.replace("right = \"1\"", "right = \"2\""));
    assert_ne!(two.bundle_hash, one.bundle_hash);
    d.commit(&actor("a"), two, None, Origin::Deploy).unwrap();
    assert_eq!(d.rollback(&actor("a"), &key, None).unwrap().number, 1);
    assert_eq!(d.current(&key).unwrap().unwrap().snapshot.bundle_hash, one.bundle_hash);
    assert!(d.rollback(&actor("a"), &key, Some(9)).is_err(), "no deployment 9");
    d.destroy(&actor("a"), &key).unwrap();
    assert!(d.current(&key).unwrap().is_none());
    assert!(jobs::deployed_jobs(&rt, DEFAULT_WORKSPACE).unwrap().is_empty(), "destroyed targets offer no jobs");
    let journal: Vec<Action> = d.journal(&key).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(journal, [Action::Deploy, Action::Deploy, Action::Rollback, Action::Destroy]);
}
