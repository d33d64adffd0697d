//! Mirrors: jobs this node shows but does not run (queued in the shared
//! queue, or running on another node), their logs fed from the store
//! (see `cluster.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{lock, Engine, Job};
use crate::id::JobId;
use crate::model::MAX_PAGE_BYTES;
use crate::store::{JobRecord, StoreError};

/// Most events read from the store for a mirror at a time.
const MIRROR_PAGE: usize = 512;

/// How many of a watched session's newest jobs are looked up again after
/// notices were missed.
const LIST_REFRESH: usize = 50;

impl Engine {
    /// Reads what the mirrors have not seen: those named by notices at
    /// once, all of them every poll.
    pub(super) async fn read_mirrors(&self) {
        let Some((node, cluster)) = self.cluster() else {
            return;
        };
        let mut poll = tokio::time::interval(node.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = node.stop.cancelled() => return,
                () = node.news.notified() => {}
                _ = poll.tick() => {
                    self.forget_unread_mirrors();
                    let mirrors: Vec<(JobId, u64)> = lock(&node.mirrors)
                        .values()
                        .map(|j| (j.id, j.log.last_seq()))
                        .collect();
                    let ids: Vec<JobId> = mirrors.iter().map(|(id, _)| *id).collect();
                    if let Ok(stored) = cluster.last_seqs(&ids).await {
                        let here: HashMap<JobId, u64> = mirrors.into_iter().collect();
                        node.mark(stored.into_iter().filter(|(id, seq)| here.get(id).is_some_and(|s| seq > s)).map(|(id, _)| id));
                    }
                }
            }
            let mut dirty: Vec<JobId> = lock(&node.dirty).drain().collect();
            while let Some(id) = dirty.pop() {
                if let Err(e) = self.read_mirror(id).await {
                    tracing::warn!(job = %id, error = %e, "cannot read another node's events; retrying");
                    node.mark(dirty.drain(..).chain([id]));
                    tokio::time::sleep(node.config.poll.min(Duration::from_secs(1))).await;
                    break;
                }
            }
        }
    }

    /// Reads the new events of mirror `id` into its log; a job a live list
    /// here wants but has no mirror of yet is looked up first.
    pub(super) async fn read_mirror(&self, id: JobId) -> Result<(), StoreError> {
        let Some((node, _)) = self.cluster() else {
            return Ok(());
        };
        let mirrored = lock(&node.mirrors).get(&id).cloned();
        let job = match mirrored {
            Some(job) => job,
            None => {
                let known = lock(&self.inner.table).jobs.contains_key(&id);
                if !known {
                    // A job started elsewhere that a list here shows.
                    if let Some(rec) = self.inner.store.job(id).await? {
                        if let Some(job) = self.find(rec.owner, id).await? {
                            job.log.announce();
                        }
                    }
                }
                return Ok(());
            }
        };
        loop {
            if job.log.is_attached() {
                // Claimed by this node meanwhile: it writes the job now.
                return Ok(());
            }
            let after = job.log.last_seq();
            let events = self
                .inner
                .store
                .events_after(id, after, u64::MAX, MIRROR_PAGE, MAX_PAGE_BYTES)
                .await?;
            if events.is_empty() {
                return Ok(());
            }
            let visible = events.iter().any(|e| e.kind != crate::EventKind::Message);
            let record = if visible {
                self.inner.store.job(id).await?
            } else {
                None
            };
            job.log.apply_stored(events, record.as_ref());
            if job.log.is_closed() {
                lock(&node.mirrors).remove(&id);
                lock(&self.inner.table).retain_finished(id, self.inner.config.retained_jobs);
                return Ok(());
            }
        }
    }

    /// A mirror of `rec`, a job queued in the shared queue or running on
    /// another node: in the table and fed from the store from now on.
    pub(super) async fn mirror(&self, rec: &JobRecord) -> Result<Arc<Job>, StoreError> {
        let Some((node, _)) = self.cluster() else {
            return Err(StoreError("not a cluster node".into()));
        };
        let links = (Some(self.links(rec.id, rec.owner)), None);
        let cancel = self.inner.shutdown.child_token();
        let job = self.load(rec, links, rec.last_seq + 1, cancel).await?;
        let job = {
            let mut table = lock(&self.inner.table);
            if let Some(first) = table.jobs.get(&rec.id) {
                return Ok(Arc::clone(first)); // another request was first
            }
            table.jobs.insert(rec.id, Arc::clone(&job));
            if job.log.is_closed() {
                table.retain_finished(rec.id, self.inner.config.retained_jobs);
                return Ok(job);
            }
            lock(&node.mirrors).insert(rec.id, Arc::clone(&job));
            job
        };
        // What was stored between the read and now.
        node.mark([rec.id]);
        Ok(job)
    }

    /// Registers a job just submitted here as a mirror: whichever node
    /// claims it runs it.
    pub(super) fn mirror_new(&self, job: &Arc<Job>) {
        if let Some((node, _)) = self.cluster() {
            lock(&node.mirrors).insert(job.id, Arc::clone(job));
        }
    }

    /// Drops the mirrors nobody here reads and no live list here shows:
    /// memory holds copies only of jobs that are wanted. A page or a
    /// stream that asks again makes a new one.
    fn forget_unread_mirrors(&self) {
        let Some((node, _)) = self.cluster() else {
            return;
        };
        let unread: Vec<Arc<Job>> = lock(&node.mirrors)
            .values()
            .filter(|j| j.log.readers() == 0 && !self.is_watched(j.owner))
            .cloned()
            .collect();
        for job in unread {
            let mut table = lock(&self.inner.table);
            let mut mirrors = lock(&node.mirrors);
            // Still unread, and still the same copy (not claimed here).
            if job.log.readers() == 0 && !job.log.is_attached() {
                mirrors.remove(&job.id);
                if table
                    .jobs
                    .get(&job.id)
                    .is_some_and(|j| Arc::ptr_eq(j, &job))
                {
                    table.jobs.remove(&job.id);
                }
            }
        }
    }

    /// Looks up the recent jobs of every session whose live list is open
    /// here: after a notice too big to name its jobs, or notices missed.
    pub(super) async fn refresh_watched(&self) -> Result<(), StoreError> {
        let Some((node, _)) = self.cluster() else {
            return Ok(());
        };
        let owners: Vec<crate::SessionId> = lock(&self.inner.feeds)
            .iter()
            .filter(|(_, feed)| feed.receiver_count() > 0)
            .map(|(owner, _)| *owner)
            .collect();
        for owner in owners {
            let recent = self.inner.store.jobs_of(owner, LIST_REFRESH).await?;
            node.mark(recent.into_iter().map(|r| r.id));
        }
        Ok(())
    }
}
