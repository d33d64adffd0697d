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
//!   bounds, a [`Reader`](crate::Reader) reads them from the store, a page
//!   at a time, and then continues here; a bare [`Subscription`] (a log in
//!   memory only) is told how many with a [`Gap`] and continues from the
//!   oldest retained event.
//! * **Fan-out is cheap.** Every reader gets clones of the same
//!   [`Bytes`](bytes::Bytes) (a reference count), never a re-encoding.
//!
//! Bounds ([`LogLimits`]): at most `max_events` events and `max_bytes` bytes
//! of encoded events are retained per job; beyond that the oldest are
//! dropped. One message may be at most `max_message_bytes`; a larger one is
//! refused with [`AppendError::TooLarge`] and nothing is cut silently. The
//! terminal `end` and close events are always appended, whatever the bounds.//!
//! This module is the log in memory only; [`crate::journal`] wraps it as
//! [`EventLog`](crate::EventLog), which also persists each change.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

pub use crate::model::{
    gap_frame, AppendError, Batch, Event, EventKind, Gap, JobState, LogLimits, Poll, Progress,
    Snapshot, MAX_BATCH, MAX_PROGRESS_LABEL,
};

/// What the log's lock guards. The journal changes the job's fields
/// directly, under the same lock as the events they go with.
pub(crate) struct LogState {
    events: VecDeque<Arc<Event>>,
    /// Memory the retained events hold ([`Event::size`]: text, frame and
    /// the event itself).
    bytes: usize,
    /// The sequence id the next event gets.
    next_seq: u64,
    /// Messages said so far (the last message's line number).
    lines: u64,
    /// Bytes of messages said so far in this run of the job.
    pub(crate) said: u64,
    /// Messages said so far in this run of the job.
    pub(crate) said_messages: u64,
    /// The highest id of an event that existed and is no longer here
    /// (dropped by the bounds, or older than what was restored). Ids a
    /// restart skipped never existed: a reader is told of a gap only for
    /// ids up to this one.
    pub(crate) dropped_through: u64,
    pub(crate) state: JobState,
    pub(crate) error: Option<String>,
    /// Set when the job ends; no append is accepted after it.
    pub(crate) closed: bool,
    pub(crate) progress: Option<Progress>,
    pub(crate) started_at: Option<u64>,
    pub(crate) finished_at: Option<u64>,
    /// The owner's feed counter at this log's last visible change.
    pub(crate) stamp: u64,
}

impl LogState {
    fn first_seq(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |e| e.seq)
    }

    /// Sequence id of the last event appended (0 when there is none).
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The state, progress and times, with `events`.
    fn view(&self, events: Vec<Arc<Event>>) -> Snapshot {
        Snapshot {
            state: self.state,
            error: self.error.clone(),
            events,
            dropped: self.dropped_through,
            last_seq: self.last_seq(),
            progress: self.progress.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// A job's events in memory, and the version readers wait on.
pub(crate) struct Log {
    limits: LogLimits,
    /// std `Mutex`: it is held only to push or to clone a few `Arc`s, never
    /// across an `.await`.
    state: Mutex<LogState>,
    /// Carries the last appended sequence id; readers wait on it.
    version: watch::Sender<u64>,
}

impl Log {
    /// An empty log whose first event gets id `next_seq` (at least 1).
    pub(crate) fn new(limits: LogLimits, next_seq: u64, state: JobState) -> Arc<Self> {
        Arc::new(Log {
            limits,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                bytes: 0,
                next_seq,
                lines: 0,
                said: 0,
                said_messages: 0,
                dropped_through: 0,
                state,
                error: None,
                closed: false,
                progress: None,
                started_at: None,
                finished_at: None,
                stamp: 0,
            }),
            version: watch::Sender::new(next_seq - 1),
        })
    }

    pub(crate) fn limits(&self) -> LogLimits {
        self.limits
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding this lock can only come from an allocation
        // failure; the data is still consistent, so keep serving it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the readers. Called after the lock is released: waking them
    /// must not hold up the job.
    pub(crate) fn publish(&self, last_seq: u64) {
        self.version.send_replace(last_seq);
    }

    /// Appends an event with the next sequence id.
    pub(crate) fn push(&self, st: &mut LogState, kind: EventKind, text: Box<str>) -> Arc<Event> {
        if kind == EventKind::Message {
            st.lines += 1;
        }
        let event = Event::encoded(st.next_seq, kind, text, st.lines);
        st.next_seq += 1;
        self.keep(st, Arc::clone(&event));
        event
    }

    /// Retains `event` (its id already given out), then drops the oldest
    /// events beyond the bounds.
    pub(crate) fn keep(&self, st: &mut LogState, event: Arc<Event>) {
        st.lines = st.lines.max(event.line);
        st.bytes += event.size();
        st.events.push_back(event);
        // Never the one just pushed: a single message is already bounded
        // by max_message_bytes.
        while st.events.len() > 1
            && (st.events.len() > self.limits.max_events || st.bytes > self.limits.max_bytes)
        {
            if let Some(old) = st.events.pop_front() {
                st.bytes -= old.size();
                st.dropped_through = old.seq;
            }
        }
    }

    /// Makes the next event's id at least `next_seq` (ids skipped never
    /// existed).
    pub(crate) fn skip_to(&self, st: &mut LogState, next_seq: u64) {
        st.next_seq = st.next_seq.max(next_seq);
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.lock().last_seq()
    }

    pub(crate) fn state(&self) -> JobState {
        self.lock().state
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn readers(&self) -> usize {
        self.version.receiver_count()
    }

    pub(crate) fn stamp(&self) -> u64 {
        self.lock().stamp
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let st = self.lock();
        st.view(st.events.iter().cloned().collect())
    }

    pub(crate) fn status(&self) -> Snapshot {
        self.lock().view(Vec::new())
    }

    pub(crate) fn subscribe(self: &Arc<Self>, after: u64) -> Subscription {
        Subscription {
            rx: self.version.subscribe(),
            log: Arc::clone(self),
            cursor: after,
        }
    }

    /// The newest `limit` messages before sequence id `before`, oldest
    /// first, as far as memory holds them; and whether older events may
    /// exist that are not here (the store may hold more lines).
    pub(crate) fn lines_before(&self, before: u64, limit: usize) -> (Vec<Arc<Event>>, Option<u64>) {
        let st = self.lock();
        let end = st.events.partition_point(|e| e.seq < before);
        let mut lines: Vec<_> = st
            .events
            .range(..end)
            .rev()
            .filter(|e| e.kind == EventKind::Message)
            .take(limit)
            .cloned()
            .collect();
        lines.reverse();
        // Below the first event here, events existed up to dropped_through.
        let older = (st.dropped_through > 0).then(|| st.first_seq());
        (lines, older)
    }

    /// What follows `cursor`. With `store` set, a cursor below the events
    /// in memory is answered [`Read::Behind`] (the caller reads the store);
    /// without, the events not in memory are reported as a gap.
    fn read_after(&self, cursor: u64, max: usize, store: bool) -> Read {
        let st = self.lock();
        if cursor >= st.last_seq() {
            return Read::Ready(if st.closed { Poll::Done } else { Poll::Pending });
        }
        let first = st.first_seq();
        let behind = cursor < st.dropped_through && cursor + 1 < first;
        if behind && store {
            return Read::Behind {
                first,
                through: st.dropped_through.min(first - 1),
            };
        }
        // The gap ends just before the first event here, so a reader that
        // resumes after it continues with that event.
        let gap = behind.then(|| Gap {
            lost: st.dropped_through - cursor,
            from: cursor + 1,
            to: first - 1,
        });
        // Ids increase along the deque (with a hole only where a crash lost
        // events), so the reader's next event is found by bisection.
        let start = st.events.partition_point(|e| e.seq <= cursor);
        let events: Vec<_> = st.events.range(start..).take(max).cloned().collect();
        if events.is_empty() && gap.is_none() {
            // Only ids skipped by a restart lie ahead; nothing to hand out.
            return Read::Ready(if st.closed { Poll::Done } else { Poll::Pending });
        }
        Read::Ready(Poll::Batch(Batch { gap, events }))
    }
}

/// What a read of the log in memory found.
pub(crate) enum Read {
    /// What memory answers.
    Ready(Poll),
    /// The reader's next events are older than those in memory: events
    /// `cursor + 1 ..= through` existed (the store may still have them);
    /// memory continues at `first`.
    Behind { first: u64, through: u64 },
}

/// A reader's position in a log. See the module docs.
pub struct Subscription {
    log: Arc<Log>,
    rx: watch::Receiver<u64>,
    /// The last sequence id handed to this reader.
    cursor: u64,
}

impl Subscription {
    /// The last sequence id this reader has received.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Reads what is there now, without waiting. Events no longer in
    /// memory are reported as a gap: this reader has no store to ask (see
    /// [`crate::Reader`] for one that has).
    pub fn try_next(&mut self) -> Poll {
        match self.read(false) {
            Read::Ready(poll) => poll,
            Read::Behind { .. } => unreachable!("a read without a store reports a gap"),
        }
    }

    /// Reads what memory has after the cursor, and moves the cursor past it.
    pub(crate) fn read(&mut self, store: bool) -> Read {
        let read = self.log.read_after(self.cursor, MAX_BATCH, store);
        if let Read::Ready(Poll::Batch(b)) = &read {
            if let Some(e) = b.events.last() {
                self.cursor = e.seq;
            } else if let Some(g) = b.gap {
                self.cursor = g.to;
            }
        }
        read
    }

    /// Moves the cursor to `seq`: the reader got the events up to it from
    /// elsewhere (the store). Never backwards.
    pub(crate) fn advance(&mut self, seq: u64) {
        self.cursor = self.cursor.max(seq);
    }

    /// Marks the log's current version as seen: an append after this call
    /// makes [`Subscription::changed`] return at once.
    pub(crate) fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Waits until the log changes after the last [`Subscription::mark_seen`].
    pub(crate) async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The sender lives in the log, which this subscription keeps
            // alive, so this cannot happen; if it did, re-reading is safe.
            tokio::task::yield_now().await;
        }
    }

    /// Waits for the next events. `None` once the log is closed and this
    /// reader has received everything.
    pub async fn next(&mut self) -> Option<Batch> {
        loop {
            // Mark the current version as seen *before* reading: an append
            // after this line changes the version, so `changed()` below
            // returns at once instead of sleeping through it.
            self.mark_seen();
            match self.try_next() {
                Poll::Batch(b) => return Some(b),
                Poll::Done => return None,
                Poll::Pending => self.changed().await,
            }
        }
    }
}
