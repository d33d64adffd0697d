//! Reading a job's events wherever they are: in memory, else in the store.
//!
//! A [`Reader`] is a [`Subscription`] (a cursor in the job's log in memory)
//! that, when its cursor falls below the events memory still holds, reads
//! the missing ones from the store a page at a time ([`MAX_BATCH`] events,
//! [`MAX_PAGE_BYTES`] of text), in order, then continues from memory. The
//! cursor only moves forward, past what was handed out, so every event is
//! handed out once and the seam between store and memory has no hole,
//! whatever the job appends meanwhile: each read asks memory first, and
//! memory answers "behind" again if its window moved past the cursor.
//!
//! The store holds a prefix of each job's events (writes are applied in
//! order), so a page that comes back empty means the events are still on
//! their way there or gone. The reader waits for the pending writes once;
//! still empty, they are gone (retention deleted the job) and it hands out
//! a [`Gap`] for them. `gap` thus means "no longer exists anywhere".
//!
//! [`Engine::lines`] pages back through a job's messages the same way:
//! memory first, the store for what memory no longer holds.

use std::sync::Arc;
use std::time::Duration;

use jobstream_protocol::{Line, LinesPage};

use super::{Engine, Job, PENDING_WRITES_WAIT};
use crate::id::JobId;
use crate::log::{Read, Subscription};
use crate::model::{Batch, Event, Gap, Poll, MAX_BATCH, MAX_PAGE_BYTES};
use crate::store::{StoreError, StoredEvent};

/// First pause before reading the store again after it failed; it doubles
/// up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A reader of one job's events, from memory or the store. See the module
/// docs.
pub struct Reader {
    sub: Subscription,
    engine: Engine,
    job: JobId,
    /// Set once a store read came back empty and the pending writes were
    /// then all stored: another empty read means the events are gone.
    flushed: bool,
    /// Pause before the next read after the store failed.
    retry: Duration,
}

impl Reader {
    /// The last sequence id this reader has handed out.
    pub fn cursor(&self) -> u64 {
        self.sub.cursor()
    }

    /// Waits for the next events. `None` once the job has ended and this
    /// reader has handed out everything. While the store fails, it retries
    /// (with a growing pause, logged) and does not return.
    pub async fn next(&mut self) -> Option<Batch> {
        loop {
            // Seen before reading: an append after this makes `changed`
            // return at once (see `Subscription::next`).
            self.sub.mark_seen();
            match self.sub.read(true) {
                Read::Ready(Poll::Batch(batch)) => return Some(batch),
                Read::Ready(Poll::Done) => return None,
                Read::Ready(Poll::Pending) => self.sub.changed().await,
                Read::Behind { first, through } => {
                    if let Some(batch) = self.read_store(first, through).await {
                        return Some(batch);
                    }
                }
            }
        }
    }

    /// One page of the events between the cursor and `first` (where memory
    /// continues), or `None` when the caller should read again.
    async fn read_store(&mut self, first: u64, through: u64) -> Option<Batch> {
        let cursor = self.sub.cursor();
        let page = self
            .engine
            .inner
            .store
            .events_after(self.job, cursor, first, MAX_BATCH, MAX_PAGE_BYTES)
            .await;
        match page {
            Ok(page) if !page.is_empty() => {
                self.flushed = false;
                self.retry = FIRST_RETRY;
                let events: Vec<Arc<Event>> = page.into_iter().map(stored).collect();
                self.sub.advance(events.last().map_or(cursor, |e| e.seq));
                Some(Batch { gap: None, events })
            }
            Ok(_) if !self.flushed => {
                // Perhaps still on their way to the store: wait for them.
                match self.engine.all_written().await {
                    Ok(()) => self.flushed = true,
                    Err(e) => self.failed(e).await,
                }
                None
            }
            Ok(_) => {
                self.flushed = false;
                self.sub.advance(first - 1);
                Some(Batch {
                    gap: Some(Gap {
                        lost: through - cursor,
                        from: cursor + 1,
                        to: first - 1,
                    }),
                    events: Vec::new(),
                })
            }
            Err(e) => {
                self.failed(e).await;
                None
            }
        }
    }

    async fn failed(&mut self, e: StoreError) {
        tracing::warn!(job = %self.job, error = %e, "reading a job's events from the store failed; retrying");
        tokio::time::sleep(self.retry).await;
        self.retry = (self.retry * 2).min(MAX_RETRY);
    }
}

/// Drops the oldest of `lines` until their texts fit in `budget` (keeping
/// at least one). Whether any was dropped.
fn keep_newest_within(lines: &mut Vec<Line>, budget: usize) -> bool {
    let mut bytes = 0;
    let keep_from = lines
        .iter()
        .rposition(|l| {
            bytes += l.text.len();
            bytes > budget
        })
        .map_or(0, |over| over + 1)
        .min(lines.len().saturating_sub(1));
    lines.drain(..keep_from);
    keep_from > 0
}

/// A stored event, encoded again.
fn stored(e: StoredEvent) -> Arc<Event> {
    Event::encoded(e.seq, e.kind, e.text.into_boxed_str(), e.line)
}

impl Engine {
    /// A reader of `job`'s events after sequence id `after` (0: from the
    /// beginning), from memory or the store. The caller checks `after`
    /// against the job's last id.
    pub fn reader(&self, job: &Job, after: u64) -> Reader {
        Reader {
            sub: job.log.subscribe(after),
            engine: self.clone(),
            job: job.id,
            flushed: false,
            retry: FIRST_RETRY,
        }
    }

    /// The newest `limit` messages of `job` before sequence id `before`
    /// (none: the newest of all), oldest first, numbered, and no more than
    /// [`MAX_PAGE_BYTES`] of text (at least one); `more` tells whether
    /// older ones exist. From memory, and from the store for what
    /// memory no longer holds.
    pub async fn lines(
        &self,
        job: &Job,
        before: Option<u64>,
        limit: usize,
    ) -> Result<LinesPage, StoreError> {
        let before = before.unwrap_or(u64::MAX);
        let (events, older) = job.log.lines_before(before, limit);
        let mut lines: Vec<Line> = events.iter().filter_map(|e| e.as_line()).collect();
        let full = keep_newest_within(&mut lines, MAX_PAGE_BYTES);
        if let Some(first_in_memory) = older.filter(|_| !full && lines.len() < limit) {
            self.all_written().await?;
            let stored = self
                .inner
                .store
                .lines_before(job.id, before.min(first_in_memory), limit - lines.len())
                .await?;
            lines.splice(
                0..0,
                stored.into_iter().map(|e| Line {
                    seq: e.seq,
                    n: e.line,
                    text: e.text,
                }),
            );
            keep_newest_within(&mut lines, MAX_PAGE_BYTES);
        }
        // Lines are numbered from 1 without holes: older ones exist when
        // the first here is not line 1.
        let more = lines.first().is_some_and(|l| l.n > 1);
        Ok(LinesPage { lines, more })
    }

    /// Waits until every write sent so far is stored, for at most
    /// [`PENDING_WRITES_WAIT`]: a store that cannot write (a full disk)
    /// makes this an error instead of a wait without end.
    pub(super) async fn all_written(&self) -> Result<(), StoreError> {
        tokio::time::timeout(PENDING_WRITES_WAIT, self.flush())
            .await
            .map_err(|_| StoreError("pending writes did not reach the store in time".to_owned()))
    }
}
