//! # jobstream-engine
//!
//! Background jobs whose output streams to any number of readers, with no
//! web framework inside. The server crate puts HTTP in front of it.
//!
//! ## Layout
//!
//! * [`registry`]: job kinds by name, with typed, validated parameters.
//! * [`engine`]: the [`Engine`] handle, its construction and shutdown,
//!   split by concern into `engine/jobs.rs` (the table of jobs: submit,
//!   get, find, list, cancel), `engine/worker.rs` (the bounded FIFO queue's
//!   fixed pool of workers), `engine/recovery.rs` (after a restart),
//!   `engine/retention.rs` (the sweeper) and `engine/feed.rs` (each
//!   session's change counter for its live job list).
//! * [`model`]: the shared vocabulary: [`Event`], [`EventKind`],
//!   [`LogLimits`], [`AppendError`], [`Snapshot`], [`Batch`], [`Poll`].
//! * [`log`]: a job's event log in memory: sequence ids, bounded
//!   retention, and [`Subscription`], a reader's cursor into it.
//! * [`journal`]: [`EventLog`], the log with its write path: every change
//!   goes through one commit that also sends it to the store and bumps the
//!   owner's feed.
//! * [`sse`]: Server-Sent Events framing, done once per event.
//! * [`job`]: what a running job gets: [`JobContext`] and [`Emitter`].
//! * [`store`]: the [`Store`] trait, [`SqliteStore`] and [`PgStore`]: jobs
//!   and events persisted in batches by one writer task, recovered after a
//!   restart; on PostgreSQL also [`store::Cluster`], what several nodes
//!   share (the engine's side is `engine/cluster.rs`, `claim.rs` and
//!   `mirrors.rs`).
//! * [`id`]: 128-bit random job and session ids.
//!
//! Modules depend one way only, with no cycle: `engine` → `registry` →
//! `job` → `journal` → `log` and `store` → `model` → `sse`; `id` is used
//! throughout. The store knows events but not the log that makes them.
//!
//! ## Data flow
//!
//! `Engine::submit` → queue → a worker runs the job → the job calls
//! `Emitter::emit` → `EventLog` commits: the in-memory log appends and
//! encodes the event once, the writer task gets it for the store, the
//! owner's feed moves on a change of state or progress → each
//! `Subscription` reads the shared bytes after its cursor → HTTP writes
//! them.

pub mod engine;
pub mod id;
pub mod job;
pub mod journal;
pub mod log;
pub mod metrics;
pub mod model;
pub mod registry;
pub mod sse;
pub mod store;

pub use engine::{
    CancelError, ClusterConfig, Engine, EngineConfig, Job, NewJob, QuotaConfig, Reader,
    SubmitError, NODE_LOST,
};
pub use id::{InvalidId, JobId, SessionId};
pub use job::{Emitter, JobContext, JobError};
/// The contract with clients, re-exported for the server and the app.
pub use jobstream_protocol as protocol;
pub use jobstream_protocol::{FieldSchema, FieldValue, JobSummary, KindSchema};
pub use journal::EventLog;
pub use log::Subscription;
pub use model::{
    AppendError, Batch, Event, EventKind, Gap, JobState, LogLimits, Poll, Progress, Snapshot,
    MAX_PAGE_BYTES,
};
pub use registry::{FieldError, Params, PlanError, Problem, Registry};
pub use store::{PgStore, SqliteStore, Store, StoreError};
