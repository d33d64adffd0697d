//! `GET /metrics`: Prometheus text from the `metrics` facade (the engine
//! and the server count through it; `metrics-exporter-prometheus` renders).
//! Served on the main port, or only on `JOBSTREAM_METRICS_ADDR` when set.
//! Every name is described in the README ("Metrics").
//!
//! Counting costs an atomic add on a handle made once: the per-stream and
//! per-event counters here never look a name up or take a lock.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use jobstream_engine::Engine;
use metrics::{counter, gauge, Counter, Gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's recorder, installed on first use (there is one global
/// recorder per process; servers started by tests share it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("jobstream_store_write_batch_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("jobstream_job_duration_seconds".into()),
                        &[
                            0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
                        ],
                    )
                })
                .expect("non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed already; /metrics shows nothing");
            }
            jobstream_engine::metrics::describe();
            describe();
            // Histograms and the like are drained into the rendered text
            // by the recorder's upkeep.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// Describes the server's metrics and makes each appear (at zero).
fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        "jobstream_streams_open",
        "Open streams, by kind (job, list)"
    );
    describe_counter!("jobstream_streams_total", "Streams opened");
    describe_counter!(
        "jobstream_streams_refused_total",
        "Streams and connections refused, by reason (session, server, address, connections)"
    );
    describe_counter!(
        "jobstream_events_delivered_total",
        "Messages written to readers (each reader's copy counts)"
    );
    describe_counter!("jobstream_gaps_total", "gap events written to readers");
    describe_gauge!(
        "jobstream_tasks_alive",
        "Tokio tasks alive in the process now (a leak shows here)"
    );
    for lazy in [&OPEN_JOB, &OPEN_LIST] {
        LazyLock::force(lazy);
    }
    for lazy in [&OPENED, &EVENTS_DELIVERED, &GAPS] {
        LazyLock::force(lazy);
    }
}

/// `GET /metrics`.
pub async fn metrics(State(engine): State<Engine>) -> Response {
    engine.report_gauges();
    let runtime = tokio::runtime::Handle::current().metrics();
    gauge!("jobstream_tasks_alive").set(runtime.num_alive_tasks() as f64);
    let text = handle().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// What kind of stream: a job's events (or a followed output) or a
/// session's job list.
#[derive(Debug, Clone, Copy)]
pub enum StreamKind {
    Job,
    List,
}

static OPEN_JOB: LazyLock<Gauge> =
    LazyLock::new(|| gauge!("jobstream_streams_open", "kind" => "job"));
static OPEN_LIST: LazyLock<Gauge> =
    LazyLock::new(|| gauge!("jobstream_streams_open", "kind" => "list"));
static OPENED: LazyLock<Counter> = LazyLock::new(|| counter!("jobstream_streams_total"));
/// Events written to readers (each reader's copy counts).
pub static EVENTS_DELIVERED: LazyLock<Counter> =
    LazyLock::new(|| counter!("jobstream_events_delivered_total"));
/// `gap` events written to readers.
pub static GAPS: LazyLock<Counter> = LazyLock::new(|| counter!("jobstream_gaps_total"));

/// A stream counted as open while this lives.
#[derive(Debug)]
pub struct OpenStream(StreamKind);

impl OpenStream {
    pub fn new(kind: StreamKind) -> Self {
        OPENED.increment(1);
        gauge_of(kind).increment(1.0);
        OpenStream(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        gauge_of(self.0).decrement(1.0);
    }
}

fn gauge_of(kind: StreamKind) -> &'static Gauge {
    match kind {
        StreamKind::Job => &OPEN_JOB,
        StreamKind::List => &OPEN_LIST,
    }
}

/// A stream or connection refused: `session` and `server` (the open-stream
/// caps), `address` and `connections` (the connection caps).
pub fn refused(reason: &'static str) {
    counter!("jobstream_streams_refused_total", "reason" => reason).increment(1);
}
