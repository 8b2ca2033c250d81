//! Models on workers: a staged model version travels to the worker by content (its blake3
//! through the blobs bucket) and is staged in the worker's own directory, as `/in` files are.

use super::{Nats, output_of, ran, worker};
use sluice_tests::Sluice;

#[test]
fn a_staged_model_reaches_a_worker_by_content() {
    let nats = Nats::start();
    let s = Sluice::new();
    let bundle = s.bundle(
        "ml",
        r#"
[bundle]
name = "ml"
[components]
fs = { path = "{guest:fsprobe}" }
[jobs.train]
[[jobs.train.tasks]]
key = "train"
component = "fs"
params = { write = "/out/model.bin", data = "weights v1" }
register_model = { name = "m", file = "model.bin" }
[jobs.score]
[[jobs.score.tasks]]
key = "score"
component = "fs"
models = [{ name = "m", guest = "/model" }]
params = { read = "/model/model.bin" }
"#,
    );
    let server = s.serve(&["--nats", &nats.url, bundle.to_str().unwrap()]);
    let mut w = worker(&s, &nats, "ml", &[], false);
    let (code, run) = s.run_json(&bundle, &["--job", "train"]);
    assert_eq!(code, 0, "{run:#}");
    s.run(&["models", "stage", "m", "1", "--target", "dev"]).assert_exit(0);
    let (code, run) = s.run_json(&bundle, &["--job", "score"]);
    assert_eq!(code, 0, "{run:#}");
    assert!(ran(&mut w, "score"));
    assert_eq!(output_of(&run, "score")["read"]["ok"], "weights v1", "{run:#}");
    // the worker staged it itself, from the blob it fetched (not the server's staging path)
    let staging = s.dir.path().join("worker-ml").join("staging");
    let staged: Vec<String> = std::fs::read_dir(&staging)
        .expect("the worker's staging directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("model-") && n.ends_with("-model.bin"))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?} in {}", staging.display());
    w.kill();
    server.kill();
}
