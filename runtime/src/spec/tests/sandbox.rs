//! Sandbox settings in the bundle file: `mounts`, `[bundle] data_roots`, `allow_hosts`
//! and the `fuel` / `max_out` limits, checked against real directories in a tempdir.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::spec::{Bundle, HostRule, Limits, Mount, MountMode, TaskKind, TaskSpec};

/// `<tmp>/b` (the bundle root) with `data/landing/`, `data/scratch/`, `data/input.txt`,
/// `alias` → `data/landing` and `escape` → `<tmp>/outside/`; next to it `<tmp>/outside/`
/// (with `secret.txt`) and `<tmp>/shared/` (with `in.txt` and `raw/`).
pub(super) struct Dirs {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub root: PathBuf,
}

pub(super) fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = fs::canonicalize(tmp.path()).expect("canonical tempdir");
    let root = base.join("b");
    for dir in ["b/data/landing", "b/data/scratch", "outside", "shared/raw"] {
        fs::create_dir_all(base.join(dir)).expect("mkdir");
    }
    for file in ["b/data/input.txt", "outside/secret.txt", "shared/in.txt"] {
        fs::write(base.join(file), "x").expect("write");
    }
    std::os::unix::fs::symlink(root.join("data/landing"), root.join("alias")).expect("symlink");
    std::os::unix::fs::symlink(base.join("outside"), root.join("escape")).expect("symlink");
    Dirs { _tmp: tmp, base, root }
}

impl Dirs {
    pub fn bundle(&self, text: &str) -> Bundle {
        parse(text, Path::new(FILE), &self.root).unwrap_or_else(|error| panic!("refused: {error}"))
    }

    pub fn task(&self, text: &str, key: &str) -> TaskSpec {
        self.bundle(text).jobs["hello"].task(key).unwrap_or_else(|| panic!("no task `{key}`")).clone()
    }

    /// Asserts the error of `text` is on the line where `at` first appears.
    pub fn error(&self, text: &str, at: &str, key: &str, needle: &str) -> String {
        assert_error_in(&self.root, text, line_of(text, at), key, needle)
    }
}

/// A component task `a` with extra `lines`, in a bundle whose `[bundle]` adds `bundle`.
fn task_a(bundle: &str, lines: &str) -> String {
    let head = HEAD.replace("name = \"hello\"", &format!("name = \"hello\"\n{bundle}"));
    format!("{head}\n[[jobs.hello.tasks]]\nkey = \"a\"\ncomponent = \"ingest\"\n{lines}\n")
}

fn mounts_line(mounts: &str) -> String {
    task_a("", &format!("mounts = [{mounts}]"))
}

const A: &str = "jobs.hello.tasks[0]";

#[test]
fn mounts_hosts_and_limits_parse_into_the_model() {
    let d = dirs();
    let text = task_a(
        "",
        "mounts = [{ host = \"data/landing\", guest = \"/landing\", mode = \"ro\" }, \
         { host = \"data/scratch\", guest = \"/work\", mode = \"rw\" }, { host = \"alias\", guest = \"/again\" }]\n\
         allow_hosts = [\"https://api.example.com\", \"http://127.0.0.1:*\", \"http://localhost:8080\"]\n\
         limits = { memory = \"64MiB\", fuel = 100_000_000, max_out = \"10MiB\" }",
    );
    let a = d.task(&text, "a");
    let landing = d.root.join("data/landing");
    let mount = |host: &PathBuf, guest: &str, mode| Mount {
        host: host.clone(),
        guest: guest.into(),
        mode,
        outside_roots: false,
        object: None,
    };
    assert_eq!(
        a.exec.mounts,
        [
            mount(&landing, "/landing", MountMode::Ro),
            mount(&d.root.join("data/scratch"), "/work", MountMode::Rw),
            mount(&landing, "/again", MountMode::Ro),
        ],
        "`alias` resolves to the directory it points at; mode defaults to ro"
    );
    let rule = |scheme: &str, host: &str, port| HostRule { scheme: scheme.into(), host: host.into(), port };
    assert_eq!(
        a.exec.allow_hosts,
        [
            rule("https", "api.example.com", Some(443)),
            rule("http", "127.0.0.1", None),
            rule("http", "localhost", Some(8080)),
        ]
    );
    assert_eq!(
        a.exec.limits,
        Limits { memory: Some(64 << 20), fuel: Some(100_000_000), max_out: Some(10 << 20), ..Limits::default() }
    );
}

#[test]
fn without_sandbox_keys_a_task_has_no_mounts_and_no_network() {
    let a = task_of(&task("key = \"a\"\ncomponent = \"ingest\""), "a");
    assert!(a.exec.mounts.is_empty() && a.exec.allow_hosts.is_empty());
    assert_eq!(a.exec.limits.fuel, None);
    assert_eq!(a.exec.limits.max_out, None);
    assert!(bundle_of(&task("key = \"a\"\ncomponent = \"ingest\"")).data_roots.is_empty());
}

#[test]
fn data_roots_let_mounts_reach_outside_the_bundle() {
    let d = dirs();
    let shared = d.base.join("shared");
    let roots = format!("data_roots = [\"../shared\", \"{}\"]", d.base.join("outside").display());
    let text = task_a(
        &roots,
        &format!(
            "mounts = [{{ host = \"../shared/raw\", guest = \"/raw\" }}, {{ host = \"{}\", guest = \"/shared\" }}, \
             {{ host = \"escape\", guest = \"/outside\" }}]",
            shared.display()
        ),
    );
    let bundle = d.bundle(&text);
    assert_eq!(bundle.data_roots, [shared.clone(), d.base.join("outside")]);
    let hosts: Vec<&Path> = bundle.jobs["hello"].tasks[0].exec.mounts.iter().map(|m| m.host.as_path()).collect();
    assert_eq!(hosts, [shared.join("raw"), shared.clone(), d.base.join("outside")]);
}

#[test]
fn for_each_templates_take_mounts_and_allow_hosts() {
    let d = dirs();
    let text = with_job(
        "[[jobs.hello.tasks]]\nkey = \"t\"\nfor_each = { inputs = \"[1]\", task = { component = \"clean\", \
         mounts = [{ host = \"data/landing\", guest = \"/landing\" }], allow_hosts = [\"https://x.example.com:*\"] } }\n",
    );
    let TaskKind::ForEach { template, .. } = d.task(&text, "t").kind else {
        panic!("not a for_each task");
    };
    assert_eq!(template.exec.mounts[0].host, d.root.join("data/landing"));
    assert_eq!(template.exec.allow_hosts[0].port, None);
    let text = text.replace("\"/landing\"", "\"/tmp\"");
    d.error(&text, "for_each", "jobs.hello.tasks[0].for_each.task.mounts[0].guest", "guest path `/tmp` is reserved");
}

#[test]
fn a_symlink_out_of_the_bundle_is_refused_until_its_target_is_a_data_root() {
    let d = dirs();
    let text = mounts_line("{ host = \"escape\", guest = \"/x\" }");
    let shown =
        d.error(&text, "mounts", &format!("{A}.mounts[0].host"), "mount host `escape` leads through a symlink to");
    assert!(shown.contains(&d.base.join("outside").display().to_string()), "{shown}");
    assert!(shown.contains("outside the bundle root"), "{shown}");
    assert!(shown.contains("no data roots are declared"), "{shown}");
    assert!(shown.contains("[bundle] data_roots"), "{shown}");
    // Data roots that do not hold the target do not help.
    let text = task_a("data_roots = [\"../shared\"]", "mounts = [{ host = \"escape\", guest = \"/x\" }]");
    let shown = d.error(&text, "mounts", &format!("{A}.mounts[0].host"), "outside the bundle root");
    assert!(shown.contains("and the data root `"), "{shown}");
    let text = task_a("data_roots = [\"../outside\"]", "mounts = [{ host = \"escape\", guest = \"/x\" }]");
    assert_eq!(d.task(&text, "a").exec.mounts[0].host, d.base.join("outside"));
}

#[test]
fn dot_dot_out_of_the_bundle_is_refused() {
    let d = dirs();
    let text = mounts_line("{ host = \"../outside\", guest = \"/x\" }");
    let shown = d.error(&text, "mounts", &format!("{A}.mounts[0].host"), "mount host `../outside` resolves to");
    assert!(shown.contains("to allow this one, list `"), "{shown}");
    let absolute = d.base.join("outside");
    let text = mounts_line(&format!("{{ host = \"{}\", guest = \"/x\" }}", absolute.display()));
    d.error(&text, "mounts", &format!("{A}.mounts[0].host"), "outside the bundle root");
}

#[test]
fn mount_hosts_must_be_existing_directories() {
    let d = dirs();
    let cases = [
        ("data/nope", "mount host `data/nope` does not exist (looked for `"),
        ("data/input.txt", "is not a directory; only directories can be mounted"),
        ("", "mount host path is empty"),
        ("data/{{ job.name }}", "cannot hold `{{ … }}` references"),
    ];
    for (host, needle) in cases {
        let text = mounts_line(&format!("{{ host = \"{host}\", guest = \"/x\" }}"));
        d.error(&text, "mounts", &format!("{A}.mounts[0].host"), needle);
    }
    // An unresolvable bundle root still says where it looked.
    let text = mounts_line("{ host = \"data\", guest = \"/x\" }");
    assert_error(&text, line_of(&text, "mounts"), &format!("{A}.mounts[0].host"), "looked for `/b/data`");
}

#[test]
fn guest_paths_must_be_absolute_normalised_and_free() {
    let d = dirs();
    let cases = [
        ("landing", "guest path `landing` must be absolute, e.g. `/landing`"),
        ("./landing", "e.g. `/landing`"),
        ("x//y/", "guest path `x//y/` must be absolute, e.g. `/x/y`"),
        ("/", "guest path `/` would hide the whole guest filesystem"),
        ("/a//b", "is not normalised (no `//`, no trailing `/`); write `/a/b`"),
        ("/a/b/", "write `/a/b`"),
        ("/a/../b", "has a `.` or `..` segment"),
        ("/a/./b", "has a `.` or `..` segment"),
        ("/tmp", "guest path `/tmp` is reserved: the runtime provides `/tmp`"),
        ("/tmp/cache", "the runtime provides `/tmp`"),
        ("/in", "the runtime provides `/in`"),
        ("/in/a", "provides `/in` (upstream tasks' outputs, read-only)"),
        ("/out", "the runtime provides `/out`"),
        ("/out/x/y", "provides `/out` (the task's output files); mount at another path such as `/data`"),
        ("/a\\\\b", "holds a control character or `\\`"),
    ];
    for (guest, needle) in cases {
        let text = mounts_line(&format!("{{ host = \"data/landing\", guest = \"{guest}\" }}"));
        d.error(&text, "mounts", &format!("{A}.mounts[0].guest"), needle);
    }
    for near in ["/tmpdata", "/input", "/outputs", "/data/tmp"] {
        let text = mounts_line(&format!("{{ host = \"data/landing\", guest = \"{near}\" }}"));
        assert_eq!(d.task(&text, "a").exec.mounts[0].guest, near);
    }
}

#[test]
fn guest_paths_may_not_overlap() {
    let d = dirs();
    let pair = |first: &str, second: &str| {
        mounts_line(&format!(
            "{{ host = \"data/landing\", guest = \"{first}\" }}, {{ host = \"data/scratch\", guest = \"{second}\" }}"
        ))
    };
    let key = format!("{A}.mounts[1].guest");
    d.error(&pair("/data", "/data"), "mounts", &key, "guest path `/data` is already mounted `/data` (mounts[0])");
    d.error(
        &pair("/data", "/data/raw"),
        "mounts",
        &key,
        "guest path `/data/raw` lies inside `/data` (mounts[0]); a task's mounts may not overlap",
    );
    d.error(&pair("/data/raw", "/data"), "mounts", &key, "guest path `/data` contains `/data/raw`");
    assert_eq!(d.task(&pair("/data", "/database"), "a").exec.mounts.len(), 2);
}

#[test]
fn mount_tables_are_checked_like_every_table() {
    let d = dirs();
    let key = |rest: &str| format!("{A}.mounts[0]{rest}");
    let text = mounts_line("{ host = \"data/landing\", guest = \"/x\", mode = \"rx\" }");
    d.error(
        &text,
        "mounts",
        &key(".mode"),
        "unknown mode `rx` (did you mean `ro`?); use `ro` (read-only, the default) or `rw`",
    );
    let text = mounts_line("{ host = \"data/landing\", guest = \"/x\", mode = \"readwrite\" }");
    d.error(&text, "mounts", &key(".mode"), "unknown mode `readwrite`");
    let text = mounts_line("{ host = \"data/landing\", gust = \"/x\" }");
    d.error(&text, "mounts", &key(".gust"), "unknown key (did you mean `guest`?)");
    let text = mounts_line("{ host = \"data/landing\" }");
    d.error(&text, "mounts", &key(".guest"), "missing required key `guest`");
    let text = mounts_line("\"data/landing\"");
    d.error(&text, "mounts", &key(""), "expected a table");
    let text = task_a("", "mounts = { host = \"data/landing\", guest = \"/x\" }");
    d.error(&text, "mounts", &format!("{A}.mounts"), "expected an array");
}

#[test]
fn data_roots_must_be_distinct_existing_directories() {
    let d = dirs();
    let at = "data_root";
    let cases = [
        ("\"../nope\"", "[0]", "data root `../nope` does not exist"),
        ("\"data/input.txt\"", "[0]", "data root `data/input.txt` is not a directory"),
        ("\"/\"", "[0]", "which would allow every path; name a narrower directory"),
        ("\"../shared\", \"../shared/raw/..\"", "[1]", "is listed twice"),
        ("\"{{ job.name }}\"", "[0]", "cannot hold `{{ … }}` references"),
        ("[1]", "[0]", "expected a string"),
    ];
    for (roots, index, needle) in cases {
        let text = task_a(&format!("data_roots = [{roots}]"), "");
        d.error(&text, at, &format!("bundle.data_roots{index}"), needle);
    }
    let text = task_a("data_root = []", "");
    d.error(&text, at, "bundle.data_root", "did you mean `data_roots`?");
}

#[test]
fn mounts_and_allow_hosts_only_where_a_guest_runs() {
    let after_a = |lines: &str| {
        with_job(&format!(
            "{TASK_A}\n[[jobs.hello.tasks]]\nkey = \"t\"\ndepends_on = [\"a\"]\n{lines}\n[[jobs.other.tasks]]\nkey = \"x\"\ncomponent = \"clean\"\n"
        ))
    };
    let cases = [
        (
            "condition = { op = \"equal_to\", left = \"a\", right = \"b\" }\nallow_hosts = []",
            "allow_hosts",
            "`allow_hosts` does not apply to condition task `t`; a condition only compares",
        ),
        (
            "for_each = { inputs = \"[]\", task = { component = \"clean\" } }\nmounts = []",
            "mounts",
            "`mounts` does not apply to for_each task `t`; put it in `for_each.task`",
        ),
        (
            "run_job = { job = \"other\" }\nmounts = []",
            "mounts",
            "`mounts` does not apply to run_job task `t`; the job it runs has its own settings",
        ),
    ];
    for (lines, key, needle) in cases {
        let text = after_a(lines);
        let at = text.rfind(&format!("{key} =")).expect("key in text");
        let line = text[..at].matches('\n').count() + 1;
        assert_error(&text, line, &format!("jobs.hello.tasks[1].{key}"), needle);
    }
}

#[test]
fn object_storage_mounts_take_a_url_and_credentials_and_no_host() {
    let d = dirs();
    let text = mounts_line(
        "{ url = \"s3://lake-bucket/bronze/\", guest = \"/bronze\", mode = \"rw\", credentials = \"store/lake\" }",
    );
    let mount = &d.task(&text, "a").exec.mounts[0];
    assert_eq!(mount.host, PathBuf::new(), "staged when an attempt starts");
    assert_eq!((mount.mode, mount.outside_roots), (MountMode::Rw, false));
    let object = mount.object.as_ref().expect("an object-storage mount");
    assert_eq!((object.url.as_str(), object.credentials.as_str()), ("s3://lake-bucket/bronze/", "store/lake"));
    let json = serde_json::to_string(mount).unwrap();
    assert_eq!(serde_json::from_str::<Mount>(&json).unwrap(), *mount, "plans keep it");
    let text = mounts_line("{ url = \"s3://lake-bucket/x/\", guest = \"/x\", credentials = \"lake\" }");
    d.error(&text, "mounts", &format!("{A}.mounts[0].credentials"), "scope/key");
}

#[test]
fn a_location_is_a_directory_or_an_object_url_per_target() {
    let d = dirs();
    let mut text = mounts_line(
        "{ location = \"${var.landing}\", guest = \"/landing\", credentials = \"${var.creds}\" }, \
         { host = \"data/scratch\", guest = \"/work\" }",
    );
    text.push_str(
        "[variables]\nlanding = { default = \"data/landing\" }\ncreds = { default = \"\" }\n\
         [targets.dev]\ndefault = true\n\
         [targets.test]\nvariables = { landing = \"s3://lake-test/in/\", creds = \"storage-test/lake\" }\n\
         [targets.nocreds]\nvariables = { landing = \"s3://lake-test/in/\" }\n\
         [targets.ftp]\nvariables = { landing = \"ftp://lake/in/\", creds = \"storage-test/lake\" }\n\
         [targets.dircreds]\nvariables = { creds = \"storage-test/lake\" }\n\
         [targets.gone]\nvariables = { landing = \"data/nope\" }\n",
    );
    let read = |target: &str| {
        let opts = crate::spec::LoadOptions { target: Some(target.into()), ..Default::default() };
        crate::spec::parse_with(&text, Path::new(FILE), &d.root, &opts)
    };
    let dev = read("dev").unwrap_or_else(|e| panic!("{e}"));
    let mount = &dev.jobs["hello"].tasks[0].exec.mounts[0];
    assert_eq!((mount.host.clone(), mount.object.is_none()), (d.root.join("data/landing"), true));
    let test = read("test").unwrap_or_else(|e| panic!("{e}"));
    let object = test.jobs["hello"].tasks[0].exec.mounts[0].object.clone().expect("an object mount in test");
    assert_eq!((object.url.as_str(), object.credentials.as_str()), ("s3://lake-test/in/", "storage-test/lake"));
    let line = line_of(&text, "mounts");
    for (target, key, needle) in [
        ("nocreds", "mounts[0]", "needs `credentials = \"scope/key\"`"),
        ("ftp", "mounts[0].location", "neither a directory nor an object-storage URL"),
        ("dircreds", "mounts[0].credentials", "`location` is the directory `data/landing` (target `dircreds`)"),
        ("gone", "mounts[0].location", "mount location (target `gone`) `data/nope` does not exist"),
    ] {
        let error = read(target).expect_err(target);
        let shown = error.to_string();
        assert_eq!((error.line(), error.key()), (Some(line), Some(format!("{A}.{key}").as_str())), "{shown}");
        assert!(shown.contains(needle) && shown.starts_with(&format!("{FILE}:{line}:")), "{target}: {shown}");
    }
    let both = mounts_line("{ location = \"data/landing\", url = \"s3://lake-test/in/\", guest = \"/x\" }");
    d.error(&both, "mounts", &format!("{A}.mounts[0].location"), "not both `url` and `location`");
}
