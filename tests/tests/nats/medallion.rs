//! The end-to-end case: one server and three workers run examples/medallion (dev
//! target: the committed landing zone, gold published into the bundle's `gold/`), every
//! SQL step on a worker, the Parquet files between steps moving by content.

use super::{Nats, busy, ran, repo_example, worker};
use sluice_tests::{Background, Sluice, last_attempt, task_of};

#[test]
fn one_server_and_three_workers_run_the_medallion() {
    let nats = Nats::start();
    let s = Sluice::new();
    let medallion = repo_example("medallion");
    let server = s.serve(&["--nats", &nats.url, medallion.to_str().unwrap()]);
    let mut workers: Vec<Background> =
        ["w1", "w2", "w3"].iter().map(|n| worker(&s, &nats, n, &["--slots", "2"], false)).collect();
    let (code, run) = s.run_json(&medallion, &["--job", "nightly"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["tasks"].as_array().map(Vec::len), Some(10), "{run:#}");
    let rows = |key: &str| {
        let output = last_attempt(&run, key)["output"].as_str().unwrap_or("null").to_string();
        serde_json::from_str::<serde_json::Value>(&output).unwrap()["rows"].as_u64()
    };
    // the same figures as the local run (tests/tests/scenarios.rs)
    assert_eq!(rows("silver_orders"), Some(1994), "{run:#}");
    assert_eq!(rows("gold_revenue_by_country"), Some(8), "{run:#}");
    assert_eq!(task_of(&run, "publish")["result"], "success", "{run:#}");
    for task in ["bronze_orders", "silver_orders", "gold_revenue_by_country", "publish"] {
        assert!(workers.iter_mut().any(|w| ran(w, task)), "no worker ran `{task}`");
    }
    let busy = busy(&mut workers);
    assert!(busy >= 2, "the steps should spread over the workers, {busy} of 3 ran any");
    for w in workers {
        w.kill();
    }
    server.kill();
}
