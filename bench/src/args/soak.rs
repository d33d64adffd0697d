//! The flags of `soak` and its checks (see `crate::soak`).

use clap::{Args, Subcommand};

use super::{count, Output, Url};

/// `soak`: one check against a running server.
#[derive(Debug, Args)]
pub struct Soak {
    #[command(flatten)]
    pub url: Url,
    /// The server's process: memory and open files are read in /proc/PID
    #[arg(long, value_parser = count::<u32>)]
    pub pid: u32,
    /// Loopback source addresses (127.0.0.2, ...) connections are spread over
    #[arg(long, default_value_t = 16, value_parser = count::<usize>)]
    pub sources: usize,
    /// A figure (by the start of its name) whose failure is known: it is
    /// printed as "KNOWN FAILURE" and does not fail the run
    #[arg(long, value_name = "FIGURE")]
    pub known: Vec<String>,
    #[command(flatten)]
    pub out: Output,
    #[command(subcommand)]
    pub check: Check,
}

#[derive(Debug, Subcommand)]
pub enum Check {
    /// Stream opens and closes: open files, tasks and memory return to
    /// their baseline
    Churn(Churn),
    /// Half request heads, then silent and idle kept-alive connections:
    /// all closed within the head timeout while normal requests are served
    Slowloris(Slowloris),
    /// One reader reads a byte a second: the others are unaffected, memory
    /// stays bounded, it gets every event (resuming) or a gap
    SlowReader(SlowReader),
    /// A job emits a lot with no listener: memory plateaus at the bound
    BigJob(BigJob),
    /// Jobs starting, streams opening, resuming and closing, list feeds:
    /// no event lost or duplicated; memory, open files and tasks plateau
    Mixed(Mixed),
}

#[derive(Debug, Args)]
pub struct Churn {
    /// Streams opened and closed (after a warm-up of a tenth of them)
    #[arg(long, default_value_t = 10_000, value_parser = count::<u64>)]
    pub opens: u64,
    /// Streams open at once
    #[arg(long, default_value_t = 32, value_parser = count::<usize>)]
    pub concurrency: usize,
    /// The server's JOBSTREAM_LOG_EVENTS: the ticking job's window, filled
    /// before the baseline
    #[arg(long, default_value_t = 10_000, value_parser = count::<u64>)]
    pub log_events: u64,
}

#[derive(Debug, Args)]
pub struct Slowloris {
    /// Connections that send half a request head and stall
    #[arg(long, default_value_t = 5000, value_parser = count::<usize>)]
    pub conns: usize,
    /// Connections that never send a request, and as many kept alive
    /// idle after one request
    #[arg(long, default_value_t = 500, value_parser = count::<usize>)]
    pub idle: usize,
    /// The server's JOBSTREAM_HEAD_TIMEOUT_SECS
    #[arg(long, value_name = "SECS", value_parser = count::<u64>)]
    pub head_timeout: u64,
}

#[derive(Debug, Args)]
pub struct SlowReader {
    /// Other readers of the same job
    #[arg(long, default_value_t = 10, value_parser = count::<usize>)]
    pub readers: usize,
    /// Messages the job says
    #[arg(long, default_value_t = 20_000, value_parser = count::<u64>)]
    pub events: u64,
    /// Bytes per message
    #[arg(long, default_value_t = 256, value_parser = count::<usize>)]
    pub size: usize,
    /// Messages per second
    #[arg(long, default_value_t = 1000, value_parser = count::<u64>)]
    pub rate: u64,
    /// The server's JOBSTREAM_LOG_BYTES
    #[arg(long, default_value_t = 4_194_304, value_parser = count::<u64>)]
    pub log_bytes: u64,
}

#[derive(Debug, Args)]
pub struct BigJob {
    /// MiB the job says, in messages of 64 KiB
    #[arg(long, default_value_t = 1024, value_parser = count::<u64>)]
    pub mib: u64,
    /// The server's JOBSTREAM_LOG_BYTES
    #[arg(long, default_value_t = 4_194_304, value_parser = count::<u64>)]
    pub log_bytes: u64,
    /// Longest the job may take
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = count::<u64>)]
    pub max_secs: u64,
}

#[derive(Debug, Args)]
pub struct Mixed {
    /// Seconds of load
    #[arg(long, value_name = "SECS", default_value_t = 50, value_parser = count::<u64>)]
    pub duration: u64,
    /// Milliseconds between job starts
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = count::<u64>)]
    pub interval_ms: u64,
    /// List feeds opened and closed over and over
    #[arg(long, default_value_t = 4, value_parser = count::<usize>)]
    pub list_feeds: usize,
}

impl Mixed {
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.interval_ms)
    }
}
