//! Several nodes on one PostgreSQL database, as engines in one process:
//! the shared queue, mirrors of jobs that run on another node, cancel
//! through any node, a cluster-wide queue bound, and a node declared dead
//! (its jobs rescued, its late writes fenced). The real binary's cluster
//! test (tests/cluster.rs at the top) adds processes, `kill -9` and nginx.

use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::{
    ClusterConfig, Emitter, Engine, EngineConfig, EventKind, Job, JobContext, JobState, NewJob,
    SessionId, SubmitError, NODE_LOST,
};
use tokio::sync::Semaphore;

#[path = "support/jobs.rs"]
mod jobs;
#[path = "support/postgres.rs"]
mod postgres;

use jobs::{new_job, registry, NoParams};

fn config(workers: usize) -> EngineConfig {
    EngineConfig {
        workers,
        queue_capacity: 2,
        cluster: Some(ClusterConfig {
            heartbeat: Duration::from_millis(200),
            node_timeout: Duration::from_secs(1),
            poll: Duration::from_millis(500),
        }),
        ..EngineConfig::default()
    }
}

/// A node that runs jobs (`workers` of them at once) or, with `None`, one
/// that only serves (no workers).
async fn node(url: &str, workers: Option<usize>, gate: &Arc<Semaphore>) -> Engine {
    let store = jobstream_engine::store::open(url).await.unwrap();
    let mut registry = registry(Arc::clone(gate));
    // Says it waits, then waits for its stop signal: it ends only when a
    // cancel reaches the node that runs it.
    registry.register(
        "patient",
        |ctx: JobContext, _: NoParams, out: Emitter| async move {
            out.emit("waiting").await?;
            ctx.cancel.cancelled().await;
            Ok(())
        },
    );
    match workers {
        Some(n) => Engine::start(config(n), registry, store).await.unwrap(),
        None => Engine::open(config(1), registry, store).await.unwrap(),
    }
}

/// Every event a reader of `job` gets from the start to the close
/// sentinel: (id, kind, text).
async fn read_all(job: &Job) -> Vec<(u64, EventKind, String)> {
    let mut sub = job.log.subscribe(0);
    let mut seen = Vec::new();
    let read = async {
        while let Some(batch) = sub.next().await {
            assert_eq!(batch.gap, None, "no gap");
            for e in batch.events {
                seen.push((e.seq, e.kind, e.text.to_string()));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the stream ends");
    seen
}

/// Waits until `job`'s log has said `text`.
async fn until_said(job: &Job, text: &str) {
    let mut sub = job.log.subscribe(0);
    let wait = async {
        while let Some(batch) = sub.next().await {
            if batch.events.iter().any(|e| &*e.text == text) {
                return;
            }
        }
        panic!("ended without {text:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("said in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_on_one_node_runs_on_another_and_streams_on_both() {
    let url = postgres::database().await;
    let gate = Arc::new(Semaphore::new(0));
    let front = node(&url, None, &gate).await;
    let worker = node(&url, Some(1), &gate).await;
    let owner = SessionId::random();
    let mut list = front.watch(owner);

    let job = front.submit(new_job(owner)).await.unwrap();
    assert!(!job.log.is_attached(), "the front node does not run it");
    let here = tokio::spawn({
        let job = Arc::clone(&job);
        async move { read_all(&job).await }
    });
    until_said(&job, "step 3").await;
    let there = worker.find(owner, job.id).await.unwrap().unwrap();
    assert!(there.log.is_attached(), "the worker node runs it");
    gate.add_permits(1);
    let on_worker = read_all(&there).await;
    let on_front = here.await.unwrap();
    assert_eq!(on_front, on_worker, "the same events, once, in order");
    let texts: Vec<&str> = on_front.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(texts[..4], ["running", "step 1", "step 2", "step 3"]);
    assert_eq!(on_front.last().unwrap().1, EventKind::Close);
    assert_eq!(job.log.state(), JobState::Succeeded);
    let status = job.log.status();
    assert!(status.started_at.is_some() && status.finished_at.is_some());
    assert_eq!(status.progress.map(|p| p.fraction), Some(0.25));

    // The front node's job list moved with it.
    list.borrow_and_update();
    let listed = front.changed_since(owner, 0);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, JobState::Succeeded);

    // A job started on the worker node shows in a list open on the front.
    let other = worker.submit(new_job(owner)).await.unwrap();
    let shown = async {
        loop {
            list.changed().await.unwrap();
            if front
                .changed_since(owner, 0)
                .iter()
                .any(|s| s.id == other.id.to_string())
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), shown)
        .await
        .expect("listed on the other node");
    gate.add_permits(1);
    worker.shutdown(Duration::from_secs(5)).await;
    front.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_node_that_runs_the_job_and_a_queued_one_anywhere() {
    let url = postgres::database().await;
    let gate = Arc::new(Semaphore::new(0));
    let front = node(&url, None, &gate).await;
    let owner = SessionId::random();

    // Queued, no node runs jobs yet: cancelled through the front node.
    let queued = front.submit(new_job(owner)).await.unwrap();
    let cancelled = front.cancel(owner, queued.id).await.unwrap();
    assert_eq!(cancelled.log.state(), JobState::Cancelled);

    // Running on the worker node, cancelled through the front node.
    let worker = node(&url, Some(1), &gate).await;
    let patient = NewJob {
        kind: "patient".into(),
        ..new_job(owner)
    };
    let running = front.submit(patient).await.unwrap();
    until_said(&running, "waiting").await;
    front.cancel(owner, running.id).await.unwrap();
    let events = read_all(&running).await;
    let end = &events[events.len() - 2];
    assert_eq!(end.1, EventKind::End);
    assert!(end.2.contains("cancelled"), "{}", end.2);
    let there = worker.find(owner, running.id).await.unwrap().unwrap();
    assert_eq!(read_all(&there).await, events);
    worker.shutdown(Duration::from_secs(5)).await;
    front.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_bound_holds_for_the_whole_cluster() {
    let url = postgres::database().await;
    let gate = Arc::new(Semaphore::new(0));
    let a = node(&url, None, &gate).await;
    let b = node(&url, None, &gate).await;
    let owner = SessionId::random();
    a.submit(new_job(owner)).await.unwrap();
    a.flush().await;
    b.submit(new_job(owner)).await.unwrap();
    b.flush().await;
    for n in [&a, &b] {
        let refused = n.submit(new_job(owner)).await.unwrap_err();
        assert_eq!(refused, SubmitError::QueueFull { capacity: 2 });
    }
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_declared_dead_loses_its_jobs_and_cannot_write_to_them() {
    let url = postgres::database().await;
    let gate = Arc::new(Semaphore::new(0));
    let front = node(&url, None, &gate).await;
    let doomed = node(&url, Some(1), &gate).await;
    let owner = SessionId::random();
    let job = front.submit(new_job(owner)).await.unwrap();
    until_said(&job, "step 3").await;
    let first_id = doomed.node_id().unwrap();

    // As if it had not answered for longer than the timeout.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(&first_id)
        .execute(&pool)
        .await
        .unwrap();
    let events = read_all(&job).await;
    let end = &events[events.len() - 2];
    assert!(end.2.contains(NODE_LOST), "ended by the rescue: {}", end.2);
    assert_eq!(job.log.state(), JobState::Interrupted);

    // The doomed node noticed, stopped the job and joined again.
    gate.add_permits(1); // the gated job notices at its next step
    let there = doomed.find(owner, job.id).await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !there.log.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("stopped on the doomed node");
    assert_ne!(doomed.node_id().unwrap(), first_id);
    doomed.flush().await;
    let ends: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE job_id = $1 AND kind = 2")
            .bind(job.id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        ends, 1,
        "one end, the rescuer's: the doomed node's was fenced"
    );
    let stored: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, text FROM events WHERE job_id = $1 ORDER BY seq")
            .bind(job.id.to_string())
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: Vec<u64> = stored.iter().map(|(s, _)| *s as u64).collect();
    let read: Vec<u64> = events.iter().map(|e| e.0).collect();
    assert_eq!(stored, read, "readers saw exactly what is stored");

    // The node still runs jobs under its new id.
    let next = front.submit(new_job(owner)).await.unwrap();
    gate.add_permits(1);
    let events = read_all(&next).await;
    assert!(events.iter().any(|e| e.2 == "done"), "{events:?}");
    doomed.shutdown(Duration::from_secs(5)).await;
    front.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_many_jobs_end_its_claimed_one_runs_elsewhere_and_lists_show_them() {
    let url = postgres::database().await;
    let gate = Arc::new(Semaphore::new(1));
    let owner = SessionId::random();
    // The migrations, by a node that then leaves.
    node(&url, None, &gate)
        .await
        .shutdown(Duration::from_secs(5))
        .await;
    // A node long dead, as it left things: 200 jobs running (more than a
    // notice names: the rescue's notice says `*`), and one it had claimed
    // whose `running` was stored but not its state.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO nodes (id, started_at, seen_at) VALUES ('ghost', 0, 0)")
        .execute(&pool)
        .await
        .unwrap();
    let insert = "INSERT INTO jobs (id, owner, kind, params, display_name, locale, state, \
                  created_at, node, claims) VALUES ($1, $2, 'gated', '{}', 'ada', 'en', $3, $4, \
                  'ghost', 1)";
    let mut running = Vec::new();
    for n in 0..200 {
        let id = jobstream_engine::JobId::random();
        sqlx::query(insert)
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind("running")
            .bind(1_000 + n as i64)
            .execute(&pool)
            .await
            .unwrap();
        running.push(id);
    }
    let claimed = jobstream_engine::JobId::random();
    sqlx::query(insert)
        .bind(claimed.to_string())
        .bind(owner.to_string())
        .bind("queued")
        .bind(500_i64)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (job_id, seq, kind, text, line) VALUES ($1, 1, 1, 'running', 0)",
    )
    .bind(claimed.to_string())
    .execute(&pool)
    .await
    .unwrap();

    // And one whose end and sentinel were stored, but not its state.
    let ended = jobstream_engine::JobId::random();
    sqlx::query(insert)
        .bind(ended.to_string())
        .bind(owner.to_string())
        .bind("running")
        .bind(600_i64)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (job_id, seq, kind, text, line) VALUES \
         ($1, 1, 1, 'running', 0), ($1, 2, 2, '{\"state\":\"succeeded\"}', 0), \
         ($1, 3, 3, '__CLOSE_SSE__', 0)",
    )
    .bind(ended.to_string())
    .execute(&pool)
    .await
    .unwrap();

    let front = node(&url, None, &gate).await;
    let mut list = front.watch(owner);
    let worker = node(&url, Some(1), &gate).await;

    // The claimed job runs on the live node, its ids past anything the
    // dead one may have shown.
    let job = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(job) = worker.find(owner, claimed).await.unwrap() {
                if job.log.is_attached() {
                    return job;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("claimed again and run");
    let events = read_all(&job).await;
    assert_eq!(events[0].0, 1, "what the dead node stored stays");
    assert!(
        events[1].0 > jobstream_engine::store::RESTART_SEQ_GAP,
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.2 == "done"), "{events:?}");

    // Every running job ended, once.
    let lost: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'interrupted' AND error = $1")
            .bind(NODE_LOST)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(lost, 200);
    let ends: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE kind = 2 AND job_id <> $1")
            .bind(claimed.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ends, 201, "one end each, the one that had ended included");
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(ended.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "succeeded", "it ended as its stored end says");

    // The list open on the front node shows them, though the notice named
    // none of them (its newest jobs are looked up again).
    let shown = async {
        loop {
            let listed = front.changed_since(owner, 0);
            let interrupted = listed
                .iter()
                .filter(|s| s.state == JobState::Interrupted)
                .count();
            if interrupted >= 40 {
                return;
            }
            list.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), shown)
        .await
        .expect("the list shows the rescued jobs");
    worker.shutdown(Duration::from_secs(5)).await;
    front.shutdown(Duration::from_secs(5)).await;
}
