//! `big-job`: a job says a lot with no listener; memory plateaus at the
//! documented bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::follow::bench_params;
use super::server::Server;
use super::table::{mib, signed_mib, Table, MIB};
use crate::args;

/// The store's write buffer: 64 MiB of events waiting to be written
/// (README, "Bounds"), which a job emitting faster than the disk fills.
pub(super) const WRITE_BUFFER_MIB: f64 = 64.0;
/// The allocator's kept pages and fragmentation on top of the bounds.
pub(super) const BIG_SLACK_MIB: f64 = 16.0;
/// How much the second half of the job may add to the first half's peak
/// for memory to count as a plateau.
pub(super) const PLATEAU_SLACK_MIB: f64 = 8.0;

pub(super) async fn run(server: &Arc<Server>, a: &args::BigJob) -> Result<Table, String> {
    let mut t = Table::new("big-job");
    let base = server.settle(0, 10).await?;
    let size = 65_536usize;
    let events = a.mib * 16;
    let began = Instant::now();
    let job = server
        .start("bench", bench_params(events, size, 0, 0, 0))
        .await?;
    // (seconds, RSS) every 100 ms until the job ends.
    let mut rss = Vec::new();
    let mut next_state = Instant::now();
    let state = loop {
        let s = std::fs::read_to_string(format!("/proc/{}/status", server.pid))
            .map_err(|e| e.to_string())?;
        let kb = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        rss.push((began.elapsed().as_secs_f64(), kb * 1024));
        if Instant::now() >= next_state {
            next_state = Instant::now() + Duration::from_secs(1);
            let state = server.state(&job).await?;
            if state != "queued" && state != "running" {
                break state;
            }
        }
        if began.elapsed() > Duration::from_secs(a.max_secs) {
            server.cancel(&job).await;
            break format!("still running after {} s", a.max_secs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = began.elapsed().as_secs_f64();
    let after = server.settle(0, 10).await?;
    let peak = rss.iter().map(|&(_, r)| r).max().unwrap_or(0);
    let mid = secs / 2.0;
    let first = rss
        .iter()
        .filter(|&&(s, _)| s < mid)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(0);
    let second = rss
        .iter()
        .filter(|&&(s, _)| s >= mid)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(0);
    let quarter = |q: f64| {
        rss.iter()
            .find(|&&(s, _)| s >= secs * q)
            .map_or(0, |&(_, r)| r)
    };

    t.info(
        "job: messages × bytes (MiB in all)",
        format!("{events} × {size} ({})", a.mib),
    );
    t.check("job state", &state, "succeeded", state == "succeeded");
    t.info("seconds to emit and store it", format!("{secs:.1}"));
    t.info("MiB/s", format!("{:.1}", a.mib as f64 / secs.max(1e-9)));
    t.info(
        "RSS at 25 / 50 / 75 % of the run (MiB)",
        format!(
            "{} / {} / {}",
            mib(quarter(0.25)),
            mib(quarter(0.5)),
            mib(quarter(0.75))
        ),
    );
    t.info(
        "RSS: baseline / after (MiB)",
        format!("{} / {}", mib(base.rss), mib(after.rss)),
    );
    let bound = a.log_bytes as f64 / MIB + WRITE_BUFFER_MIB + BIG_SLACK_MIB;
    t.check(
        "RSS peak above baseline (MiB)",
        signed_mib(peak, base.rss),
        &format!(
            "≤ {bound:.0} (log bytes {} + write buffer {WRITE_BUFFER_MIB} + {BIG_SLACK_MIB})",
            a.log_bytes as f64 / MIB
        ),
        (peak as f64 - base.rss as f64) / MIB <= bound,
    );
    t.check(
        "RSS peak, first half / second half (MiB)",
        format!("{} / {}", mib(first), mib(second)),
        &format!("second ≤ first + {PLATEAU_SLACK_MIB}"),
        (second as f64 - first as f64) / MIB <= PLATEAU_SLACK_MIB,
    );
    Ok(t)
}
