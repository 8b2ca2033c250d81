//! sluice: a workflow runtime where every task is a WebAssembly component run
//! in its own wasmtime sandbox.
//!
//! The library is everything; the `sluice` binary is glue over [`cli`].
//! One module per concern, each owning its data:
//!
//! - [`util`]: sizes and durations both ways, a pool of empty directories
//! - [`spec`]: the bundle file (`sluice.toml`): parsing and validation
//! - [`validate`]: `sluice validate`: a bundle checked as a whole without running it
//! - [`model`]: runs, tasks, attempts, events and the views of a run (data, no I/O)
//! - [`state`]: a run's state, the one fold of its event log, and the decisions it implies (pure)
//! - [`sandbox`]: wasmtime, the component cache, limits and host capabilities
//! - [`cache`]: content-hashed reruns: cache keys, the blob store, trees hashed by content
//! - [`secrets`]: encrypted scopes, ACLs, grants, redaction and the audit trail
//! - [`store`]: durable state behind the [`store::Store`] trait; sled is the default
//! - [`scheduler`]: the [`scheduler::Runtime`] (`Runtime::open`) and its runs: a coordinator per
//!   run performing what its state decides, attempts handed to an executor
//! - [`deploy`]: deployments: snapshots of a bundle per target, plan, promotion with its
//!   gates, rollback, the journal, permissions on deployed jobs
//! - [`triggers`]: schedules (Quartz cron, time zones, daylight saving), periodic, file
//!   arrival, webhooks and continuous jobs, fired exactly once through the service
//! - [`service`]: the owner's service: many runs per process (queues, cancel, repair,
//!   takeover), events to subscribers, jobs with stable ids, tokens, idempotency
//! - [`server`]: HTTP for the owner's socket and `sluice serve`: the Databricks Jobs API
//!   subset, sluice's own API, auth, metrics, limits
//! - [`objstore`]: object storage (S3, Azure Blob/ADLS, GCS): URLs, credentials from a secret's
//!   value, listing, getting and putting objects
//! - [`quality`]: data-quality expectations over CSV, JSON Lines and Parquet datasets, read in bounded memory
//! - [`testing`]: `sluice test`: bundle tests in isolated state, golden files, JUnit, verdicts by bundle hash
//! - [`client`]: how a command reaches its state directory's owner (itself, or another
//!   process over the Unix socket): the election, the [`client::Client`] trait
//! - [`cli`]: the command line, thin over the rest

// unit tests may print what they measure, or talk to a child process through stdout
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod build;
pub mod cache;
pub mod cli;
pub mod client;
pub mod deploy;
pub mod model;
pub mod notify;
pub mod objstore;
pub mod quality;
pub mod sandbox;
pub mod scaleout;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod service;
pub mod spec;
pub mod state;
pub mod store;
pub mod testing;
pub mod triggers;
pub mod util;
pub mod validate;
