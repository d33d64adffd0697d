//! # jobstream-protocol
//!
//! Everything the server and its clients must agree on, written once. The
//! engine, the server, the server-rendered pages and the browser bundle all
//! use these types, so a rename here breaks the build, not a page at run time.
//! It depends on serde and a small VT parser, so it costs the browser bundle
//! next to nothing.
//!
//! ## Layout
//!
//! * [`state`]: [`JobState`], with its wire names and [`JobState::is_terminal`].
//! * [`event`]: the stream's event names, the [`CLOSE_SENTINEL`] and the
//!   payloads of the named events ([`End`], [`Gap`], [`Progress`]).
//! * [`summary`]: [`JobSummary`], a job as lists show it (the JSON of
//!   `GET /api/jobs` and of the session feed's `job` events).
//! * [`lines`]: a job's output as numbered lines ([`Line`], [`LinesPage`]).
//! * [`routes`]: the paths of the HTTP API.
//! * [`ansi`]: terminal colours in job output as styled runs of text
//!   ([`ansi::spans`]); every other escape sequence dropped.
//! * [`schema`]: each job kind's fields ([`KindSchema`]): name, type, range,
//!   default and whether it is required. The server validates with it and
//!   the home page renders its form from it.

pub mod ansi;
pub mod event;
pub mod lines;
pub mod routes;
pub mod schema;
pub mod state;
pub mod summary;

pub use event::{End, Gap, Progress, CLOSE_SENTINEL, MAX_PROGRESS_LABEL};
pub use lines::{Line, LinesPage};
pub use schema::{FieldProblem, FieldSchema, FieldType, FieldValue, KindSchema, Problem};
pub use state::JobState;
pub use summary::JobSummary;
