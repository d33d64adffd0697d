//! Retention in the store: the sweeper deletes jobs that finished longer
//! than `retention` ago, from the store and from memory alike, so that a
//! deleted job is not served from memory after the store has forgotten it.
//!
//! On a full disk (the writer failing) it sweeps at once and then every
//! interval, first giving the store the space it keeps back
//! ([`crate::store::Reserve`]) so its deletes can be written, in small
//! chunks; the space they free is what the waiting writes then use. The
//! reserve is taken back by a sweep once the store writes again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{lock, Engine};
use crate::store::{now_ms, StoreError};

/// Most jobs deleted in one transaction, so a large backlog does not hold
/// the store's write lock for long.
const CHUNK: usize = 500;

/// Most jobs deleted in one transaction while the store fails to write: a
/// delete must fit in the space kept back.
const CHUNK_WHEN_FULL: usize = 20;

impl Engine {
    /// How long the sweeper sleeps between sweeps: a tenth of the retention
    /// period, at least 1 s and at most 1 h.
    fn sweep_interval(&self) -> Duration {
        (self.inner.config.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }

    /// Starts the task that deletes finished jobs past their retention, a
    /// tenth of the retention period apart (at least 1 s, at most 1 h),
    /// until shutdown begins.
    pub fn spawn_sweeper(&self) {
        let engine = self.clone();
        let every = self.sweep_interval();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = engine.inner.shutdown.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                    () = engine.inner.store_failing.notified() => {}
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
        let retention = u64::try_from(self.inner.config.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(retention);
        let store = &self.inner.store;
        let healthy = self.inner.store_healthy.load(Ordering::SeqCst);
        // The space kept back is given up only when it lets the store
        // recover: jobs to delete, or freed pages the waiting writes can
        // reuse (else the writes would take it and the disk stay full).
        let reclaimable = healthy || store.can_reclaim(cutoff).await.unwrap_or(true);
        if !healthy && reclaimable {
            self.release_reserve();
        }
        let chunk = if healthy { CHUNK } else { CHUNK_WHEN_FULL };
        let deleted = match self.purge(cutoff, chunk).await {
            // No room to write the deletes: with the space kept back.
            Err(e) if reclaimable && self.release_reserve() => {
                tracing::warn!(error = %e, "retention sweep failed; trying again");
                self.purge(cutoff, CHUNK_WHEN_FULL).await?
            }
            other => other?,
        };
        self.forget_idle_feeds();
        if healthy {
            let store = Arc::clone(&self.inner.store);
            // Writes 8 MiB when it is missing: not on a runtime thread.
            let _ = tokio::task::spawn_blocking(move || store.take_reserve()).await;
        }
        Ok(deleted)
    }

    /// Deletes every job that finished before `cutoff`, `chunk` jobs per
    /// transaction.
    async fn purge(&self, cutoff: u64, chunk: usize) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            let ids = self
                .inner
                .store
                .purge_finished_before(cutoff, chunk)
                .await?;
            deleted += ids.len();
            lock(&self.inner.table).remove(&ids);
            if ids.len() < chunk {
                return Ok(deleted);
            }
        }
    }

    /// Gives the store the space it keeps back; whether there was any.
    fn release_reserve(&self) -> bool {
        let released = self.inner.store.release_reserve();
        if released {
            tracing::warn!(
                "the store cannot write (a full disk?): its reserved space is released so \
                 that jobs past their retention can be deleted"
            );
        }
        released
    }
}
