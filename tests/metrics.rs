//! `GET /metrics` on the real binary: Prometheus text (read with a parser
//! crate) whose counters move as a scripted job and its streams say.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

mod common;

/// Every sample as `name{label="value",...}` (labels sorted) → value.
async fn scrape(url: &str) -> HashMap<String, f64> {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert!(resp.headers().get("set-cookie").is_none());
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let key = if labels.is_empty() {
                s.metric.clone()
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            (key, value)
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from /metrics: {:?}", m.keys()))
}

#[tokio::test]
async fn counters_move_with_a_job_and_its_streams() {
    let data = tempfile::tempdir().unwrap();
    let mut server = common::start(
        common::free_port(),
        data.path(),
        &[("JOBSTREAM_STREAMS_PER_SESSION", "1")],
    )
    .await;
    let base = server.base.clone();
    let url = format!("{base}/metrics");
    let before = scrape(&url).await;
    for name in [
        "jobstream_events_emitted_total",
        "jobstream_event_bytes_emitted_total",
        "jobstream_events_delivered_total",
        "jobstream_gaps_total",
        "jobstream_streams_total",
        "jobstream_queue_depth",
        "jobstream_workers_busy",
        "jobstream_store_pending_writes",
        "jobstream_store_errors_total",
        "jobstream_streams_open{kind=\"job\"}",
        "jobstream_streams_open{kind=\"list\"}",
    ] {
        assert_eq!(get(&before, name), 0.0, "{name} before anything happened");
    }

    let client = common::session();
    let id = common::start_job(
        &client,
        &base,
        json!({"kind": "echo", "params": {"messages": ["alpha", "beta", "gamma"]}}),
    )
    .await;
    // Read its stream to the end.
    let resp = client
        .get(format!("{base}/api/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    while body.next().await.is_some() {}
    // A second stream of the same session while one is open: refused.
    let list = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let refused = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let during = scrape(&url).await;
    assert_eq!(get(&during, "jobstream_streams_open{kind=\"list\"}"), 1.0);
    drop(list);
    common::until_newest_is(&client, &base, "succeeded").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = scrape(&url).await;
    assert_eq!(get(&after, "jobstream_events_emitted_total"), 3.0);
    assert_eq!(get(&after, "jobstream_event_bytes_emitted_total"), 14.0);
    assert_eq!(get(&after, "jobstream_events_delivered_total"), 3.0);
    assert_eq!(get(&after, "jobstream_streams_total"), 2.0);
    assert_eq!(get(&after, "jobstream_streams_open{kind=\"job\"}"), 0.0);
    assert_eq!(get(&after, "jobstream_streams_open{kind=\"list\"}"), 0.0);
    assert_eq!(
        get(
            &after,
            "jobstream_streams_refused_total{reason=\"session\"}"
        ),
        1.0
    );
    assert_eq!(
        get(&after, "jobstream_jobs_started_total{kind=\"echo\"}"),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "jobstream_jobs_finished_total{kind=\"echo\",state=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(
        get(&after, "jobstream_job_duration_seconds{kind=\"echo\"}"),
        1.0
    );
    assert!(get(&after, "jobstream_store_write_batch_seconds") >= 1.0);
    assert_eq!(get(&after, "jobstream_queue_depth"), 0.0);
    assert_eq!(get(&after, "jobstream_workers_busy"), 0.0);
    assert_eq!(get(&after, "jobstream_gaps_total"), 0.0);
    assert_eq!(get(&after, "jobstream_store_errors_total"), 0.0);

    // The Grafana dashboard asks only for metrics that exist.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana-dashboard.json"
    ))
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let names = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("jobstream_"))
        .map(|w| w.trim_end_matches("_bucket"));
    for name in names {
        assert!(
            after.keys().any(|k| k.starts_with(name)),
            "the dashboard asks for {name}, which /metrics does not have"
        );
    }
    server.child().kill().unwrap();
}

#[tokio::test]
async fn on_its_own_address_metrics_leave_the_main_port() {
    let data = tempfile::tempdir().unwrap();
    let metrics_port = common::free_port();
    let addr = format!("127.0.0.1:{metrics_port}");
    let server = common::start(
        common::free_port(),
        data.path(),
        &[("JOBSTREAM_METRICS_ADDR", addr.as_str())],
    )
    .await;
    let samples = scrape(&format!("http://{addr}/metrics")).await;
    assert!(samples.contains_key("jobstream_streams_total"));
    let main = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
}
