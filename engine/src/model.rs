//! The vocabulary the log, the store and readers share: events, the log's
//! bounds and refusals, and what a reader gets. Kept apart so that the
//! store can speak of events without depending on the log that makes them.

use std::sync::Arc;

use bytes::Bytes;

use crate::sse;
use jobstream_protocol::event;
pub use jobstream_protocol::{Gap, JobState, Progress, MAX_PROGRESS_LABEL};

/// What an event in the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A message from the job: an SSE event of the default type `message`.
    Message,
    /// The job changed state (`event: state`, data is the state's name).
    State,
    /// The job ended (`event: end`, data is JSON `{"state":..,"error":..}`).
    End,
    /// The last event of every stream: data is [`sse::CLOSE_SENTINEL`].
    Close,
    /// The job reported progress (`event: progress`, data is JSON
    /// `{"fraction":0.42,"label":".."}`).
    Progress,
}

impl EventKind {
    /// The SSE event type (`None` is the default, `message`).
    pub fn event_type(self) -> Option<&'static str> {
        match self {
            EventKind::Message | EventKind::Close => None,
            EventKind::State => Some(event::STATE),
            EventKind::End => Some(event::END),
            EventKind::Progress => Some(event::PROGRESS),
        }
    }
}

/// One retained event. Shared between the log, its readers and snapshots.
#[derive(Debug)]
pub struct Event {
    /// Sequence id within the job, from 1, without holes.
    pub seq: u64,
    /// What the event is.
    pub kind: EventKind,
    /// The event's data as text (the message itself for messages).
    pub text: Box<str>,
    /// How many messages the job had said up to and including this event:
    /// a message's line number (see [`jobstream_protocol::Line::n`]).
    pub line: u64,
    /// The event encoded as SSE, shared by every reader.
    pub frame: Bytes,
}

impl Event {
    /// Bytes of memory the event holds: its text, its frame and itself.
    /// What the log's byte bound counts.
    pub fn size(&self) -> usize {
        self.text.len() + self.frame.len() + std::mem::size_of::<Event>()
    }

    /// The event, encoded now: the one place an event's bytes are made.
    pub(crate) fn encoded(seq: u64, kind: EventKind, text: Box<str>, line: u64) -> Arc<Event> {
        let frame = sse::event(seq, kind.event_type(), &text);
        Arc::new(Event {
            seq,
            kind,
            text,
            line,
            frame,
        })
    }

    /// The event as a numbered line, if it is a message.
    pub fn as_line(&self) -> Option<jobstream_protocol::Line> {
        (self.kind == EventKind::Message).then(|| jobstream_protocol::Line {
            seq: self.seq,
            n: self.line,
            text: self.text.to_string(),
        })
    }
}

/// Bounds of one job's log. See [`crate::log`] for what happens beyond them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most events retained; the oldest are dropped beyond it.
    pub max_events: usize,
    /// Most bytes of encoded events retained; the oldest are dropped beyond it.
    pub max_bytes: usize,
    /// Largest message (UTF-8 bytes) a job may emit.
    pub max_message_bytes: usize,
    /// Most bytes of messages one job may say in all (what the store keeps
    /// of it); an emit beyond it is refused.
    pub max_job_bytes: u64,
    /// Most messages one job may say in all (each is a row in the store,
    /// however short); an emit beyond it is refused.
    pub max_job_events: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_events: 10_000,
            max_bytes: 4 * 1024 * 1024,
            max_message_bytes: 64 * 1024,
            max_job_bytes: 256 * 1024 * 1024,
            max_job_events: 4_000_000,
        }
    }
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The message is larger than `max_message_bytes`.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The job has said `limit` bytes in all, its bound
    /// (`JOBSTREAM_JOB_MAX_BYTES`).
    #[error("the job has said {limit} bytes, as much as one job may; nothing more is kept")]
    JobTooLarge { limit: u64 },
    /// The job has said `limit` messages in all, its bound
    /// (`JOBSTREAM_JOB_MAX_EVENTS`).
    #[error("the job has said {limit} messages, as many as one job may; nothing more is kept")]
    JobTooManyMessages { limit: u64 },
    /// An empty message cannot be carried by SSE: clients drop events whose
    /// data is empty.
    #[error("empty messages cannot be sent: SSE clients drop events with empty data")]
    Empty,
    /// The store took no writes for [`crate::store::STORE_WAIT`] (a full
    /// disk, a database that is down): nothing more can be kept.
    #[error("the job store is unavailable (a full disk?); nothing more can be kept")]
    StoreUnavailable,
    /// The job was asked to stop (cancelled, or the server is shutting
    /// down) while its emit waited for room in the store's buffer.
    #[error("the job was asked to stop")]
    Stopped,
    /// The job has ended; its log takes no more events.
    #[error("the job has ended; no more messages can be sent")]
    Closed,
    /// Progress must be a number from 0 to 1 with a label of at most
    /// [`MAX_PROGRESS_LABEL`] bytes.
    #[error("progress must be a fraction from 0 to 1 with a label of at most 200 bytes")]
    BadProgress,
}

/// The `event: gap` SSE frame for `gap`. Its id is the last lost event's,
/// so a client that reconnects after it resumes with the retained events.
pub fn gap_frame(gap: &Gap) -> Bytes {
    // Serialising three integers cannot fail.
    let data = serde_json::to_string(gap).expect("Gap serialises");
    sse::event(gap.to, Some(event::GAP), &data)
}

/// A consistent view of a log at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The job's state at that instant.
    pub state: JobState,
    /// The error of a failed job.
    pub error: Option<String>,
    /// All retained events, oldest first.
    pub events: Vec<Arc<Event>>,
    /// How many events were dropped from the front of the log.
    pub dropped: u64,
    /// Sequence id of the last event appended (0 when there is none).
    pub last_seq: u64,
    /// The last progress reported.
    pub progress: Option<Progress>,
    /// When it started running (Unix ms).
    pub started_at: Option<u64>,
    /// When it ended (Unix ms).
    pub finished_at: Option<u64>,
}

/// What a reader gets from [`Subscription::try_next`](crate::Subscription::try_next).
#[derive(Debug)]
pub enum Poll {
    /// New events (possibly after a gap).
    Batch(Batch),
    /// Nothing new yet; the job is still going.
    Pending,
    /// The log is closed and the reader has everything.
    Done,
}

/// Events read in one go.
#[derive(Debug)]
pub struct Batch {
    /// Set when events the reader needed had been dropped; comes before `events`.
    pub gap: Option<Gap>,
    /// The events, in order, without holes.
    pub events: Vec<Arc<Event>>,
}

impl Batch {
    /// The batch as SSE bytes, ready to write: the gap frame (if any) then
    /// every event's shared frame.
    /// Frame `i` of [`Batch::frames`], without walking the ones before.
    pub fn frame(&self, i: usize) -> Option<Bytes> {
        match (&self.gap, i) {
            (Some(g), 0) => Some(gap_frame(g)),
            (Some(_), i) => self.events.get(i - 1).map(|e| e.frame.clone()),
            (None, i) => self.events.get(i).map(|e| e.frame.clone()),
        }
    }

    pub fn frames(&self) -> impl Iterator<Item = Bytes> + '_ {
        self.gap
            .map(|g| gap_frame(&g))
            .into_iter()
            .chain(self.events.iter().map(|e| e.frame.clone()))
    }
}

/// Most events one read hands out, so a reader far behind takes the lock
/// for a bounded time and writes a bounded chunk.
pub const MAX_BATCH: usize = 512;

/// Most bytes of event text one read from the store hands out (besides
/// [`MAX_BATCH`]): what a reader catching up from the store holds at once.
/// At least one event is always read, so a page may exceed it by one
/// message (at most `max_message_bytes`).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
