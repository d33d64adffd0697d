//! The table of jobs: what a job is, and submitting, looking up, listing,
//! cancelling and finishing jobs.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jobstream_protocol::JobSummary;
use tokio_util::sync::CancellationToken;

use super::{lock, Engine, Queued};
use crate::id::{JobId, SessionId};
use crate::job::JobContext;
use crate::journal::EventLog;
use crate::model::JobState;
use crate::registry::PlanError;
use crate::store::{now_ms, JobRecord, Op, StoreError, Write, WRITE_BUFFER_BYTES};

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
    /// The client's address, for the quota per address; `None` when it is
    /// not known (or not to be counted).
    pub client: Option<IpAddr>,
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
    /// The store fails to write or is behind (a full disk): nothing could
    /// be kept.
    #[error("the job store is unavailable")]
    StoreUnavailable,
    /// The session has `limit` queued or running jobs already.
    #[error("this session already has {limit} jobs queued or running; wait for one to end or cancel one")]
    TooManyJobs { limit: usize },
    /// The client's address has `limit` queued or running jobs already.
    #[error("your address already has {limit} jobs queued or running; wait for one to end or cancel one")]
    TooManyJobsFromAddress { limit: usize },
    /// The session started `limit` jobs within the last minute.
    #[error("this session may start {limit} jobs a minute; try again in {} s", retry_after.as_secs())]
    TooManyStarts {
        limit: u32,
        /// When the next start will be taken.
        retry_after: std::time::Duration,
    },
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

/// One job: who owns it, what it is, and its log.
#[derive(Debug)]
pub struct Job {
    /// Unguessable id.
    pub id: JobId,
    /// The session that may read it.
    pub owner: SessionId,
    /// Its kind's name.
    pub kind: String,
    /// Its parameters, as submitted.
    pub params: serde_json::Value,
    /// When it was submitted (Unix ms).
    pub created_at: u64,
    /// The address it was started from, when known (for the quota per
    /// address; not stored).
    pub client: Option<IpAddr>,
    /// Its output and state.
    pub log: Arc<EventLog>,
    /// Cancelled to ask the job to stop (by its owner or by shutdown).
    pub(super) cancel: CancellationToken,
    /// Set when its owner cancelled it.
    pub(super) cancelled: AtomicBool,
    /// Set when this node may no longer write to it (see `cluster.rs`).
    pub(super) fenced: AtomicBool,
}

impl Job {
    pub(super) fn new(
        id: JobId,
        owner: SessionId,
        (kind, params): (String, serde_json::Value),
        created_at: u64,
        client: Option<IpAddr>,
        log: Arc<EventLog>,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Job {
            id,
            owner,
            kind,
            params,
            created_at,
            client,
            log,
            cancel,
            cancelled: AtomicBool::new(false),
            fenced: AtomicBool::new(false),
        })
    }

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

    /// What the running job is told about itself.
    pub(super) fn context(&self, display_name: String, locale: String) -> JobContext {
        JobContext {
            id: self.id,
            owner: self.owner,
            display_name,
            locale,
            cancel: self.cancel.clone(),
        }
    }
}

/// A stored job as the list shows it.
fn summary_of(r: &JobRecord) -> JobSummary {
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

#[derive(Default)]
pub(super) struct Table {
    pub(super) jobs: HashMap<JobId, Arc<Job>>,
    /// Finished jobs in the order they finished, for retention in memory.
    finished: VecDeque<JobId>,
}

impl Table {
    pub(super) fn retain_finished(&mut self, id: JobId, limit: usize) {
        self.finished.push_back(id);
        while self.finished.len() > limit {
            if let Some(old) = self.finished.pop_front() {
                self.jobs.remove(&old);
            }
        }
    }

    /// Forgets the jobs `ids`, finished or not.
    pub(super) fn remove(&mut self, ids: &[JobId]) {
        for id in ids {
            self.jobs.remove(id);
        }
        let Table { jobs, finished } = self;
        finished.retain(|id| jobs.contains_key(id));
    }
}

/// Longest a submit waits for room in the store's write buffer (a store
/// that is behind, not failing) before it answers that the store is
/// unavailable.
const SUBMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Engine {
    /// Plans and queues a job. Fails at once (nothing queued, nothing
    /// stored) on an unknown kind, bad parameters, a full queue, or during
    /// shutdown.
    pub async fn submit(&self, new: NewJob) -> Result<Arc<Job>, SubmitError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let run = self.inner.registry.plan(&new.kind, &new.params)?;
        // A store that fails to write (a full disk): refused at once.
        if !self.inner.store_healthy.load(Ordering::SeqCst) {
            return Err(SubmitError::StoreUnavailable);
        }
        self.cluster_room(new.owner).await?;
        let capacity = self.inner.config.queue_capacity;
        if lock(&self.inner.queue).len() >= capacity {
            return Err(SubmitError::QueueFull { capacity });
        }
        let quotas = &self.inner.quotas;
        quotas.room(&lock(&self.inner.table).jobs, new.owner, new.client)?;
        let id = JobId::random();
        let created_at = self.next_created_at();
        // Room for the insert, taken first so it is sent under the queue
        // lock, before any event of the job.
        // A store that is only behind (a burst) gets a moment to make
        // room, in places and in bytes (the record's params and texts);
        // one that stays full is unavailable.
        let size = serde_json::to_string(&new.params).map_or(0, |p| p.len())
            + new.kind.len()
            + new.display_name.len()
            + new.locale.len()
            + std::mem::size_of::<JobRecord>();
        let size = u32::try_from(size.min(WRITE_BUFFER_BYTES)).unwrap_or(u32::MAX);
        let room = async {
            let bytes = Arc::clone(&self.inner.room).acquire_many_owned(size).await;
            (bytes, self.inner.writes.reserve().await)
        };
        let (bytes, permit) = match tokio::time::timeout(SUBMIT_WAIT, room).await {
            Ok((Ok(bytes), Ok(permit))) => (bytes, permit),
            Ok(_) => return Err(SubmitError::ShuttingDown),
            Err(_) => return Err(SubmitError::StoreUnavailable),
        };
        // In a cluster, the node that claims the job writes it.
        let writer = self.inner.node.is_none().then(|| self.writer());
        let log = EventLog::linked(
            self.inner.config.log_limits,
            self.links(id, new.owner),
            writer,
        );
        let cancel = self.inner.shutdown.child_token();
        let job = Job::new(
            id,
            new.owner,
            (new.kind.clone(), new.params.clone()),
            created_at,
            new.client,
            log,
            cancel,
        );
        let ctx = job.context(new.display_name.clone(), new.locale.clone());
        {
            let mut queue = lock(&self.inner.queue);
            if queue.len() >= self.inner.config.queue_capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.inner.config.queue_capacity,
                });
            }
            // Again, where it counts: no other submit is between the count
            // and the insert.
            quotas.room(&lock(&self.inner.table).jobs, new.owner, new.client)?;
            quotas.start(new.owner, new.client)?;
            permit.send(Op::Write(
                Write::Insert(Box::new(JobRecord {
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
                })),
                Some(bytes),
            ));
            // Into the table before the queue, under the queue lock, so a
            // worker never runs a job that cannot be looked up.
            lock(&self.inner.table).jobs.insert(id, Arc::clone(&job));
            // Only now: a job list woken by this finds the job in the table.
            job.log.announce();
            if self.inner.node.is_none() {
                queue.push_back(Queued {
                    job: Arc::clone(&job),
                    ctx,
                    run,
                });
            }
        }
        if self.inner.node.is_some() {
            // Queued in the store: its commit wakes the nodes. Answered
            // once stored (within a bound), so every node knows the job
            // as soon as its starter does.
            self.mirror_new(&job);
            let _ = tokio::time::timeout(SUBMIT_WAIT, self.flush()).await;
            return Ok(job);
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
        if self.inner.node.is_some() && !job.log.is_attached() {
            // Queued in the shared queue, or running on another node.
            return match self.cancel_elsewhere(&job).await {
                Ok(true) => Ok(job),
                Ok(false) => Err(CancelError::Ended(job.log.state())),
                Err(_) => Err(CancelError::Store),
            };
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

    /// Closes the job's log with its final state and counts it among the
    /// finished jobs kept in memory. Nothing happens to a job already ended.
    pub(super) async fn finish(&self, job: &Job, state: JobState, error: Option<String>) {
        if job.log.close(state, error).await.is_err() {
            return; // closed already
        }
        let status = job.log.status();
        let ran = status
            .started_at
            .zip(status.finished_at)
            .map(|(from, to)| std::time::Duration::from_millis(to.saturating_sub(from)));
        crate::metrics::job_finished(&job.kind, state, ran);
        lock(&self.inner.table).retain_finished(job.id, self.inner.config.retained_jobs);
    }
}
