//! The per-job event log: the one place a job's output lives.
//!
//! A job appends events; each gets the next sequence id (1, 2, 3, ...) and is
//! encoded to SSE bytes right away, once. Readers never receive events pushed
//! into a per-reader queue. A [`Subscription`] is only a cursor (the last
//! sequence id it has seen) plus a `watch` receiver that wakes it when the
//! log grows. To read, it takes every retained event after its cursor under
//! the log's lock. That gives three properties by construction:
//!
//! * **No race between buffering and connecting.** Events emitted before
//!   anyone listens are in the log; a subscriber that connects later reads
//!   them from there, then waits for more. The wake-up is a version counter:
//!   an append that lands between "read the log" and "wait" bumps the version
//!   and the wait returns at once, so nothing is missed and nothing repeats.
//! * **Slow readers cost nothing extra.** A reader that is behind simply
//!   has an older cursor. The job never waits for it and no memory is held
//!   for it. If the events it needs were dropped to keep the log within its
//!   bounds, it is told how many with a [`Gap`] and continues from the oldest
//!   retained event.
//! * **Fan-out is cheap.** Every reader gets clones of the same [`Bytes`]
//!   (a reference count), never a re-encoding.
//!
//! Bounds ([`LogLimits`]): at most `max_events` events and `max_bytes` bytes
//! of encoded events are retained per job; beyond that the oldest are
//! dropped. One message may be at most `max_message_bytes`; a larger one is
//! refused with [`AppendError::TooLarge`] and nothing is cut silently. The
//! terminal `end` and close events are always appended, whatever the bounds.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc::PermitIterator;
use tokio::sync::{mpsc, watch};

use crate::id::JobId;
use crate::sse;
use crate::store::{now_ms, JobRecord, Op, StoredEvent, Write};
use jobstream_protocol::{event, End};
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
    /// The event encoded as SSE, shared by every reader.
    pub frame: Bytes,
}

/// Bounds of one job's log. See the module docs for what happens beyond them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most events retained; the oldest are dropped beyond it.
    pub max_events: usize,
    /// Most bytes of encoded events retained; the oldest are dropped beyond it.
    pub max_bytes: usize,
    /// Largest message (UTF-8 bytes) a job may emit.
    pub max_message_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_events: 10_000,
            max_bytes: 4 * 1024 * 1024,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The message is larger than `max_message_bytes`.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// An empty message cannot be carried by SSE: clients drop events whose
    /// data is empty.
    #[error("empty messages cannot be sent: SSE clients drop events with empty data")]
    Empty,
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

struct LogState {
    events: VecDeque<Arc<Event>>,
    /// Encoded bytes of the retained events.
    bytes: usize,
    /// The sequence id the next event gets.
    next_seq: u64,
    state: JobState,
    error: Option<String>,
    /// Set by [`EventLog::close`]; no append is accepted after it.
    closed: bool,
    progress: Option<Progress>,
    started_at: Option<u64>,
    finished_at: Option<u64>,
    /// The owner's feed counter at this log's last visible change.
    stamp: u64,
}

impl LogState {
    fn first_seq(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |e| e.seq)
    }
}

/// Where a log sends its writes, and whose feed it bumps.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    /// The job the log belongs to.
    pub job: JobId,
    /// The writer task's queue.
    pub writes: mpsc::Sender<Op>,
    /// The owner's feed: its counter goes up on every visible change of
    /// any of the owner's jobs (state, progress).
    pub feed: Arc<watch::Sender<u64>>,
}

type Permits<'a> = Option<PermitIterator<'a, Op>>;

fn send(permits: &mut Permits<'_>, write: impl FnOnce() -> Write) {
    if let Some(permit) = permits.as_mut().and_then(Iterator::next) {
        permit.send(Op::Write(write()));
    }
}

/// A job's event log. Cheap to share: clone the `Arc`.
pub struct EventLog {
    limits: LogLimits,
    /// std `Mutex`: it is held only to push or to clone a few `Arc`s, never
    /// across an `.await`.
    state: Mutex<LogState>,
    /// Carries the last appended sequence id; readers wait on it.
    version: watch::Sender<u64>,
    /// Persistence and the owner's feed; `None` for a log that lives in
    /// memory only (tests, and finished jobs loaded back from the store).
    links: Option<Links>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a reader gets from [`Subscription::try_next`].
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

impl EventLog {
    /// A new, empty log for a queued job, in memory only.
    pub fn new(limits: LogLimits) -> Arc<Self> {
        Self::build(limits, None, 1, JobState::Queued)
    }

    fn build(limits: LogLimits, links: Option<Links>, next_seq: u64, state: JobState) -> Arc<Self> {
        Arc::new(EventLog {
            limits,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                bytes: 0,
                next_seq,
                state,
                error: None,
                closed: false,
                progress: None,
                started_at: None,
                finished_at: None,
                stamp: 0,
            }),
            version: watch::Sender::new(next_seq - 1),
            links,
        })
    }

    /// A persisted log for a new or recovered job. Its first event gets id
    /// `next_seq`.
    pub(crate) fn linked(limits: LogLimits, links: Links, next_seq: u64) -> Arc<Self> {
        Self::build(limits, Some(links), next_seq.max(1), JobState::Queued)
    }

    /// Marks the job as changed for its owner's job list. Called once the
    /// job can be looked up: a list reader woken by the mark must find it.
    pub(crate) fn announce(&self) {
        self.touch(&mut self.lock());
    }

    /// A log rebuilt from the store: the job's record and its last stored
    /// events (oldest first, ids increasing). Closed if the job has ended.
    /// With `links`, later appends are persisted and continue from
    /// `next_seq` (at least one past the last stored id).
    pub(crate) fn restore(
        limits: LogLimits,
        record: &JobRecord,
        events: Vec<StoredEvent>,
        links: Option<Links>,
        next_seq: u64,
    ) -> Arc<Self> {
        let last = events.last().map_or(0, |e| e.seq);
        let log = Self::build(limits, links, next_seq.max(last + 1), record.state);
        {
            let mut st = log.lock();
            for e in events {
                let frame = sse::event(e.seq, e.kind.event_type(), &e.text);
                log.keep(
                    &mut st,
                    Arc::new(Event {
                        seq: e.seq,
                        kind: e.kind,
                        text: e.text.into_boxed_str(),
                        frame,
                    }),
                );
            }
            st.error.clone_from(&record.error);
            st.closed = record.state.is_terminal();
            st.progress = record.progress.map(|fraction| Progress {
                fraction,
                label: record.progress_label.clone(),
            });
            st.started_at = record.started_at;
            st.finished_at = record.finished_at;
        }
        log.version.send_replace(log.last_seq());
        log
    }

    /// The log's bounds.
    pub fn limits(&self) -> LogLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding this lock can only come from an allocation
        // failure; the data is still consistent, so keep serving it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Room for `n` writes in the writer's queue, taken before the log's
    /// lock so that the writes are sent in the log's order, under it.
    async fn reserve(&self, n: usize) -> Result<Permits<'_>, AppendError> {
        match &self.links {
            None => Ok(None),
            Some(links) => links
                .writes
                .reserve_many(n)
                .await
                .map(Some)
                .map_err(|_| AppendError::Closed),
        }
    }

    /// Marks a visible change for the owner's job list.
    fn touch(&self, st: &mut LogState) {
        if let Some(links) = &self.links {
            links.feed.send_modify(|v| {
                *v += 1;
                st.stamp = *v;
            });
        }
    }

    fn job(&self) -> Option<JobId> {
        self.links.as_ref().map(|l| l.job)
    }

    /// Appends a message from the job. Returns its sequence id. Waits only
    /// while the store's write buffer is full.
    pub async fn append_message(&self, text: &str) -> Result<u64, AppendError> {
        if text.is_empty() {
            return Err(AppendError::Empty);
        }
        if text.len() > self.limits.max_message_bytes {
            return Err(AppendError::TooLarge {
                size: text.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        let mut permits = self.reserve(1).await?;
        let seq = {
            let mut st = self.lock();
            if st.closed {
                return Err(AppendError::Closed);
            }
            let event = self.push(&mut st, EventKind::Message, text.into());
            if let Some(job) = self.job() {
                send(&mut permits, || Write::Event(job, event));
            }
            st.next_seq - 1
        };
        // Outside the lock: waking readers must not hold up the job.
        self.version.send_replace(seq);
        Ok(seq)
    }

    /// Records that the job started running.
    pub async fn set_running(&self) -> Result<u64, AppendError> {
        let mut permits = self.reserve(2).await?;
        let seq = {
            let mut st = self.lock();
            if st.closed {
                return Err(AppendError::Closed);
            }
            let at = now_ms();
            st.state = JobState::Running;
            st.started_at = Some(at);
            let event = self.push(&mut st, EventKind::State, JobState::Running.as_str().into());
            if let Some(job) = self.job() {
                send(&mut permits, || Write::Event(job, event));
                send(&mut permits, || Write::State {
                    job,
                    state: JobState::Running,
                    at,
                    error: None,
                });
            }
            self.touch(&mut st);
            st.next_seq - 1
        };
        self.version.send_replace(seq);
        Ok(seq)
    }

    /// Records progress: `fraction` from 0 to 1 and an optional label. An
    /// event (and a write) is made only when the whole percentage or the
    /// label changes, so a job may call this as often as it likes. Returns
    /// the event's id, if one was made.
    pub async fn set_progress(
        &self,
        fraction: f64,
        label: Option<&str>,
    ) -> Result<Option<u64>, AppendError> {
        if !(0.0..=1.0).contains(&fraction) || label.is_some_and(|l| l.len() > MAX_PROGRESS_LABEL) {
            return Err(AppendError::BadProgress);
        }
        let percent = |f: f64| (f * 100.0).floor() as u32;
        {
            let st = self.lock();
            if let Some(p) = &st.progress {
                if percent(p.fraction) == percent(fraction) && p.label.as_deref() == label {
                    return Ok(None);
                }
            }
        }
        let progress = Progress {
            fraction,
            label: label.map(str::to_owned),
        };
        let data = serde_json::to_string(&progress).expect("progress serialises");
        let mut permits = self.reserve(2).await?;
        let seq = {
            let mut st = self.lock();
            if st.closed {
                return Err(AppendError::Closed);
            }
            let event = self.push(&mut st, EventKind::Progress, data.into_boxed_str());
            if let Some(job) = self.job() {
                send(&mut permits, || Write::Event(job, event));
                send(&mut permits, || Write::Progress {
                    job,
                    fraction,
                    label: progress.label.clone(),
                });
            }
            st.progress = Some(progress);
            self.touch(&mut st);
            st.next_seq - 1
        };
        self.version.send_replace(seq);
        Ok(Some(seq))
    }

    /// Ends the log: appends the `end` event with the final state and then
    /// the close sentinel. Nothing can be appended afterwards.
    pub async fn close(&self, state: JobState, error: Option<String>) -> Result<u64, AppendError> {
        debug_assert!(state.is_terminal());
        let data = serde_json::to_string(&End {
            state,
            error: error.clone(),
        })
        .expect("a state and a string serialise");
        let mut permits = self.reserve(3).await?;
        let last = {
            let mut st = self.lock();
            if st.closed {
                return Err(AppendError::Closed);
            }
            let at = now_ms();
            st.state = state;
            st.error.clone_from(&error);
            st.finished_at = Some(at);
            let end = self.push(&mut st, EventKind::End, data.into_boxed_str());
            let close = self.push(&mut st, EventKind::Close, sse::CLOSE_SENTINEL.into());
            if let Some(job) = self.job() {
                send(&mut permits, || Write::Event(job, end));
                send(&mut permits, || Write::Event(job, close));
                send(&mut permits, || Write::State {
                    job,
                    state,
                    at,
                    error,
                });
            }
            st.closed = true;
            self.touch(&mut st);
            st.next_seq - 1
        };
        self.version.send_replace(last);
        Ok(last)
    }

    fn push(&self, st: &mut LogState, kind: EventKind, text: Box<str>) -> Arc<Event> {
        let seq = st.next_seq;
        st.next_seq += 1;
        let frame = sse::event(seq, kind.event_type(), &text);
        let event = Arc::new(Event {
            seq,
            kind,
            text,
            frame,
        });
        self.keep(st, Arc::clone(&event));
        event
    }

    fn keep(&self, st: &mut LogState, event: Arc<Event>) {
        st.bytes += event.frame.len();
        st.events.push_back(event);
        // Drop the oldest events beyond the bounds, but never the one just
        // pushed: a single message is already bounded by max_message_bytes.
        while st.events.len() > 1
            && (st.events.len() > self.limits.max_events || st.bytes > self.limits.max_bytes)
        {
            if let Some(old) = st.events.pop_front() {
                st.bytes -= old.frame.len();
            }
        }
    }

    /// Sequence id of the last event appended (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// The job's current state.
    pub fn state(&self) -> JobState {
        self.lock().state
    }

    /// Whether the log is closed (the job has ended).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many readers ([`Subscription`]s) the log has now.
    pub fn readers(&self) -> usize {
        self.version.receiver_count()
    }

    /// The owner's feed counter at this log's last visible change.
    pub fn stamp(&self) -> u64 {
        self.lock().stamp
    }

    /// Everything retained, with the state, as of now.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.lock();
        Snapshot {
            state: st.state,
            error: st.error.clone(),
            events: st.events.iter().cloned().collect(),
            dropped: st.first_seq() - 1,
            last_seq: st.next_seq - 1,
            progress: st.progress.clone(),
            started_at: st.started_at,
            finished_at: st.finished_at,
        }
    }

    /// The state, progress and times, without the events.
    pub fn status(&self) -> Snapshot {
        let st = self.lock();
        Snapshot {
            state: st.state,
            error: st.error.clone(),
            events: Vec::new(),
            dropped: st.first_seq() - 1,
            last_seq: st.next_seq - 1,
            progress: st.progress.clone(),
            started_at: st.started_at,
            finished_at: st.finished_at,
        }
    }

    /// A reader that will receive every event after sequence id `after`
    /// (0: from the beginning). The caller checks `after <= last_seq()`.
    pub fn subscribe(self: &Arc<Self>, after: u64) -> Subscription {
        Subscription {
            rx: self.version.subscribe(),
            log: Arc::clone(self),
            cursor: after,
        }
    }

    fn read_after(&self, cursor: u64, max: usize) -> Poll {
        let st = self.lock();
        let last = st.next_seq - 1;
        if cursor >= last {
            return if st.closed { Poll::Done } else { Poll::Pending };
        }
        let first = st.first_seq();
        let gap = (cursor + 1 < first).then(|| Gap {
            lost: first - cursor - 1,
            from: cursor + 1,
            to: first - 1,
        });
        // Ids increase along the deque (with a hole only where a crash lost
        // events), so the reader's next event is found by bisection.
        let start = st.events.partition_point(|e| e.seq <= cursor);
        let events: Vec<_> = st.events.range(start..).take(max).cloned().collect();
        if events.is_empty() && gap.is_none() {
            // Only ids skipped by a restart lie ahead; nothing to hand out.
            return if st.closed { Poll::Done } else { Poll::Pending };
        }
        Poll::Batch(Batch { gap, events })
    }
}

/// A reader's position in a log. See the module docs.
pub struct Subscription {
    log: Arc<EventLog>,
    rx: watch::Receiver<u64>,
    /// The last sequence id handed to this reader.
    cursor: u64,
}

impl Subscription {
    /// The last sequence id this reader has received.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Reads what is there now, without waiting.
    pub fn try_next(&mut self) -> Poll {
        let poll = self.log.read_after(self.cursor, MAX_BATCH);
        if let Poll::Batch(b) = &poll {
            if let Some(e) = b.events.last() {
                self.cursor = e.seq;
            } else if let Some(g) = b.gap {
                self.cursor = g.to;
            }
        }
        poll
    }

    /// Waits for the next events. `None` once the log is closed and this
    /// reader has received everything.
    pub async fn next(&mut self) -> Option<Batch> {
        loop {
            // Mark the current version as seen *before* reading: an append
            // after this line changes the version, so `changed()` below
            // returns at once instead of sleeping through it.
            self.rx.borrow_and_update();
            match self.try_next() {
                Poll::Batch(b) => return Some(b),
                Poll::Done => return None,
                Poll::Pending => {}
            }
            if self.rx.changed().await.is_err() {
                // The sender lives in the log, which this subscription keeps
                // alive, so this cannot happen; if it did, re-reading is safe.
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(b: &Batch) -> Vec<u64> {
        b.events.iter().map(|e| e.seq).collect()
    }

    fn texts(b: &Batch) -> Vec<&str> {
        b.events.iter().map(|e| &*e.text).collect()
    }

    fn batch(p: Poll) -> Batch {
        match p {
            Poll::Batch(b) => b,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn buffers_before_anyone_subscribes() {
        let log = EventLog::new(LogLimits::default());
        log.append_message("one").await.unwrap();
        log.append_message("two").await.unwrap();
        let mut sub = log.subscribe(0);
        let b = batch(sub.try_next());
        assert_eq!(texts(&b), ["one", "two"]);
        assert_eq!(seqs(&b), [1, 2]);
        assert!(b.gap.is_none());
        assert!(matches!(sub.try_next(), Poll::Pending));
    }

    #[tokio::test]
    async fn append_between_read_and_wait_is_not_missed() {
        // The recipe's race, forced: the reader has read the buffer and is
        // about to wait when the job appends.
        let log = EventLog::new(LogLimits::default());
        log.append_message("before").await.unwrap();
        let mut sub = log.subscribe(0);
        let first = sub.next().await.unwrap();
        assert_eq!(texts(&first), ["before"]);
        // `next` returned right after its read; the append now lands in the
        // window between that read and the next wait.
        log.append_message("between").await.unwrap();
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
            .await
            .expect("the reader was woken")
            .unwrap();
        assert_eq!(texts(&second), ["between"]);
        assert_eq!(seqs(&second), [2]);
    }

    #[tokio::test]
    async fn subscriber_after_close_reads_everything_then_ends() {
        let log = EventLog::new(LogLimits::default());
        log.set_running().await.unwrap();
        log.append_message("a").await.unwrap();
        log.close(JobState::Succeeded, None).await.unwrap();
        let mut sub = log.subscribe(0);
        let b = sub.next().await.unwrap();
        let kinds: Vec<_> = b.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::State,
                EventKind::Message,
                EventKind::End,
                EventKind::Close
            ]
        );
        assert_eq!(&*b.events[2].text, r#"{"state":"succeeded"}"#);
        assert_eq!(&*b.events[3].text, sse::CLOSE_SENTINEL);
        assert!(sub.next().await.is_none());
        assert_eq!(log.state(), JobState::Succeeded);
        assert_eq!(log.append_message("late").await, Err(AppendError::Closed));
    }

    #[tokio::test]
    async fn every_reader_shares_the_same_encoded_bytes() {
        let log = EventLog::new(LogLimits::default());
        log.append_message("shared").await.unwrap();
        let a = batch(log.subscribe(0).try_next());
        let b = batch(log.subscribe(0).try_next());
        let (fa, fb) = (a.frames().next().unwrap(), b.frames().next().unwrap());
        // Same allocation: encoded once, reference-counted for each reader.
        assert_eq!(fa.as_ptr(), fb.as_ptr());
        assert_eq!(fa.as_ptr(), log.snapshot().events[0].frame.as_ptr());
    }

    #[tokio::test]
    async fn message_equal_to_sentinel_is_an_ordinary_message() {
        let log = EventLog::new(LogLimits::default());
        log.append_message(sse::CLOSE_SENTINEL).await.unwrap();
        log.append_message("after").await.unwrap();
        assert!(!log.is_closed());
        let b = batch(log.subscribe(0).try_next());
        assert_eq!(b.events[0].kind, EventKind::Message);
        assert_eq!(texts(&b), [sse::CLOSE_SENTINEL, "after"]);
    }

    #[tokio::test]
    async fn oversized_and_empty_messages_are_refused() {
        let limits = LogLimits {
            max_message_bytes: 8,
            ..LogLimits::default()
        };
        let log = EventLog::new(limits);
        assert_eq!(
            log.append_message("123456789").await,
            Err(AppendError::TooLarge { size: 9, limit: 8 })
        );
        assert_eq!(log.append_message("").await, Err(AppendError::Empty));
        assert_eq!(log.append_message("12345678").await, Ok(1));
    }

    #[tokio::test]
    async fn bound_on_events_drops_oldest_and_reports_gap() {
        let limits = LogLimits {
            max_events: 3,
            ..LogLimits::default()
        };
        let log = EventLog::new(limits);
        for i in 1..=5 {
            log.append_message(&format!("m{i}")).await.unwrap();
        }
        let snap = log.snapshot();
        assert_eq!(snap.dropped, 2);
        assert_eq!(snap.events.len(), 3);
        assert_eq!(snap.last_seq, 5);

        let mut from_start = log.subscribe(0);
        let b = batch(from_start.try_next());
        assert_eq!(
            b.gap,
            Some(Gap {
                lost: 2,
                from: 1,
                to: 2
            })
        );
        assert_eq!(seqs(&b), [3, 4, 5]);
        let frames: Vec<u8> = b.frames().flat_map(|f| f.to_vec()).collect();
        assert!(
            frames.starts_with(b"id: 2\nevent: gap\ndata: {\"lost\":2,\"from\":1,\"to\":2}\n\n")
        );

        // A reader that had seen event 2 lost nothing.
        let b = batch(log.subscribe(2).try_next());
        assert_eq!(b.gap, None);
        assert_eq!(seqs(&b), [3, 4, 5]);
    }

    #[tokio::test]
    async fn bound_on_bytes_drops_oldest() {
        // "id: N\ndata: xxxxxxxxxx\n\n" is 25 bytes for a one-digit id.
        let limits = LogLimits {
            max_bytes: 60,
            ..LogLimits::default()
        };
        let log = EventLog::new(limits);
        for _ in 0..4 {
            log.append_message("xxxxxxxxxx").await.unwrap();
        }
        let snap = log.snapshot();
        assert_eq!(snap.events.len(), 2);
        assert_eq!(snap.events[0].seq, 3);
        assert!(snap.events.iter().map(|e| e.frame.len()).sum::<usize>() <= 60);
    }

    #[tokio::test]
    async fn terminal_events_are_kept_even_past_the_bound() {
        let limits = LogLimits {
            max_events: 1,
            ..LogLimits::default()
        };
        let log = EventLog::new(limits);
        log.append_message("a").await.unwrap();
        log.close(JobState::Failed, Some("boom".into()))
            .await
            .unwrap();
        let snap = log.snapshot();
        assert_eq!(snap.state, JobState::Failed);
        assert_eq!(snap.error.as_deref(), Some("boom"));
        // Only the sentinel is retained, but the state survives in the log.
        assert_eq!(snap.events.len(), 1);
        assert_eq!(snap.events[0].kind, EventKind::Close);
    }

    #[tokio::test]
    async fn a_far_behind_reader_gets_bounded_batches() {
        let log = EventLog::new(LogLimits::default());
        for i in 0..(MAX_BATCH + 10) {
            log.append_message(&i.to_string()).await.unwrap();
        }
        let mut sub = log.subscribe(0);
        assert_eq!(batch(sub.try_next()).events.len(), MAX_BATCH);
        assert_eq!(batch(sub.try_next()).events.len(), 10);
        assert!(matches!(sub.try_next(), Poll::Pending));
    }

    #[test]
    fn the_race_under_real_threads_never_gaps_or_duplicates() {
        // Many readers subscribe at arbitrary moments while a writer
        // appends from another thread; each must see 1..=N exactly once.
        const N: u64 = 2_000;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        for round in 0..20 {
            let log = EventLog::new(LogLimits::default());
            let readers: Vec<_> = (0..8)
                .map(|r| {
                    let log = Arc::clone(&log);
                    rt.spawn(async move {
                        // Stagger the moment each reader connects.
                        for _ in 0..(r * round % 7) {
                            tokio::task::yield_now().await;
                        }
                        let mut sub = log.subscribe(0);
                        let mut seen = Vec::new();
                        while let Some(b) = sub.next().await {
                            assert!(b.gap.is_none());
                            seen.extend(b.events.iter().map(|e| e.seq));
                        }
                        seen
                    })
                })
                .collect();
            let writer = {
                let log = Arc::clone(&log);
                let handle = rt.handle().clone();
                std::thread::spawn(move || {
                    for i in 0..N - 2 {
                        handle.block_on(log.append_message(&i.to_string())).unwrap();
                        if i % 97 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    handle
                        .block_on(log.close(JobState::Succeeded, None))
                        .unwrap();
                })
            };
            writer.join().unwrap();
            for r in readers {
                let seen = rt.block_on(r).unwrap();
                assert_eq!(seen, (1..=N).collect::<Vec<_>>(), "round {round}");
            }
        }
    }
}
