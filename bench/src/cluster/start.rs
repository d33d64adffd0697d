//! `cluster start`: `--concurrency` clients start one-message `echo` jobs
//! with `POST /api/jobs` for `--duration` seconds, client i through node
//! i mod nodes, each on one keep-alive connection. A job is queued (in the
//! shared queue, on PostgreSQL) when the POST answers 201; any node's
//! workers may run it. Then the run waits until every node has finished
//! what was started, and reads from each node's `/metrics` how many of
//! the jobs it ran (`jobstream_jobs_started_total{kind="echo"}`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Nodes;
use crate::args::cluster::Start;
use crate::Started;

/// Longest the run waits, after the clients stop, for the jobs to have run.
const DRAIN_WAIT: Duration = Duration::from_secs(300);

const STARTED: (&str, &str) = ("jobstream_jobs_started_total", "kind=\"echo\"");
const FINISHED: (&str, &str) = ("jobstream_jobs_finished_total", "kind=\"echo\"");

pub async fn run(nodes: &Nodes, a: &Start) -> Result<Value, String> {
    nodes.settle().await?;
    let started0 = nodes.each(STARTED.0, STARTED.1).await?;
    let finished0: f64 = nodes.each(FINISHED.0, FINISHED.1).await?.iter().sum();
    let duration = Duration::from_secs(a.duration);
    let began = Instant::now();
    let Started {
        hist,
        ok,
        refused,
        secs,
    } = crate::start_jobs(nodes.all(), a.concurrency, duration).await?;
    // Until every job started has run, wherever it ran.
    loop {
        let finished: f64 = nodes.each(FINISHED.0, FINISHED.1).await?.iter().sum();
        if finished - finished0 >= ok as f64 {
            break;
        }
        if began.elapsed() > duration + DRAIN_WAIT {
            return Err(format!(
                "{} of {ok} jobs had run {DRAIN_WAIT:?} after the last start",
                finished - finished0
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_ran = began.elapsed().as_secs_f64();
    let started = nodes.each(STARTED.0, STARTED.1).await?;
    let per_node: Vec<u64> = started
        .iter()
        .zip(&started0)
        .map(|(after, before)| (after - before) as u64)
        .collect();
    Ok(json!({
        "scenario": "cluster-start", "concurrency": a.concurrency,
        "duration_s": secs, "started": ok, "refused_503": refused,
        "jobs_per_s": ok as f64 / secs,
        "p50_ms": hist.quantile(0.5) as f64 / 1e3, "p99_ms": hist.quantile(0.99) as f64 / 1e3,
        "all_ran_s": all_ran, "ran_per_s": ok as f64 / all_ran,
        "ran_per_node": per_node,
    }))
}
