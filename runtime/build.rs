//! Build script: how the `sluice` binary is linked. It owns nothing else and must never
//! generate code.
//!
//! On Linux the binary is linked position-dependent (`-no-pie`). As a PIE, the dynamic
//! loader applies ~116,000 relative relocations at every start, touching ~600 extra pages
//! (about 4.5 ms of CPU before `main`, for `sluice --version` 6.8 ms → 2.2 ms); a CLI that a
//! scheduler, a CI step or a trigger starts over and over pays that each time. The trade:
//! the executable image loads at a fixed address (heap, stacks, shared libraries and every
//! guest's linear memory stay randomised, and no guest ever sees a host address).
//! `SLUICE_PIE=1` at build time keeps the platform's default (PIE).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SLUICE_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let keep_pie = std::env::var("SLUICE_PIE").is_ok_and(|v| v == "1");
    if linux && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
