//! Claims from the shared queue, and cancels of jobs this node does not
//! run (see `cluster.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{lock, Engine, Job, Queued};
use crate::model::JobState;
use crate::store::{Claimed, JobRecord, StoreError, RESTART_SEQ_GAP};

impl Engine {
    /// Cluster-wide bounds checked before a submit: the shared queue and
    /// the session's unfinished jobs.
    pub(super) async fn cluster_room(
        &self,
        owner: crate::SessionId,
    ) -> Result<(), super::SubmitError> {
        use super::SubmitError;
        let Some((_, cluster)) = self.cluster() else {
            return Ok(());
        };
        let capacity = self.inner.config.queue_capacity;
        let queued = cluster
            .queued()
            .await
            .map_err(|_| SubmitError::StoreUnavailable)?;
        if queued >= capacity {
            return Err(SubmitError::QueueFull { capacity });
        }
        let limit = self.inner.config.quotas.jobs_per_session;
        if limit > 0 {
            let mine = cluster
                .unfinished_of(owner)
                .await
                .map_err(|_| SubmitError::StoreUnavailable)?;
            if mine >= limit {
                return Err(SubmitError::TooManyJobs { limit });
            }
        }
        Ok(())
    }

    /// The next job from the shared queue, claimed for this node: waits
    /// for a notice or the next poll while there is none.
    pub(super) async fn claim_next(&self) -> Queued {
        let Some((node, cluster)) = self.cluster() else {
            return std::future::pending().await;
        };
        let kinds: Vec<String> = self.inner.registry.kinds().map(str::to_owned).collect();
        loop {
            match cluster.claim(&node.id(), &kinds).await {
                Ok(Some(claimed)) => {
                    // There may be more: the next idle worker looks too.
                    self.inner.queued.notify_one();
                    if let Some(queued) = self.take(claimed).await {
                        return queued;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim from the shared queue"),
            }
            tokio::select! {
                () = self.inner.queued.notified() => {}
                () = tokio::time::sleep(node.config.poll) => {}
            }
        }
    }

    /// Makes a claimed job ready to run here: its mirror (or a new log)
    /// now persists its changes. `None` when it ends without running
    /// (cancelled while queued, or a kind this node does not know).
    async fn take(&self, claimed: Claimed) -> Option<Queued> {
        let rec = claimed.record;
        tracing::info!(job = %rec.id, kind = %rec.kind, "job claimed");
        let job = self.attach(&rec, claimed.again).await?;
        if claimed.cancel_requested {
            job.cancelled.store(true, Ordering::SeqCst);
            self.finish(&job, JobState::Cancelled, None).await;
            return None;
        }
        match self.inner.registry.plan(&rec.kind, &rec.params) {
            Ok(run) => {
                let ctx = job.context(rec.display_name, rec.locale);
                Some(Queued { job, ctx, run })
            }
            Err(e) => {
                let why = format!("this job cannot run on this server: {e}");
                self.finish(&job, JobState::Failed, Some(why)).await;
                None
            }
        }
    }

    /// Job `rec`, which this node now holds, with a log that persists:
    /// its mirror attached, or loaded. Claimed `again`, its ids jump past
    /// anything the node that claimed it before may have shown.
    async fn attach(&self, rec: &JobRecord, again: bool) -> Option<Arc<Job>> {
        let node = self.inner.node.as_ref()?;
        let next_seq = if again {
            rec.last_seq + RESTART_SEQ_GAP + 1
        } else {
            rec.last_seq + 1
        };
        let mirrored = lock(&node.mirrors).remove(&rec.id);
        if let Some(job) = mirrored {
            job.log.attach(self.writer(), next_seq);
            return Some(job);
        }
        let links = (Some(self.links(rec.id, rec.owner)), Some(self.writer()));
        let mut pause = Duration::from_millis(100);
        loop {
            let cancel = self.inner.shutdown.child_token();
            match self.load(rec, links.clone(), next_seq, cancel).await {
                Ok(job) => {
                    let mut table = lock(&self.inner.table);
                    // A mirror made meanwhile (a page asked for the job):
                    // that one is attached, so there is one copy.
                    let mirror = table.jobs.get(&rec.id).cloned();
                    if let Some(mirror) = mirror {
                        lock(&node.mirrors).remove(&rec.id);
                        drop(table);
                        mirror.log.attach(self.writer(), next_seq);
                        return Some(mirror);
                    }
                    table.jobs.insert(job.id, Arc::clone(&job));
                    drop(table);
                    job.log.announce();
                    return Some(job);
                }
                Err(e) => {
                    tracing::warn!(job = %rec.id, error = %e, "cannot load a claimed job; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Cancels `job`, which does not run here: a queued job no node holds
    /// is claimed and ended here; otherwise its holder is asked. `Ok(true)`
    /// when it is cancelled or asked to be, `Ok(false)` when it had ended.
    pub(super) async fn cancel_elsewhere(&self, job: &Arc<Job>) -> Result<bool, StoreError> {
        let Some((node, cluster)) = self.cluster() else {
            return Ok(false);
        };
        // A job just submitted here is queued once its insert is stored
        // (waited for within a bound: a store that does not write answers
        // below).
        let _ = tokio::time::timeout(super::PENDING_WRITES_WAIT, self.flush()).await;
        if let Some(claimed) = cluster.claim_queued(&node.id(), job.id).await? {
            let held = self.attach(&claimed.record, claimed.again).await;
            if let Some(held) = held {
                held.cancelled.store(true, Ordering::SeqCst);
                self.finish(&held, JobState::Cancelled, None).await;
            }
            return Ok(true);
        }
        if cluster.request_cancel(job.id).await? {
            return Ok(true);
        }
        self.read_mirror(job.id).await?;
        Ok(false)
    }
}
