//! Verdicts: the bundle's content hash, and what `sluice test` concluded about exactly
//! those bytes for each target — recorded in the state directory's store, read back by the
//! promotion gate through [`verdict_for`].
//!
//! The bundle content hash is the deployments' ([`crate::deploy::bundle_hash`]): blake3
//! over the bundle file's text, its included files' texts and its components' bytes'
//! hashes — so the verdict `sluice test` records is found again by the promotion gate for
//! the deployment made from exactly those files. Where the bundle lies does not change it;
//! any edit to its files (its `[[tests]]` included) does.
//! It must never decide whether a promotion may go ahead: the gate does.

use std::collections::BTreeMap;

use super::{SuiteReport, TestStatus, TestingError};
use crate::model::Millis;
use crate::spec::Bundle;
use crate::store::{Verdict, VerdictStore};

/// The bundle's content hash (blake3 hex): see the module docs for what it covers.
pub fn bundle_hash(bundle: &Bundle) -> Result<String, TestingError> {
    let content = crate::deploy::content(bundle)
        .map_err(|e| TestingError::Io { path: bundle.file.display().to_string(), message: e.to_string() })?;
    Ok(content.hash)
}

/// Records one verdict per target the suite's tests ran against (passed when every test
/// of that target passed); returns them.
pub fn record_verdicts(
    store: &dyn VerdictStore,
    report: &SuiteReport,
    by: &str,
    now: Millis,
) -> Result<Vec<Verdict>, TestingError> {
    let mut by_target: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    for test in &report.tests {
        let entry = by_target.entry(test.target.as_str()).or_default();
        entry.0 += 1;
        if test.status == TestStatus::Failed {
            entry.1.push(test.name.clone());
        }
    }
    let mut verdicts = Vec::new();
    for (target, (tests, failed)) in by_target {
        let verdict = Verdict {
            bundle: report.bundle.clone(),
            bundle_hash: report.bundle_hash.clone(),
            target: target.to_string(),
            passed: failed.is_empty(),
            tests,
            failed,
            at: now,
            by: by.to_string(),
        };
        store.put_verdict(&verdict)?;
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The latest verdict on exactly these bytes (`bundle_hash`) for `target`: what the
/// promotion gate requires to have `passed`.
pub fn verdict_for(store: &dyn VerdictStore, bundle_hash: &str, target: &str) -> Result<Option<Verdict>, TestingError> {
    Ok(store.verdict(bundle_hash, target)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryVerdictStore;

    fn bundle(dir: &std::path::Path, text: &str) -> Bundle {
        std::fs::write(dir.join("c.wasm"), b"component bytes").unwrap();
        std::fs::write(dir.join("sluice.toml"), text).unwrap();
        crate::spec::load(dir).unwrap()
    }

    const TEXT: &str = "[bundle]\nname = \"b\"\n[components]\nc = \"c.wasm\"\n[jobs.j]\ntasks = [{ key = \"t\", component = \"c\" }]\n";

    #[test]
    fn the_hash_follows_content_not_place() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = bundle_hash(&bundle(one.path(), TEXT)).unwrap();
        assert_eq!(a, bundle_hash(&bundle(two.path(), TEXT)).unwrap(), "the same bytes elsewhere");
        let with_test = format!("{TEXT}[[tests]]\nname = \"x\"\njob = \"j\"\n");
        assert_ne!(a, bundle_hash(&bundle(two.path(), &with_test)).unwrap(), "the files changed");
        let changed = TEXT.replace("key = \"t\"", "key = \"u\"");
        assert_ne!(a, bundle_hash(&bundle(two.path(), &changed)).unwrap(), "a changed spec");
        let b = bundle(two.path(), TEXT);
        std::fs::write(two.path().join("c.wasm"), b"other bytes").unwrap();
        assert_ne!(a, bundle_hash(&b).unwrap(), "a changed component");
    }

    #[test]
    fn a_verdict_per_target_is_read_back_for_its_hash() {
        let store = MemoryVerdictStore::default();
        let test = |name: &str, target: &str, status| super::super::TestReport {
            name: name.into(),
            line: 1,
            job: "j".into(),
            target: target.into(),
            status,
            failures: vec![],
            run_id: 1,
            run_result: None,
            elapsed_ms: 0,
            golden_updates: vec![],
        };
        let report = SuiteReport {
            bundle: "b".into(),
            file: "sluice.toml".into(),
            bundle_hash: "h".into(),
            tests: vec![test("a", "test", TestStatus::Passed), test("b", "dev", TestStatus::Failed)],
            started_at: 0,
            host: "h".into(),
            elapsed_ms: 0,
        };
        record_verdicts(&store, &report, "me", 7).unwrap();
        assert!(verdict_for(&store, "h", "test").unwrap().is_some_and(|v| v.passed && v.tests == 1));
        assert_eq!(verdict_for(&store, "h", "dev").unwrap().unwrap().failed, vec!["b".to_string()]);
        assert_eq!(verdict_for(&store, "other", "test").unwrap(), None);
    }
}
