//! A job's whole output: pages of numbered lines, the text download, and
//! following it live; and a stream that starts behind the window in memory.

use std::time::Duration;

use futures_util::StreamExt;
use jobstream::Config;
use jobstream_engine::LogLimits;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A server whose jobs keep only `window` events in memory.
async fn with_window(window: usize) -> TestApp {
    let mut config = Config::default();
    config.engine.log_limits = LogLimits {
        max_events: window,
        ..LogLimits::default()
    };
    spawn_app(config).await
}

/// Waits until job `id` has ended.
async fn ended(app: &TestApp, id: &str) {
    for _ in 0..600 {
        let list = app.get_json("/api/jobs").await;
        let job = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
            .unwrap();
        if job["state"] != "queued" && job["state"] != "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not end");
}

fn log_line(n: u64, total: u64) -> String {
    let text = format!("line {n} of {total}");
    if n.is_multiple_of(25) {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else if n.is_multiple_of(10) {
        format!("\x1b[32m{text}\x1b[0m")
    } else {
        text
    }
}

#[tokio::test]
async fn pages_of_lines_reach_line_one_with_their_numbers() {
    let app = with_window(300).await;
    let id = app
        .start_ok("log", json!({"lines": 2_500, "rate": 0}))
        .await;
    ended(&app, &id).await;
    let path = format!("/api/jobs/{id}/lines");

    // Default: the newest 200.
    let page = app.get_json(&path).await;
    assert_eq!(page["more"], true);
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 200);
    assert_eq!(lines[0]["n"], 2_301);
    assert_eq!(lines[199]["n"], 2_500);
    assert_eq!(lines[199]["text"], log_line(2_500, 2_500));

    let mut all: Vec<Value> = Vec::new();
    let mut before = String::new();
    loop {
        let page = app.get_json(&format!("{path}?limit=1000{before}")).await;
        let lines = page["lines"].as_array().unwrap().clone();
        assert!(lines.len() <= 1000);
        before = format!("&before={}", lines[0]["seq"]);
        all.splice(0..0, lines);
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(all.len(), 2_500);
    for (i, line) in all.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(line["n"], n);
        assert_eq!(line["text"], log_line(n, 2_500));
    }
    assert!(all
        .windows(2)
        .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));
    app.shutdown().await;
}

#[tokio::test]
async fn lines_and_output_refuse_bad_queries_and_hide_other_sessions_jobs() {
    let app = spawn_app(Config::default()).await;
    let id = app.start_ok("echo", json!({"messages": ["mine"]})).await;
    for (query, needle) in [
        ("limit=0", "limit: must be between 1 and 1000, got 0"),
        ("limit=1001", "limit: must be between 1 and 1000, got 1001"),
        ("limit=x", "invalid query"),
        ("before=-1", "invalid query"),
        ("colour=1", "invalid query"),
    ] {
        let resp = app
            .client
            .get(app.url(&format!("/api/jobs/{id}/lines?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    let resp = app
        .client
        .get(app.url(&format!("/api/jobs/{id}/output?follow=yes")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let stranger = session();
    for path in [
        format!("/api/jobs/{id}/lines"),
        format!("/api/jobs/{id}/output"),
        "/api/jobs/nope/lines".to_owned(),
        "/api/jobs/nope/output".to_owned(),
    ] {
        let resp = stranger.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!resp.text().await.unwrap().contains("mine"));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_output_of_a_100000_line_job_is_every_line_in_order() {
    let app = with_window(1_000).await;
    let id = app
        .start_ok("log", json!({"lines": 100_000, "rate": 0}))
        .await;
    ended(&app, &id).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/jobs/{id}/output")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(
        h[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"log-{id}.txt\"")
    );
    let text = resp.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 100_000);
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(*line, log_line(n, 100_000));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_multi_line_message_keeps_its_lines_in_the_output() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("echo", json!({"messages": ["one", "two\nthree", "four"]}))
        .await;
    ended(&app, &id).await;
    let text = app.get_text(&format!("/api/jobs/{id}/output")).await;
    assert_eq!(text, "one\ntwo\nthree\nfour\n");
    app.shutdown().await;
}

#[tokio::test]
async fn follow_adds_lines_as_they_come_and_ends_with_the_job() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok(
            "echo",
            json!({"messages": ["a", "b", "c", "d"], "interval_ms": 300}),
        )
        .await;
    let resp = app
        .client
        .get(app.url(&format!("/api/jobs/{id}/output?follow=1")))
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Not compressed: a compressor would hold the lines back.
    assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the first line comes while the job runs")
        .unwrap()
        .unwrap();
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    // It came while the job was still going: written as it came.
    let list = app.get_json("/api/jobs").await;
    assert_eq!(list["jobs"][0]["state"], "running", "{list}");
    let rest = async {
        while let Some(chunk) = body.next().await {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(20), rest)
        .await
        .expect("the followed output ends when the job does");
    assert_eq!(text, "a\nb\nc\nd\n");
    // Without follow, only what there is when asked.
    let id = app
        .start_ok(
            "echo",
            json!({"messages": ["x", "y"], "repeat": 1, "interval_ms": 1_000}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = tokio::time::timeout(
        Duration::from_secs(5),
        app.get_text(&format!("/api/jobs/{id}/output")),
    )
    .await
    .expect("answers without waiting for the job");
    assert_eq!(now, "x\n");
    app.shutdown().await;
}

#[tokio::test]
async fn a_stream_from_the_start_of_a_long_job_has_no_gap() {
    let app = with_window(200).await;
    let id = app
        .start_ok("log", json!({"lines": 5_000, "rate": 0}))
        .await;
    ended(&app, &id).await;
    let events = app.events(&id, None).await;
    assert!(events.iter().all(|e| e.event != "gap"));
    let texts = messages(&events);
    assert_eq!(texts.len(), 5_001); // and the sentinel
    for (i, text) in texts[..5_000].iter().enumerate() {
        assert_eq!(*text, log_line(i as u64 + 1, 5_000));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_compressed_download_is_whole() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("log", json!({"lines": 3_000, "rate": 0}))
        .await;
    ended(&app, &id).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/jobs/{id}/output")))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    // The compressor polls the body once more after its end: that must
    // not break the response.
    let gz = resp.bytes().await.expect("the whole compressed body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    assert_eq!(text.lines().count(), 3_000);
    assert_eq!(text.lines().last().unwrap(), log_line(3_000, 3_000));
    app.shutdown().await;
}
