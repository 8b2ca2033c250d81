//! `cmd`: a plain `wasi:cli/command` program (no SDK) for command-task tests.
//! Prints `{"args": [...], "env": [[k, v]...], "stdin": "..."}` on stdout, a
//! line on stderr, and exits with the code in `$EXIT` (default 0).

use std::io::Read;

fn main() {
    let mut stdin = String::new();
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let args: Vec<String> = std::env::args().collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    println!("{}", serde_json::json!({ "args": args, "env": env, "stdin": stdin }));
    eprintln!("cmd: {} args", args.len());
    let code = std::env::var("EXIT").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
    std::process::exit(code);
}
