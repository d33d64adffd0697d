//! The engine: a bounded FIFO queue, a fixed pool of workers, and the
//! table of jobs with their logs.
//!
//! `submit` plans a job (checks its kind and parameters), gives it a log and
//! puts it at the back of the queue, or refuses at once when the queue is
//! full; nothing is dropped silently. Each of `workers` tasks takes the job at
//! the front, marks it running, runs it in its own task (so a panic fails
//! that job, not the worker) and closes its log with the final state.
//!
//! Memory is bounded: at most `queue_capacity` queued and `workers` running
//! jobs, plus the `retained_jobs` most recently finished ones; when a job
//! finishes past that, the oldest finished job is forgotten (its page and
//! stream answer 404). Each job's log has its own bounds ([`LogLimits`]).
//!
//! This file holds the handle, its construction and its shutdown; the
//! rest is split by concern:
//!
//! * `jobs`: the table of jobs: submit, get, list, cancel, finish.
//! * `load`: `find`, and jobs loaded back from the store (one load shared
//!   by concurrent requests).
//! * `reader`: a job's events and lines from memory, else from the store.
//! * `worker`: the queue's consumers: the worker loop and `run_next`.
//! * `recovery`: what the last run left in the store, taken up again.
//! * `retention`: the sweeper that deletes jobs past their retention.
//! * `feed`: each session's change counter, for its live job list.
//! * `quota`: jobs per session and per address, starts per minute.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::id::{JobId, SessionId};
use crate::model::{JobState, LogLimits};
use crate::registry::Registry;
use crate::store::{run_writer, Op, Store, StoreError, WRITE_BUFFER};

mod claim;
mod cluster;
mod feed;
mod jobs;
mod load;
mod mirrors;
mod quota;
mod reader;
mod recovery;
mod retention;
mod worker;

pub use cluster::{ClusterConfig, NODE_LOST};
use jobs::Table;
pub use jobs::{CancelError, Job, NewJob, SubmitError};
pub use quota::QuotaConfig;
pub use reader::Reader;
use worker::Queued;

/// How the engine is sized. See the README for the environment variables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Jobs that run at once.
    pub workers: usize,
    /// Jobs that may wait in the queue; `submit` fails beyond it.
    pub queue_capacity: usize,
    /// Bounds of each job's log in memory.
    pub log_limits: LogLimits,
    /// Finished jobs kept in memory; the oldest is forgotten beyond it (it
    /// is loaded again from the store when asked for).
    pub retained_jobs: usize,
    /// Finished jobs are deleted from the store this long after they ended.
    pub retention: Duration,
    /// Longest any job may run (a kind may allow less): then it is asked
    /// to stop, given [`STOP_GRACE`] to do so, and ends `failed`.
    pub max_duration: Duration,
    /// Jobs per session and per client address, starts per minute.
    pub quotas: QuotaConfig,
    /// Set: this is one node of several on one PostgreSQL store, sharing
    /// its queue (`cluster.rs`). Unset: one process, its queue in memory.
    pub cluster: Option<ClusterConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            queue_capacity: 1000,
            log_limits: LogLimits::default(),
            retained_jobs: 1000,
            retention: Duration::from_secs(7 * 24 * 3600),
            max_duration: Duration::from_secs(24 * 3600),
            quotas: QuotaConfig::default(),
            cluster: None,
        }
    }
}

struct Inner {
    config: EngineConfig,
    registry: Registry,
    store: Arc<dyn Store>,
    /// The writer task's queue.
    writes: mpsc::Sender<Op>,
    /// std `Mutex`es: held for a push, pop or lookup, never across `.await`.
    table: Mutex<Table>,
    queue: Mutex<VecDeque<Queued>>,
    /// Each owner's feed counter; see [`Engine::watch`].
    feeds: Mutex<HashMap<SessionId, Arc<watch::Sender<u64>>>>,
    /// Wakes a worker when a job is queued.
    queued: Notify,
    /// Cancelled on shutdown: workers stop taking jobs, jobs are asked to stop.
    shutdown: CancellationToken,
    /// Workers and running jobs, so shutdown can wait for them.
    tasks: TaskTracker,
    /// The last `created_at` handed out: creation times strictly increase,
    /// so "newest first" is the order jobs were submitted in.
    last_created: AtomicU64,
    /// Bytes the events waiting for the store may still take
    /// ([`crate::store::WRITE_BUFFER_BYTES`] in all).
    room: Arc<tokio::sync::Semaphore>,
    /// Whether the store took the writer's last batch.
    store_healthy: Arc<AtomicBool>,
    /// Notified when the store starts failing to write: the sweeper then
    /// tries to make room.
    store_failing: Arc<Notify>,
    /// Jobs being loaded back from the store, shared by the requests that
    /// asked for them meanwhile.
    loading: Mutex<HashMap<JobId, load::LoadCell>>,
    quotas: quota::Quotas,
    /// Workers running a job now.
    busy: std::sync::atomic::AtomicUsize,
    /// This node's part in a cluster, if it is one.
    node: Option<cluster::Node>,
}

/// A cheap-to-clone handle on the engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here do not panic halfway through an update; a
    // poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a read waits for pending writes to be stored before it
/// answers that the store is unavailable.
const PENDING_WRITES_WAIT: Duration = Duration::from_secs(5);

/// How long a job asked to stop for running too long has before it is
/// abandoned.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The end message of a job that was running when the server stopped.
pub const INTERRUPTED: &str = "the server stopped while this job was running";

impl Engine {
    /// Opens the engine on `store` with no workers yet: recovers what the
    /// last run left (queued jobs queue again, running ones end as
    /// `interrupted`), then jobs queue up until [`Engine::run_next`] or
    /// [`Engine::spawn_workers`]. Tests use this to step the queue.
    pub async fn open(
        config: EngineConfig,
        registry: Registry,
        store: Arc<dyn Store>,
    ) -> Result<Self, StoreError> {
        let (writes, rx) = mpsc::channel(WRITE_BUFFER);
        let store_healthy = Arc::new(AtomicBool::new(true));
        let store_failing = Arc::new(Notify::new());
        tokio::spawn(run_writer(
            Arc::clone(&store),
            rx,
            Arc::clone(&store_healthy),
            Arc::clone(&store_failing),
        ));
        let engine = Engine {
            inner: Arc::new(Inner {
                registry,
                store,
                writes,
                table: Mutex::default(),
                queue: Mutex::default(),
                feeds: Mutex::default(),
                queued: Notify::new(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                last_created: AtomicU64::new(0),
                store_healthy,
                store_failing,
                room: Arc::new(tokio::sync::Semaphore::new(
                    crate::store::WRITE_BUFFER_BYTES,
                )),
                loading: Mutex::default(),
                quotas: quota::Quotas::new(config.quotas),
                busy: std::sync::atomic::AtomicUsize::new(0),
                node: config.cluster.map(cluster::Node::new),
                config,
            }),
        };
        if engine.inner.node.is_some() {
            // The shared queue stays in the store; dead nodes' jobs are
            // taken back by whichever node notices first.
            engine.join().await?;
            engine.spawn_cluster();
        } else {
            engine.recover().await?;
        }
        Ok(engine)
    }

    /// An engine with its pool of workers and its retention sweeper running.
    pub async fn start(
        config: EngineConfig,
        registry: Registry,
        store: Arc<dyn Store>,
    ) -> Result<Self, StoreError> {
        let engine = Engine::open(config, registry, store).await?;
        engine.spawn_workers();
        engine.spawn_sweeper();
        Ok(engine)
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The registered job kinds.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// A token cancelled when shutdown begins.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Whether jobs can be taken: the store took the last writes and the
    /// write buffer has room. `Err` says why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if self.inner.shutdown.is_cancelled() {
            return Err("shutting down");
        }
        if !self.inner.store_healthy.load(Ordering::SeqCst) {
            return Err("the job store fails to write");
        }
        if self.inner.node.as_ref().is_some_and(|n| !n.is_heard()) {
            return Err("this node cannot record its heartbeat in the cluster");
        }
        if self.inner.writes.capacity() == 0 || self.inner.room.available_permits() == 0 {
            return Err("the job store is behind");
        }
        Ok(())
    }

    /// [`Engine::ready`], and the store answers a query within 2 s (a
    /// database that went away is noticed even while nothing is written).
    pub async fn ready_and_answering(&self) -> Result<(), &'static str> {
        self.ready()?;
        match tokio::time::timeout(Duration::from_secs(2), self.inner.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the job store does not answer");
                Err("the job store does not answer")
            }
            Err(_) => Err("the job store does not answer"),
        }
    }

    /// Sets the gauges `/metrics` shows (queue depth, busy workers, writes
    /// waiting for the store) from the engine's state now.
    pub fn report_gauges(&self) {
        let queued = match &self.inner.node {
            Some(node) => node.queued(),
            None => self.queue_len(),
        };
        crate::metrics::set_gauges(
            queued,
            self.inner.busy.load(Ordering::Relaxed),
            WRITE_BUFFER - self.inner.writes.capacity(),
        );
    }

    /// Waits until everything sent to the store so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.writes.send(Op::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Stops the engine: no new jobs, workers stop taking jobs, running jobs
    /// are asked to stop and given `grace` to do so; they end `interrupted`.
    /// Queued jobs stay queued in the store and run after the next start.
    /// Finally everything is flushed to the store. All of it within
    /// `grace`: what the store has not taken by then is taken up at the
    /// next start.
    pub async fn shutdown(&self, grace: Duration) {
        // One deadline for all of it: jobs stopping, the ends of those that
        // did not, and the store's last writes.
        let deadline = tokio::time::Instant::now() + grace;
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout_at(deadline, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "jobs did not stop within the shutdown grace period"
            );
        }
        let unfinished: Vec<Arc<Job>> = lock(&self.inner.table)
            .jobs
            .values()
            // Jobs that never started stay queued in the store; mirrors of
            // jobs other nodes run are not this node's to end.
            .filter(|j| {
                !j.log.is_closed() && j.log.is_attached() && j.log.state() != JobState::Queued
            })
            .cloned()
            .collect();
        let ends = async {
            for job in unfinished {
                self.finish(&job, JobState::Interrupted, Some(INTERRUPTED.to_owned()))
                    .await;
            }
            self.flush().await;
            self.leave().await;
        };
        if tokio::time::timeout_at(deadline, ends).await.is_err() {
            // What is not stored is taken up at the next start: running
            // jobs end `interrupted` then.
            tracing::error!("the store did not take every write within the grace period");
        }
    }
}
