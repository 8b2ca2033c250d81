//! Failpoints for the crash tests: abort the process at the Nth journal append, store flush,
//! blob write, secret write or saved checkpoint, so that a test can crash a run at every
//! point of it in turn.
//!
//! Compiled only with the `failpoints` cargo feature (off by default; the end-to-end tests'
//! crate turns it on). Without it [`hit`] is an empty function and no variable is read. With
//! it, `SLUICE_FAILPOINT=POINT:N` (POINT one of `append`, `flush`, `blob`, `secret`,
//! `checkpoint`, `deploy`; N from 1)
//! makes the Nth hit of that point in the process print `failpoint POINT:N` on stderr and
//! abort (no destructor runs, nothing more reaches the disk — as a crash). Owns no policy and
//! must never be reached by anything but the writes it names.

/// A place where a crash is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// An event appended to a run's log (after the append, before any flush).
    Append,
    /// A flush of the store (before the fsync).
    Flush,
    /// A blob written (its temporary file complete, before it takes its name).
    Blob,
    /// A write to the secrets store (before it).
    Secret,
    /// A checkpoint saved and flushed, before the guest is told.
    Checkpoint,
    /// A deployment change: hit 1 before its atomic write, hit 2 after it, before the flush.
    Deploy,
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::Point;

    /// The variable naming the point and its hit, e.g. `append:7`.
    pub const VAR: &str = "SLUICE_FAILPOINT";

    const NAMES: [(&str, Point); 6] = [
        ("append", Point::Append),
        ("flush", Point::Flush),
        ("blob", Point::Blob),
        ("secret", Point::Secret),
        ("checkpoint", Point::Checkpoint),
        ("deploy", Point::Deploy),
    ];

    fn armed() -> Option<(Point, u64)> {
        static ARMED: OnceLock<Option<(Point, u64)>> = OnceLock::new();
        *ARMED.get_or_init(|| {
            let text = std::env::var(VAR).ok()?;
            let (name, n) = text.split_once(':')?;
            let point = NAMES.iter().find(|(k, _)| *k == name)?.1;
            Some((point, n.parse().ok()?))
        })
    }

    pub fn hit(point: Point) {
        static HITS: AtomicU64 = AtomicU64::new(0);
        let Some((armed, n)) = armed() else { return };
        if armed != point {
            return;
        }
        if HITS.fetch_add(1, Ordering::SeqCst) + 1 == n {
            let name = NAMES.iter().find(|(_, p)| *p == point).map_or("?", |(k, _)| k);
            // a crash the test asked for: say where, then die as a killed process would
            #[allow(clippy::print_stderr)]
            {
                eprintln!("failpoint {name}:{n}");
            }
            std::process::abort();
        }
    }
}

/// A failpoint: aborts the process when it is the one `SLUICE_FAILPOINT` names (only with
/// the `failpoints` feature; otherwise nothing).
#[inline]
pub fn hit(point: Point) {
    #[cfg(feature = "failpoints")]
    armed::hit(point);
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
}
