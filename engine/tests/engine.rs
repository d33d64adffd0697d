//! The engine's pool and queue, driven step by step.

use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::{
    CancelError, Emitter, Engine, EngineConfig, JobContext, JobError, JobState, NewJob, Params,
    QuotaConfig, Registry, SessionId, SqliteStore, Store, SubmitError,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

#[derive(Deserialize)]
struct NoParams {}
impl Params for NoParams {}

#[derive(Deserialize)]
struct Say {
    text: String,
}
impl Params for Say {}

/// A registry whose `gate` jobs each wait for one permit of `gate`.
fn registry(gate: Arc<Semaphore>) -> Registry {
    let mut r = Registry::new();
    r.register(
        "gate",
        move |_ctx: JobContext, _: NoParams, out: Emitter| {
            let gate = Arc::clone(&gate);
            async move {
                out.emit("waiting").await?;
                gate.acquire().await.expect("gate open").forget();
                out.emit("passed").await?;
                Ok(())
            }
        },
    );
    r.register("say", |ctx: JobContext, p: Say, out: Emitter| async move {
        out.emit(&format!("{} says {}", ctx.display_name, p.text))
            .await?;
        Ok(())
    });
    r.register("fail", |_, _: NoParams, _| async {
        Err(JobError::new("it broke"))
    });
    r.register("panic", |_, _: NoParams, _| async { panic!("job bug") });
    r.register("forever", |ctx: JobContext, _: NoParams, _| async move {
        ctx.cancel.cancelled().await;
        Err(JobError::new("cancelled"))
    });
    r
}

fn job(owner: SessionId, kind: &str) -> NewJob {
    NewJob {
        owner,
        kind: kind.into(),
        params: serde_json::Value::Null,
        display_name: "ada".into(),
        locale: "en".into(),
        client: None,
    }
}

fn states(engine: &Engine, owner: SessionId, ids: &[jobstream_engine::JobId]) -> Vec<JobState> {
    ids.iter()
        .map(|id| engine.get(owner, *id).unwrap().log.state())
        .collect()
}

async fn store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap())
}

async fn open(config: EngineConfig, registry: Registry) -> Engine {
    Engine::open(config, registry, store().await).await.unwrap()
}

async fn start(config: EngineConfig, registry: Registry) -> Engine {
    Engine::start(config, registry, store().await)
        .await
        .unwrap()
}

/// Waits until `done` holds (checked every 5 ms, for at most 10 s).
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached in 10 s");
}

#[tokio::test]
async fn no_more_than_the_configured_workers_run_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let config = EngineConfig {
        workers: 4,
        ..EngineConfig::default()
    };
    let engine = start(config, registry(Arc::clone(&gate))).await;
    let owner = SessionId::random();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(engine.submit(job(owner, "gate")).await.unwrap().id);
    }
    until(|| engine.queue_len() == 2).await;
    // Give a fifth worker, if there were one, time to take a job.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = states(&engine, owner, &ids);
    assert_eq!(
        s.iter().filter(|s| **s == JobState::Running).count(),
        4,
        "{s:?}"
    );
    // FIFO: the first four run, the last two wait.
    assert_eq!(&s[4..], [JobState::Queued, JobState::Queued]);
    assert_eq!(engine.queue_len(), 2);

    gate.add_permits(6);
    until(|| states(&engine, owner, &ids) == vec![JobState::Succeeded; 6]).await;
}

#[tokio::test]
async fn a_full_queue_refuses_and_keeps_what_it_has() {
    let config = EngineConfig {
        queue_capacity: 2,
        ..EngineConfig::default()
    };
    // No workers: nothing leaves the queue.
    let engine = open(config, registry(Arc::new(Semaphore::new(0)))).await;
    let owner = SessionId::random();
    let a = engine.submit(job(owner, "say")).await.map(|j| j.id);
    assert!(a.is_err(), "say needs params");
    let mut say = job(owner, "say");
    say.params = json!({"text": "hi"});
    let first = engine.submit(say.clone()).await.unwrap();
    engine.submit(say.clone()).await.unwrap();
    assert_eq!(
        engine.submit(say.clone()).await.unwrap_err(),
        SubmitError::QueueFull { capacity: 2 }
    );
    assert_eq!(engine.queue_len(), 2);

    // Running one frees a place.
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    engine.submit(say).await.unwrap();
    let snap = first.log.snapshot();
    let texts: Vec<_> = snap.events.iter().map(|e| &*e.text).collect();
    assert_eq!(texts[..2], ["running", "ada says hi"]);
}

#[tokio::test]
async fn jobs_are_visible_only_to_their_session() {
    let engine = open(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let alice = SessionId::random();
    let id = engine.submit(job(alice, "fail")).await.unwrap().id;
    assert!(engine.get(alice, id).is_some());
    assert!(engine.get(SessionId::random(), id).is_none());
    assert!(engine
        .get(alice, jobstream_engine::JobId::random())
        .is_none());
}

#[tokio::test]
async fn failures_and_panics_end_the_job_with_a_message() {
    let engine = open(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let owner = SessionId::random();
    let failing = engine.submit(job(owner, "fail")).await.unwrap();
    let panicking = engine.submit(job(owner, "panic")).await.unwrap();
    assert_eq!(engine.run_next().await, JobState::Failed);
    assert_eq!(engine.run_next().await, JobState::Failed);
    assert_eq!(failing.log.snapshot().error.as_deref(), Some("it broke"));
    // The panic's text stays in the server log, not in the user's face.
    assert_eq!(
        panicking.log.snapshot().error.as_deref(),
        Some("the job crashed")
    );
}

#[tokio::test]
async fn unknown_kinds_and_bad_params_are_refused_before_queueing() {
    let engine = open(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let err = engine
        .submit(job(SessionId::random(), "nope"))
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("unknown job kind \"nope\"; known kinds: fail, forever, gate"));
    assert_eq!(engine.queue_len(), 0);
}

#[tokio::test]
async fn shutdown_interrupts_running_jobs_and_keeps_queued_ones() {
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let engine = start(config, registry(Arc::new(Semaphore::new(0)))).await;
    let owner = SessionId::random();
    let running = engine.submit(job(owner, "forever")).await.unwrap();
    let queued = engine.submit(job(owner, "forever")).await.unwrap();
    until(|| running.log.state() == JobState::Running).await;
    engine.shutdown(Duration::from_secs(10)).await;
    assert_eq!(running.log.state(), JobState::Interrupted);
    assert_eq!(
        running.log.snapshot().error.as_deref(),
        Some(jobstream_engine::engine::INTERRUPTED)
    );
    // Still queued: it runs after the next start.
    assert_eq!(queued.log.state(), JobState::Queued);
    assert_eq!(
        engine.submit(job(owner, "forever")).await.unwrap_err(),
        SubmitError::ShuttingDown
    );
}

#[tokio::test]
async fn finished_jobs_beyond_the_retention_bound_are_forgotten() {
    let config = EngineConfig {
        retained_jobs: 2,
        ..EngineConfig::default()
    };
    let engine = open(config, registry(Arc::new(Semaphore::new(0)))).await;
    let owner = SessionId::random();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(engine.submit(job(owner, "fail")).await.unwrap().id);
    }
    for _ in 0..3 {
        engine.run_next().await;
    }
    assert!(engine.get(owner, ids[0]).is_none());
    assert!(engine.get(owner, ids[1]).is_some());
    assert!(engine.get(owner, ids[2]).is_some());
    // Forgotten by memory, not by the store: it comes back when asked for.
    engine.flush().await;
    let back = engine.find(owner, ids[0]).await.unwrap().unwrap();
    assert_eq!(back.log.state(), JobState::Failed);
    assert_eq!(back.log.snapshot().error.as_deref(), Some("it broke"));
    assert!(engine
        .find(SessionId::random(), ids[0])
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn raw_output_that_is_not_utf8_becomes_replacement_characters() {
    let mut r = Registry::new();
    r.register("raw", |_, _: NoParams, out: Emitter| async move {
        out.emit_bytes(b"ok \xff\xfe bytes\nnext").await?;
        Ok(())
    });
    let engine = open(EngineConfig::default(), r).await;
    let job = engine
        .submit(job(SessionId::random(), "raw"))
        .await
        .unwrap();
    engine.run_next().await;
    let snap = job.log.snapshot();
    assert_eq!(&*snap.events[1].text, "ok \u{fffd}\u{fffd} bytes\nnext");
}

#[tokio::test]
async fn cancelling_a_queued_job_takes_it_out_of_the_queue() {
    let engine = open(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let owner = SessionId::random();
    let queued = engine.submit(job(owner, "forever")).await.unwrap();
    assert_eq!(engine.queue_len(), 1);
    assert_eq!(
        engine
            .cancel(SessionId::random(), queued.id)
            .await
            .unwrap_err(),
        CancelError::NotFound
    );
    engine.cancel(owner, queued.id).await.unwrap();
    assert_eq!(engine.queue_len(), 0);
    assert_eq!(queued.log.state(), JobState::Cancelled);
    let texts: Vec<_> = queued
        .log
        .snapshot()
        .events
        .iter()
        .map(|e| e.text.to_string())
        .collect();
    assert_eq!(texts, [r#"{"state":"cancelled"}"#, "__CLOSE_SSE__"]);
    assert_eq!(
        engine.cancel(owner, queued.id).await.unwrap_err(),
        CancelError::Ended(JobState::Cancelled)
    );
}

#[tokio::test]
async fn cancelling_a_running_job_stops_it_at_its_next_step() {
    let engine = start(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let owner = SessionId::random();
    let running = engine.submit(job(owner, "forever")).await.unwrap();
    let mut sub = running.log.subscribe(0);
    let first = sub.next().await.unwrap();
    assert_eq!(&*first.events[0].text, "running");
    engine.cancel(owner, running.id).await.unwrap();
    let mut last = Vec::new();
    while let Some(b) = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("the job stopped")
    {
        last.extend(b.events.iter().map(|e| e.text.to_string()));
    }
    assert_eq!(last, [r#"{"state":"cancelled"}"#, "__CLOSE_SSE__"]);
}

#[tokio::test]
async fn progress_is_kept_and_evented_only_when_it_moves() {
    let mut r = Registry::new();
    r.register("count", |_, _: NoParams, out: Emitter| async move {
        for i in 0..=1000 {
            out.progress(f64::from(i) / 1000.0, Some("counting"))
                .await?;
        }
        Ok(())
    });
    let engine = open(EngineConfig::default(), r).await;
    let owner = SessionId::random();
    let job = engine.submit(job(owner, "count")).await.unwrap();
    engine.run_next().await;
    let snap = job.log.snapshot();
    let progress: Vec<_> = snap
        .events
        .iter()
        .filter(|e| e.kind == jobstream_engine::EventKind::Progress)
        .collect();
    // One event per whole percent: 0, 1, ..., 100.
    assert_eq!(progress.len(), 101);
    assert_eq!(
        &*progress[1].text,
        r#"{"fraction":0.01,"label":"counting"}"#
    );
    assert!(progress[1].frame.starts_with(b"id: "));
    assert!(std::str::from_utf8(&progress[1].frame)
        .unwrap()
        .contains("event: progress\n"));
    let summary = &engine.list(owner, 10).await.unwrap()[0];
    assert_eq!(summary.progress, Some(1.0));
    assert_eq!(summary.label.as_deref(), Some("counting"));
    assert_eq!(summary.state, JobState::Succeeded);
}

#[tokio::test]
async fn the_feed_reports_each_change_of_a_sessions_jobs() {
    let engine = open(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let owner = SessionId::random();
    let mut rx = engine.watch(owner);
    let seen = *rx.borrow_and_update();
    let a = engine.submit(job(owner, "fail")).await.unwrap();
    let other = engine
        .submit(job(SessionId::random(), "fail"))
        .await
        .unwrap();
    assert!(rx.has_changed().unwrap());
    let changed = engine.changed_since(owner, seen);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].id, a.id.to_string());
    assert_eq!(changed[0].state, JobState::Queued);
    let seen = *rx.borrow_and_update();
    engine.run_next().await;
    let changed = engine.changed_since(owner, seen);
    assert_eq!(changed[0].state, JobState::Failed);
    assert!(engine
        .changed_since(owner, *rx.borrow_and_update())
        .is_empty());
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_reader_woken_by_a_new_job_finds_it() {
    // The reader reads the feed the moment it is woken, as the job-list
    // stream does; every new job must be in what it reads.
    let engine = open(
        EngineConfig {
            quotas: QuotaConfig::OFF, // 200 jobs of one session
            ..EngineConfig::default()
        },
        registry(Arc::new(Semaphore::new(0))),
    )
    .await;
    let owner = SessionId::random();
    let mut rx = engine.watch(owner);
    let reader = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut since = 0;
            let mut seen = std::collections::HashSet::new();
            while seen.len() < 200 {
                if rx.changed().await.is_err() {
                    break;
                }
                let now = *rx.borrow_and_update();
                for job in engine.changed_since(owner, since) {
                    seen.insert(job.id);
                }
                since = now;
            }
            seen.len()
        })
    };
    for _ in 0..200 {
        engine.submit(job(owner, "forever")).await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("every new job was reported")
        .unwrap();
    assert_eq!(seen, 200);
}
