//! What a guest can and cannot reach: mounts (and escapes from them), its
//! scratch /tmp, environment, sockets, outbound HTTP through the allowlist,
//! and command tasks' inputs. Every case leaves the host healthy.

use serde_json::Value;
use sluice_tests::{Sluice, guest, last_attempt, task_of};

fn output(run: &Value, key: &str) -> Value {
    let a = last_attempt(run, key);
    serde_json::from_str(a["output"].as_str().unwrap_or_else(|| panic!("{key} has no output: {a:#}"))).unwrap()
}

fn run_bundle(s: &Sluice, name: &str, toml: &str) -> (i32, Value) {
    let dir = s.bundle(name, toml);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    let json = out.json();
    (out.code, json)
}

const HEAD: &str = "[bundle]\nname = \"iso\"\n[components]\nfs = \"{guest:fsprobe}\"\nnet = \"{guest:netprobe}\"\ncmd = \"{guest:cmd}\"\n";

#[test]
fn mounts_are_confined_and_other_tasks_mounts_are_invisible() {
    let s = Sluice::new();
    let root = s.dir.path().join("files");
    std::fs::create_dir_all(root.join("data/in")).unwrap();
    std::fs::create_dir_all(root.join("data/work")).unwrap();
    std::fs::create_dir_all(root.join("data/private")).unwrap();
    std::fs::write(root.join("data/in/orders.csv"), "id\n1\n").unwrap();
    std::fs::write(root.join("data/private/secret.txt"), "top secret").unwrap();
    std::fs::write(s.dir.path().join("outside.txt"), "outside the bundle").unwrap();
    std::os::unix::fs::symlink(s.dir.path().join("outside.txt"), root.join("data/work/escape")).unwrap();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"reader\"\ncomponent = \"fs\"\nmounts = [{{ host = \"data/in\", guest = \"/in-data\", mode = \"ro\" }}]\nparams = {{ read = \"/in-data/orders.csv\", write = \"/in-data/new.txt\", data = \"x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"dotdot\"\ncomponent = \"fs\"\nmounts = [{{ host = \"data/work\", guest = \"/work\", mode = \"rw\" }}]\nparams = {{ read = \"/work/../private/secret.txt\", write = \"/work/../escaped.txt\", data = \"x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"symlink\"\ncomponent = \"fs\"\nmounts = [{{ host = \"data/work\", guest = \"/work\", mode = \"rw\" }}]\nparams = {{ read = \"/work/escape\" }}\n\
         [[jobs.j.tasks]]\nkey = \"stranger\"\ncomponent = \"fs\"\nparams = {{ read = \"/in-data/orders.csv\", list = \"/\" }}\n\
         [[jobs.j.tasks]]\nkey = \"absolute\"\ncomponent = \"fs\"\nmounts = [{{ host = \"data/work\", guest = \"/work\", mode = \"rw\" }}]\nparams = {{ read = \"/etc/passwd\" }}\n\
         [[jobs.j.tasks]]\nkey = \"writer\"\ncomponent = \"fs\"\nmounts = [{{ host = \"data/work\", guest = \"/work\", mode = \"rw\" }}]\nparams = {{ write = \"/work/result.txt\", data = \"written\" }}\n"
    );
    std::fs::write(
        root.join("sluice.toml"),
        toml.replace("{guest:fsprobe}", guest("fsprobe").to_str().unwrap())
            .replace("{guest:netprobe}", guest("netprobe").to_str().unwrap())
            .replace("{guest:cmd}", guest("cmd").to_str().unwrap()),
    )
    .unwrap();
    let out = s.run(&["run", root.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let run = out.json();
    let reader = output(&run, "reader");
    assert_eq!(reader["read"]["ok"], "id\n1\n");
    assert!(reader["write"]["err"].is_string(), "a read-only mount refuses writes: {reader:#}");
    assert!(!root.join("data/in/new.txt").exists());
    let dotdot = output(&run, "dotdot");
    assert!(
        dotdot["read"]["err"].is_string() && dotdot["write"]["err"].is_string(),
        "`..` cannot leave the mount: {dotdot:#}"
    );
    assert!(!root.join("data/escaped.txt").exists());
    assert!(output(&run, "symlink")["read"]["err"].is_string(), "a symlink out of the mount is refused");
    let stranger = output(&run, "stranger");
    assert!(stranger["read"]["err"].is_string(), "another task's mount is invisible: {stranger:#}");
    assert!(output(&run, "absolute")["read"]["err"].is_string(), "nothing outside the mounts resolves");
    assert_eq!(std::fs::read_to_string(root.join("data/work/result.txt")).unwrap(), "written");
}

#[test]
fn each_attempt_gets_a_fresh_scratch_tmp() {
    let s = Sluice::new();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"first\"\ncomponent = \"fs\"\nparams = {{ write = \"/tmp/note\", data = \"hi\", read = \"/tmp/note\" }}\n\
         [[jobs.j.tasks]]\nkey = \"second\"\ncomponent = \"fs\"\ndepends_on = [\"first\"]\nparams = {{ list = \"/tmp\" }}\n"
    );
    let (code, run) = run_bundle(&s, "scratch", &toml);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(output(&run, "first")["read"]["ok"], "hi");
    assert_eq!(output(&run, "second")["list"]["ok"], serde_json::json!([]), "the scratch dir was wiped");
}

/// File I/O runs on the guest's own thread (`INLINE_FILE_IO`): a file of many reads arrives
/// whole, a read-only mount still refuses writes, and the guest's `/` (shared by attempts of
/// one layout) lists only the attempt's own mount points, `/in` only its own upstream tasks.
#[test]
fn inline_file_io_reads_whole_files_and_each_layout_sees_only_its_own_root() {
    let s = Sluice::new();
    let root = s.dir.path().join("files");
    std::fs::create_dir_all(root.join("big")).unwrap();
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect(); // ~190 KB: several reads
    std::fs::write(root.join("big/lines.txt"), &text).unwrap();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"big\"\ncomponent = \"fs\"\nmounts = [{{ host = \"big\", guest = \"/big\", mode = \"ro\" }}]\nparams = {{ read = \"/big/lines.txt\", write = \"/big/new.txt\", data = \"x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"up\"\ncomponent = \"fs\"\nparams = {{ write = \"/out/note\", data = \"hi\" }}\n\
         [[jobs.j.tasks]]\nkey = \"down1\"\ncomponent = \"fs\"\ndepends_on = [\"up\"]\nparams = {{ list = \"/in\" }}\n\
         [[jobs.j.tasks]]\nkey = \"down2\"\ncomponent = \"fs\"\ndepends_on = [\"up\"]\nparams = {{ list = \"/in\", read = \"/in/up/note\" }}\n\
         [[jobs.j.tasks]]\nkey = \"alone\"\ncomponent = \"fs\"\nparams = {{ list = \"/\" }}\n"
    );
    std::fs::write(
        root.join("sluice.toml"),
        toml.replace("{guest:fsprobe}", guest("fsprobe").to_str().unwrap())
            .replace("{guest:netprobe}", guest("netprobe").to_str().unwrap())
            .replace("{guest:cmd}", guest("cmd").to_str().unwrap()),
    )
    .unwrap();
    let out = s.run(&["run", root.to_str().unwrap(), "--json"]);
    out.assert_exit(0);
    let run = out.json();
    let big = output(&run, "big");
    assert!(big["read"]["ok"].as_str() == Some(text.as_str()), "the whole file, in order");
    assert!(big["write"]["err"].is_string(), "a read-only mount refuses writes: {}", big["write"]);
    assert!(!root.join("big/new.txt").exists());
    for key in ["down1", "down2"] {
        assert_eq!(output(&run, key)["list"]["ok"], serde_json::json!(["up"]), "{key} sees its upstream only");
    }
    assert_eq!(output(&run, "down2")["read"]["ok"], "hi");
    let alone = output(&run, "alone")["list"]["ok"].clone();
    assert!(
        alone
            .as_array()
            .is_some_and(|l| !l.contains(&serde_json::json!("in")) && l.contains(&serde_json::json!("tmp"))),
        "{alone}"
    );
}

#[test]
fn guests_see_no_environment_and_no_sockets() {
    let s = Sluice::new();
    // a port that accepts connections: a refused connection would prove nothing
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"env\"\ncomponent = \"fs\"\nparams = {{ env = \"HOME\", env_all = \"1\" }}\n\
         [[jobs.j.tasks]]\nkey = \"socket\"\ncomponent = \"net\"\nparams = {{ connect = \"127.0.0.1:{port}\" }}\n"
    );
    let (code, run) = run_bundle(&s, "noenv", &toml);
    assert_eq!(code, 0, "{run:#}");
    let env = output(&run, "env");
    assert_eq!(env["env"], Value::Null);
    assert_eq!(env["env_all"], serde_json::json!([]));
    let refused = output(&run, "socket")["connect"]["err"].as_str().map(str::to_string);
    let refused = refused.unwrap_or_else(|| panic!("sockets are off: {run:#}"));
    assert!(!refused.contains("refused"), "the sandbox refused it, not the port: {refused}");
    let reached = listener.accept().map_err(|e| e.kind());
    assert_eq!(reached.err(), Some(std::io::ErrorKind::WouldBlock), "no connection reached the listening port");
}

/// A host allowed by name that resolves to an internal address (this machine's own name:
/// loopback or a private address in CI's containers) is refused unless a rule names the
/// address itself: the request never reaches the server listening there.
#[test]
fn a_name_resolving_to_an_internal_address_is_refused_before_any_connection() {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let ip = (name.as_str(), 0).to_socket_addrs().unwrap().next().unwrap().ip();
    assert!(
        ip.is_loopback() || matches!(ip, std::net::IpAddr::V4(v4) if v4.is_private()),
        "this test needs the machine's name ({name}) to resolve to a local address, not {ip}"
    );
    let (port, served) = sluice_tests::http_server_on(ip, "an internal service");
    let s = Sluice::new();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"by_name\"\ncomponent = \"net\"\nallow_hosts = [\"http://{name}:{port}\"]\nparams = {{ get = \"http://{name}:{port}/\" }}\n"
    );
    let (code, run) = run_bundle(&s, "internal", &toml);
    assert_eq!(code, 0, "{run:#}");
    let o = output(&run, "by_name");
    assert!(o["get"]["err"].is_string(), "denied: {o:#}");
    let log = last_attempt(&run, "by_name")["log"].as_str().unwrap().to_string();
    assert!(log.contains(&format!("resolves to the internal address {ip}")), "the reason is logged: {log}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the internal service");
}

#[test]
fn outbound_http_goes_only_where_allowed() {
    let (port, served) = sluice_tests::http_server("hello from the host");
    let s = Sluice::new();
    let toml = format!(
        "{HEAD}[jobs.j]\n\
         [[jobs.j.tasks]]\nkey = \"allowed\"\ncomponent = \"net\"\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nparams = {{ get = \"http://127.0.0.1:{port}/x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"no_network\"\ncomponent = \"net\"\nparams = {{ get = \"http://127.0.0.1:{port}/x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"other_port\"\ncomponent = \"net\"\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nparams = {{ get = \"http://127.0.0.1:1/x\" }}\n\
         [[jobs.j.tasks]]\nkey = \"metadata\"\ncomponent = \"net\"\nallow_hosts = [\"http://127.0.0.1:{port}\"]\nparams = {{ get = \"http://169.254.169.254/latest/meta-data/\" }}\n\
         [[jobs.j.tasks]]\nkey = \"by_name\"\ncomponent = \"net\"\nallow_hosts = [\"http://sluice-test.invalid:*\"]\nparams = {{ get = \"http://sluice-test.invalid/\" }}\n"
    );
    let (code, run) = run_bundle(&s, "http", &toml);
    assert_eq!(code, 0, "{run:#}");
    let ok = output(&run, "allowed");
    assert_eq!(ok["get"]["status"], 200, "{ok:#}");
    assert_eq!(ok["get"]["body"], "hello from the host");
    for key in ["no_network", "other_port", "metadata", "by_name"] {
        let o = output(&run, key);
        assert!(o["get"]["err"].is_string(), "{key} must be denied: {o:#}");
        let log = last_attempt(&run, key)["log"].as_str().unwrap().to_string();
        assert!(log.contains("outbound HTTP denied"), "{key}: the denial is logged: {log}");
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "only the allowed request reached the server");
}

#[test]
fn command_tasks_get_exactly_their_args_env_and_stdin() {
    let s = Sluice::new();
    std::fs::create_dir_all(s.dir.path().join("cmdtask")).unwrap();
    std::fs::write(s.dir.path().join("cmdtask/input.txt"), "from a file").unwrap();
    let toml = format!(
        "{HEAD}[jobs.j]\nparameters = {{ who = \"sluice\" }}\n\
         [[jobs.j.tasks]]\nkey = \"echo\"\nkind = \"command\"\ncomponent = \"cmd\"\nargs = [\"--who\", \"{{{{ job.parameters.who }}}}\"]\nenv = {{ GREETING = \"hi\" }}\nstdin = \"piped text\"\nstdout = \"output\"\n\
         [[jobs.j.tasks]]\nkey = \"file\"\nkind = \"command\"\ncomponent = \"cmd\"\nstdin_file = \"input.txt\"\nstdout = \"output\"\n\
         [[jobs.j.tasks]]\nkey = \"fails\"\nkind = \"command\"\ncomponent = \"cmd\"\nenv = {{ EXIT = \"3\" }}\n"
    );
    let (code, run) = run_bundle(&s, "cmdtask", &toml);
    assert_eq!(code, 1, "one command exits non-zero: {run:#}");
    let echo = output(&run, "echo");
    assert_eq!(echo["args"], serde_json::json!(["echo", "--who", "sluice"]));
    assert_eq!(echo["env"], serde_json::json!([["GREETING", "hi"]]), "only the declared environment");
    assert_eq!(echo["stdin"], "piped text");
    assert!(last_attempt(&run, "echo")["log"].as_str().unwrap().contains("cmd: 3 args"), "stderr is the log");
    assert_eq!(output(&run, "file")["stdin"], "from a file");
    let fails = last_attempt(&run, "fails");
    assert_eq!(fails["result"], "failed");
    // WASI 0.2's `exit` carries only success or failure: a Rust wasip2 program's
    // exit(3) arrives as 1 (the preview1 adapter maps exit codes the same way)
    assert!(fails["error"].as_str().unwrap().contains("exited with code 1"), "{fails:#}");
    assert!(fails["log"].as_str().unwrap().contains("\"args\""), "a failed command's stdout is kept in its log");
}

#[test]
fn five_hundred_concurrent_sandboxes_all_finish() {
    let s = Sluice::new();
    let inputs: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    let toml = format!(
        "{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"many\"\nfor_each = {{ inputs = \"[{}]\", concurrency = 500, task = {{ component = \"fs\", params = {{ write = \"/tmp/x\", data = \"{{{{ input }}}}\", read = \"/tmp/x\" }} }} }}\n",
        inputs.join(",")
    );
    let (code, run) = run_bundle(&s, "many", &toml);
    assert_eq!(code, 0);
    let parent: Value = serde_json::from_str(last_attempt(&run, "many")["output"].as_str().unwrap()).unwrap();
    assert_eq!(parent["succeeded"], 500, "back-pressure, not errors: {parent:#}");
    assert_eq!(output(&run, "many[499]")["read"]["ok"], "499");
    assert_eq!(task_of(&run, "many[0]")["result"], "success");
}

#[test]
fn a_workspace_never_sees_another_workspaces_runs() {
    let s = Sluice::new();
    let toml = format!("{HEAD}[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"fs\"\n");
    let dir = s.bundle("tenants", &toml);
    s.run(&["run", dir.to_str().unwrap(), "--workspace", "acme"]).assert_exit(0);
    let acme = s.run(&["runs", "list", "--json", "--workspace", "acme"]).json();
    assert_eq!(acme.as_array().unwrap().len(), 1);
    assert_eq!(acme[0]["workspace"], "acme");
    let globex = s.run(&["runs", "list", "--json", "--workspace", "globex"]).json();
    assert_eq!(globex, serde_json::json!([]), "another tenant's runs are invisible");
    let show = s.run(&["runs", "show", "1", "--workspace", "globex"]);
    show.assert_exit(2);
    assert!(show.stderr.contains("no run 1 in workspace `globex`"), "{}", show.stderr);
    let repair = s.run(&["runs", "repair", "1", "--task", "t", "--workspace", "globex"]);
    repair.assert_exit(2);
    s.run(&["runs", "show", "1", "--workspace", "acme"]).assert_exit(0);
    // a workspace name cannot escape its namespace
    let bad = s.run(&["runs", "list", "--workspace", "../acme"]);
    bad.assert_exit(2);
}

#[test]
fn job_limits_are_defaults_that_a_task_can_override() {
    let s = Sluice::new();
    let toml = "[bundle]\nname = \"lim\"\n[components]\nbomb = \"{guest:membomb}\"\n[jobs.j]\nlimits = { memory = \"32MiB\" }\n\
         [[jobs.j.tasks]]\nkey = \"capped\"\ncomponent = \"bomb\"\nparams = { mb = \"48\" }\n\
         [[jobs.j.tasks]]\nkey = \"roomy\"\ncomponent = \"bomb\"\nlimits = { memory = \"128MiB\" }\nparams = { mb = \"48\" }\n";
    let dir = s.bundle("lim", toml);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    let run = out.json();
    assert!(last_attempt(&run, "capped")["error"].as_str().unwrap().contains("memory limit of 32.0 MiB"), "{run:#}");
    assert_eq!(task_of(&run, "roomy")["result"], "success");
}

#[test]
fn a_target_gives_defaults_that_jobs_and_tasks_override() {
    let s = Sluice::new();
    let toml = "[bundle]\nname = \"tgt\"\n[targets.dev]\nlimits = { memory = \"32MiB\" }\n[targets.prod]\n\
         [components]\nbomb = \"{guest:membomb}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"bomb\"\nparams = { mb = \"48\" }\n";
    let dir = s.bundle("tgt", toml);
    let dev = s.run(&["run", dir.to_str().unwrap(), "--json", "--target", "dev"]);
    dev.assert_exit(1);
    assert!(last_attempt(&dev.json(), "t")["error"].as_str().unwrap().contains("memory limit of 32.0 MiB"));
    s.run(&["run", dir.to_str().unwrap(), "--json", "--target", "prod"]).assert_exit(0);
}

#[test]
fn a_fuel_budget_stops_a_guest_deterministically() {
    let s = Sluice::new();
    let toml = "[bundle]\nname = \"fuel\"\n[components]\nspin = \"{guest:spin}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"spin\"\ncomponent = \"spin\"\ntimeout = \"30s\"\nlimits = { fuel = 1000000 }\n";
    let dir = s.bundle("fuel", toml);
    let out = s.run(&["run", dir.to_str().unwrap(), "--json"]);
    out.assert_exit(1);
    let a = last_attempt(&out.json(), "spin").clone();
    assert!(a["error"].as_str().unwrap().contains("fuel budget of 1000000 exhausted"), "{a:#}");
}

#[test]
fn only_a_target_that_allows_it_mounts_paths_outside_the_bundle() {
    let s = Sluice::new();
    let outside = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("f.txt"), "far away").unwrap();
    let task = format!(
        "[components]\nfs = \"{{guest:fsprobe}}\"\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"fs\"\nmounts = [{{ host = \"{}\", guest = \"/far\" }}]\nparams = {{ read = \"/far/f.txt\" }}\n",
        outside.display()
    );
    // no target allows it: refused when the bundle is read
    let dir = s.bundle("strict", &format!("[bundle]\nname = \"b\"\n{task}"));
    let out = s.run(&["run", dir.to_str().unwrap()]);
    out.assert_exit(2);
    assert!(out.stderr.contains("outside") && out.stderr.contains("data_roots"), "{}", out.stderr);
    // prod allows it, dev does not
    let dir = s.bundle(
        "open",
        &format!("[bundle]\nname = \"b\"\n[targets.prod]\nallow_absolute_paths = true\n[targets.dev]\n{task}"),
    );
    let dev = s.run(&["run", dir.to_str().unwrap(), "--target", "dev"]);
    dev.assert_exit(2);
    assert!(dev.stderr.contains("target `dev` does not allow absolute paths"), "{}", dev.stderr);
    let prod = s.run(&["run", dir.to_str().unwrap(), "--target", "prod", "--json"]);
    prod.assert_exit(0);
    assert_eq!(output(&prod.json(), "t")["read"]["ok"], "far away");
}
