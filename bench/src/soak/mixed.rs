//! `mixed`: the soak proper; jobs starting, streams opening, resuming and
//! closing, list feeds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;

use super::follow::{bench_params, follow, Follow, Manner};
use super::server::{back_to_baseline, Open, Sample, Server};
use super::table::{mib, Table, MIB};
use crate::args;

/// Memory growth allowed from the middle third of the run to the last
/// (peak against peak), once retained jobs have reached their bound.
pub(super) const MIXED_PLATEAU_MIB: f64 = 8.0;

/// What the mixed load's followers saw, all together.
#[derive(Default)]
pub(super) struct Mixed {
    pub(super) jobs: u64,
    pub(super) followers: u64,
    pub(super) incomplete: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) dup: u64,
    pub(super) gapped: u64,
    pub(super) resumes: u64,
    pub(super) list_opens: u64,
    pub(super) list_events: u64,
    pub(super) errors: Vec<String>,
}

pub(super) async fn run(server: &Arc<Server>, a: &args::Mixed) -> Result<Table, String> {
    let mut t = Table::new("mixed");
    let base = server.settle(0, 10).await?;
    let began = Instant::now();
    let duration = Duration::from_secs(a.duration);
    let totals = Arc::new(Mutex::new(Mixed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let events = 1000u64;

    // Samples every second: (seconds, sample).
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (server, samples) = (Arc::clone(server), Arc::clone(&samples));
        tokio::spawn(async move {
            loop {
                if let Ok(s) = server.sample().await {
                    samples
                        .lock()
                        .expect("not poisoned: pushes only")
                        .push((began.elapsed().as_secs_f64(), s));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // List feeds: open, read for a while, close, again.
    let feeds: Vec<_> = (0..a.list_feeds)
        .map(|i| {
            let (server, totals, stop) =
                (Arc::clone(server), Arc::clone(&totals), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let hold = Duration::from_millis(500 + 700 * (i as u64 % 4));
                    let opened = server.open("/api/events", 40 + i).await;
                    let mut count = 0u64;
                    match opened {
                        Ok((200, Open { mut tcp, first })) => {
                            let mut parser = crate::sse::Parser::new();
                            let mut on = |e: &str, _: &str| count += u64::from(e == "job");
                            parser.feed(&first, &mut on);
                            let mut buf = vec![0u8; 16384];
                            let until = tokio::time::Instant::now() + hold;
                            while let Ok(Ok(n)) =
                                tokio::time::timeout_at(until, tcp.read(&mut buf)).await
                            {
                                if n == 0 {
                                    break;
                                }
                                parser.feed(&buf[..n], &mut on);
                            }
                        }
                        Ok((status, _)) => totals
                            .lock()
                            .expect("not poisoned")
                            .errors
                            .push(format!("GET /api/events answered {status}")),
                        Err(e) => totals.lock().expect("not poisoned").errors.push(e),
                    }
                    let mut m = totals.lock().expect("not poisoned");
                    m.list_opens += 1;
                    m.list_events += count;
                }
            })
        })
        .collect();

    // Jobs: one every `interval`; each followed by readers in three manners:
    // from the start, dropping and resuming every few hundred events, and
    // joining late (from the start, so partly from the store).
    let mut followers = Vec::new();
    let mut i = 0u64;
    while began.elapsed() < duration {
        i += 1;
        // Short jobs nobody follows, for the job list and the store.
        if i.is_multiple_of(3) {
            if let Err(e) = server
                .start("echo", json!({"messages": ["soak"], "repeat": 20}))
                .await
            {
                totals.lock().expect("not poisoned").errors.push(e);
            }
        }
        let job = match server
            .start("bench", bench_params(events, 128, 400, 2, 2000))
            .await
        {
            Ok(job) => job,
            Err(e) => {
                totals.lock().expect("not poisoned").errors.push(e);
                tokio::time::sleep(a.interval()).await;
                continue;
            }
        };
        totals.lock().expect("not poisoned").jobs += 1;
        for k in 0..3u64 {
            let (server, totals, job) = (Arc::clone(server), Arc::clone(&totals), job.clone());
            let manner = Manner {
                drop_every: (k == 1).then_some(150 + (i * 37) % 300),
                source: (i * 3 + k) as usize,
            };
            followers.push(tokio::spawn(async move {
                if k == 2 {
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                }
                let result = follow(&server, &job, events, 0, Follow::default(), manner).await;
                let mut m = totals.lock().expect("not poisoned");
                m.followers += 1;
                match result {
                    Ok(f) => {
                        m.incomplete += u64::from(!f.ended);
                        m.received += f.received;
                        m.lost += f.lost;
                        m.dup += f.dup;
                        m.gapped += f.gapped;
                        m.resumes += f.resumes;
                    }
                    Err(e) => {
                        m.incomplete += 1;
                        m.errors.push(e);
                    }
                }
            }));
        }
        tokio::time::sleep(a.interval()).await;
    }
    stop.store(true, Ordering::Relaxed);
    for f in followers.into_iter().chain(feeds) {
        f.await.map_err(|e| e.to_string())?;
    }
    sampler.abort();
    let after = server.settle(0, 20).await?;
    let secs = began.elapsed().as_secs_f64();
    let m = std::mem::take(&mut *totals.lock().expect("not poisoned"));
    let samples = std::mem::take(&mut *samples.lock().expect("not poisoned"));

    let third = a.duration as f64 / 3.0;
    let peak_in = |from: f64, to: f64, f: fn(&Sample) -> u64| {
        samples
            .iter()
            .filter(|(s, _)| *s >= from && *s < to)
            .map(|(_, x)| f(x))
            .max()
            .unwrap_or(0)
    };
    let (rss_mid, rss_last) = (
        peak_in(third, 2.0 * third, |s| s.rss),
        peak_in(2.0 * third, f64::MAX, |s| s.rss),
    );
    let (fds_mid, fds_last) = (
        peak_in(third, 2.0 * third, |s| s.fds),
        peak_in(2.0 * third, f64::MAX, |s| s.fds),
    );
    let (tasks_mid, tasks_last) = (
        peak_in(third, 2.0 * third, |s| s.tasks),
        peak_in(2.0 * third, f64::MAX, |s| s.tasks),
    );

    t.info(
        "seconds of load (and draining)",
        format!("{} ({secs:.0})", a.duration),
    );
    t.info("bench jobs started (1,000 events each)", m.jobs);
    t.check(
        "errors (refused or failed requests)",
        m.errors.len(),
        "0",
        m.errors.is_empty(),
    );
    for e in m.errors.iter().take(5) {
        eprintln!("soak mixed: {e}");
    }
    t.info("followers (from start / resuming / late)", m.followers);
    t.info("resumes with last_event_id", m.resumes);
    t.info("events received", m.received);
    t.check(
        "lost / duplicated / incomplete followers",
        format!("{} / {} / {}", m.lost, m.dup, m.incomplete),
        "0 / 0 / 0",
        m.lost == 0 && m.dup == 0 && m.incomplete == 0,
    );
    t.check("events announced by gap", m.gapped, "0", m.gapped == 0);
    t.info(
        "list feeds opened / job events on them",
        format!("{} / {}", m.list_opens, m.list_events),
    );
    t.check(
        "RSS peak, middle third / last third (MiB)",
        format!("{} / {}", mib(rss_mid), mib(rss_last)),
        &format!("last ≤ middle + {MIXED_PLATEAU_MIB}"),
        (rss_last as f64 - rss_mid as f64) / MIB <= MIXED_PLATEAU_MIB,
    );
    t.info(
        "open files peak, middle / last third",
        format!("{fds_mid} / {fds_last}"),
    );
    t.info(
        "tasks peak, middle / last third",
        format!("{tasks_mid} / {tasks_last}"),
    );
    back_to_baseline(&mut t, "baseline / after", &[base, after]);
    t.info(
        "RSS: baseline / after (MiB)",
        format!("{} / {}", mib(base.rss), mib(after.rss)),
    );
    Ok(t)
}
