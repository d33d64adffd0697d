//! The whole output of a big job, downloaded from the real binary, costs
//! the server a bounded amount of memory: it is read from the store a page
//! at a time and written as the client takes it, never held whole.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

#[tokio::test]
async fn downloading_60_mb_of_output_does_not_grow_the_server_by_it() {
    const LINES: u64 = 60_000;
    const LINE: usize = 1_000;
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut server = common::start(port, data.path(), &[]).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let line = "x".repeat(LINE);
    let resp = client
        .post(format!("{}/api/jobs", server.base))
        .json(&json!({"kind": "echo", "params": {"messages": [line], "repeat": LINES}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Until it has ended and everything is stored.
    for _ in 0.. {
        let list: Value = client
            .get(format!("{}/api/jobs", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["jobs"][0]["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = common::peak_rss(server.pid());

    let resp = client
        .get(format!("{}/api/jobs/{id}/output", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let (mut bytes, mut lines) = (0usize, 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    assert_eq!(lines, LINES);
    assert_eq!(bytes, LINES as usize * (LINE + 1));

    let grown = common::peak_rss(server.pid()).saturating_sub(before);
    // Held whole, the output alone would be 60 MB; a page is at most 1 MiB.
    assert!(
        grown < 20 * 1024 * 1024,
        "the server's peak memory grew by {} MB while sending {} MB",
        grown / (1024 * 1024),
        bytes / (1024 * 1024)
    );
    server.child().kill().unwrap();
    server.child().wait().unwrap();
}
