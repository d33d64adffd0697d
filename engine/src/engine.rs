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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jobstream_protocol::JobSummary;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::id::{JobId, SessionId};
use crate::job::{Emitter, JobContext};
use crate::log::{EventLog, JobState, Links, LogLimits};
use crate::registry::{PlanError, Registry, Runner};
use crate::store::{
    now_ms, run_writer, JobRecord, Op, Store, StoreError, Write, RESTART_SEQ_GAP, WRITE_BUFFER,
};

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            queue_capacity: 1000,
            log_limits: LogLimits::default(),
            retained_jobs: 1000,
            retention: Duration::from_secs(7 * 24 * 3600),
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
    /// When it was submitted (Unix ms).
    pub created_at: u64,
    /// Its output and state.
    pub log: Arc<EventLog>,
    /// Cancelled to ask the job to stop (by its owner or by shutdown).
    cancel: CancellationToken,
    /// Set when its owner cancelled it.
    cancelled: AtomicBool,
}

impl Job {
    /// The job as the list shows it, now.
    pub fn summary(&self) -> JobSummary {
        let st = self.log.status();
        let (progress, label) = match st.progress {
            Some(p) => (Some(p.fraction), p.label),
            None => (None, None),
        };
        JobSummary {
            id: self.id.to_string(),
            kind: self.kind.clone(),
            state: st.state,
            error: st.error,
            progress,
            label,
            created_at: self.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
        }
    }
}

/// A stored job as the list shows it.
fn summary_of(r: &JobRecord) -> JobSummary {
    {
        JobSummary {
            id: r.id.to_string(),
            kind: r.kind.clone(),
            state: r.state,
            error: r.error.clone(),
            progress: r.progress,
            label: r.progress_label.clone(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// Why a job could not be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// No such job in this session.
    #[error("no such job")]
    NotFound,
    /// It has ended already.
    #[error("the job has already ended ({})", .0.as_str())]
    Ended(JobState),
    /// The store could not be read.
    #[error("the job store is unavailable")]
    Store,
}

struct Queued {
    job: Arc<Job>,
    ctx: JobContext,
    run: Runner,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<JobId, Arc<Job>>,
    /// Finished jobs in the order they finished, for retention in memory.
    finished: VecDeque<JobId>,
}

impl Table {
    fn retain_finished(&mut self, id: JobId, limit: usize) {
        self.finished.push_back(id);
        while self.finished.len() > limit {
            if let Some(old) = self.finished.pop_front() {
                self.jobs.remove(&old);
            }
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
    last_created: std::sync::atomic::AtomicU64,
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
        tokio::spawn(run_writer(Arc::clone(&store), rx));
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                registry,
                store,
                writes,
                table: Mutex::default(),
                queue: Mutex::default(),
                feeds: Mutex::default(),
                queued: Notify::new(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                last_created: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        engine.recover().await?;
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

    fn links(&self, job: JobId, owner: SessionId) -> Links {
        Links {
            job,
            writes: self.inner.writes.clone(),
            feed: self.feed(owner),
        }
    }

    async fn recover(&self) -> Result<(), StoreError> {
        let limits = self.inner.config.log_limits;
        for rec in self.inner.store.unfinished().await? {
            self.inner
                .last_created
                .fetch_max(rec.created_at, Ordering::SeqCst);
            let events = self.inner.store.events(rec.id, limits.max_events).await?;
            let links = self.links(rec.id, rec.owner);
            let plan = (rec.state == JobState::Queued)
                .then(|| self.inner.registry.plan(&rec.kind, &rec.params));
            let next_seq = match plan {
                Some(_) => rec.last_seq + 1,
                None => rec.last_seq + RESTART_SEQ_GAP + 1,
            };
            let log = EventLog::restore(limits, &rec, events, Some(links), next_seq);
            let job = Arc::new(Job {
                id: rec.id,
                owner: rec.owner,
                kind: rec.kind.clone(),
                created_at: rec.created_at,
                log,
                cancel: self.inner.shutdown.child_token(),
                cancelled: AtomicBool::new(false),
            });
            lock(&self.inner.table)
                .jobs
                .insert(job.id, Arc::clone(&job));
            job.log.announce();
            match plan {
                Some(Ok(run)) => {
                    let ctx = JobContext {
                        id: rec.id,
                        owner: rec.owner,
                        display_name: rec.display_name,
                        locale: rec.locale,
                        cancel: job.cancel.clone(),
                    };
                    // Recovered jobs are queued whatever the capacity: they
                    // were accepted before.
                    lock(&self.inner.queue).push_back(Queued { job, ctx, run });
                    self.inner.queued.notify_one();
                }
                Some(Err(e)) => {
                    let why = format!("this job cannot run on this server: {e}");
                    self.finish(&job, JobState::Failed, Some(why)).await;
                }
                None => {
                    self.finish(&job, JobState::Interrupted, Some(INTERRUPTED.to_owned()))
                        .await;
                }
            }
        }
        Ok(())
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

    /// Starts the task that deletes finished jobs past their retention, a
    /// tenth of the retention period apart (at least 1 s, at most 1 h).
    pub fn spawn_sweeper(&self) {
        let engine = self.clone();
        let every = (self.inner.config.retention / 10)
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = engine.inner.shutdown.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(e) = engine.sweep().await {
                    tracing::error!(error = %e, "retention sweep failed");
                }
            }
        });
    }

    /// Deletes the jobs that finished more than `retention` ago, from the
    /// store and from memory, and forgets idle feeds. Returns how many jobs
    /// were deleted.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        const CHUNK: usize = 500;
        let retention = u64::try_from(self.inner.config.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(retention);
        let mut deleted = 0;
        loop {
            let ids = self
                .inner
                .store
                .purge_finished_before(cutoff, CHUNK)
                .await?;
            deleted += ids.len();
            {
                let mut table = lock(&self.inner.table);
                for id in &ids {
                    table.jobs.remove(id);
                }
                let Table { jobs, finished } = &mut *table;
                finished.retain(|id| jobs.contains_key(id));
            }
            if ids.len() < CHUNK {
                break;
            }
        }
        lock(&self.inner.feeds)
            .retain(|_, feed| Arc::strong_count(feed) > 1 || feed.receiver_count() > 0);
        Ok(deleted)
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The registered job kinds.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    fn feed(&self, owner: SessionId) -> Arc<watch::Sender<u64>> {
        Arc::clone(
            lock(&self.inner.feeds)
                .entry(owner)
                .or_insert_with(|| Arc::new(watch::Sender::new(0))),
        )
    }

    /// A receiver whose value goes up whenever one of `owner`'s jobs is
    /// created or changes state or progress. Together with
    /// [`Engine::changed_since`] it drives a session's live job list.
    pub fn watch(&self, owner: SessionId) -> watch::Receiver<u64> {
        self.feed(owner).subscribe()
    }

    /// `owner`'s jobs in memory that changed after counter value `since`
    /// (0: all of them), newest first.
    pub fn changed_since(&self, owner: SessionId, since: u64) -> Vec<JobSummary> {
        let jobs: Vec<Arc<Job>> = lock(&self.inner.table)
            .jobs
            .values()
            .filter(|j| j.owner == owner)
            .cloned()
            .collect();
        let mut changed: Vec<JobSummary> = jobs
            .iter()
            .filter(|j| j.log.stamp() > since)
            .map(|j| j.summary())
            .collect();
        changed.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        changed
    }

    /// Plans and queues a job. Fails at once (nothing queued, nothing
    /// stored) on an unknown kind, bad parameters, a full queue, or during
    /// shutdown.
    pub async fn submit(&self, new: NewJob) -> Result<Arc<Job>, SubmitError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let run = self.inner.registry.plan(&new.kind, &new.params)?;
        let id = JobId::random();
        let created_at = self.next_created_at();
        // Room for the insert, taken first so it is sent under the queue
        // lock, before any event of the job.
        let permit = self
            .inner
            .writes
            .reserve()
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        let job = Arc::new(Job {
            id,
            owner: new.owner,
            kind: new.kind.clone(),
            created_at,
            log: EventLog::linked(self.inner.config.log_limits, self.links(id, new.owner), 1),
            cancel: self.inner.shutdown.child_token(),
            cancelled: AtomicBool::new(false),
        });
        let ctx = JobContext {
            id,
            owner: new.owner,
            display_name: new.display_name.clone(),
            locale: new.locale.clone(),
            cancel: job.cancel.clone(),
        };
        {
            let mut queue = lock(&self.inner.queue);
            if queue.len() >= self.inner.config.queue_capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.inner.config.queue_capacity,
                });
            }
            permit.send(Op::Write(Write::Insert(Box::new(JobRecord {
                id,
                owner: new.owner,
                kind: new.kind,
                params: new.params,
                display_name: new.display_name,
                locale: new.locale,
                state: JobState::Queued,
                error: None,
                progress: None,
                progress_label: None,
                created_at,
                started_at: None,
                finished_at: None,
                last_seq: 0,
            }))));
            // Into the table before the queue, under the queue lock, so a
            // worker never runs a job that cannot be looked up.
            lock(&self.inner.table).jobs.insert(id, Arc::clone(&job));
            // Only now: a job list woken by this finds the job in the table.
            job.log.announce();
            queue.push_back(Queued {
                job: Arc::clone(&job),
                ctx,
                run,
            });
        }
        self.inner.queued.notify_one();
        Ok(job)
    }

    /// Now in Unix ms, or one more than the last value if that is not later.
    fn next_created_at(&self) -> u64 {
        let now = now_ms();
        let last = self
            .inner
            .last_created
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(last + 1)
    }

    /// The job `id` if it is in memory and belongs to `owner`. Another
    /// session's job and an unknown id look the same: `None`.
    pub fn get(&self, owner: SessionId, id: JobId) -> Option<Arc<Job>> {
        lock(&self.inner.table)
            .jobs
            .get(&id)
            .filter(|job| job.owner == owner)
            .cloned()
    }

    /// The job `id` of `owner`, from memory or else loaded from the store
    /// (its last `max_events` events) and kept in memory among the
    /// finished jobs.
    pub async fn find(&self, owner: SessionId, id: JobId) -> Result<Option<Arc<Job>>, StoreError> {
        if let Some(job) = self.get(owner, id) {
            return Ok(Some(job));
        }
        let Some(rec) = self.inner.store.job(id).await? else {
            return Ok(None);
        };
        if rec.owner != owner {
            return Ok(None);
        }
        let limits = self.inner.config.log_limits;
        let events = self.inner.store.events(id, limits.max_events).await?;
        let log = EventLog::restore(limits, &rec, events, None, rec.last_seq + 1);
        let job = Arc::new(Job {
            id,
            owner,
            kind: rec.kind,
            created_at: rec.created_at,
            log,
            cancel: CancellationToken::new(),
            cancelled: AtomicBool::new(false),
        });
        let mut table = lock(&self.inner.table);
        if let Some(loaded) = table.jobs.get(&id) {
            return Ok(Some(Arc::clone(loaded))); // another request was first
        }
        table.jobs.insert(id, Arc::clone(&job));
        table.retain_finished(id, self.inner.config.retained_jobs);
        Ok(Some(job))
    }

    /// The newest `limit` jobs of `owner`, newest first: the store's
    /// records, with the live state of those in memory.
    pub async fn list(
        &self,
        owner: SessionId,
        limit: usize,
    ) -> Result<Vec<JobSummary>, StoreError> {
        let mut by_id: HashMap<String, JobSummary> = self
            .inner
            .store
            .jobs_of(owner, limit)
            .await?
            .iter()
            .map(|r| (r.id.to_string(), summary_of(r)))
            .collect();
        // Memory is newer than the store (the writer may not have caught up).
        for live in self.changed_since(owner, 0) {
            by_id.insert(live.id.clone(), live);
        }
        let mut all: Vec<JobSummary> = by_id.into_values().collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        all.truncate(limit);
        Ok(all)
    }

    /// Cancels `owner`'s job `id`: a queued job leaves the queue, a running
    /// one is asked to stop at its next step. Either way it ends
    /// `cancelled`. Returns the job.
    pub async fn cancel(&self, owner: SessionId, id: JobId) -> Result<Arc<Job>, CancelError> {
        let job = self
            .find(owner, id)
            .await
            .map_err(|_| CancelError::Store)?
            .ok_or(CancelError::NotFound)?;
        let state = job.log.state();
        if state.is_terminal() {
            return Err(CancelError::Ended(state));
        }
        job.cancelled.store(true, Ordering::SeqCst);
        let was_queued = {
            let mut queue = lock(&self.inner.queue);
            let before = queue.len();
            queue.retain(|q| q.job.id != id);
            queue.len() < before
        };
        if was_queued {
            self.finish(&job, JobState::Cancelled, None).await;
        } else {
            job.cancel.cancel();
        }
        Ok(job)
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
        if job.log.set_running().await.is_err() {
            return; // already closed (cancelled)
        }
        let emitter = Emitter::new(Arc::clone(&job.log));
        // Its own task: a panicking job fails alone.
        let handle = self.inner.tasks.spawn(run(ctx, emitter));
        let result = handle.await;
        let (state, error) = if job.cancelled.load(Ordering::SeqCst) {
            (JobState::Cancelled, None)
        } else {
            match result {
                Ok(Ok(())) => (JobState::Succeeded, None),
                Err(e) if e.is_panic() => {
                    tracing::error!(job = %job.id, kind = %job.kind, "job panicked");
                    (JobState::Failed, Some("the job crashed".to_owned()))
                }
                _ if self.inner.shutdown.is_cancelled() => {
                    (JobState::Interrupted, Some(INTERRUPTED.to_owned()))
                }
                Ok(Err(e)) => (JobState::Failed, Some(e.to_string())),
                Err(_) => (JobState::Interrupted, Some(INTERRUPTED.to_owned())),
            }
        };
        self.finish(&job, state, error).await;
    }

    async fn finish(&self, job: &Job, state: JobState, error: Option<String>) {
        if job.log.close(state, error).await.is_err() {
            return; // closed already
        }
        lock(&self.inner.table).retain_finished(job.id, self.inner.config.retained_jobs);
    }

    /// A token cancelled when shutdown begins.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
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
    /// Finally everything is flushed to the store (for at most `grace`
    /// more).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "jobs did not stop within the shutdown grace period"
            );
        }
        let queued: std::collections::HashSet<JobId> =
            lock(&self.inner.queue).iter().map(|q| q.job.id).collect();
        let unfinished: Vec<Arc<Job>> = lock(&self.inner.table)
            .jobs
            .values()
            .filter(|j| !j.log.is_closed() && !queued.contains(&j.id))
            .cloned()
            .collect();
        for job in unfinished {
            self.finish(&job, JobState::Interrupted, Some(INTERRUPTED.to_owned()))
                .await;
        }
        if tokio::time::timeout(grace, self.flush()).await.is_err() {
            tracing::error!("the store did not take every write within the grace period");
        }
    }
}
