//! Each session's feed: a counter that goes up whenever one of its jobs is
//! created or changes state or progress, and the jobs changed since a
//! value of it. Together they drive a session's live job list.

use std::sync::Arc;

use jobstream_protocol::JobSummary;
use tokio::sync::watch;

use super::{lock, Engine, Job};
use crate::id::{JobId, SessionId};
use crate::journal::{Links, Writer};

impl Engine {
    fn feed(&self, owner: SessionId) -> Arc<watch::Sender<u64>> {
        Arc::clone(
            lock(&self.inner.feeds)
                .entry(owner)
                .or_insert_with(|| Arc::new(watch::Sender::new(0))),
        )
    }

    /// Which job a log is for and whose feed it bumps: `owner`'s.
    pub(super) fn links(&self, job: JobId, owner: SessionId) -> Links {
        Links {
            job,
            feed: self.feed(owner),
        }
    }

    /// Where a log sends its writes.
    pub(super) fn writer(&self) -> Writer {
        Writer {
            writes: self.inner.writes.clone(),
            room: Arc::clone(&self.inner.room),
        }
    }

    /// Whether a live job list of `owner` is open here.
    pub(super) fn is_watched(&self, owner: SessionId) -> bool {
        lock(&self.inner.feeds)
            .get(&owner)
            .is_some_and(|feed| feed.receiver_count() > 0)
    }

    /// Drops the feeds no log and no reader holds any more; a session that
    /// comes back gets a new one, which any change bumps past 0.
    pub(super) fn forget_idle_feeds(&self) {
        lock(&self.inner.feeds)
            .retain(|_, feed| Arc::strong_count(feed) > 1 || feed.receiver_count() > 0);
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
        changed.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        changed
    }
}
