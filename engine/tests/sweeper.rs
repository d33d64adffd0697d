//! The retention sweeper as it runs in the server: its own loop, on the
//! tokio clock, against a store held in memory (no I/O threads, so paused
//! time moves only when the test says).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jobstream_engine::store::{JobRecord, StoredEvent, Write};
use jobstream_engine::{
    Engine, EngineConfig, JobId, JobState, NewJob, Params, Registry, SessionId, Store, StoreError,
};
use serde::Deserialize;

/// Jobs only, no events: enough for what the sweeper reads and deletes.
#[derive(Default)]
struct MemoryStore {
    jobs: Mutex<HashMap<JobId, JobRecord>>,
    /// A full disk: deletes fail until the reserve is given up.
    full: std::sync::atomic::AtomicBool,
    /// The space kept back is still held.
    reserve: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, JobRecord>> {
        self.jobs.lock().unwrap()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut jobs = self.jobs();
        for write in writes {
            match write {
                Write::Insert(record) => {
                    jobs.insert(record.id, (**record).clone());
                }
                Write::Event(id, event) => {
                    if let Some(r) = jobs.get_mut(id) {
                        r.last_seq = event.seq;
                    }
                }
                Write::State {
                    job,
                    state,
                    at,
                    error,
                } => {
                    if let Some(r) = jobs.get_mut(job) {
                        r.state = *state;
                        r.error.clone_from(error);
                        if state.is_terminal() {
                            r.finished_at = Some(*at);
                        } else {
                            r.started_at = Some(*at);
                        }
                    }
                }
                Write::Progress { .. } => {}
            }
        }
        Ok(())
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.jobs().get(&id).cloned())
    }

    async fn events(&self, _: JobId, _: usize, _: usize) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn events_after(
        &self,
        _: JobId,
        _: u64,
        _: u64,
        _: usize,
        _: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn lines_before(
        &self,
        _: JobId,
        _: u64,
        _: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let mut of: Vec<_> = self
            .jobs()
            .values()
            .filter(|r| r.owner == owner)
            .cloned()
            .collect();
        of.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        of.truncate(limit);
        Ok(of)
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(self
            .jobs()
            .values()
            .filter(|r| !r.state.is_terminal())
            .cloned()
            .collect())
    }

    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut jobs = self.jobs();
        let old: Vec<JobId> = jobs
            .values()
            .filter(|r| r.finished_at.is_some_and(|at| at < cutoff))
            .map(|r| r.id)
            .take(limit)
            .collect();
        // A delete needs room to be logged; finding nothing to delete does not.
        if !old.is_empty() && self.full.load(SeqCst) && self.reserve.load(SeqCst) {
            return Err(StoreError("database or disk is full".into()));
        }
        for id in &old {
            jobs.remove(id);
        }
        Ok(old)
    }

    fn release_reserve(&self) -> bool {
        self.reserve
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// A job of `owner` that finished at `finished_at` (Unix ms), as stored.
fn finished(owner: SessionId, finished_at: u64) -> JobRecord {
    JobRecord {
        id: JobId::random(),
        owner,
        kind: "ok".into(),
        params: serde_json::Value::Null,
        display_name: "ada".into(),
        locale: "en".into(),
        state: JobState::Succeeded,
        error: None,
        progress: None,
        progress_label: None,
        created_at: finished_at - 2,
        started_at: Some(finished_at - 1),
        finished_at: Some(finished_at),
        last_seq: 0,
    }
}

#[derive(Deserialize)]
struct NoParams {}
impl Params for NoParams {}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("ok", |_, _: NoParams, _| async { Ok(()) });
    r
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_loop_deletes_old_finished_jobs_from_store_and_memory() {
    // One hour of retention: the loop sweeps every six minutes.
    let config = EngineConfig {
        retention: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let every = Duration::from_secs(360);
    let store = Arc::new(MemoryStore::default());
    let owner = SessionId::random();
    // Finished in 1970: far past any retention.
    let old = finished(owner, 1_000);
    store
        .write(&[Write::Insert(Box::new(old.clone()))])
        .await
        .unwrap();
    let engine = Engine::open(config, registry(), store.clone())
        .await
        .unwrap();
    // In memory too, as after someone opened its page.
    assert!(engine.find(owner, old.id).await.unwrap().is_some());
    assert!(engine.get(owner, old.id).is_some());
    // A job that finishes now is well within retention.
    let recent = engine
        .submit(NewJob {
            owner,
            kind: "ok".into(),
            params: serde_json::Value::Null,
            display_name: "ada".into(),
            locale: "en".into(),
            client: None,
        })
        .await
        .unwrap();
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    engine.flush().await;

    engine.spawn_sweeper();
    tokio::time::sleep(every - Duration::from_secs(1)).await;
    assert!(engine.get(owner, old.id).is_some(), "swept before its time");
    assert!(store.job(old.id).await.unwrap().is_some());

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(engine.get(owner, old.id).is_none(), "still in memory");
    assert!(store.job(old.id).await.unwrap().is_none(), "still stored");
    assert!(engine.find(owner, old.id).await.unwrap().is_none());
    assert!(engine.get(owner, recent.id).is_some());
    assert!(store.job(recent.id).await.unwrap().is_some());

    // The loop goes on: a job that turns up old later goes at the next turn.
    let later = finished(owner, 2_000);
    store
        .write(&[Write::Insert(Box::new(later.clone()))])
        .await
        .unwrap();
    tokio::time::sleep(every).await;
    assert!(store.job(later.id).await.unwrap().is_none());
    assert!(store.job(recent.id).await.unwrap().is_some());

    // And stops with the engine.
    engine.shutdown(Duration::from_secs(1)).await;
    let after = finished(owner, 3_000);
    store
        .write(&[Write::Insert(Box::new(after.clone()))])
        .await
        .unwrap();
    tokio::time::sleep(every * 2).await;
    assert!(store.job(after.id).await.unwrap().is_some());
}

#[tokio::test]
async fn on_a_full_disk_the_sweeper_gives_up_the_reserve_only_to_delete() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(MemoryStore::default());
    store.full.store(true, SeqCst);
    store.reserve.store(true, SeqCst);
    let config = EngineConfig {
        retention: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, registry(), Arc::clone(&store) as Arc<dyn Store>)
        .await
        .unwrap();
    let now = jobstream_engine::store::now_ms();
    // Nothing past retention: the reserve stays.
    let owner = SessionId::random();
    let young = finished(owner, now);
    store.jobs().insert(young.id, young);
    assert_eq!(engine.sweep().await.unwrap(), 0);
    assert!(store.reserve.load(SeqCst), "nothing to delete: kept");
    // Two jobs past it: the delete fails for lack of room, the reserve is
    // given up, and the delete goes through.
    for _ in 0..2 {
        let old = finished(owner, now - 2 * 3600 * 1000);
        store.jobs().insert(old.id, old);
    }
    assert_eq!(engine.sweep().await.unwrap(), 2);
    assert!(!store.reserve.load(SeqCst), "given up to delete");
    assert_eq!(store.jobs().len(), 1);
}
