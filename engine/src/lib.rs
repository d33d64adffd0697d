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

pub use engine::{Engine, EngineConfig, Job, NewJob, SubmitError};
pub use id::{InvalidId, JobId, SessionId};
pub use job::{Emitter, JobContext, JobError};
pub use log::{
    AppendError, Batch, Event, EventKind, EventLog, Gap, JobState, LogLimits, Poll, Snapshot,
    Subscription,
};
pub use registry::{Params, PlanError, Registry};
