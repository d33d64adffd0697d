//! The SQLite store on a temporary file, under the engine: a writer that
//! lags, jobs dropped from memory, reads that wait for writes. The store
//! contract itself (on SQLite and PostgreSQL) is in store_suite.rs.

use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::store::{JobRecord, Write};
use jobstream_engine::{
    Engine, EngineConfig, EventKind, JobId, JobState, SessionId, SqliteStore, Store,
};
use tokio::sync::Semaphore;

#[path = "support/jobs.rs"]
mod jobs;
use jobs::{new_job, record, registry};
fn url(dir: &tempfile::TempDir) -> String {
    // A folder that does not exist yet: the store creates it.
    format!("sqlite://{}/data/jobs.db", dir.path().display())
}

/// A SQLite store whose writes wait while `held` is set: the writer task
/// then lags behind the jobs, as under a slow disk.
struct SlowStore {
    inner: SqliteStore,
    held: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl Store for SlowStore {
    async fn write(&self, writes: &[Write]) -> Result<(), jobstream_engine::StoreError> {
        let mut held = self.held.subscribe();
        // The sender lives in the store itself, so this cannot fail.
        let _ = held.wait_for(|held| !*held).await;
        self.inner.write(writes).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, jobstream_engine::StoreError> {
        self.inner.job(id).await
    }
    async fn events(
        &self,
        id: JobId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<jobstream_engine::store::StoredEvent>, jobstream_engine::StoreError> {
        self.inner.events(id, limit, max_bytes).await
    }
    async fn events_after(
        &self,
        id: JobId,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<jobstream_engine::store::StoredEvent>, jobstream_engine::StoreError> {
        self.inner
            .events_after(id, after, before, limit, max_bytes)
            .await
    }
    async fn lines_before(
        &self,
        id: JobId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<jobstream_engine::store::StoredEvent>, jobstream_engine::StoreError> {
        self.inner.lines_before(id, before, limit).await
    }
    async fn jobs_of(
        &self,
        owner: SessionId,
        limit: usize,
    ) -> Result<Vec<JobRecord>, jobstream_engine::StoreError> {
        self.inner.jobs_of(owner, limit).await
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, jobstream_engine::StoreError> {
        self.inner.unfinished().await
    }
    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, jobstream_engine::StoreError> {
        self.inner.purge_finished_before(cutoff, limit).await
    }
}

/// An engine on a [`SlowStore`] in `dir` that keeps no finished job in
/// memory, so every finished job is read back from the store.
async fn slow_engine(dir: &tempfile::TempDir) -> (Arc<SlowStore>, Engine) {
    let store = Arc::new(SlowStore {
        inner: SqliteStore::open(&url(dir)).await.unwrap(),
        held: tokio::sync::watch::Sender::new(false),
    });
    let config = EngineConfig {
        retained_jobs: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::open(
        config,
        registry(Arc::new(Semaphore::new(10))),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    (store, engine)
}

#[tokio::test]
async fn a_job_dropped_from_memory_before_its_end_was_written_comes_back_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = slow_engine(&dir).await;
    let owner = SessionId::random();
    let job = engine.submit(new_job(owner)).await.unwrap();
    engine.flush().await; // its record is stored, as queued
    store.held.send_replace(true);
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    drop(job);
    // Ended and dropped from memory; the store still says queued.
    assert!(engine.get(owner, store_id(&engine, owner).await).is_none());

    let finder = {
        let engine = engine.clone();
        let id = store_id(&engine, owner).await;
        tokio::spawn(async move { engine.find(owner, id).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!finder.is_finished(), "find waits for the pending writes");
    store.held.send_replace(false);
    let found = finder.await.unwrap().unwrap().unwrap();
    assert_eq!(found.log.state(), JobState::Succeeded);
    assert!(found.log.is_closed());
    let kinds: Vec<_> = found.log.snapshot().events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds[kinds.len() - 2..], [EventKind::End, EventKind::Close]);
}

/// The id of `owner`'s only job, as the store lists it.
async fn store_id(engine: &Engine, owner: SessionId) -> JobId {
    let jobs = engine.list(owner, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    jobs[0].id.parse().unwrap()
}

#[tokio::test]
async fn a_read_that_waits_for_writes_the_store_cannot_take_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = slow_engine(&dir).await;
    let owner = SessionId::random();
    engine.submit(new_job(owner)).await.unwrap();
    engine.flush().await;
    // As a full disk: nothing more is written.
    store.held.send_replace(true);
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    let id = store_id(&engine, owner).await;
    // The store is unavailable for this read (a 503), not a request held forever.
    assert!(engine.find(owner, id).await.is_err());
    store.held.send_replace(false);
    assert_eq!(
        engine.find(owner, id).await.unwrap().unwrap().log.state(),
        JobState::Succeeded
    );
}

#[tokio::test]
async fn readers_holding_every_read_connection_never_block_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&url(&dir)).await.unwrap();
    // Every read connection taken (streams catching up, pages, loads).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(store.pool().acquire().await.unwrap());
    }
    let job = record(SessionId::random(), 1);
    let writes = [Write::Insert(Box::new(job.clone()))];
    let write = store.write(&writes);
    tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the writer has a connection of its own")
        .unwrap();
    drop(held);
    assert!(store.job(job.id).await.unwrap().is_some());
}
