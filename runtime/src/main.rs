//! The `sluice` binary: parse, run, print the error chain, exit.

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
