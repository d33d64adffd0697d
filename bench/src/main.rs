//! `jobstream-bench`: a load generator for SSE servers, aimed at jobstream
//! and at Nchan (nginx) under the same load.
//!
//! ```text
//! jobstream-bench idle   --target T --url U -n N [--hold S] [--pids P,..]
//! jobstream-bench fanout --target T --url U -n N --events E --size B [--rate R]
//! jobstream-bench jobs   --url U --jobs J --events E --size B [--rate R]
//! jobstream-bench start  --url U [--concurrency C] [--duration S]
//! jobstream-bench catchup --url U --pid P [--lines L] [--readers R] [--via events|output]
//! jobstream-bench soak --url U --pid P churn|slowloris|slow-reader|big-job|mixed ...
//! jobstream-bench cluster --nodes U1,U2,U3 --store S persist|fanout|start ...
//! jobstream-bench report --results FILE [--markdown FILE] [--svg FILE]
//! ```
//!
//! `jobstream-bench SCENARIO --help` lists a scenario's flags and their
//! defaults (`args.rs`); a flag a scenario does not take is an error.
//!
//! Every run prints its parameters with its figures and appends them as
//! one JSON line to `--json FILE` (default `target/bench/results.jsonl`).
//! Connections are spread over `--sources` loopback source addresses
//! (127.0.0.2, 127.0.0.3, ...) so ephemeral ports do not run out; events
//! are parsed by a conformant, allocation-free SSE parser (`sse.rs`,
//! checked against `eventsource-stream`); each event
//! carries `SEQ EMIT_UNIX_NANOS PADDING`, so the delay from emit to receipt
//! is measured per event, and lost and duplicated events are counted per
//! subscriber.

mod args;
mod catchup;
mod client;
mod cluster;
mod hist;
mod report;
mod soak;
mod sse;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use args::{Cli, Output, Scenario, Server, Subject};
use clap::Parser;
use client::{Conn, Target};
use hist::Histogram;
use serde_json::{json, Value};

/// Unix time in nanoseconds.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> ExitCode {
    match Cli::parse().scenario {
        Scenario::Report(a) => outcome("report", report::run(&a)),
        Scenario::Idle(a) => measure("idle", &a.out, idle(&a)),
        Scenario::Fanout(a) => measure("fanout", &a.out, fanout(&a)),
        Scenario::Jobs(a) => measure("jobs", &a.out, jobs(&a)),
        Scenario::Start(a) => measure("start", &a.out, start(&a)),
        Scenario::Catchup(a) => measure("catchup", &a.out, catchup::run(&a)),
        Scenario::Soak(a) => soak::main(&a),
        Scenario::Cluster(a) => cluster::main(&a),
    }
}

/// Runs a load scenario and records its figures.
fn measure(name: &str, out: &Output, run: impl Future<Output = Result<Value, String>>) -> ExitCode {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(run).and_then(|value| record(&value, &out.json));
    // Connections still draining must not hold the exit up.
    rt.shutdown_timeout(Duration::from_secs(1));
    outcome(name, result)
}

fn outcome(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobstream-bench {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a run's figures and appends them to the results file.
fn record(value: &Value, path: &Path) -> Result<(), String> {
    use std::io::Write;
    println!("{}", report::line(value));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = path.display();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{value}"))
        .map_err(|e| format!("{file}: {e}"))
}

/// Resident memory (bytes) and CPU time (clock ticks) of processes.
fn usage(pids: &[u32]) -> (u64, u64) {
    let (mut rss, mut ticks) = (0, 0);
    for pid in pids {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                rss += kb * 1024;
            }
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command name (which may hold spaces).
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = after.split_whitespace().collect();
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += get(11) + get(12); // utime, stime
        }
    }
    (rss, ticks)
}

const TICKS_PER_SEC: f64 = 100.0;

async fn open_all(
    target: &Target,
    channel: &str,
    n: usize,
    sources: usize,
) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(n);
    let target = Arc::new(target.clone());
    for start in (0..n).step_by(500) {
        let batch = (start..(start + 500).min(n)).map(|i| {
            let target = Arc::clone(&target);
            let channel = channel.to_owned();
            tokio::spawn(async move { target.subscribe(&channel, i % sources).await })
        });
        for handle in futures_util::future::join_all(batch).await {
            conns.push(handle.map_err(|e| e.to_string())??);
        }
    }
    Ok(conns)
}

/// Connects to the server a scenario names.
async fn connect(subject: &Subject) -> Result<Target, String> {
    Target::new(subject.target, &subject.url.url).await
}

async fn idle(args: &args::Idle) -> Result<Value, String> {
    let target = connect(&args.subject).await?;
    let (n, hold, pids) = (args.n, args.hold, &args.subject.pids);
    let channel = target.create_channel(1, 64, 0, u64::MAX).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, _) = usage(pids);
    let conns = open_all(&target, &channel, n, args.subject.sources).await?;
    let readers: Vec<_> = conns.into_iter().map(|c| tokio::spawn(c.drain())).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss1, t0) = usage(pids);
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (rss2, t1) = usage(pids);
    let open = readers.iter().filter(|r| !r.is_finished()).count();
    for r in &readers {
        r.abort();
    }
    target.close_channel(&channel).await;
    let per_conn = (rss1.max(rss2).saturating_sub(rss0)) as f64 / n as f64;
    Ok(json!({
        "scenario": "idle", "target": target.name(), "n": n, "hold_s": hold,
        "open_at_end": open,
        "rss_before_mib": rss0 as f64 / 1048576.0,
        "rss_after_mib": rss2 as f64 / 1048576.0,
        "rss_per_conn_kib": per_conn / 1024.0,
        "cpu_pct": (t1 - t0) as f64 / TICKS_PER_SEC / hold as f64 * 100.0,
    }))
}

/// What the subscribers of one run saw.
#[derive(Default)]
struct Tally {
    hist: Histogram,
    received: u64,
    lost: u64,
    dup: u64,
    first_emit_ns: u64,
    last_receipt_ns: u64,
    incomplete: usize,
}

impl Tally {
    fn merge(&mut self, o: client::Seen) {
        self.hist.merge(&o.hist);
        self.received += o.received;
        self.lost += o.lost;
        self.dup += o.dup;
        if o.first_emit_ns > 0 && (self.first_emit_ns == 0 || o.first_emit_ns < self.first_emit_ns)
        {
            self.first_emit_ns = o.first_emit_ns;
        }
        self.last_receipt_ns = self.last_receipt_ns.max(o.last_receipt_ns);
        self.incomplete += usize::from(!o.complete);
    }

    fn json(&self, mut v: Value) -> Value {
        let secs = (self.last_receipt_ns.saturating_sub(self.first_emit_ns)) as f64 / 1e9;
        let m = v.as_object_mut().expect("an object");
        m.insert("delivered".into(), self.received.into());
        m.insert("elapsed_s".into(), secs.into());
        m.insert(
            "events_per_s".into(),
            (self.received as f64 / secs.max(1e-9)).into(),
        );
        m.insert(
            "p50_ms".into(),
            (self.hist.quantile(0.50) as f64 / 1e3).into(),
        );
        m.insert(
            "p99_ms".into(),
            (self.hist.quantile(0.99) as f64 / 1e3).into(),
        );
        m.insert("max_ms".into(), (self.hist.max() as f64 / 1e3).into());
        m.insert("lost".into(), self.lost.into());
        m.insert("duplicated".into(), self.dup.into());
        m.insert("incomplete_subscribers".into(), self.incomplete.into());
        v
    }
}

async fn fanout(args: &args::Fanout) -> Result<Value, String> {
    let target = connect(&args.subject).await?;
    let n = args.n;
    let args::Load { events, size, rate } = args.load;
    let pids = &args.subject.pids;
    let channel = target.create_channel(events, size, rate, n as u64).await?;
    let conns = open_all(&target, &channel, n, args.subject.sources).await?;
    let (_, t0) = usage(pids);
    let readers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(c.read_events(events)))
        .collect();
    target.publish(&channel, events, size, rate, n).await?;
    let mut tally = Tally::default();
    for r in readers {
        tally.merge(r.await.map_err(|e| e.to_string())?);
    }
    let (_, t1) = usage(pids);
    target.close_channel(&channel).await;
    // A paced run measures latency at a given rate; it is reported apart.
    let scenario = if rate > 0 { "fanout-paced" } else { "fanout" };
    let v = json!({
        "scenario": scenario, "target": target.name(), "n": n, "events": events,
        "size": size, "rate": rate,
        "server_cpu_s": (t1 - t0) as f64 / TICKS_PER_SEC,
        "server_cpu_us_per_event": (t1 - t0) as f64 / TICKS_PER_SEC * 1e6 / tally.received.max(1) as f64,
    });
    Ok(tally.json(v))
}

async fn jobs(args: &args::Jobs) -> Result<Value, String> {
    let target = Target::new(Server::Jobstream, &args.url.url).await?;
    let j = args.jobs;
    let args::Load { events, size, rate } = args.load;
    let mut readers = Vec::new();
    for i in 0..j {
        let channel = target.create_channel(events, size, rate, 1).await?;
        let conn = target.subscribe(&channel, i % 8).await?;
        readers.push(tokio::spawn(conn.read_events(events)));
    }
    let mut tally = Tally::default();
    for r in readers {
        tally.merge(r.await.map_err(|e| e.to_string())?);
    }
    let v = json!({
        "scenario": "jobs", "target": "jobstream", "jobs": j, "events": events,
        "size": size, "rate": rate,
    });
    Ok(tally.json(v))
}

async fn start(args: &args::Start) -> Result<Value, String> {
    let target = Target::new(Server::Jobstream, &args.url.url).await?;
    let duration = Duration::from_secs(args.duration);
    let name = target.name();
    let started = start_jobs(&[target], args.concurrency, duration).await?;
    Ok(json!({
        "scenario": "start", "target": name, "concurrency": args.concurrency,
        "duration_s": started.secs, "started": started.ok, "refused_503": started.refused,
        "jobs_per_s": started.ok as f64 / started.secs,
        "p50_ms": started.hist.quantile(0.5) as f64 / 1e3,
        "p99_ms": started.hist.quantile(0.99) as f64 / 1e3,
    }))
}

/// What `start_jobs` did.
struct Started {
    /// Time of each `POST /api/jobs`, in microseconds.
    hist: Histogram,
    /// Answered 201 (the job is queued).
    ok: u64,
    /// Answered 503 (the queue was full).
    refused: u64,
    /// From the first start to the last answer.
    secs: f64,
}

/// `concurrency` clients start one-message `echo` jobs for `duration`,
/// each on one keep-alive connection, client i through `targets[i mod
/// len]`.
async fn start_jobs(
    targets: &[Target],
    concurrency: usize,
    duration: Duration,
) -> Result<Started, String> {
    let began = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let target = targets[i % targets.len()].clone();
            tokio::spawn(async move {
                let mut hist = Histogram::default();
                let (mut ok, mut refused) = (0u64, 0u64);
                let mut conn = target.api_conn(i % 8).await?;
                while began.elapsed() < duration {
                    let t = Instant::now();
                    match conn.start_tiny_job().await? {
                        201 => ok += 1,
                        503 => refused += 1,
                        other => return Err(format!("POST /api/jobs answered {other}")),
                    }
                    hist.record(t.elapsed().as_micros() as u64);
                }
                Ok::<_, String>((hist, ok, refused))
            })
        })
        .collect();
    let (mut hist, mut ok, mut refused) = (Histogram::default(), 0, 0);
    for w in workers {
        let (h, o, r) = w.await.map_err(|e| e.to_string())??;
        hist.merge(&h);
        ok += o;
        refused += r;
    }
    Ok(Started {
        hist,
        ok,
        refused,
        secs: began.elapsed().as_secs_f64(),
    })
}
