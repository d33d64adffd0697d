//! Where jobs and their events are kept across restarts.
//!
//! The in-memory [`EventLog`](crate::EventLog) stays the hot path: live
//! readers never touch the store. Every change to a job (its creation, each
//! event, each change of state or progress) is also sent as a [`Write`] to
//! one writer task, which hands the store batches of up to
//! [`WRITE_BATCH`] writes, each applied in one transaction. A job's emit
//! therefore never waits for a disk write; it waits only when
//! [`WRITE_BUFFER`] writes are already pending (the disk cannot keep up),
//! which bounds the memory they use.
//!
//! The trait is small on purpose; SQLite (`sqlite.rs`) and PostgreSQL
//! (`postgres.rs`) implement it the same way: `write` is a batch in one
//! transaction. On SQLite the engine keeps its queue in memory and uses
//! the store only to persist and recover (one process). PostgreSQL also
//! implements [`Cluster`] (`cluster.rs`, `pg_cluster.rs`): a queue, claims
//! and wake-ups shared by several nodes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::id::{JobId, SessionId};
use crate::model::{Event, EventKind, JobState};

mod cluster;
mod codec;
mod pg_cluster;
mod postgres;
mod reserve;
mod sqlite;
pub use cluster::{Claimed, Cluster, Notice, Rescue, Rescued};
pub use postgres::PgStore;
pub use reserve::Reserve;
pub use sqlite::SqliteStore;

/// Opens the store `url` names: `sqlite:` (one process; the default) or
/// `postgres://` / `postgresql://` (shared by any number of nodes, see
/// [`Cluster`]).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(url) {
        Ok(Arc::new(PgStore::open(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError(format!(
            "JOBSTREAM_DATABASE_URL {url:?}: expected sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Most writes pending between the jobs and the writer task. An emit waits
/// while it is full. It also bounds how many events a `kill -9` can lose.
pub const WRITE_BUFFER: usize = 8192;

/// Most bytes the events waiting for the store may hold ([`crate::Event::size`]
/// of each, counted before it is made): a job's emit waits beyond it, as it
/// does beyond [`WRITE_BUFFER`] writes.
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Longest a change waits for room in the write buffer before the store is
/// taken as unavailable: the job's emit then fails (see
/// [`crate::AppendError::StoreUnavailable`]).
pub const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most writes applied in one transaction.
pub const WRITE_BATCH: usize = 1024;

/// How far the event ids of a job that was running during a crash jump
/// before its terminal events: more than the events that can have been
/// emitted, shown to readers, and lost with the writer's buffer. So ids keep
/// increasing for a client that resumes with an id it saw before the crash.
pub const RESTART_SEQ_GAP: u64 = (WRITE_BUFFER + WRITE_BATCH) as u64;

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// The session that owns it.
    pub owner: SessionId,
    /// Its kind's name.
    pub kind: String,
    /// Its parameters, as submitted.
    pub params: serde_json::Value,
    /// The visitor's display name when it was started.
    pub display_name: String,
    /// The visitor's locale when it was started.
    pub locale: String,
    /// Its state.
    pub state: JobState,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// Its last reported progress, 0 to 1.
    pub progress: Option<f64>,
    /// The label of that progress.
    pub progress_label: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: u64,
    /// Unix time in milliseconds.
    pub started_at: Option<u64>,
    /// Unix time in milliseconds.
    pub finished_at: Option<u64>,
    /// The id of its last stored event (0: none). Filled in by reads.
    pub last_seq: u64,
}

/// An event as stored: enough to encode it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its sequence id within the job.
    pub seq: u64,
    /// What it is.
    pub kind: EventKind,
    /// Its data.
    pub text: String,
    /// Messages up to and including it (a message's line number).
    pub line: u64,
}

/// One change to persist.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new job, before any of its events.
    Insert(Box<JobRecord>),
    /// An event appended to a job's log (shared with the log, not copied).
    Event(JobId, Arc<Event>),
    /// A change of state, at a Unix time in milliseconds.
    State {
        job: JobId,
        state: JobState,
        at: u64,
        error: Option<String>,
    },
    /// New progress.
    Progress {
        job: JobId,
        fraction: f64,
        label: Option<String>,
    },
}

/// A store failed. The message is for logs, not for visitors.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError(e.to_string())
    }
}

/// Durable storage of jobs and events. See the module docs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `writes` in order, all or nothing.
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError>;

    /// The job `id`, whoever owns it.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;

    /// The last events of job `id`, oldest first: at most `limit`, and no
    /// more once their texts reach `max_bytes` (at least one is returned if
    /// any exists), read newest first so the bound holds while reading.
    async fn events(
        &self,
        id: JobId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events of job `id` with ids after `after` and before `before`,
    /// oldest first: at most `limit`, and no more once their texts reach
    /// `max_bytes` (at least one is returned if any exists).
    async fn events_after(
        &self,
        id: JobId,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The last messages of job `id` with ids before `before`, oldest
    /// first: at most `limit`, and no more once their texts reach
    /// [`crate::model::MAX_PAGE_BYTES`] (at least one if any exists).
    async fn lines_before(
        &self,
        id: JobId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The newest `limit` jobs of `owner`, newest first.
    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError>;

    /// Every job still `queued` or `running`, oldest first: after a restart
    /// the queued ones run again and the running ones are interrupted.
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError>;

    /// Deletes up to `limit` jobs (with their events) that finished before
    /// `cutoff` (Unix ms). Returns their ids.
    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError>;

    /// Whether room given to a store that cannot write would let it
    /// recover: a job finished before `cutoff` (Unix ms) to delete, or
    /// space freed inside the database that waiting writes can reuse once
    /// they can be logged. A store that cannot tell says yes.
    async fn can_reclaim(&self, cutoff: u64) -> Result<bool, StoreError> {
        let _ = cutoff;
        Ok(true)
    }

    /// The part several nodes share, if this store has one (PostgreSQL).
    fn as_cluster(&self) -> Option<&dyn Cluster> {
        None
    }

    /// Whether the store answers (a cheap query), for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Gives the space kept back for a full disk to the store (see
    /// [`Reserve`]), so deletes can be written. Whether there was any.
    fn release_reserve(&self) -> bool {
        false
    }

    /// Keeps space back again, when the disk has room for it.
    fn take_reserve(&self) {}
}

/// What the writer task receives.
#[derive(Debug)]
pub(crate) enum Op {
    /// Persist this; its room in [`WRITE_BUFFER_BYTES`] is given back once
    /// it is stored.
    Write(Write, Option<tokio::sync::OwnedSemaphorePermit>),
    /// Answer once everything sent before is persisted.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The writer task: applies writes in batches of up to [`WRITE_BATCH`], in
/// the order they were sent. A failed batch is retried (with a growing
/// pause, logged) until it succeeds, so nothing is dropped; meanwhile the
/// buffer fills and emits wait. `healthy` says whether the last attempt
/// succeeded; `failing` is notified when it starts failing. Ends when
/// every sender is gone.
pub(crate) async fn run_writer(
    store: Arc<dyn Store>,
    mut rx: tokio::sync::mpsc::Receiver<Op>,
    healthy: Arc<std::sync::atomic::AtomicBool>,
    failing: Arc<tokio::sync::Notify>,
) {
    use std::sync::atomic::Ordering;
    let mut ops = Vec::with_capacity(WRITE_BATCH);
    let mut writes = Vec::with_capacity(WRITE_BATCH);
    let mut rooms = Vec::with_capacity(WRITE_BATCH);
    while rx.recv_many(&mut ops, WRITE_BATCH).await > 0 {
        let mut flushed = Vec::new();
        for op in ops.drain(..) {
            match op {
                Op::Write(w, room) => {
                    writes.push(w);
                    rooms.push(room);
                }
                Op::Flush(done) => flushed.push(done),
            }
        }
        let mut pause = std::time::Duration::from_millis(50);
        while !writes.is_empty() {
            let started = std::time::Instant::now();
            let written = store.write(&writes).await;
            crate::metrics::STORE_WRITE_BATCH.record(started.elapsed().as_secs_f64());
            match written {
                Ok(()) => {
                    writes.clear();
                    rooms.clear();
                    if !healthy.swap(true, Ordering::SeqCst) {
                        tracing::info!("the store takes writes again");
                    }
                }
                Err(e) => {
                    crate::metrics::STORE_ERRORS.increment(1);
                    if healthy.swap(false, Ordering::SeqCst) {
                        // The sweeper may make room (a full disk).
                        failing.notify_one();
                    }
                    tracing::error!(error = %e, writes = writes.len(), "store write failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
