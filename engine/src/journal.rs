//! The write path of a job's log: every change goes through one commit,
//! which keeps the log in memory, the store and the owner's feed in step.
//!
//! A commit takes room in the writer task's queue *before* the log's lock
//! (waiting there only while the store is behind), then under the lock
//! checks that the log is open, pushes its events and sends its writes, so
//! the store receives them in the log's order. A change visible in the job
//! list (state, progress) also bumps the owner's feed counter and stamps the
//! log with it. Readers are woken last, outside the lock.

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc::PermitIterator;
use tokio::sync::{mpsc, watch};

use crate::id::JobId;
use crate::log::{Log, LogState, Subscription};
use crate::model::{
    AppendError, Event, EventKind, JobState, LogLimits, Progress, Snapshot, MAX_PROGRESS_LABEL,
};
use crate::sse;
use crate::store::{now_ms, Op, Write, STORE_WAIT, WRITE_BUFFER_BYTES};
use jobstream_protocol::End;

mod mirror;

/// Which job a log belongs to, and whose feed it bumps.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    /// The job the log belongs to.
    pub job: JobId,
    /// The owner's feed: its counter goes up on every visible change of
    /// any of the owner's jobs (state, progress).
    pub feed: Arc<watch::Sender<u64>>,
}

/// Where a log sends its writes: the writer task's queue and its room.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    /// The writer task's queue.
    pub writes: mpsc::Sender<Op>,
    /// Bytes left in the writer's buffer.
    pub room: Arc<tokio::sync::Semaphore>,
}

/// Whether the owner's job list sees a change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Only readers of the job's stream see it (a message).
    ByReaders,
    /// The job list shows it too (state, progress).
    InList,
}

/// One change in progress, under the log's lock.
struct Change<'a> {
    log: &'a Log,
    st: &'a mut LogState,
    /// The reserved room in the writer's queue (places and bytes), and the
    /// job the writes are for; `None` for a log in memory only.
    outbox: Option<Outbox<'a>>,
    /// The job's end when the store had no room in time: its writes, sent
    /// later (see [`EventLog::commit`]).
    deferred: Option<(JobId, Vec<Write>)>,
}

impl Change<'_> {
    /// Appends an event and sends it to the store.
    fn event(&mut self, kind: EventKind, text: Box<str>) {
        let event = self.log.push(self.st, kind, text);
        self.send(|job| Write::Event(job, event));
    }

    /// Sends a write with one of the reserved permits.
    fn send(&mut self, write: impl FnOnce(JobId) -> Write) {
        if let Some((job, writes)) = &mut self.deferred {
            writes.push(write(*job));
            return;
        }
        if let Some(outbox) = &mut self.outbox {
            let permit = outbox.places.next();
            debug_assert!(
                permit.is_some(),
                "a commit sent more writes than it reserved"
            );
            if let Some(permit) = permit {
                // The bytes go with the first write: freed once it is stored.
                permit.send(Op::Write(write(outbox.job), outbox.bytes.take()));
            }
        }
    }
}

/// Room taken in the writer's buffer for a write of fixed size (a state
/// change, the sentinel).
const SMALL_ROOM: usize = 256;

/// What a change reserved in the writer's buffer.
struct Outbox<'a> {
    job: JobId,
    places: PermitIterator<'a, Op>,
    bytes: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What an event of `kind` with `text` may hold, known before it is made:
/// its room in the writer's buffer.
fn room_for(kind: EventKind, text: &str) -> usize {
    text.len() + sse::frame_bound(kind.event_type(), text) + std::mem::size_of::<Event>()
}

/// A job's event log. Cheap to share: clone the `Arc`.
pub struct EventLog {
    log: Arc<Log>,
    /// The job and the owner's feed; `None` for a log that lives in
    /// memory only (tests, and finished jobs loaded back from the store).
    links: Option<Links>,
    /// Persistence, for a job that runs here: set when it is made, or when
    /// this node claims a job it mirrored (see [`EventLog::attach`]).
    /// Unset, the log changes only in memory (a mirror of a job that runs
    /// on another node is fed from the store, `mirror.rs`).
    writer: OnceLock<Writer>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventLog {{ limits: {:?}, .. }}", self.log.limits())
    }
}

impl EventLog {
    /// A new, empty log for a queued job, in memory only.
    pub fn new(limits: LogLimits) -> Arc<Self> {
        Self::build(limits, None, None, 1, JobState::Queued)
    }

    fn build(
        limits: LogLimits,
        links: Option<Links>,
        writer: Option<Writer>,
        next_seq: u64,
        state: JobState,
    ) -> Arc<Self> {
        Arc::new(EventLog {
            log: Log::new(limits, next_seq, state),
            links,
            writer: writer.map(OnceLock::from).unwrap_or_default(),
        })
    }

    /// A log for a new job. Its first event gets id 1. With `writer` it
    /// is persisted; without, it waits for [`EventLog::attach`] (a job in
    /// a cluster's shared queue: the node that claims it writes it).
    pub(crate) fn linked(limits: LogLimits, links: Links, writer: Option<Writer>) -> Arc<Self> {
        Self::build(limits, Some(links), writer, 1, JobState::Queued)
    }

    /// Marks the job as changed for its owner's job list. Called once the
    /// job can be looked up: a list reader woken by the mark must find it.
    pub(crate) fn announce(&self) {
        self.touch(&mut self.log.lock());
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

    /// The one way a job's log changes: `change` pushes events and sends up
    /// to `writes` writes, atomically with respect to readers and to other
    /// changes. Returns the id of the last event. Fails once the log is
    /// closed.
    ///
    /// Room in the writer's queue is waited for at most [`STORE_WAIT`]:
    /// then the store is taken as unavailable. An ordinary change fails
    /// with [`AppendError::StoreUnavailable`]; the job's end (`ending`) is
    /// made in memory all the same, so its readers and pages see it end
    /// (the store keeps it unfinished, and the next start marks it
    /// interrupted).
    async fn commit(
        &self,
        (writes, bytes): (usize, usize),
        seen: Seen,
        ending: bool,
        change: impl FnOnce(&mut Change<'_>),
    ) -> Result<u64, AppendError> {
        // Room first, outside the lock: the writes are then sent under the
        // lock, so the store receives them in the log's order.
        let mut deferred = None;
        let outbox = match self.links.as_ref().zip(self.writer.get()) {
            None => None,
            Some((links, writer)) => {
                let bytes = u32::try_from(bytes.min(WRITE_BUFFER_BYTES)).unwrap_or(u32::MAX);
                let room = async {
                    let bytes = Arc::clone(&writer.room).acquire_many_owned(bytes).await;
                    (bytes, writer.writes.reserve_many(writes).await)
                };
                match tokio::time::timeout(STORE_WAIT, room).await {
                    Ok((Ok(bytes), Ok(places))) => Some(Outbox {
                        job: links.job,
                        places,
                        bytes: Some(bytes),
                    }),
                    Ok(_) => return Err(AppendError::Closed),
                    Err(_) if ending => {
                        tracing::error!(job = %links.job, "the store took no writes in time; the job ends in memory now, in the store once it takes writes again");
                        deferred = Some((links.job, Vec::new()));
                        None
                    }
                    Err(_) => return Err(AppendError::StoreUnavailable),
                }
            }
        };
        let last = {
            let mut st = self.log.lock();
            if st.closed {
                return Err(AppendError::Closed);
            }
            let mut changing = Change {
                log: &self.log,
                st: &mut st,
                outbox,
                deferred,
            };
            change(&mut changing);
            deferred = changing.deferred.take();
            drop(changing);
            if seen == Seen::InList {
                self.touch(&mut st);
            }
            st.last_seq()
        };
        self.log.publish(last);
        if let (Some(writer), Some((_, writes))) = (self.writer.get(), deferred) {
            // Sent in order behind everything the job sent before, as room
            // comes: the store then has the job's end too. The task ends
            // once they are sent, or with the writer.
            let queue = writer.writes.clone();
            tokio::spawn(async move {
                for write in writes {
                    if queue.send(Op::Write(write, None)).await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(last)
    }

    /// Appends a message from the job. Returns its sequence id. Waits only
    /// while the store's write buffer is full.
    pub async fn append_message(&self, text: &str) -> Result<u64, AppendError> {
        if text.is_empty() {
            return Err(AppendError::Empty);
        }
        let limits = self.log.limits();
        if text.len() > limits.max_message_bytes {
            let (size, limit) = (text.len(), limits.max_message_bytes);
            return Err(AppendError::TooLarge { size, limit });
        }
        // Refused inside the commit (under the log's lock), so two emits
        // cannot both take the last room.
        let mut refused = None;
        let appended = self
            .commit(
                (1, room_for(EventKind::Message, text)),
                Seen::ByReaders,
                false,
                |c| {
                    refused = if c.st.said + text.len() as u64 > limits.max_job_bytes {
                        Some(AppendError::JobTooLarge {
                            limit: limits.max_job_bytes,
                        })
                    } else if c.st.said_messages >= limits.max_job_events {
                        Some(AppendError::JobTooManyMessages {
                            limit: limits.max_job_events,
                        })
                    } else {
                        c.st.said += text.len() as u64;
                        c.st.said_messages += 1;
                        c.event(EventKind::Message, text.into());
                        None
                    };
                },
            )
            .await;
        if let Some(e) = refused {
            return Err(e);
        }
        if appended.is_ok() {
            crate::metrics::EVENTS_EMITTED.increment(1);
            crate::metrics::EVENT_BYTES_EMITTED.increment(text.len() as u64);
        }
        appended
    }

    /// Records that the job started running.
    pub async fn set_running(&self) -> Result<u64, AppendError> {
        self.commit((2, SMALL_ROOM), Seen::InList, false, |c| {
            let at = now_ms();
            c.st.state = JobState::Running;
            c.st.started_at = Some(at);
            c.event(EventKind::State, JobState::Running.as_str().into());
            c.send(|job| Write::State {
                job,
                state: JobState::Running,
                at,
                error: None,
            });
        })
        .await
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
        let unchanged = self.log.lock().progress.as_ref().is_some_and(|p| {
            percent(p.fraction) == percent(fraction) && p.label.as_deref() == label
        });
        if unchanged {
            return Ok(None);
        }
        let progress = Progress {
            fraction,
            label: label.map(str::to_owned),
        };
        let data = serde_json::to_string(&progress).expect("progress serialises");
        let room = room_for(EventKind::Progress, &data) + SMALL_ROOM;
        self.commit((2, room), Seen::InList, false, |c| {
            c.event(EventKind::Progress, data.into_boxed_str());
            c.send(|job| Write::Progress {
                job,
                fraction,
                label: progress.label.clone(),
            });
            c.st.progress = Some(progress);
        })
        .await
        .map(Some)
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
        let room = room_for(EventKind::End, &data) + 2 * SMALL_ROOM;
        self.commit((3, room), Seen::InList, true, |c| {
            let at = now_ms();
            c.st.state = state;
            c.st.error.clone_from(&error);
            c.st.finished_at = Some(at);
            c.event(EventKind::End, data.into_boxed_str());
            c.event(EventKind::Close, sse::CLOSE_SENTINEL.into());
            c.send(|job| Write::State {
                job,
                state,
                at,
                error,
            });
            c.st.closed = true;
        })
        .await
    }

    /// The log's bounds.
    pub fn limits(&self) -> LogLimits {
        self.log.limits()
    }

    /// Sequence id of the last event appended (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    /// The job's current state.
    pub fn state(&self) -> JobState {
        self.log.state()
    }

    /// Whether the log is closed (the job has ended).
    pub fn is_closed(&self) -> bool {
        self.log.is_closed()
    }

    /// How many readers ([`Subscription`]s) the log has now.
    pub fn readers(&self) -> usize {
        self.log.readers()
    }

    /// The owner's feed counter at this log's last visible change.
    pub fn stamp(&self) -> u64 {
        self.log.stamp()
    }

    /// Everything retained, with the state, as of now.
    pub fn snapshot(&self) -> Snapshot {
        self.log.snapshot()
    }

    /// The state, progress and times, without the events.
    pub fn status(&self) -> Snapshot {
        self.log.status()
    }

    /// The newest `limit` messages before sequence id `before` that memory
    /// holds, oldest first; and, when events before those in memory existed,
    /// the id memory starts at (the store has the older ones).
    pub(crate) fn lines_before(&self, before: u64, limit: usize) -> (Vec<Arc<Event>>, Option<u64>) {
        self.log.lines_before(before, limit)
    }

    /// A reader that will receive every event after sequence id `after`
    /// (0: from the beginning). The caller checks `after <= last_seq()`.
    pub fn subscribe(&self, after: u64) -> Subscription {
        self.log.subscribe(after)
    }
}
