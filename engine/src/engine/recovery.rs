//! Taking up what the last run left in the store: queued jobs queue again,
//! jobs that were running end `interrupted`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{lock, Engine, Queued, INTERRUPTED};
use crate::model::JobState;
use crate::store::{StoreError, RESTART_SEQ_GAP};

impl Engine {
    pub(super) async fn recover(&self) -> Result<(), StoreError> {
        for rec in self.inner.store.unfinished().await? {
            self.inner
                .last_created
                .fetch_max(rec.created_at, Ordering::SeqCst);
            let plan = (rec.state == JobState::Queued)
                .then(|| self.inner.registry.plan(&rec.kind, &rec.params));
            // A job may have shown readers events the store never got (also
            // one still recorded as queued: its `running` may be among
            // them): its ids jump past them, so they never go backwards.
            let next_seq = rec.last_seq + RESTART_SEQ_GAP + 1;
            let links = (Some(self.links(rec.id, rec.owner)), Some(self.writer()));
            let cancel = self.inner.shutdown.child_token();
            let job = self.load(&rec, links, next_seq, cancel).await?;
            lock(&self.inner.table)
                .jobs
                .insert(job.id, Arc::clone(&job));
            job.log.announce();
            match plan {
                Some(Ok(run)) => {
                    let ctx = job.context(rec.display_name, rec.locale);
                    // Recovered jobs are queued whatever the capacity: they
                    // were accepted before.
                    self.enqueue(Queued { job, ctx, run });
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
}
