//! `slow-reader`: one reader reads a byte a second next to others of the
//! same job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::follow::{bench_params, follow, Follow, Ids, Manner};
use super::server::{connect, head_end, Server};
use super::table::{mib, signed_mib, Table, MIB};
use crate::args;

/// Memory the server may take beyond the job's own bounded log while one
/// reader reads a byte a second: the store's write buffer in flight and
/// the allocator's kept pages. The reader itself holds nothing between
/// reads (README, "Bounds").
pub(super) const SLOW_SLACK_MIB: f64 = 8.0;
/// p99 from emit to receipt for the other readers, as for normal
/// requests under slowloris.
pub(super) const READER_P99_MS: u64 = 100;

pub(super) async fn run(server: &Arc<Server>, a: &args::SlowReader) -> Result<Table, String> {
    let mut t = Table::new("slow-reader");
    let base = server.settle(0, 10).await?;
    let events = a.events;
    let job = server
        .start(
            "bench",
            bench_params(events, a.size, a.rate, a.readers as u64 + 1, 10_000),
        )
        .await?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, peak) = (server.pid, Arc::clone(&peak));
        tokio::spawn(async move {
            loop {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines().find_map(|l| {
                            l.strip_prefix("VmRSS:")?
                                .trim()
                                .trim_end_matches("kB")
                                .trim()
                                .parse::<u64>()
                                .ok()
                        })
                    })
                    .unwrap_or(0);
                peak.fetch_max(rss * 1024, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The slow reader: a small receive buffer, one byte a second while the
    // job runs, then it reads on at full speed (or resumes, if the server
    // closed it) to the end.
    let slow = {
        let (server, job) = (Arc::clone(server), job.clone());
        let secs = events / a.rate.max(1) + 2;
        tokio::spawn(async move {
            let mut tcp = connect(server.addr, 1, Some(4096)).await?;
            let req = format!(
                "GET /api/jobs/{job}/events HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
                server.cookie
            );
            tcp.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            let until = Instant::now() + Duration::from_secs(secs);
            let mut byte = [0u8; 1];
            while Instant::now() < until {
                match tcp.read(&mut byte).await {
                    Ok(1) => got.push(byte[0]),
                    _ => break,
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let slow_bytes = got.len();
            // Whatever the kernel still holds for it, then the end or EOF.
            let mut buf = vec![0u8; 64 * 1024];
            let mut f = Follow::default();
            let mut ids = Ids::default();
            let mut parser = crate::sse::Parser::new();
            let mut head_done = false;
            loop {
                if !head_done {
                    if let Some(end) = head_end(&got) {
                        head_done = true;
                        let body = got.split_off(end);
                        f.feed(&mut parser, &mut ids, &body);
                    }
                }
                if f.ended {
                    break;
                }
                let n =
                    match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await {
                        Ok(Ok(n)) => n,
                        Ok(Err(_)) => 0,
                        Err(_) => return Err("slow reader: no bytes for 30 s".to_owned()),
                    };
                if n == 0 {
                    f.server_closed += 1;
                    break;
                }
                if head_done {
                    f.feed(&mut parser, &mut ids, &buf[..n]);
                } else {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            let from = ids.complete;
            let manner = Manner {
                drop_every: None,
                source: 1,
            };
            let f = if f.ended {
                f.finish(events);
                f
            } else {
                let mut f = follow(&server, &job, events, from, f, manner).await?;
                f.resumes += 1;
                f
            };
            Ok::<_, String>((slow_bytes, f))
        })
    };
    let readers: Vec<_> = (0..a.readers)
        .map(|i| {
            let (server, job) = (Arc::clone(server), job.clone());
            tokio::spawn(async move {
                let manner = Manner {
                    drop_every: None,
                    source: 2 + i,
                };
                follow(&server, &job, events, 0, Follow::default(), manner).await
            })
        })
        .collect();
    let mut others = Follow::default();
    let mut incomplete = 0;
    for r in readers {
        let f = r.await.map_err(|e| e.to_string())??;
        incomplete += usize::from(!f.ended);
        others.received += f.received;
        others.lost += f.lost;
        others.dup += f.dup;
        others.gaps += f.gaps;
        others.hist.merge(&f.hist);
    }
    let (slow_bytes, s) = slow.await.map_err(|e| e.to_string())??;
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    let state = server.state(&job).await?;

    t.info(
        "job: events × bytes, rate",
        format!("{events} × {} B at {}/s", a.size, a.rate),
    );
    t.check("job state", &state, "succeeded", state == "succeeded");
    t.check(
        "other readers: incomplete",
        incomplete,
        "0",
        incomplete == 0,
    );
    t.check(
        "other readers: lost / duplicated",
        format!("{} / {}", others.lost, others.dup),
        "0 / 0",
        others.lost == 0 && others.dup == 0,
    );
    t.check("other readers: gaps", others.gaps, "0", others.gaps == 0);
    t.check(
        "other readers: p99 emit to receipt (ms)",
        format!("{:.1}", others.hist.quantile(0.99) as f64 / 1e3),
        &format!("< {READER_P99_MS}"),
        others.hist.quantile(0.99) < READER_P99_MS * 1000,
    );
    t.info("slow reader: bytes read at 1 byte/s", slow_bytes);
    t.info(
        "slow reader: closed by the server (write timeout)",
        if s.server_closed > 0 { "yes" } else { "no" },
    );
    t.info("slow reader: resumed", s.resumes);
    t.check(
        "slow reader: reached the end",
        if s.ended { "yes" } else { "no" },
        "yes",
        s.ended,
    );
    t.check(
        "slow reader: received / announced by gap / lost / duplicated",
        format!("{} / {} / {} / {}", s.received, s.gapped, s.lost, s.dup),
        "lost 0, duplicated 0",
        s.lost == 0 && s.dup == 0,
    );
    let bound = a.log_bytes as f64 / MIB + SLOW_SLACK_MIB;
    t.check(
        "RSS: baseline / peak / peak above baseline (MiB)",
        format!(
            "{} / {} / {}",
            mib(base.rss),
            mib(peak),
            signed_mib(peak, base.rss)
        ),
        &format!("above ≤ {bound:.0} (log bytes + {SLOW_SLACK_MIB})"),
        (peak as f64 - base.rss as f64) / MIB <= bound,
    );
    Ok(t)
}
