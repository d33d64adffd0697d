//! Retention in the store: the sweeper deletes jobs that finished longer
//! than `retention` ago, from the store and from memory alike, so that a
//! deleted job is not served from memory after the store has forgotten it.

use std::time::Duration;

use super::{lock, Engine};
use crate::store::{now_ms, StoreError};

/// Most jobs deleted in one transaction, so a large backlog does not hold
/// the store's write lock for long.
const CHUNK: usize = 500;

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
        let mut deleted = 0;
        loop {
            let ids = self
                .inner
                .store
                .purge_finished_before(cutoff, CHUNK)
                .await?;
            deleted += ids.len();
            lock(&self.inner.table).remove(&ids);
            if ids.len() < CHUNK {
                break;
            }
        }
        self.forget_idle_feeds();
        Ok(deleted)
    }
}
