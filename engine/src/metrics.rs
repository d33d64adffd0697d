//! What the engine counts, for `/metrics` (the server installs a
//! Prometheus recorder; without one, counting does nothing). The handles
//! are made once, on first use, so counting an event is an atomic add: no
//! lookup and no lock per event. Each name is described in the README
//! ("Metrics").

use std::sync::LazyLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use crate::model::JobState;

/// Messages jobs said.
pub static EVENTS_EMITTED: LazyLock<Counter> =
    LazyLock::new(|| counter!("jobstream_events_emitted_total"));
/// Bytes of those messages.
pub static EVENT_BYTES_EMITTED: LazyLock<Counter> =
    LazyLock::new(|| counter!("jobstream_event_bytes_emitted_total"));
/// Time to write one batch to the store (successful or not).
pub static STORE_WRITE_BATCH: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("jobstream_store_write_batch_seconds"));
/// Failed store writes (each retry counts).
pub static STORE_ERRORS: LazyLock<Counter> =
    LazyLock::new(|| counter!("jobstream_store_errors_total"));
static QUEUE_DEPTH: LazyLock<Gauge> = LazyLock::new(|| gauge!("jobstream_queue_depth"));
static WORKERS_BUSY: LazyLock<Gauge> = LazyLock::new(|| gauge!("jobstream_workers_busy"));
static STORE_PENDING: LazyLock<Gauge> = LazyLock::new(|| gauge!("jobstream_store_pending_writes"));

/// Describes the engine's metrics and makes each appear (at zero) before
/// anything is counted. Call once the recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("jobstream_events_emitted_total", "Messages jobs said");
    describe_counter!(
        "jobstream_event_bytes_emitted_total",
        Unit::Bytes,
        "Bytes of the messages jobs said"
    );
    describe_counter!(
        "jobstream_jobs_started_total",
        "Jobs that started running, by kind"
    );
    describe_counter!(
        "jobstream_jobs_finished_total",
        "Jobs that ended, by kind and final state"
    );
    describe_histogram!(
        "jobstream_job_duration_seconds",
        Unit::Seconds,
        "How long jobs ran, by kind"
    );
    describe_gauge!("jobstream_queue_depth", "Jobs waiting in the queue");
    describe_gauge!("jobstream_workers_busy", "Workers running a job");
    describe_histogram!(
        "jobstream_store_write_batch_seconds",
        Unit::Seconds,
        "Time to write one batch to the store"
    );
    describe_gauge!(
        "jobstream_store_pending_writes",
        "Writes waiting for the store"
    );
    describe_counter!(
        "jobstream_store_errors_total",
        "Failed writes to the store (each retry counts)"
    );
    LazyLock::force(&EVENTS_EMITTED);
    LazyLock::force(&EVENT_BYTES_EMITTED);
    LazyLock::force(&STORE_ERRORS);
    set_gauges(0, 0, 0);
}

/// A job of `kind` started running.
pub fn job_started(kind: &str) {
    counter!("jobstream_jobs_started_total", "kind" => kind.to_owned()).increment(1);
}

/// A job of `kind` ended in `state`, after running `ran` (if it ran).
pub fn job_finished(kind: &str, state: JobState, ran: Option<Duration>) {
    let kind = kind.to_owned();
    counter!(
        "jobstream_jobs_finished_total",
        "kind" => kind.clone(),
        "state" => state.as_str()
    )
    .increment(1);
    if let Some(ran) = ran {
        histogram!("jobstream_job_duration_seconds", "kind" => kind).record(ran.as_secs_f64());
    }
}

/// The gauges that describe the engine now, set when metrics are read.
pub fn set_gauges(queue_depth: usize, workers_busy: usize, pending_writes: usize) {
    QUEUE_DEPTH.set(queue_depth as f64);
    WORKERS_BUSY.set(workers_busy as f64);
    STORE_PENDING.set(pending_writes as f64);
}
