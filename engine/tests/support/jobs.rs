//! What the store tests share: a stored job, and a registry whose `gated`
//! jobs say three steps and a progress, then wait for a permit.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use jobstream_engine::store::JobRecord;
use jobstream_engine::{Emitter, JobContext, JobId, JobState, NewJob, Params, Registry, SessionId};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

/// A queued job of `owner`, as stored.
pub fn record(owner: SessionId, created_at: u64) -> JobRecord {
    JobRecord {
        id: JobId::random(),
        owner,
        kind: "demo".into(),
        params: json!({"steps": 3}),
        display_name: "Zoë".into(),
        locale: "de".into(),
        state: JobState::Queued,
        error: None,
        progress: None,
        progress_label: None,
        created_at,
        started_at: None,
        finished_at: None,
        last_seq: 0,
    }
}

#[derive(Deserialize)]
pub struct NoParams {}
impl Params for NoParams {}

pub fn registry(gate: Arc<Semaphore>) -> Registry {
    let mut r = Registry::new();
    r.register("gated", move |_: JobContext, _: NoParams, out: Emitter| {
        let gate = Arc::clone(&gate);
        async move {
            for i in 1..=3 {
                out.emit(&format!("step {i}")).await?;
            }
            out.progress(0.25, None).await?;
            gate.acquire().await.expect("open").forget();
            out.emit("done").await?;
            Ok(())
        }
    });
    r
}

pub fn new_job(owner: SessionId) -> NewJob {
    NewJob {
        owner,
        kind: "gated".into(),
        params: json!({}),
        display_name: "ada".into(),
        locale: "en".into(),
        client: None,
    }
}
