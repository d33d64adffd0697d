//! The store's contract, run against SQLite and PostgreSQL alike: each
//! test below runs once per backend (`sqlite::` and `postgres::`). The
//! PostgreSQL server is started by the test binary (support/postgres.rs).

use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::store::{Write, RESTART_SEQ_GAP};
use jobstream_engine::{Engine, EngineConfig, Event, EventKind, JobId, JobState, SessionId, Store};
use serde_json::json;
use tokio::sync::Semaphore;

#[path = "support/jobs.rs"]
mod jobs;
#[path = "support/postgres.rs"]
mod postgres;

use jobs::{new_job, record, registry};

/// Where a test's store lives; opened again, it is the same store.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    async fn open(&self) -> Arc<dyn Store> {
        let url = match self {
            // A folder that does not exist yet: the store creates it.
            Backend::Sqlite(dir) => format!("sqlite://{}/data/jobs.db", dir.path().display()),
            Backend::Postgres(url) => url.clone(),
        };
        jobstream_engine::store::open(&url).await.unwrap()
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite(tempfile::tempdir().unwrap())).await
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Postgres(super::postgres::database().await)).await
                }
            )*
        }
    };
}

on_both!(
    texts_come_back_exactly,
    pages_of_events_and_lines_are_bounded,
    jobs_and_events_round_trip_in_order_across_reopen,
    a_failed_batch_writes_nothing,
    a_sessions_jobs_list_newest_first,
    retention_deletes_old_finished_jobs_with_their_events_only,
    after_a_crash_running_jobs_are_interrupted_and_queued_ones_run,
    the_sweeper_deletes_what_is_past_retention,
);

fn event(seq: u64, kind: EventKind, text: &str) -> Arc<Event> {
    Arc::new(Event {
        seq,
        kind,
        text: text.into(),
        line: seq,
        frame: jobstream_engine::sse::event(seq, kind.event_type(), text),
    })
}

async fn jobs_and_events_round_trip_in_order_across_reopen(backend: Backend) {
    let owner = SessionId::random();
    let job = record(owner, 1_000);
    {
        let store = backend.open().await;
        let mut writes = vec![Write::Insert(Box::new(job.clone()))];
        writes.push(Write::State {
            job: job.id,
            state: JobState::Running,
            at: 1_500,
            error: None,
        });
        // More events than one multi-row insert holds, with lines and
        // non-ASCII text.
        for seq in 1..=600 {
            writes.push(Write::Event(
                job.id,
                event(seq, EventKind::Message, &format!("line {seq}\nzwei: ä")),
            ));
        }
        writes.push(Write::Progress {
            job: job.id,
            fraction: 0.5,
            label: Some("halfway".into()),
        });
        writes.push(Write::Event(
            job.id,
            event(601, EventKind::End, r#"{"state":"failed"}"#),
        ));
        writes.push(Write::State {
            job: job.id,
            state: JobState::Failed,
            at: 2_000,
            error: Some("it broke".into()),
        });
        store.write(&writes).await.unwrap();
    }
    let store = backend.open().await;
    let back = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(back.params, json!({"steps": 3}));
    assert_eq!(back.display_name, "Zoë");
    assert_eq!(back.locale, "de");
    assert_eq!(back.state, JobState::Failed);
    assert_eq!(back.error.as_deref(), Some("it broke"));
    assert_eq!(back.started_at, Some(1_500));
    assert_eq!(back.finished_at, Some(2_000));
    assert_eq!(back.progress, Some(0.5));
    assert_eq!(back.progress_label.as_deref(), Some("halfway"));
    assert_eq!(back.last_seq, 601);

    let all = store.events(job.id, 10_000, usize::MAX).await.unwrap();
    assert_eq!(all.len(), 601);
    assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    assert_eq!(all[0].text, "line 1\nzwei: ä");
    assert_eq!(all[600].kind, EventKind::End);
    // The last N, still oldest first.
    let tail = store.events(job.id, 3, usize::MAX).await.unwrap();
    let seqs: Vec<_> = tail.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [599, 600, 601]);
    // Within a byte budget, read newest first: "line 600\nzwei: ä" is 17
    // bytes, so 40 bytes stop after the third newest.
    let within = store.events(job.id, 100, 40).await.unwrap();
    let seqs: Vec<_> = within.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [599, 600, 601]);
    assert_eq!(store.events(job.id, 100, 1).await.unwrap().len(), 1);
    assert!(store.job(JobId::random()).await.unwrap().is_none());
}

async fn a_failed_batch_writes_nothing(backend: Backend) {
    let store = backend.open().await;
    let job = record(SessionId::random(), 1);
    let writes = vec![
        Write::Insert(Box::new(job.clone())),
        Write::Event(job.id, event(1, EventKind::Message, "a")),
        // The same id twice violates the key: the whole batch rolls back.
        Write::Event(job.id, event(1, EventKind::Message, "b")),
    ];
    assert!(store.write(&writes).await.is_err());
    assert!(store.job(job.id).await.unwrap().is_none());
}

async fn a_sessions_jobs_list_newest_first(backend: Backend) {
    let store = backend.open().await;
    let (alice, bob) = (SessionId::random(), SessionId::random());
    let jobs: Vec<_> = (0..5).map(|i| record(alice, 100 + i)).collect();
    let mut writes: Vec<_> = jobs
        .iter()
        .map(|j| Write::Insert(Box::new(j.clone())))
        .collect();
    writes.push(Write::Insert(Box::new(record(bob, 500))));
    store.write(&writes).await.unwrap();
    let listed = store.jobs_of(alice, 3).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|j| j.id).collect();
    assert_eq!(ids, [jobs[4].id, jobs[3].id, jobs[2].id]);
    assert_eq!(store.jobs_of(bob, 10).await.unwrap().len(), 1);
    assert_eq!(store.unfinished().await.unwrap().len(), 6);
}

async fn retention_deletes_old_finished_jobs_with_their_events_only(backend: Backend) {
    let store = backend.open().await;
    let owner = SessionId::random();
    let (old, recent, running) = (record(owner, 1), record(owner, 2), record(owner, 3));
    let mut writes = Vec::new();
    for (job, finished) in [
        (&old, Some(1_000)),
        (&recent, Some(9_000)),
        (&running, None),
    ] {
        writes.push(Write::Insert(Box::new(job.clone())));
        writes.push(Write::Event(job.id, event(1, EventKind::Message, "x")));
        if let Some(at) = finished {
            writes.push(Write::State {
                job: job.id,
                state: JobState::Succeeded,
                at,
                error: None,
            });
        }
    }
    store.write(&writes).await.unwrap();
    let purged = store.purge_finished_before(5_000, 100).await.unwrap();
    assert_eq!(purged, [old.id]);
    assert!(store.job(old.id).await.unwrap().is_none());
    assert!(store
        .events(old.id, 10, usize::MAX)
        .await
        .unwrap()
        .is_empty());
    assert!(store.job(recent.id).await.unwrap().is_some());
    assert!(store.job(running.id).await.unwrap().is_some());
    for kept in [&recent, &running] {
        let events = store.events(kept.id, 10, usize::MAX).await.unwrap();
        assert_eq!(events.len(), 1, "the other jobs keep their events");
    }
}

async fn after_a_crash_running_jobs_are_interrupted_and_queued_ones_run(backend: Backend) {
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let owner = SessionId::random();
    let (running, queued) = {
        let store = backend.open().await;
        let engine = Engine::open(config.clone(), registry(Arc::new(Semaphore::new(0))), store)
            .await
            .unwrap();
        let running = engine.submit(new_job(owner)).await.unwrap();
        let queued = engine.submit(new_job(owner)).await.unwrap();
        // The first runs until the closed gate; the second waits.
        let worker = engine.clone();
        tokio::spawn(async move { worker.run_next().await });
        let mut sub = running.log.subscribe(0);
        while sub.cursor() < 5 {
            sub.next().await;
        }
        engine.flush().await;
        // No shutdown: as if the process had been killed here.
        (running.id, queued.id)
    };
    let gate = Arc::new(Semaphore::new(10));
    let store = backend.open().await;
    let engine = Engine::open(config, registry(gate), store).await.unwrap();

    let events = texts(&engine, owner, running).await;
    let kept: Vec<_> = events.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(kept[..4], ["running", "step 1", "step 2", "step 3"]);
    assert_eq!(
        engine
            .find(owner, running)
            .await
            .unwrap()
            .unwrap()
            .log
            .state(),
        JobState::Interrupted
    );
    // Ids keep increasing past anything the crashed process could have sent.
    let (end_seq, end) = &events[events.len() - 2];
    assert_eq!(*end_seq, 5 + RESTART_SEQ_GAP + 1);
    assert!(end.contains("interrupted"), "{end}");

    assert_eq!(engine.queue_len(), 1);
    assert_eq!(engine.run_next().await, JobState::Succeeded);
    let done = texts(&engine, owner, queued).await;
    assert_eq!(done.first().unwrap().1, "running");
    // Its ids start past anything the crashed process could have shown,
    // and a reader from the start is told of no gap: those ids never existed.
    assert_eq!(done.first().unwrap().0, RESTART_SEQ_GAP + 1);
    let job = engine.find(owner, queued).await.unwrap().unwrap();
    match job.log.subscribe(0).try_next() {
        jobstream_engine::Poll::Batch(b) => assert_eq!(b.gap, None),
        other => panic!("expected a batch, got {other:?}"),
    }
    assert_eq!(job.log.snapshot().dropped, 0);
    assert_eq!(done[done.len() - 3].1, "done");

    // And once more: everything above was persisted.
    engine.flush().await;
    let store = backend.open().await;
    let summary = store.job(queued).await.unwrap().unwrap();
    assert_eq!(summary.state, JobState::Succeeded);
    assert_eq!(summary.progress, Some(0.25));
    assert!(store.unfinished().await.unwrap().is_empty());
}

async fn the_sweeper_deletes_what_is_past_retention(backend: Backend) {
    let store = backend.open().await;
    let config = EngineConfig {
        retention: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, registry(Arc::new(Semaphore::new(10))), store)
        .await
        .unwrap();
    let owner = SessionId::random();
    let job = engine.submit(new_job(owner)).await.unwrap();
    engine.run_next().await;
    engine.flush().await;
    assert_eq!(engine.sweep().await.unwrap(), 0, "too young");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(engine.sweep().await.unwrap(), 1);
    assert!(engine.find(owner, job.id).await.unwrap().is_none());
    assert!(engine.list(owner, 10).await.unwrap().is_empty());
}

async fn texts(engine: &Engine, owner: SessionId, id: JobId) -> Vec<(u64, String)> {
    let job = engine.find(owner, id).await.unwrap().unwrap();
    job.log
        .snapshot()
        .events
        .iter()
        .map(|e| (e.seq, e.text.to_string()))
        .collect()
}

async fn texts_come_back_exactly(backend: Backend) {
    let store = backend.open().await;
    let job = record(SessionId::random(), 1);
    let texts = ["nul \0 inside", "emoji 😀 and ä", "tab\tand \u{2028}", "x"];
    let mut writes = vec![Write::Insert(Box::new(job.clone()))];
    for (i, text) in texts.iter().enumerate() {
        writes.push(Write::Event(
            job.id,
            event(i as u64 + 1, EventKind::Message, text),
        ));
    }
    store.write(&writes).await.unwrap();
    let back: Vec<String> = store
        .events(job.id, 10, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(back, texts);
}

async fn pages_of_events_and_lines_are_bounded(backend: Backend) {
    let store = backend.open().await;
    let job = record(SessionId::random(), 1);
    let mut writes = vec![Write::Insert(Box::new(job.clone()))];
    // Messages 1..=20 with a state event between 10 and 11.
    for seq in 1..=21u64 {
        let (kind, text) = if seq == 11 {
            (EventKind::State, "running".to_owned())
        } else {
            (EventKind::Message, format!("{seq:02}"))
        };
        writes.push(Write::Event(job.id, event(seq, kind, &text)));
    }
    store.write(&writes).await.unwrap();
    let seqs = |events: Vec<jobstream_engine::store::StoredEvent>| -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    };
    // After 3, before 9, at most 4.
    let page = store
        .events_after(job.id, 3, 9, 4, usize::MAX)
        .await
        .unwrap();
    assert_eq!(seqs(page), [4, 5, 6, 7]);
    // Bytes: two-byte texts, 5 bytes stop after the third.
    let page = store.events_after(job.id, 0, 100, 100, 5).await.unwrap();
    assert_eq!(seqs(page), [1, 2, 3]);
    // Lines before 14: messages only, the newest 3, oldest first.
    let lines = store.lines_before(job.id, 14, 3).await.unwrap();
    assert_eq!(seqs(lines), [10, 12, 13]);
    assert!(store.lines_before(job.id, 1, 3).await.unwrap().is_empty());
}
