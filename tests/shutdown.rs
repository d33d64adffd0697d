//! The real binary, SIGTERM, and a thousand open streams.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

const STREAMS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_thousand_open_streams_exits_within_the_grace_period() {
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut server = common::start(
        common::free_port(),
        data.path(),
        &[
            ("JOBSTREAM_STREAMS_PER_SESSION", "5000"),
            // A thousand streams from one address: not capped here.
            ("JOBSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "0"),
            ("JOBSTREAM_SHUTDOWN_GRACE_SECS", "10"),
        ],
    )
    .await;
    let (mut child, base) = (server.take_child(), server.base.clone());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let created: Value = client
        .post(format!("{base}/api/jobs"))
        .json(&json!({"kind": "demo", "params": {"steps": 2, "interval_ms": 60000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/api/jobs/{}/events", created["id"].as_str().unwrap());

    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS / 100 {
        let batch = join_all((0..100).map(|_| client.get(&url).send())).await;
        for resp in batch {
            let resp = resp.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            streams.push(resp);
        }
    }

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let took = signalled.elapsed();
    assert!(exit.success(), "{exit:?}");
    // Nothing needs the grace period: streams end at once with their hint
    // and the job stops at its next pause, so exiting takes a fraction of it.
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?} of a 10 s grace"
    );

    // Every stream was ended by the server (not left hanging), with a hint
    // to come back.
    let bodies = join_all(
        streams
            .into_iter()
            .map(|r| async move { tokio::time::timeout(Duration::from_secs(5), r.bytes()).await }),
    )
    .await;
    let ended_with_retry = bodies
        .iter()
        .filter(|b| matches!(b, Ok(Ok(bytes)) if bytes.ends_with(b"retry: 1000\n\n")))
        .count();
    assert_eq!(ended_with_retry, STREAMS);
}
