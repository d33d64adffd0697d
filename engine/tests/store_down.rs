//! A store that takes no writes (a full disk): a job's emits wait a
//! bounded time and then fail it with a clear error, its end is still seen
//! by its readers, new jobs are refused at once, and all recovers when the
//! store does. And a job that runs past its time is stopped. On the tokio
//! clock, paused: the waits pass at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::store::{JobRecord, StoredEvent, Write, STORE_WAIT, WRITE_BUFFER_BYTES};
use jobstream_engine::{
    Emitter, Engine, EngineConfig, JobContext, JobId, JobState, NewJob, Params, QuotaConfig,
    Registry, SessionId, Store, StoreError, SubmitError,
};
use serde::Deserialize;
use serde_json::json;

/// Takes writes (and forgets them) unless `failing` is set.
#[derive(Default)]
struct FullDisk {
    failing: AtomicBool,
    /// Each write takes a second: a store that is behind, not failing.
    slow: AtomicBool,
    /// The last state stored for each job.
    states: std::sync::Mutex<std::collections::HashMap<JobId, JobState>>,
}

#[async_trait::async_trait]
impl Store for FullDisk {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("database or disk is full".into()));
        }
        let mut states = self.states.lock().unwrap();
        for write in writes {
            if let Write::State { job, state, .. } = write {
                states.insert(*job, *state);
            }
        }
        Ok(())
    }
    async fn job(&self, _: JobId) -> Result<Option<JobRecord>, StoreError> {
        Ok(None)
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
    async fn jobs_of(&self, _: SessionId, _: usize) -> Result<Vec<JobRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn purge_finished_before(&self, _: u64, _: usize) -> Result<Vec<JobId>, StoreError> {
        Ok(Vec::new())
    }
}

#[derive(Deserialize)]
struct NoParams {}
impl Params for NoParams {}

/// A kind allowed 10 minutes.
#[derive(Deserialize)]
struct Slow {}
impl Params for Slow {
    const MAX_DURATION: Duration = Duration::from_secs(600);
}

/// `chatty`: says more than the write buffer holds.
fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(
        "chatty",
        |_: JobContext, _: NoParams, out: Emitter| async move {
            for i in 0..20_000 {
                out.emit(&format!("line {i}")).await?;
            }
            Ok(())
        },
    );
    // Runs for ever unless asked to stop; `stubborn` not even then.
    r.register(
        "endless",
        |ctx: JobContext, _: Slow, _: Emitter| async move {
            ctx.cancel.cancelled().await;
            Err(jobstream_engine::JobError::new("stopped"))
        },
    );
    r.register(
        "stubborn",
        |_: JobContext, _: Slow, _: Emitter| async move {
            std::future::pending::<()>().await;
            Ok(())
        },
    );
    // Says 5,000 messages of 60 KB (300 MB).
    r.register(
        "big",
        |_: JobContext, _: NoParams, out: Emitter| async move {
            let text = "b".repeat(60_000);
            for _ in 0..5_000 {
                out.emit(&text).await?;
            }
            Ok(())
        },
    );
    r
}

fn chatty(owner: SessionId) -> NewJob {
    NewJob {
        owner,
        kind: "chatty".into(),
        params: json!({}),
        display_name: "ada".into(),
        locale: "en".into(),
        client: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_fails_the_job_after_a_bounded_wait_and_refuses_new_ones() {
    let store = Arc::new(FullDisk::default());
    let engine = Engine::open(
        EngineConfig::default(),
        registry(),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    let owner = SessionId::random();
    let job = engine.submit(chatty(owner)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);

    let started = tokio::time::Instant::now();
    assert_eq!(engine.run_next().await, JobState::Failed);
    // It waited for room (and for its end to be written), but not forever.
    assert!(started.elapsed() <= STORE_WAIT * 2 + Duration::from_secs(1));
    let snap = job.log.snapshot();
    assert!(job.log.is_closed(), "its readers see it end");
    assert!(
        snap.error
            .as_deref()
            .unwrap()
            .contains("the job store is unavailable"),
        "{:?}",
        snap.error
    );
    assert_eq!(engine.ready(), Err("the job store fails to write"));
    assert_eq!(
        engine.submit(chatty(owner)).await.unwrap_err(),
        SubmitError::StoreUnavailable
    );

    // Space again: the writer's next retry goes through, and the job's
    // end, made in memory only, reaches the store too.
    store.failing.store(false, Ordering::SeqCst);
    while engine.ready().is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..600 {
        if store.states.lock().unwrap().get(&job.id) == Some(&JobState::Failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.states.lock().unwrap().get(&job.id),
        Some(&JobState::Failed),
        "the job's end reached the store"
    );
    engine.submit(chatty(owner)).await.unwrap();
    assert_eq!(engine.run_next().await, JobState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_job_blocked_on_a_full_buffer_stops_when_cancelled() {
    let store = Arc::new(FullDisk::default());
    let engine = Engine::open(
        EngineConfig::default(),
        registry(),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    let owner = SessionId::random();
    let job = engine.submit(chatty(owner)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let run = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run_next().await }
    });
    // Until its emits wait: the buffer is full.
    while engine.ready() != Err("the job store fails to write") || job.log.last_seq() < 8_000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = tokio::time::Instant::now();
    engine.cancel(owner, job.id).await.unwrap();
    assert_eq!(run.await.unwrap(), JobState::Cancelled);
    // Its waiting emit gave up at once; only its end waited (in memory
    // after the bounded wait), not a second wait for the emit.
    assert!(started.elapsed() < STORE_WAIT + Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_write_buffer_is_bounded_in_bytes_not_only_in_writes() {
    let store = Arc::new(FullDisk::default());
    let engine = Engine::open(
        EngineConfig::default(),
        registry(),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    let owner = SessionId::random();
    let job = engine
        .submit(NewJob {
            kind: "big".into(),
            ..chatty(owner)
        })
        .await
        .unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let run = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run_next().await }
    });
    // Until its emits wait.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = job.log.last_seq();
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    // 60 KB messages (each held as text and frame): far fewer than the
    // 8,192 writes the buffer has places for.
    let held = last as usize * 2 * 60_000;
    assert!(
        held <= WRITE_BUFFER_BYTES + 2 * 60_000,
        "{last} messages waiting"
    );
    assert!(engine.ready().is_err());
    engine.cancel(owner, job.id).await.unwrap();
    assert_eq!(run.await.unwrap(), JobState::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_job_past_its_time_is_stopped_and_fails_saying_so() {
    let engine = Engine::open(
        EngineConfig {
            max_duration: Duration::from_secs(3600),
            ..EngineConfig::default()
        },
        registry(),
        Arc::new(FullDisk::default()),
    )
    .await
    .unwrap();
    let owner = SessionId::random();
    for kind in ["endless", "stubborn"] {
        let job = engine
            .submit(NewJob {
                kind: kind.into(),
                ..chatty(owner)
            })
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(engine.run_next().await, JobState::Failed, "{kind}");
        // The kind's 10 minutes, not the engine's hour; a job that does
        // not stop is abandoned 5 s later.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(600) && took <= Duration::from_secs(606),
            "{kind}: {took:?}"
        );
        assert_eq!(
            job.log.snapshot().error.as_deref(),
            Some("the job ran longer than its limit of 600 s and was stopped")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_that_fills_the_write_buffer_waits_for_room_instead_of_refusing() {
    let store = Arc::new(FullDisk::default());
    store.slow.store(true, Ordering::SeqCst);
    let engine = Engine::open(
        EngineConfig {
            queue_capacity: 20_000,
            quotas: QuotaConfig::OFF, // 9,000 jobs of one session
            ..EngineConfig::default()
        },
        registry(),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    let owner = SessionId::random();
    // More inserts than the buffer holds, faster than the store takes them.
    for i in 0..9_000 {
        engine
            .submit(chatty(owner))
            .await
            .unwrap_or_else(|e| panic!("job {i} refused: {e}"));
    }
}
