//! `cluster`: several jobstream nodes on one PostgreSQL (issue 11), seen
//! from outside, and one server on SQLite to compare with. Started by
//! `scripts/bench --cluster`, which runs the nodes with `JOBSTREAM_BENCH=1`.
//!
//! ```text
//! jobstream-bench cluster --nodes U1,U2,U3 --store postgres persist --db URL [--events E]
//! jobstream-bench cluster --nodes U1,U2,U3 --store postgres fanout [--per-node P] [--rate R]
//! jobstream-bench cluster --nodes U1,...   --store postgres|sqlite start [--concurrency C]
//! ```
//!
//! Every request is in one session: a session is its cookie's random id,
//! so the cookie the first node set works on every node. A job is started
//! through the first node and runs on whichever node claims it from the
//! shared queue; the runs find that node by its `jobstream_workers_busy`
//! gauge (`GET /metrics`), one job running at a time. A `bench` job counts
//! only the readers on its own node before it starts emitting, so readers
//! on other nodes are opened first.
//!
//! Layout:
//!
//! * here: the nodes ([`Nodes`]) and their metrics;
//! * `persist`: events persisted per second, the database read directly;
//! * `fanout`: readers on the job's node only, then split over every node;
//! * `start`: jobs started per second through every node;
//! * `table`: the report of a results file (`jobstream-bench report`).

mod fanout;
mod persist;
mod start;
mod table;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::args::cluster::{Cluster, Run};
use crate::args::Server;
use crate::client::{Conn, Target};
pub use table::table;

/// Longest a run waits for a node to take a job, or for the nodes to be idle.
const CLAIM_WAIT: Duration = Duration::from_secs(30);

/// Runs one `cluster` run; its figures are printed and recorded.
pub fn main(args: &Cluster) -> ExitCode {
    let name = match args.run {
        Run::Persist(_) => "cluster persist",
        Run::Fanout(_) => "cluster fanout",
        Run::Start(_) => "cluster start",
    };
    crate::measure(name, &args.out, run(args))
}

async fn run(args: &Cluster) -> Result<Value, String> {
    let nodes = Nodes::connect(&args.nodes, args.sources).await?;
    let mut v = match &args.run {
        Run::Persist(a) => persist::run(&nodes, a).await?,
        Run::Fanout(a) => fanout::run(&nodes, a).await?,
        Run::Start(a) => start::run(&nodes, a).await?,
    };
    let m = v.as_object_mut().expect("runs return an object");
    m.insert("store".into(), args.store.name().into());
    m.insert("nodes".into(), nodes.len().into());
    Ok(v)
}

/// The nodes under test, every one in the same session.
pub struct Nodes {
    targets: Vec<Target>,
    /// Loopback source addresses readers are spread over.
    sources: usize,
}

impl Nodes {
    async fn connect(urls: &[String], sources: usize) -> Result<Self, String> {
        let first = Target::new(Server::Jobstream, &urls[0]).await?;
        let mut targets = vec![first.clone()];
        for url in &urls[1..] {
            targets.push(first.on_node(url)?);
        }
        Ok(Nodes { targets, sources })
    }

    fn len(&self) -> usize {
        self.targets.len()
    }

    fn all(&self) -> &[Target] {
        &self.targets
    }

    fn node(&self, i: usize) -> &Target {
        &self.targets[i]
    }

    /// Starts a `bench` job through the first node; returns its id.
    async fn start_bench(&self, params: Value) -> Result<String, String> {
        self.targets[0]
            .start_job(serde_json::json!({"kind": "bench", "params": params}))
            .await
    }

    /// `GET /metrics` of node `i`.
    async fn metrics(&self, i: usize) -> Result<String, String> {
        let mut body = self.targets[i].get("/metrics", 0).await?.body();
        let mut text = Vec::new();
        while let Some(frame) = body.next().await {
            if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
                text.extend_from_slice(&data);
            }
        }
        String::from_utf8(text).map_err(|e| e.to_string())
    }

    /// Each node's value of metric `name` (summed over the samples whose
    /// labels contain `label`).
    async fn each(&self, name: &str, label: &str) -> Result<Vec<f64>, String> {
        let mut values = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            values.push(metric(&self.metrics(i).await?, name, label));
        }
        Ok(values)
    }

    /// Waits until no node runs a job (the last run's job has ended).
    async fn settle(&self) -> Result<(), String> {
        let began = Instant::now();
        loop {
            let busy = self.each("jobstream_workers_busy", "").await?;
            if busy.iter().all(|b| *b == 0.0) {
                return Ok(());
            }
            if began.elapsed() > CLAIM_WAIT {
                return Err(format!("workers still busy after {CLAIM_WAIT:?}: {busy:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node that runs the one job running now (waiting for it to be
    /// claimed).
    async fn running(&self) -> Result<usize, String> {
        let began = Instant::now();
        loop {
            let busy = self.each("jobstream_workers_busy", "").await?;
            if let Some(i) = busy.iter().position(|b| *b > 0.0) {
                return Ok(i);
            }
            if began.elapsed() > CLAIM_WAIT {
                return Err(format!("no node took the job within {CLAIM_WAIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Opens `n` readers of `job` on node `i`, from its first event.
    async fn readers(&self, i: usize, job: &str, n: usize) -> Result<Vec<Conn>, String> {
        crate::open_all(&self.targets[i], job, n, self.sources).await
    }
}

/// The sum of the samples of `name` (Prometheus text) whose labels contain
/// `label`; 0 when there is none.
fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None, // a longer name
            };
            labels.contains(label).then_some(value)
        })
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .sum()
}

/// Milliseconds between two Unix times in nanoseconds.
fn ms_between(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn metrics_are_summed_by_label() {
        let text = "# HELP jobstream_workers_busy Workers\n\
            jobstream_workers_busy 2\n\
            jobstream_workers_busy_other 7\n\
            jobstream_jobs_finished_total{kind=\"echo\",state=\"succeeded\"} 10\n\
            jobstream_jobs_finished_total{kind=\"echo\",state=\"failed\"} 1\n\
            jobstream_jobs_finished_total{kind=\"bench\",state=\"succeeded\"} 4\n";
        assert_eq!(metric(text, "jobstream_workers_busy", ""), 2.0);
        assert_eq!(
            metric(text, "jobstream_jobs_finished_total", "kind=\"echo\""),
            11.0
        );
        assert_eq!(metric(text, "jobstream_jobs_started_total", ""), 0.0);
    }
}
