//! The queue's consumers: the worker loop, and `run_next`, one step of it
//! that tests drive by hand.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::Instrument;

use super::{lock, Engine, Job, INTERRUPTED, STOP_GRACE};
use crate::job::{Emitter, JobContext};
use crate::model::JobState;
use crate::registry::Runner;

/// A worker busy with a job, counted while it lives.
struct Busy<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Busy<'a> {
    fn new(busy: &'a std::sync::atomic::AtomicUsize) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Busy(busy)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A job waiting in the queue, with what it needs to run.
pub(super) struct Queued {
    pub(super) job: Arc<Job>,
    pub(super) ctx: JobContext,
    pub(super) run: Runner,
}

impl Engine {
    /// Starts `config.workers` worker tasks.
    pub fn spawn_workers(&self) {
        for _ in 0..self.inner.config.workers.max(1) {
            let engine = self.clone();
            self.inner.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        () = engine.inner.shutdown.cancelled() => break,
                        queued = engine.next_job() => engine.run(queued).await,
                    }
                }
            });
        }
    }

    /// How many jobs wait in the queue.
    pub fn queue_len(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    /// Puts a job at the back of the queue, whatever its length, and wakes
    /// a worker.
    pub(super) fn enqueue(&self, queued: Queued) {
        lock(&self.inner.queue).push_back(queued);
        self.inner.queued.notify_one();
    }

    /// The next job to run: from the shared queue in a cluster, else from
    /// this process's.
    async fn next_job(&self) -> Queued {
        if self.inner.node.is_some() {
            self.claim_next().await
        } else {
            self.next_queued().await
        }
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
        let queued = self.next_job().await;
        let log = Arc::clone(&queued.job.log);
        self.run(queued).await;
        log.state()
    }

    async fn run(&self, queued: Queued) {
        // Every line logged about the job, by the worker or by the job's
        // own task, carries its id and kind.
        let span = tracing::info_span!("job", id = %queued.job.id, kind = %queued.job.kind);
        self.run_in(queued, span.clone()).instrument(span).await;
    }

    async fn run_in(&self, Queued { job, ctx, run }: Queued, span: tracing::Span) {
        if self.inner.shutdown.is_cancelled() {
            // Taken as the server stops: not started, it stays queued in
            // the store (it runs after the next start, or on another node).
            return;
        }
        if job.log.set_running().await.is_err() {
            return; // already closed (cancelled)
        }
        crate::metrics::job_started(&job.kind);
        let _busy = Busy::new(&self.inner.busy);
        let emitter = Emitter::new(Arc::clone(&job.log), job.cancel.clone());
        let max = self
            .inner
            .registry
            .max_duration(&job.kind)
            .map_or(self.inner.config.max_duration, |m| {
                m.min(self.inner.config.max_duration)
            });
        // Its own task: a panicking job fails alone.
        let mut handle = self.inner.tasks.spawn(run(ctx, emitter).instrument(span));
        let mut overran = false;
        let result = tokio::select! {
            // A job that ends as its time runs out has ended.
            biased;
            result = &mut handle => Some(result),
            () = tokio::time::sleep(max) => {
                overran = true;
                job.cancel.cancel();
                match tokio::time::timeout(STOP_GRACE, &mut handle).await {
                    Ok(result) => Some(result),
                    Err(_) => {
                        // Not awaited: a job that never yields would hold
                        // its worker; the abort lands at its next await.
                        tracing::warn!(job = %job.id, kind = %job.kind, "a job over its time did not stop; abandoned");
                        handle.abort();
                        None
                    }
                }
            }
        };
        let (state, error) = if job.fenced.load(Ordering::SeqCst) {
            (
                JobState::Interrupted,
                Some(super::cluster::FENCED.to_owned()),
            )
        } else if overran {
            (
                JobState::Failed,
                Some(format!(
                    "the job ran longer than its limit of {} s and was stopped",
                    max.as_secs()
                )),
            )
        } else if job.cancelled.load(Ordering::SeqCst) {
            (JobState::Cancelled, None)
        } else {
            match result {
                Some(Ok(Ok(()))) => (JobState::Succeeded, None),
                Some(Err(e)) if e.is_panic() => {
                    tracing::error!(job = %job.id, kind = %job.kind, "job panicked");
                    (JobState::Failed, Some("the job crashed".to_owned()))
                }
                _ if self.inner.shutdown.is_cancelled() => {
                    (JobState::Interrupted, Some(INTERRUPTED.to_owned()))
                }
                Some(Ok(Err(e))) => (JobState::Failed, Some(e.to_string())),
                Some(Err(_)) | None => (JobState::Interrupted, Some(INTERRUPTED.to_owned())),
            }
        };
        match state {
            JobState::Failed | JobState::Interrupted => {
                tracing::info!(state = %state, "job ended");
            }
            _ => tracing::debug!(state = %state, "job ended"),
        }
        self.finish(&job, state, error).await;
        if job.fenced.load(Ordering::SeqCst) {
            // Its end as the store has it (written by the node that took
            // it) is what a request here should get: loaded again.
            lock(&self.inner.table).remove(&[job.id]);
        }
    }
}
