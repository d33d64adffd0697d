//! `churn`: stream opens and closes; open files, tasks and memory return
//! to their baseline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::follow::bench_params;
use super::server::{back_to_baseline, connect, Open, Server};
use super::table::{mib, signed_mib, Table, MIB};
use crate::args;
use crate::hist::Histogram;

/// Memory a second round of stream churn may add to the first's: the
/// allocator keeps freed pages, so the first round may cost some, but the
/// second must reuse them. With 5,000 streams a round (the short mode) a
/// leak of 420 bytes per stream would show, with 50,000 (the long mode)
/// one of 42 bytes; a leaked stream or task shows at once in the open
/// files and `jobstream_tasks_alive`, which must come back exactly.
pub(super) const ROUND_SLACK_MIB: f64 = 2.0;
/// What the server's memory may stand above its baseline after both
/// rounds: the allocator's kept pages (per-thread arenas of glibc malloc).
pub(super) const BASELINE_SLACK_MIB: f64 = 8.0;

/// Messages a second of the ticking job.
const TICKS_PER_SEC: u64 = 500;

/// Events behind the head a lagging reader resumes from (within the
/// 2,000 events `scripts/soak` keeps in memory per job).
const BEHIND: u64 = 1000;

/// Opens and closes `n` streams, `concurrency` at a time: job streams
/// resuming at the job's head, or 1,000 events behind it, list streams,
/// and requests dropped before their answer.
/// `from_start`: every stream reads from the job's first event, so that
/// the store's read pool opens all its connections (each with its page
/// cache) before the baseline is taken.
pub(super) async fn churn_round(
    server: &Arc<Server>,
    job: &str,
    n: u64,
    concurrency: usize,
    from_start: bool,
) -> Result<(u64, Histogram), String> {
    let next = Arc::new(AtomicU64::new(0));
    let head = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (server, next, head, job) = (
                Arc::clone(server),
                Arc::clone(&next),
                Arc::clone(&head),
                job.to_owned(),
            );
            tokio::spawn(async move {
                let mut hist = Histogram::default();
                let mut refused = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, String>((refused, hist));
                    }
                    // The job's newest event, every 100 opens (a stream's
                    // first chunk tells only where that stream started).
                    if i % 100 == 0 || head.load(Ordering::Relaxed) == 0 {
                        let page = server
                            .call("GET", &format!("/api/jobs/{job}/lines?limit=1"), None, 200)
                            .await?;
                        if let Some(seq) = page["lines"][0]["seq"].as_u64() {
                            head.fetch_max(seq, Ordering::Relaxed);
                        }
                    }
                    let source = w + (i as usize % server.sources);
                    let path = match if from_start { 9 } else { i % 5 } {
                        0 | 1 => format!(
                            "/api/jobs/{job}/events?last_event_id={}",
                            head.load(Ordering::Relaxed)
                        ),
                        // A reader some way behind, still within memory.
                        2 => format!(
                            "/api/jobs/{job}/events?last_event_id={}",
                            head.load(Ordering::Relaxed).saturating_sub(BEHIND)
                        ),
                        9 => format!("/api/jobs/{job}/events"),
                        3 => "/api/events".to_owned(),
                        _ => {
                            // Sends the request and closes at once.
                            let mut tcp = connect(server.addr, source, None).await?;
                            let req = format!(
                                "GET /api/jobs/{job}/events HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
                                server.cookie
                            );
                            let _ = tcp.write_all(req.as_bytes()).await;
                            continue;
                        }
                    };
                    let t = Instant::now();
                    let (status, Open { mut tcp, mut first }) = server.open(&path, source).await?;
                    if status != 200 {
                        refused += 1;
                        continue;
                    }
                    // Reads until the first event's data, then closes.
                    while !first.windows(6).any(|w| w == b"\ndata:")
                        && !first.starts_with(b"data:")
                    {
                        let read = tokio::time::timeout(
                            Duration::from_secs(10),
                            tcp.read_buf(&mut first),
                        )
                        .await
                        .map_err(|_| format!("GET {path}: no event in 10 s"))?
                        .map_err(|e| e.to_string())?;
                        if read == 0 {
                            return Err(format!("GET {path}: closed before an event"));
                        }
                    }
                    hist.record(t.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let (mut refused, mut hist) = (0, Histogram::default());
    for w in workers {
        let (r, h) = w.await.map_err(|e| e.to_string())??;
        refused += r;
        hist.merge(&h);
    }
    Ok((refused, hist))
}

pub(super) async fn run(server: &Arc<Server>, a: &args::Churn) -> Result<Table, String> {
    let mut t = Table::new("churn");
    // A job that ticks all along, so every job stream has events to send
    // and notices at once when its reader is gone.
    let job = server
        .start("bench", bench_params(10_000_000, 64, TICKS_PER_SEC, 0, 0))
        .await?;
    // The warm-up: the store's read pool at its size, the allocator's
    // arenas made, and the ticking job's log in memory full (its window of
    // `JOBSTREAM_LOG_EVENTS`; `scripts/soak` sets 2,000), so that the job's
    // own memory stays flat from the baseline on.
    let warm = (a.opens / 10).max(500);
    churn_round(server, &job, warm / 2, a.concurrency, true).await?;
    churn_round(server, &job, warm / 2, a.concurrency, false).await?;
    server.wait_for_line(&job, a.log_events + 500).await?;
    let base = server.settle(0, 20).await?;
    let half = a.opens / 2;
    let began = Instant::now();
    let (r1, h1) = churn_round(server, &job, half, a.concurrency, false).await?;
    let one = server.settle(0, 20).await?;
    let (r2, h2) = churn_round(server, &job, a.opens - half, a.concurrency, false).await?;
    let secs = began.elapsed().as_secs_f64();
    let two = server.settle(0, 20).await?;
    server.cancel(&job).await;
    let mut hist = h1;
    hist.merge(&h2);

    t.info("stream opens and closes", a.opens);
    t.info("opens per second", format!("{:.0}", a.opens as f64 / secs));
    t.check("opens refused", r1 + r2, "0", r1 + r2 == 0);
    t.info(
        "time to first event, p99 (ms)",
        format!("{:.1}", hist.quantile(0.99) as f64 / 1e3),
    );
    t.check(
        "streams open after",
        two.job_streams + two.list_streams,
        "0",
        two.job_streams + two.list_streams == 0,
    );
    back_to_baseline(&mut t, "baseline / round 1 / round 2", &[base, one, two]);
    t.info(
        "RSS: baseline / round 1 / round 2 (MiB)",
        format!("{} / {} / {}", mib(base.rss), mib(one.rss), mib(two.rss)),
    );
    t.check(
        "RSS growth in round 2 (MiB)",
        signed_mib(two.rss, one.rss),
        &format!("≤ {ROUND_SLACK_MIB}"),
        (two.rss as f64 - one.rss as f64) / MIB <= ROUND_SLACK_MIB,
    );
    t.check(
        "RSS above baseline after both rounds (MiB)",
        signed_mib(two.rss, base.rss),
        &format!("≤ {BASELINE_SLACK_MIB}"),
        (two.rss as f64 - base.rss as f64) / MIB <= BASELINE_SLACK_MIB,
    );
    Ok(t)
}
