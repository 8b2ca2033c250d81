//! `sluice test`: bundle tests with fixtures, assertions, golden files, JUnit XML, parallel
//! isolated runs and verdicts recorded against the bundle's content hash.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use sluice::store::{SledStore, SledVerdictStore};
use sluice_tests::{Out, Sluice, guest, repo, task};

/// A components directory holding every task and guest these tests run, compiled once
/// for the whole file (the sql component takes a minute to compile on a busy machine).
fn compiled() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let s = Sluice::new();
        let mut text = String::from("[bundle]\nname = \"warm\"\n[components]\n");
        for (name, path) in [("sql", task("sql")), ("fib", task("fib")), ("probe", guest("probe"))] {
            text.push_str(&format!("{name} = \"{}\"\n", path.display()));
        }
        text.push_str("[jobs.w]\ntasks = [{ key = \"p\", component = \"probe\", depends_on = [\"s\", \"f\"] }, { key = \"s\", component = \"sql\" }, { key = \"f\", component = \"fib\" }]\n");
        let dir = s.bundle("warm", &text);
        s.run(&["run", dir.to_str().unwrap()]); // the sql task fails without a query: compiled all the same
        let kept = s.dir.keep();
        kept.join("state/components")
    })
}

/// `sluice test DIR --json EXTRA…` (its state directory the test's own, with the
/// components already compiled).
fn sluice_test(s: &Sluice, dir: &Path, extra: &[&str]) -> Out {
    warm(s);
    let mut args = vec!["test", dir.to_str().expect("utf-8 path"), "--json"];
    args.extend_from_slice(extra);
    s.run(&args)
}

/// Compiles the components once for every test: they land in the harness's shared
/// compiled-component cache (`SLUICE_CACHE_DIR`), which `sluice test` uses too.
fn warm(_s: &Sluice) {
    let _ = compiled();
}

/// `sluice ARGS` after warming the state's components.
fn run(s: &Sluice, args: &[&str]) -> Out {
    warm(s);
    s.run(args)
}

/// The report of a test named `name`.
fn report<'v>(out: &'v Value, name: &str) -> &'v Value {
    out["report"]["tests"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no test `{name}` in {out:#}"))
}

/// The failure messages of test `name`.
fn failures(out: &Value, name: &str) -> Vec<String> {
    report(out, name)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

const PROBE_BUNDLE: &str = r#"[bundle]
name = "checks"
[components]
probe = "{guest:probe}"
fib = "{task:fib}"
[jobs.j]
parameters = { n = "10" }
[[jobs.j.tasks]]
key = "up"
component = "probe"
params = { set_rows = "3", set_doc = '{"items": [{"id": 1}, {"id": 2}]}' }
[[jobs.j.tasks]]
key = "fib"
component = "fib"
params = { n = "{{ job.parameters.n }}" }
[[jobs.j.tasks]]
key = "down"
component = "probe"
depends_on = ["up"]
params = { read_value = "up.rows" }
"#;

#[test]
fn each_assertion_kind_passes_and_fails_with_a_message_naming_it() {
    task("fib");
    let s = Sluice::new();
    let tests = r#"
[[tests]]
name = "all hold"
job = "j"
assert = [
  { run = "success" },
  { task = "up", result = "success" },
  { task = "up", value = "rows", "==" = 3 },
  { task = "up", value = "doc", path = "$.items[1].id", ">" = 1 },
  { task = "fib", output = "$.value", "<=" = 55 },
  { task = "down", output = "$.read", "==" = 3 },
  { task = "down", output = "$.ctx.task_key", contains = "dow" },
]
[[tests]]
name = "all fail"
job = "j"
parameters = { n = "11" }
assert = [
  { run = "failed" },
  { task = "up", result = "failed" },
  { task = "up", value = "rows", "==" = 4 },
  { task = "up", value = "doc", path = "$.items[1].id", ">" = 5 },
  { task = "up", value = "doc", "==" = { items = [{ id = 1 }, { id = 3 }] } },
  { task = "fib", output = "$.value", "<" = 55 },
  { task = "down", output = "$.nothing", "==" = 1 },
]
"#;
    let dir = s.bundle("checks", &format!("{PROBE_BUNDLE}{tests}"));
    let out = sluice_test(&s, &dir, &[]);
    out.assert_exit(1);
    let json = out.json();
    assert_eq!(report(&json, "all hold")["status"], "passed", "{json:#}");
    assert_eq!(report(&json, "all fail")["status"], "failed");
    assert_eq!(
        failures(&json, "all fail"),
        vec![
            "run result: expected `failed`, got `success`",
            "task `up` result: expected `failed`, got `success`",
            "task `up` value `rows` $: expected == 4, got 3",
            "task `up` value `doc` $.items[1].id: expected > 5, got 2",
            "task `up` value `doc` $: expected == {\"items\":[{\"id\":1},{\"id\":3}]}, got {\"items\":[{\"id\":1},{\"id\":2}]}",
            "task `fib` output $.value: expected < 55, got 89",
            "task `down` output $.nothing: nothing at this path in {\"ctx\":{\"attempt\":0,\"job\":\"j\",\"run_id\":\"1\",\"target\":\"dev\",\"task_key\":\"down\"},\"params\":{\"read_value\":\"up.rows\"},\"read\":3,\"set\":{}}",
        ]
    );
    let json_diff = &report(&json, "all fail")["failures"][4]["diff"];
    assert_eq!(json_diff, "$.items[1].id: expected 3, got 2", "the JSON diff names the path that differs");
    // the failing lines point back into the bundle
    assert_eq!(report(&json, "all fail")["failures"][0]["line"], 39);
}

#[test]
fn stubs_mount_fixtures_and_test_secrets_reach_only_the_tests_state() {
    task("fib");
    let s = Sluice::new();
    let tests = r#"
[[tests]]
name = "stubbed upstream"
job = "j"
stub = { up = { values = { rows = 42 }, output = { stubbed = true } } }
assert = [
  { task = "down", output = "$.read", "==" = 42 },
  { task = "up", output = "$.stubbed", "==" = true },
]
[[tests]]
name = "a test secret"
job = "s"
secrets_file = "fixtures/secrets.toml"
assert = [{ task = "reveal", output = "$.secret_len", "==" = 11 }]
[jobs.s]
tasks = [{ key = "reveal", component = "probe", secrets = ["db/password"], params = { secret = "db/password" } }]
"#;
    let dir = s.bundle("fixtures", &format!("{PROBE_BUNDLE}{tests}"));
    std::fs::create_dir_all(dir.join("fixtures")).unwrap();
    std::fs::write(dir.join("fixtures/secrets.toml"), "[db]\npassword = \"hunter2-xyz\"\n").unwrap();
    let out = sluice_test(&s, &dir, &[]);
    out.assert_exit(0);
    // the secret was sealed in the test's own state only: not in the state directory
    let store = std::fs::read_dir(s.state().join("store")).unwrap();
    for file in store.flatten().filter(|f| f.path().is_file()) {
        let bytes = std::fs::read(file.path()).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"hunter2-xyz"), "{}", file.path().display());
    }
    let out = s.run(&["secrets", "scopes", "list", "--json"]);
    assert!(!out.stdout.contains("\"db\""), "no scope `db` outside the test: {}", out.stdout);
}

/// A bundle over the sql task: orders from a mounted directory, grouped by country.
fn sql_bundle(s: &Sluice, golden: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[bundle]
name = "golden"
[components]
sql = "{{task:sql}}"
[jobs.g]
[[jobs.g.tasks]]
key = "totals"
component = "sql"
mounts = [{{ host = "data", guest = "/data" }}]
params = {{ query = "SELECT country, SUM(amount) AS total FROM orders GROUP BY country ORDER BY country", inputs = '{{"orders": "/data/orders.csv"}}', output = "totals.csv" }}
[[tests]]
name = "totals"
job = "g"
golden = {{ totals = "{golden}" }}
[[tests]]
name = "totals on a fixture"
job = "g"
mounts = {{ totals = {{ "/data" = "fixtures/other" }} }}
assert = [{{ task = "totals", value = "rows", "==" = 1 }}]
"#
    );
    let dir = s.bundle("golden", &text);
    for (sub, rows) in [("data", "NL,1\nBE,2\nNL,3\n"), ("fixtures/other", "DE,7\n")] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join("orders.csv"), format!("country,amount\n{rows}")).unwrap();
    }
    dir
}

#[test]
fn golden_files_fail_with_a_line_diff_and_update_golden_rewrites_them() {
    task("sql");
    let s = Sluice::new();
    let dir = sql_bundle(&s, "golden/totals.csv");
    let out = sluice_test(&s, &dir, &[]);
    out.assert_exit(1);
    assert!(failures(&out.json(), "totals")[0].contains("does not exist; `sluice test --update-golden` writes it"));

    let out = run(&s, &["test", dir.to_str().unwrap(), "--update-golden"]);
    out.assert_exit(0);
    assert!(out.stdout.contains("golden/totals.csv"), "{}", out.stdout);
    let golden = std::fs::read_to_string(dir.join("golden/totals.csv")).unwrap();
    assert!(golden.contains("BE") && golden.contains("NL"), "{golden}");
    sluice_test(&s, &dir, &[]).assert_exit(0);

    // a changed output: a readable line diff, and --update-golden shows it before rewriting
    std::fs::write(dir.join("data/orders.csv"), "country,amount\nNL,1\nBE,5\nNL,3\n").unwrap();
    let out = sluice_test(&s, &dir, &[]);
    out.assert_exit(1);
    let json = out.json();
    let diff = report(&json, "totals")["failures"][0]["diff"].as_str().unwrap().to_string();
    assert!(diff.contains("- BE,2") && diff.contains("+ BE,5"), "{diff}");
    let out = run(&s, &["test", dir.to_str().unwrap(), "--update-golden"]);
    out.assert_exit(0);
    assert!(out.stdout.contains("- BE,2") && out.stdout.contains("+ BE,5"), "{}", out.stdout);
    sluice_test(&s, &dir, &[]).assert_exit(0);
}

#[test]
fn junit_xml_has_what_ci_tools_read() {
    task("fib");
    let s = Sluice::new();
    let tests = r#"
[[tests]]
name = "passes <ok>"
job = "j"
assert = [{ run = "success" }]
[[tests]]
name = "fails & says why"
job = "j"
assert = [{ task = "up", value = "rows", "==" = 9 }]
"#;
    let dir = s.bundle("junit", &format!("{PROBE_BUNDLE}{tests}"));
    let file = s.dir.path().join("junit.xml");
    run(&s, &["test", dir.to_str().unwrap(), "--junit", file.to_str().unwrap()]).assert_exit(1);
    let xml = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}):\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    for attr in ["name", "tests", "failures", "errors", "time", "timestamp", "hostname"] {
        assert!(suite.attribute(attr).is_some(), "testsuite needs `{attr}`: {xml}");
    }
    assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("2"), Some("1")));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        for attr in ["name", "classname", "time"] {
            assert!(case.attribute(attr).is_some(), "testcase needs `{attr}`: {xml}");
        }
        assert!(case.attribute("time").unwrap().parse::<f64>().is_ok());
    }
    assert_eq!(cases[0].attribute("name"), Some("passes <ok>"));
    assert_eq!(cases[0].attribute("classname"), Some("checks.j"));
    assert!(cases[0].children().all(|n| !n.is_element()), "a passed test has no failure");
    let failure = cases[1].children().find(|n| n.has_tag_name("failure")).expect("a failure element");
    assert_eq!(failure.attribute("message"), Some("task `up` value `rows` $: expected == 9, got 3"));
    assert!(failure.text().unwrap_or_default().contains("sluice.toml:"), "{xml}");
}

#[test]
fn tests_run_in_parallel_each_in_its_own_state() {
    let s = Sluice::new();
    let mut text = String::from(
        "[bundle]\nname = \"par\"\n[components]\nprobe = \"{guest:probe}\"\n[jobs.slow]\n\
         tasks = [{ key = \"nap\", component = \"probe\", params = { sleep_ms = \"1000\" } }]\n",
    );
    for i in 0..4 {
        text.push_str(&format!("[[tests]]\nname = \"nap {i}\"\njob = \"slow\"\nassert = [{{ run = \"success\" }}]\n"));
    }
    let dir = s.bundle("par", &text);
    sluice_test(&s, &dir, &["--filter", "nap 0"]).assert_exit(0); // components compiled once
    let out = sluice_test(&s, &dir, &["--parallel", "4"]);
    out.assert_exit(0);
    let json = out.json();
    let tests = json["report"]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4);
    assert!(tests.iter().all(|t| t["run_id"] == 1), "each test's state is its own: every run is run 1");
    let elapsed = json["report"]["elapsed_ms"].as_u64().unwrap();
    assert!(elapsed < 3000, "four 1 s tests at once took {elapsed} ms");
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    task("fib");
    let s = Sluice::new();
    let cases = [
        ("[[tests]]\nname = \"t\"\njob = \"nope\"\n", "sluice.toml:23:7: tests[0].job: no job named `nope`"),
        (
            "[[tests]]\nname = \"t\"\njob = \"j\"\nassert = [{ task = \"upp\", result = \"success\" }]\n",
            "job `j` has no task `upp` (did you mean `up`?)",
        ),
        (
            "[[tests]]\nname = \"t\"\njob = \"j\"\nmounts = { up = { \"/data\" = \"nowhere\" } }\n",
            "task `up` mounts nothing at `/data`",
        ),
        ("[[tests]]\nname = \"t\"\njob = \"j\"\nsecrets_file = \"missing.toml\"\n", "fixture file `missing.toml`"),
        (
            "[[tests]]\nname = \"t\"\njob = \"j\"\nassert = [{ task = \"up\", output = \"rows\", \"==\" = 1 }]\n",
            "bad JSON path",
        ),
        ("[[tests]]\nname = \"t\"\njob = \"j\"\nparameters = { m = 1 }\n", "job `j` has no parameter `m`"),
    ];
    for (i, (tests, expected)) in cases.iter().enumerate() {
        let dir = s.bundle(&format!("bad{i}"), &format!("{PROBE_BUNDLE}{tests}"));
        let out = run(&s, &["test", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(expected), "expected `{expected}` in:\n{}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:2"), "file:line in:\n{}", out.stderr);
    }
    // a missing fixture directory, a malformed golden file
    let dir = sql_bundle(&s, "golden/totals.json");
    std::fs::remove_dir_all(dir.join("fixtures/other")).unwrap();
    let out = run(&s, &["test", dir.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("fixture directory `fixtures/other`"), "{}", out.stderr);
    let dir = sql_bundle(&s, "golden");
    std::fs::create_dir_all(dir.join("golden")).unwrap();
    std::fs::write(dir.join("golden/totals.json"), "{not json").unwrap();
    let out = run(&s, &["test", dir.to_str().unwrap(), "--filter", "totals"]);
    out.assert_exit(2);
    assert!(out.stderr.contains("golden/totals.json: malformed golden file"), "{}", out.stderr);
}

#[test]
fn the_examples_suites_pass_and_record_their_verdict() {
    task("fib");
    let s = Sluice::new();
    for example in ["hello", "sql"] {
        let dir = repo().join("examples").join(example);
        let out = sluice_test(&s, &dir, &[]);
        out.assert_exit(0);
        let json = out.json();
        let hash = json["report"]["bundle_hash"].as_str().unwrap().to_string();
        assert_eq!(json["verdicts"][0]["passed"], true, "{json:#}");
        assert_eq!(json["verdicts"][0]["target"], "dev");
        // the promotion gate's question, asked of the state directory's store
        let sled = SledStore::open(&s.state().join("store")).unwrap();
        let verdicts = SledVerdictStore::open(&sled).unwrap();
        let verdict = sluice::testing::verdict_for(&verdicts, &hash, "dev").unwrap().expect("recorded");
        assert!(verdict.passed && verdict.tests == 2 && verdict.bundle == example, "{verdict:?}");
        assert_eq!(sluice::testing::verdict_for(&verdicts, &hash, "prod").unwrap(), None);
    }
}

/// A bundle whose tasks write the same rows as Parquet, CSV and JSON Lines, with `tests`.
fn dataset_bundle(s: &Sluice, name: &str, tests: &str) -> std::path::PathBuf {
    let mut text = format!("[bundle]\nname = \"{name}\"\n[components]\nsql = \"{{task:sql}}\"\n[jobs.d]\n");
    for ext in ["parquet", "csv", "jsonl"] {
        text.push_str(&format!(
            "[[jobs.d.tasks]]\nkey = \"as_{ext}\"\ncomponent = \"sql\"\nmounts = [{{ host = \"data\", guest = \"/data\" }}]\n\
             params = {{ query = \"SELECT * FROM orders ORDER BY id\", inputs = '{{\"orders\": \"/data/orders.csv\"}}', output = \"rows.{ext}\" }}\n"
        ));
    }
    text.push_str(tests);
    let dir = s.bundle(name, &text);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/orders.csv"), "id,country,amount\n1,NL,10\n2,BE,20\n3,NL,\n4,XX,4000\n5,NL,30\n")
        .unwrap();
    dir
}

#[test]
fn expectations_on_csv_json_lines_and_parquet_pass_and_fail_naming_column_count_and_rows() {
    task("sql");
    let s = Sluice::new();
    let mut tests = String::new();
    for ext in ["csv", "jsonl", "parquet"] {
        let e = |expect: &str, rest: &str| {
            format!("  {{ task = \"as_{ext}\", dataset = \"rows.{ext}\", expect = \"{expect}\"{rest} }},\n")
        };
        tests.push_str(&format!("[[tests]]\nname = \"holds {ext}\"\njob = \"d\"\nassert = [\n"));
        tests.push_str(&e("expect_table_row_count_to_be_between", ", min_value = 5, max_value = 5"));
        tests.push_str(&e(
            "expect_table_columns_to_match_ordered_list",
            ", column_list = [\"id\", \"country\", \"amount\"]",
        ));
        tests.push_str(&e("expect_column_values_to_be_unique", ", column = \"id\""));
        tests.push_str(&e("expect_column_values_to_not_be_null", ", column = \"amount\", mostly = 0.8"));
        tests.push_str(&e(
            "expect_column_values_to_be_in_set",
            ", column = \"country\", value_set = [\"NL\", \"BE\", \"XX\"]",
        ));
        tests.push_str(&e("expect_column_values_to_match_regex", ", column = \"country\", regex = \"^[A-Z]{2}$\""));
        tests.push_str(&e(
            "expect_column_values_to_be_between",
            ", column = \"amount\", min_value = 0, max_value = 5000",
        ));
        tests.push_str(&e("expect_column_mean_to_be_between", ", column = \"id\", min_value = 2.9, max_value = 3.1"));
        tests.push_str("]\n");
        tests.push_str(&format!("[[tests]]\nname = \"fails {ext}\"\njob = \"d\"\nassert = [\n"));
        tests.push_str(&e("expect_column_values_to_not_be_null", ", column = \"amount\""));
        tests.push_str(&e("expect_column_values_to_be_in_set", ", column = \"country\", value_set = [\"NL\", \"BE\"]"));
        tests.push_str(&e("expect_column_values_to_be_between", ", column = \"amount\", max_value = 100"));
        tests.push_str(&e("expect_table_row_count_to_be_between", ", min_value = 10"));
        tests.push_str("]\n");
    }
    let dir = dataset_bundle(&s, "quality", &tests);
    let out = sluice_test(&s, &dir, &[]);
    out.assert_exit(1);
    let json = out.json();
    for ext in ["csv", "jsonl", "parquet"] {
        assert_eq!(report(&json, &format!("holds {ext}"))["status"], "passed", "{json:#}");
        let failed = &report(&json, &format!("fails {ext}"))["failures"];
        let message = |i: usize| failed[i]["message"].as_str().unwrap().to_string();
        let rows = |i: usize| failed[i]["diff"].as_str().unwrap_or_default().to_string();
        let head = format!("task `as_{ext}` rows.{ext}: ");
        assert_eq!(
            message(0),
            format!("{head}expect_column_values_to_not_be_null column `amount`: 1 of 5 values unexpected")
        );
        assert_eq!(rows(0), "row 2: null");
        assert_eq!(
            message(1),
            format!("{head}expect_column_values_to_be_in_set column `country`: 1 of 5 values unexpected")
        );
        assert_eq!(rows(1), "row 3: \"XX\"");
        assert_eq!(
            message(2),
            format!("{head}expect_column_values_to_be_between column `amount`: 1 of 4 values unexpected")
        );
        assert_eq!(rows(2), "row 3: \"4000\"");
        assert_eq!(message(3), format!("{head}expect_table_row_count_to_be_between: 5 rows"));
    }

    // a column the dataset lacks, a format it cannot read: bad input naming file:line
    for (task, assertion, expected) in [
        (
            "as_csv",
            "dataset = \"rows.csv\", expect = \"expect_column_values_to_be_unique\", column = \"amout\"",
            "no column `amout`; the dataset has id, country, amount",
        ),
        (
            "as_parquet",
            "dataset = \"rows.parquet\", expect = \"expect_column_values_to_be_unique\", column = \"ids\"",
            "no column `ids`; the dataset has id, country, amount",
        ),
    ] {
        let tests =
            format!("[[tests]]\nname = \"bad\"\njob = \"d\"\nassert = [{{ task = \"{task}\", {assertion} }}]\n");
        let dir = dataset_bundle(&s, &format!("quality_{task}"), &tests);
        let out = run(&s, &["test", dir.to_str().unwrap()]);
        out.assert_exit(2);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert!(out.stderr.contains("sluice.toml:"), "file:line: {}", out.stderr);
    }
    // an unknown expectation is refused when the bundle is read
    let tests = "[[tests]]\nname = \"bad\"\njob = \"d\"\nassert = [{ task = \"as_csv\", dataset = \"rows.csv\", expect = \"expect_column_values_to_be_uniq\", column = \"id\" }]\n";
    let dir = dataset_bundle(&s, "quality_name", tests);
    let out = run(&s, &["test", dir.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("did you mean `expect_column_values_to_be_unique`?"), "{}", out.stderr);
}

#[test]
fn a_test_sees_the_variables_of_its_own_target() {
    let s = Sluice::new();
    let text = format!(
        "[bundle]\nname = \"vars\"\n[variables]\nword = {{ default = \"from-default\" }}\n\
         [targets.dev]\ndefault = true\n[targets.test]\nvariables = {{ word = \"from-test\" }}\n\
         [targets.prod]\nvariables = {{ word = \"from-prod\" }}\n\
         [components]\nprobe = \"{}\"\n[jobs.j]\ntasks = [{{ key = \"p\", component = \"probe\", params = {{ word = \"${{var.word}}\" }} }}]\n\
         [[tests]]\nname = \"in test\"\njob = \"j\"\nassert = [{{ task = \"p\", output = \"$.params.word\", \"==\" = \"from-test\" }}]\n\
         [[tests]]\nname = \"in prod\"\njob = \"j\"\ntarget = \"prod\"\nassert = [{{ task = \"p\", output = \"$.params.word\", \"==\" = \"from-prod\" }}]\n",
        guest("probe").display()
    );
    let dir = s.bundle("vars", &text);
    let out = sluice_test(&s, &dir, &[]);
    let json = out.json();
    assert_eq!(out.code, 0, "{json:#}");
    assert_eq!(report(&json, "in test")["target"], "test");
    assert_eq!(report(&json, "in prod")["target"], "prod");
}
