//! Small helpers with no home of their own: sizes and durations both ways ([`units`]), a
//! pool of empty directories ([`DirPool`]), reachability in a dependency graph ([`graph`]) and
//! the crash tests' failpoints ([`failpoint`]).
//!
//! Owns no policy: callers decide what a size means or what a directory is for.

mod dirs;
pub mod failpoint;
pub mod graph;
pub mod units;

pub use dirs::DirPool;
pub use units::{exact_size, human_bytes, human_duration, parse_duration, parse_size, stopwatch};
