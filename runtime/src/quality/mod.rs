//! Data-quality expectations, in Great Expectations' vocabulary, evaluated over the
//! datasets a task writes to `/out`: CSV, JSON Lines ([`dataset`]) and Parquet
//! ([`parquet`]), each read row by row in bounded memory and checked in one pass
//! ([`expect`]).
//!
//! Shared by `sluice test` (assertions) and by runs (a task's production `expectations`).
//! It must never write, run anything, or touch the store.

pub mod dataset;
pub mod expect;
pub mod parquet;
pub mod task;
pub mod unique;
