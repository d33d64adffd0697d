//! Jobs loaded back from the store: `find` (memory, else the store) and
//! the load itself, shared by the requests that ask for the same job at
//! the same time.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{lock, Engine, Job, INTERRUPTED};
use crate::id::{JobId, SessionId};
use crate::journal::{EventLog, Links, Writer};
use crate::model::JobState;
use crate::store::{JobRecord, StoreError};

impl Engine {
    /// A job rebuilt from its record and its last stored events. With a
    /// writer, what it appends from `next_seq` on is persisted; without,
    /// it lives in memory only (or mirrors the store).
    pub(super) async fn load(
        &self,
        rec: &JobRecord,
        links: (Option<Links>, Option<Writer>),
        next_seq: u64,
        cancel: CancellationToken,
    ) -> Result<Arc<Job>, StoreError> {
        let limits = self.inner.config.log_limits;
        // Within the log's bounds while reading: readers read the store
        // for anything older.
        let events = self
            .inner
            .store
            .events(rec.id, limits.max_events, limits.max_bytes)
            .await?;
        let log = EventLog::restore(limits, rec, events, links, next_seq);
        Ok(Job::new(
            rec.id,
            rec.owner,
            (rec.kind.clone(), rec.params.clone()),
            rec.created_at,
            None, // who started it is not stored
            log,
            cancel,
        ))
    }

    /// A finished job loaded back from `rec` and its stored events, once
    /// for all the requests that ask for it at the same time: they share
    /// one read of the store (and one copy in memory).
    async fn load_once(&self, rec: &JobRecord) -> Result<Arc<Job>, StoreError> {
        // Whoever finishes (or gives up) last takes the entry out again.
        let loading = Loading {
            engine: self,
            id: rec.id,
            cell: Some(Arc::clone(
                lock(&self.inner.loading).entry(rec.id).or_default(),
            )),
        };
        loading
            .cell()
            .get_or_init(|| async {
                // Not the shutdown's child: a job loaded back has ended already.
                let links = Some(self.links(rec.id, rec.owner));
                self.load(
                    rec,
                    (links, None),
                    rec.last_seq + 1,
                    CancellationToken::new(),
                )
                .await
            })
            .await
            .clone()
    }

    /// How many jobs are being loaded back from the store now.
    pub fn loads_in_flight(&self) -> usize {
        lock(&self.inner.loading).len()
    }

    /// The job `id` of `owner`, from memory or else loaded from the store
    /// (its last `max_events` events) and kept in memory among the
    /// finished jobs.
    pub async fn find(&self, owner: SessionId, id: JobId) -> Result<Option<Arc<Job>>, StoreError> {
        if let Some(job) = self.get(owner, id) {
            return Ok(Some(job));
        }
        let Some(mut rec) = self.inner.store.job(id).await? else {
            return Ok(None);
        };
        if rec.owner != owner {
            return Ok(None);
        }
        if !rec.state.is_terminal() && self.inner.node.is_some() {
            // Queued in the shared queue, or running on another node.
            return self.mirror(&rec).await.map(Some);
        }
        if !rec.state.is_terminal() {
            // Every unfinished job of this process is in memory (submitted
            // here, or taken up at start). One that is not has ended and
            // was dropped from memory before its last writes reached the
            // store: wait for them, or it would come back as never ending.
            // Bounded: a store that cannot write (full disk) answers as
            // unavailable instead of holding the request.
            self.all_written().await?;
            rec = match self.inner.store.job(id).await? {
                Some(rec) => rec,
                None => return Ok(None),
            };
            if !rec.state.is_terminal() {
                tracing::warn!(job = %id, state = %rec.state, "an unfinished job is in the store but not in memory");
                rec.state = JobState::Interrupted;
                rec.error = Some(INTERRUPTED.to_owned());
            }
        }
        let job = self.load_once(&rec).await?;
        let mut table = lock(&self.inner.table);
        if let Some(loaded) = table.jobs.get(&id) {
            return Ok(Some(Arc::clone(loaded))); // another request was first
        }
        table.jobs.insert(id, Arc::clone(&job));
        table.retain_finished(id, self.inner.config.retained_jobs);
        Ok(Some(job))
    }
}

/// A load in progress, shared by the requests waiting for it.
pub(super) type LoadCell = Arc<tokio::sync::OnceCell<Result<Arc<Job>, StoreError>>>;

/// Removes a finished load from the engine's map when the last request
/// that took part in it is done with it.
struct Loading<'a> {
    engine: &'a Engine,
    id: JobId,
    /// This request's handle; `None` only while it is dropped.
    cell: Option<LoadCell>,
}

impl Loading<'_> {
    fn cell(&self) -> &LoadCell {
        self.cell.as_ref().expect("held until drop")
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        let mut loading = lock(&self.engine.inner.loading);
        // This request's handle goes under the lock, so the last request
        // to leave sees only the map's left, whatever the order they leave
        // in. A later load of the same job (after this one left the map)
        // has a cell of its own.
        let Some(mine) = self.cell.take() else { return };
        let same = loading.get(&self.id).is_some_and(|c| Arc::ptr_eq(c, &mine));
        drop(mine);
        if same
            && loading
                .get(&self.id)
                .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            loading.remove(&self.id);
        }
    }
}
