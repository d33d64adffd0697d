//! `catchup`: many readers catch up on one big finished job at once, from
//! its first event, while memory holds only the job's newest events (the
//! window, `JOBSTREAM_LOG_EVENTS`). Everything older comes from the store a
//! page at a time, so the server's memory should grow with readers × page
//! size, not with the job's size.
//!
//! The run: start a `log` job of `--lines` lines (as fast as it can), wait
//! until its last line is there, reset the server's peak RSS
//! (`/proc/PID/clear_refs`, "5"), open `--readers` readers at once
//! (`?last_event_id=0` event streams, or `/output` downloads), read each to
//! its end, checking that every line arrives once and in order, and report
//! the peak RSS (`VmHWM`) and RSS before, during and after, with the time
//! to finish and the job's size (its text, and what it added to the
//! database on disk).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::args::{self, Server, Via};
use crate::client::{Conn, Target};

/// A figure of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// Bytes of a SQLite database with its write-ahead log.
fn db_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|ext| std::fs::metadata(format!("{}{ext}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// The number `N` of a `line N of TOTAL` message (colour codes around it
/// are skipped).
fn line_number(text: &str) -> Option<u64> {
    let rest = &text[text.find("line ")? + 5..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// What one reader got.
#[derive(Default)]
struct Read {
    lines: u64,
    bytes: u64,
    /// Lines that came twice, out of order, or not at all.
    wrong: u64,
}

/// Reads one event stream to its end.
async fn read_events(conn: Conn, total: u64) -> Result<Read, String> {
    let mut body = conn.body();
    let mut parser = crate::sse::Parser::new();
    let mut read = Read::default();
    let mut last = 0;
    while let Some(frame) = body.next().await {
        let Ok(chunk) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        read.bytes += chunk.len() as u64;
        parser.feed(&chunk, &mut |event, data| {
            // The stream's last event is the sentinel, a plain message too.
            if event != "message" || data == "__CLOSE_SSE__" {
                return;
            }
            match line_number(data) {
                Some(n) if n == last + 1 => last = n,
                _ => read.wrong += 1,
            }
            read.lines += 1;
        });
    }
    read.wrong += total - last.min(total);
    Ok(read)
}

/// Reads one `/output` download to its end.
async fn read_output(conn: Conn, total: u64) -> Result<Read, String> {
    let mut body = conn.body();
    let mut read = Read::default();
    while let Some(frame) = body.next().await {
        let Ok(chunk) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        read.bytes += chunk.len() as u64;
        read.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    read.wrong = read.lines.abs_diff(total);
    Ok(read)
}

/// Waits until job `id` has said its `total`th line.
async fn wait_for_end(target: &Target, id: &str, total: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let page = target
            .get(&format!("/api/jobs/{id}/lines?limit=1"), 0)
            .await?
            .json()
            .await?;
        if page["lines"][0]["n"].as_u64() == Some(total) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("job {id} did not reach line {total} in 600 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(args: &args::Catchup) -> Result<Value, String> {
    let target = Target::new(Server::Jobstream, &args.url.url).await?;
    let (pid, total, readers) = (args.pid, args.lines, args.readers);
    let db_before = args.db.as_deref().map_or(0, db_bytes);
    let began = Instant::now();
    let id = target
        .start_job(json!({"kind": "log", "params": {"lines": total, "rate": 0}}))
        .await?;
    wait_for_end(&target, &id, total).await?;
    let job_s = began.elapsed().as_secs_f64();
    // Let the store's writer finish the job's last batches.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (hwm_job, rss_before) = (status_bytes(pid, "VmHWM"), status_bytes(pid, "VmRSS"));
    // What the job added to the database (the file and its write-ahead log).
    let db = args
        .db
        .as_deref()
        .map_or(0, |db| db_bytes(db).saturating_sub(db_before));
    // From here VmHWM is the peak of the readers' run alone.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("reset the peak RSS of {pid}: {e}"))?;

    // RSS sampled every 10 ms as well: the peak as seen from outside.
    let sampled = Arc::new(AtomicU64::new(0));
    let sampler = {
        let sampled = Arc::clone(&sampled);
        tokio::spawn(async move {
            loop {
                sampled.fetch_max(status_bytes(pid, "VmRSS"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let path = match args.via {
        Via::Events => format!("/api/jobs/{id}/events?last_event_id=0"),
        Via::Output => format!("/api/jobs/{id}/output"),
    };
    let started = Instant::now();
    let mut conns = Vec::with_capacity(readers);
    for i in 0..readers {
        conns.push(target.get(&path, i % 8).await?);
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| match args.via {
            Via::Events => tokio::spawn(read_events(conn, total)),
            Via::Output => tokio::spawn(read_output(conn, total)),
        })
        .collect();
    let (mut lines, mut bytes, mut wrong) = (0, 0, 0);
    for t in tasks {
        let read = t.await.map_err(|e| e.to_string())??;
        lines += read.lines;
        bytes += read.bytes;
        wrong += read.wrong;
    }
    let secs = started.elapsed().as_secs_f64();
    sampler.abort();
    let hwm_during = status_bytes(pid, "VmHWM");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = status_bytes(pid, "VmRSS");
    // The job's text: what one `/output` download of it weighs.
    let text_bytes = match args.via {
        Via::Output => bytes / readers as u64,
        Via::Events => {
            read_output(
                target.get(&format!("/api/jobs/{id}/output"), 0).await?,
                total,
            )
            .await?
            .bytes
        }
    };
    if wrong > 0 {
        eprintln!("catchup: {wrong} lines missing, repeated or out of order");
    }
    Ok(json!({
        "scenario": "catchup", "target": "jobstream", "via": args.via.name(),
        "lines": total, "readers": readers, "job_s": job_s,
        "job_text_mib": mib(text_bytes), "db_mib": mib(db),
        "peak_rss_until_job_end_mib": mib(hwm_job),
        "rss_before_mib": mib(rss_before),
        "peak_rss_during_mib": mib(hwm_during),
        "sampled_peak_rss_mib": mib(sampled.load(Ordering::Relaxed)),
        "rss_after_mib": mib(rss_after),
        "growth_per_reader_kib": hwm_during.saturating_sub(rss_before) as f64 / 1024.0 / readers as f64,
        "elapsed_s": secs, "lines_read": lines, "mib_read": mib(bytes),
        "lines_per_s": lines as f64 / secs.max(1e-9),
        "wrong_lines": wrong,
    }))
}

#[cfg(test)]
mod tests {
    use super::line_number;

    #[test]
    fn line_numbers_are_read_through_colour_codes() {
        assert_eq!(line_number("line 7 of 10"), Some(7));
        assert_eq!(line_number("\x1b[1;31mline 25 of 100\x1b[0m"), Some(25));
        assert_eq!(line_number("Zeile 3 von 9"), None);
    }
}
