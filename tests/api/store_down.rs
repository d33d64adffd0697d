//! A store that stops taking writes (a full disk, a database that is
//! down): new jobs are refused at once with 503, `/readyz` says so, and
//! both recover when the store does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobstream::Config;
use jobstream_engine::store::{JobRecord, StoredEvent, Write};
use jobstream_engine::{JobId, SessionId, SqliteStore, Store, StoreError};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// SQLite whose writes fail while `failing` is set, as on a full disk.
struct FlakyStore {
    inner: SqliteStore,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl Store for FlakyStore {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("database or disk is full".into()));
        }
        self.inner.write(writes).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }
    async fn events(
        &self,
        id: JobId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.events(id, limit, max_bytes).await
    }
    async fn events_after(
        &self,
        id: JobId,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner
            .events_after(id, after, before, limit, max_bytes)
            .await
    }
    async fn lines_before(
        &self,
        id: JobId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.lines_before(id, before, limit).await
    }
    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.jobs_of(owner, limit).await
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.unfinished().await
    }
    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        self.inner.purge_finished_before(cutoff, limit).await
    }
}

/// `/readyz`'s status, polled until it is `want` (or 20 s pass).
async fn ready_becomes(app: &TestApp, want: StatusCode) -> Value {
    let started = Instant::now();
    loop {
        let resp = reqwest::get(app.url("/readyz")).await.unwrap();
        assert!(resp.headers().get(header::SET_COOKIE).is_none());
        if resp.status() == want {
            return resp.json().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/readyz did not become {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_store_that_fails_gives_503_at_once_and_recovers() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/jobstream.db", data.path().display());
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open(&url).await.unwrap(),
        failing: AtomicBool::new(false),
    });
    let app = spawn_app_on(
        Config::default(),
        data,
        |_| {},
        Some(Arc::clone(&store) as Arc<dyn Store>),
    )
    .await;
    assert_eq!(
        ready_becomes(&app, StatusCode::OK).await,
        json!({"ready": true})
    );

    store.failing.store(true, Ordering::SeqCst);
    // The first write after the disk filled fails; from then on the
    // server says it is not ready and refuses new jobs at once.
    let _ = app.start("echo", json!({"messages": ["lost?"]})).await;
    let body = ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["reason"], "the job store fails to write");
    let started = Instant::now();
    let refused = app.start("echo", json!({"messages": ["x"]})).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(
        error["error"],
        "the job store is unavailable; try again shortly"
    );

    // Space again: the writer's retry succeeds, nothing was lost.
    store.failing.store(false, Ordering::SeqCst);
    ready_becomes(&app, StatusCode::OK).await;
    let id = app.start_ok("echo", json!({"messages": ["back"]})).await;
    assert_eq!(
        messages(&app.events(&id, None).await),
        ["back", "__CLOSE_SSE__"]
    );
    let jobs = app.get_json("/api/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
    app.shutdown().await;
}
