//! `fib`: Fibonacci numbers, for smoke tests and CPU benchmarks.
//!
//! Params: `n` (u32, at most 93 — fib(93) is the largest that fits in a u64); `naive`
//! (optional bool, default false): also compute it with the exponential recursive definition,
//! allowed for n ≤ 30, to burn a predictable amount of CPU.
//!
//! Output `{ "n": n, "value": fib(n) }`; publishes value `value`.

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, params, values};

/// Largest n whose Fibonacci number fits in a u64.
pub const MAX_N: u32 = 93;
/// Largest n the naive recursion is allowed for.
pub const MAX_NAIVE_N: u32 = 30;

/// fib(0) = 0, fib(1) = 1, ...; `None` past [`MAX_N`].
pub fn fib_iter(n: u32) -> Option<u64> {
    if n == 0 {
        return Some(0);
    }
    // (a, b) = (fib(i - 1), fib(i)); never computes fib(n + 1), which may not fit.
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 1..n {
        (a, b) = (b, a.checked_add(b)?);
    }
    Some(b)
}

/// The exponential-time definition (about 1.6 million calls for n = 30).
pub fn fib_naive(n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    fib_naive(std::hint::black_box(n - 1)) + fib_naive(std::hint::black_box(n - 2))
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Output {
    pub n: u32,
    pub value: u64,
}

pub fn compute(n: u32, naive: bool) -> Result<Output, TaskError> {
    if n > MAX_N {
        return Err(TaskError::permanent(format!(
            "param `n`: {n} is too large (at most {MAX_N}: fib({}) does not fit in 64 bits)",
            MAX_N + 1
        )));
    }
    let value = fib_iter(n).expect("n <= MAX_N fits");
    if naive {
        if n > MAX_NAIVE_N {
            return Err(TaskError::permanent(format!(
                "param `naive`: the naive computation is limited to n <= {MAX_NAIVE_N}, got {n}"
            )));
        }
        let slow = fib_naive(std::hint::black_box(n));
        if slow != value {
            return Err(TaskError::permanent(format!(
                "naive fib({n}) = {slow} but iterative = {value}"
            )));
        }
    }
    Ok(Output { n, value })
}

pub struct Fib;

impl Task for Fib {
    type Output = Output;

    fn run(_ctx: &Context) -> Result<Output, TaskError> {
        let n: u32 = params::require("n")?;
        let naive: bool = params::get_or("naive", false)?;
        let out = compute(n, naive)?;
        values::set("value", &out.value)?;
        Ok(out)
    }
}

sluice_sdk::export_task!(Fib);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{self, MockHost};

    #[test]
    fn known_values() {
        let expected = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55];
        for (n, v) in expected.iter().enumerate() {
            assert_eq!(fib_iter(n as u32), Some(*v));
            assert_eq!(fib_naive(n as u32), *v);
        }
        assert_eq!(fib_iter(50), Some(12_586_269_025));
        assert_eq!(fib_iter(93), Some(12_200_160_415_121_876_738));
        assert_eq!(fib_iter(94), None);
        assert_eq!(fib_naive(25), 75_025);
    }

    #[test]
    fn limits() {
        assert_eq!(
            compute(93, false).unwrap().value,
            12_200_160_415_121_876_738
        );
        assert!(compute(94, false).unwrap_err().is_permanent());
        assert!(compute(31, true).unwrap_err().is_permanent());
        assert_eq!(compute(20, true).unwrap(), Output { n: 20, value: 6765 });
    }

    #[test]
    fn run_end_to_end() {
        MockHost::new()
            .param("n", "10")
            .param("naive", "true")
            .install();
        let out = testing::run::<Fib>(&Context::default()).unwrap();
        assert_eq!(out, serde_json::json!({ "n": 10, "value": 55 }));
        assert_eq!(testing::published("value"), Some(serde_json::json!(55)));

        MockHost::new().param("n", "ten").install();
        let e = testing::run::<Fib>(&Context::default()).unwrap_err();
        assert!(
            e.message()
                .starts_with("param `n`: `ten` is not a valid u32"),
            "{e}"
        );
        MockHost::new().param("n", "94").install();
        assert!(
            testing::run::<Fib>(&Context::default())
                .unwrap_err()
                .is_permanent()
        );
    }
}
