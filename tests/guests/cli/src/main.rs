//! A plain command: `wasm32-wasip2` builds it as a `wasi:cli/command` component, which exports
//! `wasi:cli/run` instead of the task world's `run`. Loading it as a `component` task must fail
//! with a clear error; running it as a `command` task must print the line below.
fn main() {
    println!("hello from a command");
}
