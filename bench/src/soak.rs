//! `soak`: the long and hostile tests (issue 13), run against a jobstream
//! server started by `scripts/soak`, measured from outside: its resident
//! memory and open files in `/proc/PID`, its tokio tasks and open streams
//! in `GET /metrics`.
//!
//! ```text
//! jobstream-bench soak --url U --pid P churn      [--opens N] [--concurrency C]
//! jobstream-bench soak --url U --pid P slowloris  [--conns N] [--idle N] --head-timeout S
//! jobstream-bench soak --url U --pid P slow-reader [--readers R] [--events E] [--rate R]
//! jobstream-bench soak --url U --pid P big-job    [--mib M] --log-bytes B
//! jobstream-bench soak --url U --pid P mixed      [--duration S]
//! ```
//!
//! Each check prints its figures as a table (measured, bound, ok) and
//! fails when one is out of bounds; `--known FIGURE` makes a figure
//! report-only ("KNOWN FAILURE"). The bounds, and why they are what they
//! are, sit as constants at the top of each check's module.
//!
//! Layout:
//!
//! * `server`: the server seen from outside. Requests are plain TCP with
//!   hand-written HTTP/1.1: a hostile client must be able to stop half-way
//!   through a request head, and a stream must close the moment it is
//!   dropped. Samples of `/proc/PID` and `/metrics`; `settle` waits until
//!   the streams are closed and open files and tasks are steady.
//! * `follow`: a reader of a `bench` job, parsed by `sse::Parser`, that
//!   checks every numbered message comes exactly once and in order across
//!   reconnections with `last_event_id`, only a `gap` event excusing one
//!   that is missing.
//! * `churn`, `slowloris`, `slow_reader`, `big_job`, `mixed`: the checks.
//! * `table`: a check's figures, printed and recorded.

mod big_job;
mod churn;
mod follow;
mod mixed;
mod server;
mod slow_reader;
mod slowloris;
mod table;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::args::{self, Check};
use server::Server;
use table::Table;

/// Runs one check; its figures are printed, recorded as a JSON line, and
/// any figure out of bounds makes the exit status a failure.
pub fn main(args: &args::Soak) -> ExitCode {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(run(args));
    rt.shutdown_timeout(Duration::from_secs(1));
    let table = match result {
        Ok(table) => table,
        Err(e) => {
            eprintln!("jobstream-bench soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    table.print();
    if let Err(e) = append(&table.json(), &args.out.json) {
        eprintln!("jobstream-bench soak: {e}");
    }
    let failed = table.failed(&args.known);
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "jobstream-bench soak {}: FAILED: {}",
            table.check,
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// Appends a check's figures to the results file, one JSON line (the
/// table is printed already, so not again as `record` would).
fn append(value: &Value, path: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{value}"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(args: &args::Soak) -> Result<Table, String> {
    let server = Arc::new(Server::new(&args.url.url, args.pid, args.sources).await?);
    match &args.check {
        Check::Churn(a) => churn::run(&server, a).await,
        Check::Slowloris(a) => slowloris::run(&server, a).await,
        Check::SlowReader(a) => slow_reader::run(&server, a).await,
        Check::BigJob(a) => big_job::run(&server, a).await,
        Check::Mixed(a) => mixed::run(&server, a).await,
    }
}
