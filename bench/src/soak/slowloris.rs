//! `slowloris`: half request heads, silent connections and idle kept-alive
//! ones are all closed within the head timeout while normal requests are
//! served.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::server::{back_to_baseline, connect, Server};
use super::table::{mib, signed_mib, Table, MIB};
use crate::args;
use crate::hist::Histogram;

/// How much later than the head timeout a stalled connection may be
/// closed: the server's timer is armed at accept, ours starts after the
/// connection is made and written to, so the margin is for a busy
/// two-core machine scheduling thousands of timers at once.
pub(super) const CLOSE_MARGIN_SECS: f64 = 2.0;
/// How far RSS after a second round of stalled connections may stand
/// above the first round's peak (sampled every 250 ms, so the true peak
/// may be a little higher). Without a leak the second round fits in what
/// the first needed: RSS after a round alone varies by 10 MiB with how
/// many connections were open at once and what the allocator gave back, so
/// it is not compared with the round before. A leak of 1.6 KiB per
/// connection would show.
pub(super) const SLOWLORIS_ROUND_SLACK_MIB: f64 = 8.0;

/// Opens `n` connections from the sources after the first `skip`; each
/// writes `send` and waits for the server to close it. The seconds each
/// took to be closed (`None`: not closed within `limit`).
pub(super) async fn stalled(
    server: &Arc<Server>,
    n: usize,
    send: &'static [u8],
    read_answer: bool,
    limit: Duration,
) -> Result<Vec<Option<f64>>, String> {
    let mut tasks = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(250) {
        let conns: Vec<_> = batch
            .iter()
            .map(|&i| {
                let server = Arc::clone(server);
                async move {
                    let mut tcp = connect(server.addr, 20 + i % 16, None).await?;
                    tcp.write_all(send).await.map_err(|e| e.to_string())?;
                    let mut buf = vec![0u8; 4096];
                    if read_answer {
                        // Reads the whole answer (a `/healthz`: small, with
                        // a length), then the connection stays idle.
                        let mut got = Vec::new();
                        loop {
                            let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
                            got.extend_from_slice(&buf[..n]);
                            if n == 0 || got.ends_with(b"}") {
                                break;
                            }
                        }
                    }
                    Ok::<_, String>((tcp, Instant::now()))
                }
            })
            .collect();
        for c in futures_util::future::join_all(conns).await {
            let (mut tcp, since) = c?;
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let closed = async {
                    loop {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                };
                tokio::time::timeout(limit, closed)
                    .await
                    .ok()
                    .map(|()| since.elapsed().as_secs_f64())
            }));
        }
    }
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Requests of a well-behaved client on fresh connections while `stop` is
/// unset: their latency (µs) and failures.
pub(super) async fn normal_load(
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
) -> (Histogram, u64, u64) {
    let (mut hist, mut served, mut failed) = (Histogram::default(), 0u64, 0u64);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let path = if i.is_multiple_of(2) {
            "/healthz"
        } else {
            "/api/jobs?limit=10"
        };
        let t = Instant::now();
        match server.call_raw("GET", path, None).await {
            Ok((200, _, _)) => {
                hist.record(t.elapsed().as_micros() as u64);
                served += 1;
            }
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (hist, served, failed)
}

pub(super) fn close_figures(t: &mut Table, what: &str, closed: &[Option<f64>], bound: f64) {
    let shut: Vec<f64> = closed.iter().flatten().copied().collect();
    let max = shut.iter().copied().fold(0.0, f64::max);
    let min = shut.iter().copied().fold(f64::MAX, f64::min);
    t.check(
        &format!("{what}: closed by the server"),
        format!("{} of {}", shut.len(), closed.len()),
        "all",
        shut.len() == closed.len(),
    );
    t.check(
        &format!("{what}: seconds to be closed, min / max"),
        format!(
            "{:.2} / {:.2}",
            if shut.is_empty() { 0.0 } else { min },
            max
        ),
        &format!("max ≤ {bound:.1}"),
        max <= bound,
    );
}

pub(super) async fn run(server: &Arc<Server>, a: &args::Slowloris) -> Result<Table, String> {
    let mut t = Table::new("slowloris");
    let base = server.settle(0, 10).await?;
    let bound = a.head_timeout as f64 + CLOSE_MARGIN_SECS;
    let limit = Duration::from_secs(a.head_timeout * 3 + 10);

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(normal_load(Arc::clone(server), Arc::clone(&stop)));
    let peak = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (server, peak, peak_rss) =
            (Arc::clone(server), Arc::clone(&peak), Arc::clone(&peak_rss));
        tokio::spawn(async move {
            loop {
                if let Ok(s) = server.sample().await {
                    peak.fetch_max(s.fds, Ordering::Relaxed);
                    peak_rss.fetch_max(s.rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let half_head = b"GET /api/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: slowloris\r\n";
    // Two rounds: the second must need no more memory than the first did
    // at its peak (what it freed is kept by the allocator for reuse).
    let mut closed = stalled(server, a.conns, half_head, false, limit).await?;
    let one = server.settle(0, 10).await?;
    let peak_one = peak_rss.swap(0, Ordering::Relaxed).max(one.rss);
    closed.extend(stalled(server, a.conns, half_head, false, limit).await?);
    let two = server.settle(0, 10).await?;
    let peak_two = peak_rss.load(Ordering::Relaxed).max(two.rss);
    stop.store(true, Ordering::Relaxed);
    let (hist, served, failed) = load.await.map_err(|e| e.to_string())?;
    let peak_fds = peak.load(Ordering::Relaxed);

    t.info("half request heads sent (two rounds)", closed.len());
    t.info("server open files, peak", peak_fds);
    close_figures(&mut t, "half heads", &closed, bound);
    t.info(
        "RSS: baseline / round 1 peak, after / round 2 peak, after (MiB)",
        format!(
            "{} / {}, {} / {}, {}",
            mib(base.rss),
            mib(peak_one),
            mib(one.rss),
            mib(peak_two),
            mib(two.rss)
        ),
    );
    t.check(
        "RSS after round 2 above round 1's peak (MiB)",
        signed_mib(two.rss, peak_one),
        &format!("≤ {SLOWLORIS_ROUND_SLACK_MIB}"),
        (two.rss as f64 - peak_one as f64) / MIB <= SLOWLORIS_ROUND_SLACK_MIB,
    );
    t.check("normal requests failed", failed, "0", failed == 0);
    t.info("normal requests served", served);
    t.check(
        "normal requests p99 (ms)",
        format!("{:.1}", hist.quantile(0.99) as f64 / 1e3),
        "< 100",
        hist.quantile(0.99) < 100_000,
    );
    t.info(
        "normal requests max (ms)",
        format!("{:.1}", hist.max() as f64 / 1e3),
    );

    let silent = stalled(server, a.idle, b"", false, limit).await?;
    close_figures(&mut t, "connections that never send", &silent, bound);
    let kept = stalled(
        server,
        a.idle,
        b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
        true,
        limit,
    )
    .await?;
    close_figures(&mut t, "kept-alive after one request", &kept, bound);
    sampler.abort();

    let after = server.settle(0, 20).await?;
    back_to_baseline(&mut t, "baseline / after", &[base, after]);
    t.info("RSS after (MiB)", mib(after.rss));
    Ok(t)
}
