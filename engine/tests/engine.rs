//! The engine's pool and queue, driven step by step.

use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::{
    Emitter, Engine, EngineConfig, JobContext, JobError, JobState, NewJob, Params, Registry,
    SessionId, SubmitError,
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
                out.emit("waiting")?;
                gate.acquire().await.expect("gate open").forget();
                out.emit("passed")?;
                Ok(())
            }
        },
    );
    r.register("say", |ctx: JobContext, p: Say, out: Emitter| async move {
        out.emit(&format!("{} says {}", ctx.display_name, p.text))?;
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
    }
}

fn states(engine: &Engine, owner: SessionId, ids: &[jobstream_engine::JobId]) -> Vec<JobState> {
    ids.iter()
        .map(|id| engine.get(owner, *id).unwrap().log.state())
        .collect()
}

async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn no_more_than_the_configured_workers_run_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let config = EngineConfig {
        workers: 4,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, registry(Arc::clone(&gate)));
    let owner = SessionId::random();
    let ids: Vec<_> = (0..6)
        .map(|_| engine.submit(job(owner, "gate")).unwrap().id)
        .collect();
    settle().await;
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
    settle().await;
    assert_eq!(states(&engine, owner, &ids), vec![JobState::Succeeded; 6]);
}

#[tokio::test]
async fn a_full_queue_refuses_and_keeps_what_it_has() {
    let config = EngineConfig {
        queue_capacity: 2,
        ..EngineConfig::default()
    };
    // No workers: nothing leaves the queue.
    let engine = Engine::new(config, registry(Arc::new(Semaphore::new(0))));
    let owner = SessionId::random();
    let a = engine.submit(job(owner, "say")).map(|j| j.id);
    assert!(a.is_err(), "say needs params");
    let mut say = job(owner, "say");
    say.params = json!({"text": "hi"});
    let first = engine.submit(say.clone()).unwrap();
    engine.submit(say.clone()).unwrap();
    assert_eq!(
        engine.submit(say.clone()).unwrap_err(),
        SubmitError::QueueFull { capacity: 2 }
    );
    assert_eq!(engine.queue_len(), 2);

    // Running one frees a place.
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    engine.submit(say).unwrap();
    let snap = first.log.snapshot();
    let texts: Vec<_> = snap.events.iter().map(|e| &*e.text).collect();
    assert_eq!(texts[..2], ["running", "ada says hi"]);
}

#[tokio::test]
async fn jobs_are_visible_only_to_their_session() {
    let engine = Engine::new(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    );
    let alice = SessionId::random();
    let id = engine.submit(job(alice, "fail")).unwrap().id;
    assert!(engine.get(alice, id).is_some());
    assert!(engine.get(SessionId::random(), id).is_none());
    assert!(engine
        .get(alice, jobstream_engine::JobId::random())
        .is_none());
}

#[tokio::test]
async fn failures_and_panics_end_the_job_with_a_message() {
    let engine = Engine::new(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    );
    let owner = SessionId::random();
    let failing = engine.submit(job(owner, "fail")).unwrap();
    let panicking = engine.submit(job(owner, "panic")).unwrap();
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
    let engine = Engine::new(
        EngineConfig::default(),
        registry(Arc::new(Semaphore::new(0))),
    );
    let err = engine.submit(job(SessionId::random(), "nope")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("unknown job kind \"nope\"; known kinds: fail, forever, gate"));
    assert_eq!(engine.queue_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_running_jobs_and_ends_queued_ones() {
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, registry(Arc::new(Semaphore::new(0))));
    let owner = SessionId::random();
    let running = engine.submit(job(owner, "forever")).unwrap();
    let queued = engine.submit(job(owner, "forever")).unwrap();
    settle().await;
    assert_eq!(running.log.state(), JobState::Running);
    engine.shutdown(Duration::from_secs(10)).await;
    assert_eq!(running.log.state(), JobState::Failed);
    assert_eq!(queued.log.state(), JobState::Failed);
    assert!(queued
        .log
        .snapshot()
        .error
        .unwrap()
        .contains("before the job started"));
    assert_eq!(
        engine.submit(job(owner, "forever")).unwrap_err(),
        SubmitError::ShuttingDown
    );
}

#[tokio::test]
async fn finished_jobs_beyond_the_retention_bound_are_forgotten() {
    let config = EngineConfig {
        retained_jobs: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, registry(Arc::new(Semaphore::new(0))));
    let owner = SessionId::random();
    let ids: Vec<_> = (0..3)
        .map(|_| engine.submit(job(owner, "fail")).unwrap().id)
        .collect();
    for _ in 0..3 {
        engine.run_next().await;
    }
    assert!(engine.get(owner, ids[0]).is_none());
    assert!(engine.get(owner, ids[1]).is_some());
    assert!(engine.get(owner, ids[2]).is_some());
}

#[tokio::test]
async fn raw_output_that_is_not_utf8_becomes_replacement_characters() {
    let mut r = Registry::new();
    r.register("raw", |_, _: NoParams, out: Emitter| async move {
        out.emit_bytes(b"ok \xff\xfe bytes\nnext")?;
        Ok(())
    });
    let engine = Engine::new(EngineConfig::default(), r);
    let job = engine.submit(job(SessionId::random(), "raw")).unwrap();
    engine.run_next().await;
    let snap = job.log.snapshot();
    assert_eq!(&*snap.events[1].text, "ok \u{fffd}\u{fffd} bytes\nnext");
}
