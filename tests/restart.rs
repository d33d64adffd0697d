//! `kill -9` in the middle of a job, then a restart on the same database.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

async fn start_job(client: &reqwest::Client, base: &str, params: Value) -> String {
    let resp = client
        .post(format!("{base}/api/jobs"))
        .json(&json!({"kind": "demo", "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn all_events(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    after: u64,
) -> Vec<eventsource_stream::Event> {
    let resp = client
        .get(format!("{base}/api/jobs/{id}/events?last_event_id={after}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let events = resp
        .bytes_stream()
        .eventsource()
        .map(|e| e.unwrap())
        .collect::<Vec<_>>();
    tokio::time::timeout(Duration::from_secs(30), events)
        .await
        .expect("the stream ended")
}

#[tokio::test]
async fn after_kill_9_the_running_job_is_interrupted_and_the_queued_one_runs() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let env = [("JOBSTREAM_WORKERS", "1")];
    let mut server = common::start(port, data.path(), &env).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let slow = start_job(
        &client,
        &server.base,
        json!({"steps": 50, "interval_ms": 300}),
    )
    .await;
    let queued = start_job(
        &client,
        &server.base,
        json!({"steps": 3, "interval_ms": 10}),
    )
    .await;

    // Read the slow job until it has said three things.
    let resp = client
        .get(format!("{}/api/jobs/{slow}/events", server.base))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream().eventsource();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = stream.next().await.unwrap().unwrap();
        if e.event == "message" {
            seen.push((e.id.parse::<u64>().unwrap(), e.data));
        }
    }
    // Give the writer a moment to persist what was said (it batches, it
    // does not wait for a reader), then kill without warning.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.child().kill().unwrap();
    server.child().wait().unwrap();
    drop(stream);

    let mut server = common::start(port, data.path(), &env).await;
    let events = all_events(&client, &server.base, &slow, 0).await;
    let texts: Vec<_> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| (e.id.parse::<u64>().unwrap(), e.data.clone()))
        .collect();
    assert_eq!(texts[..3], seen[..], "the earlier output is intact");
    let end = events.iter().find(|e| e.event == "end").unwrap();
    let end_json: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(end_json["state"], "interrupted");
    assert_eq!(events.last().unwrap().data, "__CLOSE_SSE__");
    // A client that resumes with the last id it saw before the crash gets
    // the terminal events, with higher ids.
    let last_seen = seen[2].0;
    let resumed = all_events(&client, &server.base, &slow, last_seen).await;
    assert!(resumed
        .iter()
        .all(|e| e.id.parse::<u64>().unwrap() > last_seen));
    assert!(resumed.iter().any(|e| e.event == "end"));

    // The queued one ran to the end after the restart.
    let events = all_events(&client, &server.base, &queued, 0).await;
    let messages: Vec<_> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "finish 1: ...(guest)",
            "finish 2: ...(guest)",
            "finish 3: ...(guest)",
            "__CLOSE_SSE__"
        ]
    );
    let list: Value = client
        .get(format!("{}/api/jobs", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<_> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["succeeded", "interrupted"]);
    server.child().kill().unwrap();
    server.child().wait().unwrap();
}
