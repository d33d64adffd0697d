//! # jobstream-engine
//!
//! Background jobs whose output streams to any number of readers, with no
//! web framework inside. The server crate puts HTTP in front of it.
//!
//! ## Layout
//!
//! * [`registry`]: job kinds by name, with typed, validated parameters.
//! * [`engine`]: the bounded FIFO queue and the fixed pool of workers;
//!   the table of jobs, each tied to the session that started it.
//! * [`log`]: each job's event log: sequence ids, bounded retention,
//!   and [`log::Subscription`], a reader's cursor into it.
//! * [`sse`]: Server-Sent Events framing, done once per event.
//! * [`job`]: what a running job gets: [`JobContext`] and [`Emitter`].
//! * [`store`]: the [`Store`] trait and [`SqliteStore`]: jobs and events
//!   persisted in batches by one writer task, recovered after a restart.
//! * [`id`]: 128-bit random job and session ids.
//!
//! ## Data flow
//!
//! `Engine::submit` → queue → a worker runs the job → the job calls
//! `Emitter::emit` → `EventLog` appends and encodes the event once → each
//! `Subscription` reads the shared bytes after its cursor → HTTP writes them.

pub mod engine;
pub mod id;
pub mod job;
pub mod log;
pub mod registry;
pub mod sse;
pub mod store;

pub use engine::{CancelError, Engine, EngineConfig, Job, NewJob, SubmitError};
pub use id::{InvalidId, JobId, SessionId};
pub use job::{Emitter, JobContext, JobError};
/// The contract with clients, re-exported for the server and the app.
pub use jobstream_protocol as protocol;
pub use jobstream_protocol::{FieldSchema, FieldValue, JobSummary, KindSchema};
pub use log::{
    AppendError, Batch, Event, EventKind, EventLog, Gap, JobState, LogLimits, Poll, Progress,
    Snapshot, Subscription,
};
pub use registry::{FieldError, Params, PlanError, Problem, Registry};
pub use store::{SqliteStore, Store, StoreError};
