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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::id::{JobId, SessionId};
use crate::job::{Emitter, JobContext};
use crate::log::{EventLog, JobState, LogLimits};
use crate::registry::{PlanError, Registry, Runner};

/// How the engine is sized. See the README for the environment variables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Jobs that run at once.
    pub workers: usize,
    /// Jobs that may wait in the queue; `submit` fails beyond it.
    pub queue_capacity: usize,
    /// Bounds of each job's log.
    pub log_limits: LogLimits,
    /// Finished jobs kept in memory; the oldest is forgotten beyond it.
    pub retained_jobs: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            queue_capacity: 1000,
            log_limits: LogLimits::default(),
            retained_jobs: 1000,
        }
    }
}

/// A request to start a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The session the job will belong to.
    pub owner: SessionId,
    /// A registered kind.
    pub kind: String,
    /// The kind's parameters (JSON; null means defaults).
    pub params: serde_json::Value,
    /// The visitor's display name, captured now.
    pub display_name: String,
    /// The visitor's locale, captured now.
    pub locale: String,
}

/// Why a job was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Unknown kind or bad parameters.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The queue holds `capacity` jobs already.
    #[error("the job queue is full ({capacity} jobs waiting); try again shortly")]
    QueueFull { capacity: usize },
    /// The server is shutting down.
    #[error("the server is shutting down and takes no new jobs")]
    ShuttingDown,
}

/// One job: who owns it, what it is, and its log.
#[derive(Debug)]
pub struct Job {
    /// Unguessable id.
    pub id: JobId,
    /// The session that may read it.
    pub owner: SessionId,
    /// Its kind's name.
    pub kind: String,
    /// When it was submitted.
    pub created_at: SystemTime,
    /// Its output and state.
    pub log: Arc<EventLog>,
    /// Cancelled to ask the job to stop.
    cancel: CancellationToken,
}

struct Queued {
    job: Arc<Job>,
    ctx: JobContext,
    run: Runner,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<JobId, Arc<Job>>,
    /// Finished jobs in the order they finished, for retention.
    finished: VecDeque<JobId>,
}

struct Inner {
    config: EngineConfig,
    registry: Registry,
    /// std `Mutex`es: held for a push, pop or lookup, never across `.await`.
    table: Mutex<Table>,
    queue: Mutex<VecDeque<Queued>>,
    /// Wakes a worker when a job is queued.
    queued: Notify,
    /// Cancelled on shutdown: workers stop taking jobs, jobs are asked to stop.
    shutdown: CancellationToken,
    /// Workers and running jobs, so shutdown can wait for them.
    tasks: TaskTracker,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here do not panic halfway through an update; a
    // poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// An engine with no workers yet: jobs queue up until [`Engine::run_next`]
    /// or [`Engine::spawn_workers`]. Tests use this to step the queue.
    pub fn new(config: EngineConfig, registry: Registry) -> Self {
        Engine {
            inner: Arc::new(Inner {
                config,
                registry,
                table: Mutex::default(),
                queue: Mutex::default(),
                queued: Notify::new(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// An engine with its pool of workers running.
    pub fn start(config: EngineConfig, registry: Registry) -> Self {
        let engine = Engine::new(config, registry);
        engine.spawn_workers();
        engine
    }

    /// Starts `config.workers` worker tasks.
    pub fn spawn_workers(&self) {
        for _ in 0..self.inner.config.workers.max(1) {
            let engine = self.clone();
            self.inner.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        () = engine.inner.shutdown.cancelled() => break,
                        queued = engine.next_queued() => engine.run(queued).await,
                    }
                }
            });
        }
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The registered job kinds.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Plans and queues a job. Fails at once (nothing queued) on an unknown
    /// kind, bad parameters, a full queue, or during shutdown.
    pub fn submit(&self, new: NewJob) -> Result<Arc<Job>, SubmitError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let run = self.inner.registry.plan(&new.kind, &new.params)?;
        let id = JobId::random();
        let job = Arc::new(Job {
            id,
            owner: new.owner,
            kind: new.kind,
            created_at: SystemTime::now(),
            log: EventLog::new(self.inner.config.log_limits),
            cancel: self.inner.shutdown.child_token(),
        });
        let ctx = JobContext {
            id,
            owner: new.owner,
            display_name: new.display_name,
            locale: new.locale,
            cancel: job.cancel.clone(),
        };
        {
            let mut queue = lock(&self.inner.queue);
            if queue.len() >= self.inner.config.queue_capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.inner.config.queue_capacity,
                });
            }
            // Into the table before the queue, under the queue lock, so a
            // worker never runs a job that cannot be looked up.
            lock(&self.inner.table).jobs.insert(id, Arc::clone(&job));
            queue.push_back(Queued {
                job: Arc::clone(&job),
                ctx,
                run,
            });
        }
        self.inner.queued.notify_one();
        Ok(job)
    }

    /// The job `id` if it exists and belongs to `owner`. Another session's
    /// job and an unknown id look the same: `None`.
    pub fn get(&self, owner: SessionId, id: JobId) -> Option<Arc<Job>> {
        lock(&self.inner.table)
            .jobs
            .get(&id)
            .filter(|job| job.owner == owner)
            .cloned()
    }

    /// How many jobs wait in the queue.
    pub fn queue_len(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    async fn next_queued(&self) -> Queued {
        loop {
            // `notify_one` stores a permit when no worker is waiting, so a
            // job queued between this check and the wait is not missed.
            if let Some(q) = lock(&self.inner.queue).pop_front() {
                return q;
            }
            self.inner.queued.notified().await;
        }
    }

    /// Takes the next queued job (waiting for one) and runs it to the end:
    /// one step of a worker. Returns the job's final state.
    pub async fn run_next(&self) -> JobState {
        let queued = self.next_queued().await;
        let log = Arc::clone(&queued.job.log);
        self.run(queued).await;
        log.state()
    }

    async fn run(&self, Queued { job, ctx, run }: Queued) {
        if job.log.set_running().is_err() {
            return; // already closed (by shutdown)
        }
        let emitter = Emitter::new(Arc::clone(&job.log));
        // Its own task: a panicking job fails alone.
        let handle = self.inner.tasks.spawn(run(ctx, emitter));
        let (state, error) = match handle.await {
            Ok(Ok(())) => (JobState::Succeeded, None),
            Ok(Err(e)) => (JobState::Failed, Some(e.to_string())),
            Err(e) if e.is_panic() => {
                tracing::error!(job = %job.id, kind = %job.kind, "job panicked");
                (JobState::Failed, Some("the job crashed".to_owned()))
            }
            Err(_) => (
                JobState::Failed,
                Some("the job was stopped because the server shut down".to_owned()),
            ),
        };
        self.finish(&job, state, error);
    }

    fn finish(&self, job: &Job, state: JobState, error: Option<String>) {
        if job.log.close(state, error).is_err() {
            return; // closed already
        }
        let mut table = lock(&self.inner.table);
        table.finished.push_back(job.id);
        while table.finished.len() > self.inner.config.retained_jobs {
            if let Some(old) = table.finished.pop_front() {
                table.jobs.remove(&old);
            }
        }
    }

    /// A token cancelled when shutdown begins.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Stops the engine: no new jobs, workers stop taking jobs, running jobs
    /// are asked to stop and given `grace` to do so. Jobs still queued, and
    /// jobs that did not stop in time, end as `failed` with a message that
    /// says the server shut down, so no page waits for them forever.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let leftovers: Vec<Queued> = lock(&self.inner.queue).drain(..).collect();
        for q in leftovers {
            self.finish(
                &q.job,
                JobState::Failed,
                Some("the server shut down before the job started".to_owned()),
            );
        }
        if tokio::time::timeout(grace, self.inner.tasks.wait())
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
            .filter(|j| !j.log.is_closed())
            .cloned()
            .collect();
        for job in unfinished {
            self.finish(
                &job,
                JobState::Failed,
                Some("the job was stopped because the server shut down".to_owned()),
            );
        }
    }
}
