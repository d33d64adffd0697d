//! Events persisted per second: `cargo bench -p jobstream-engine --bench persist`.
//!
//! J jobs emit E events of S bytes each as fast as they can into an engine
//! on a SQLite file; the clock stops when the store has every event
//! (`Engine::flush`). Prints one line per configuration. Not a test: the
//! figures depend on the machine and its disk.

use std::sync::Arc;
use std::time::Instant;

use jobstream_engine::{
    Emitter, Engine, EngineConfig, JobContext, JobError, NewJob, Params, Registry, SessionId,
    SqliteStore,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Burst {
    events: u32,
    size: usize,
}
impl Params for Burst {}

async fn burst(_: JobContext, p: Burst, out: Emitter) -> Result<(), JobError> {
    let text = "x".repeat(p.size);
    for _ in 0..p.events {
        out.emit(&text).await?;
    }
    Ok(())
}

async fn run(jobs: usize, events: u32, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let mut registry = Registry::new();
    registry.register("burst", burst);
    let config = EngineConfig {
        workers: jobs,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, registry, store).await.unwrap();
    let owner = SessionId::random();
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let job = engine
            .submit(NewJob {
                owner,
                kind: "burst".into(),
                params: serde_json::json!({"events": events, "size": size}),
                display_name: "bench".into(),
                locale: "en".into(),
                client: None,
            })
            .await
            .unwrap();
        handles.push(job);
    }
    for job in &handles {
        let mut sub = job.log.subscribe(job.log.last_seq());
        while sub.next().await.is_some() {}
    }
    let emitted = started.elapsed();
    engine.flush().await;
    let persisted = started.elapsed();
    // Each job also stores its state, end and close events.
    let total = jobs as u64 * (u64::from(events) + 3);
    println!(
        "jobs {jobs:>3}  events/job {events:>7}  bytes/event {size:>5}  \
         emitted in {:>7.1} ms  persisted in {:>7.1} ms  {:>9.0} events/s persisted",
        emitted.as_secs_f64() * 1e3,
        persisted.as_secs_f64() * 1e3,
        total as f64 / persisted.as_secs_f64()
    );
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let quick = std::env::args().any(|a| a == "--quick");
    let runs: &[(usize, u32, usize)] = if quick {
        &[(1, 2_000, 64)]
    } else {
        &[
            (1, 100_000, 64),
            (4, 50_000, 64),
            (16, 10_000, 64),
            (4, 20_000, 1024),
        ]
    };
    println!("jobstream: events persisted to SQLite per second");
    for &(jobs, events, size) in runs {
        rt.block_on(run(jobs, events, size));
    }
}
