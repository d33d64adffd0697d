//! Streams under stress: caps, lifetime, fan-out, slow readers, eviction.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use jobstream::Config;
use jobstream_engine::LogLimits;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Parses a whole body with the conformant parser.
async fn parse(body: &[u8]) -> Vec<Event> {
    futures_util::stream::iter([Ok::<_, std::io::Error>(body.to_vec())])
        .eventsource()
        .map(|e| e.expect("valid SSE"))
        .collect()
        .await
}

#[tokio::test]
async fn open_streams_are_capped_per_session_with_429() {
    let config = Config {
        streams_per_session: 2,
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let id = app
        .start_ok("demo", json!({"steps": 2, "interval_ms": 60000}))
        .await;
    let first = app.stream(&app.client, &id, None).await;
    let second = app.stream(&app.client, &id, None).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );

    let third = app.stream(&app.client, &id, None).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key(header::RETRY_AFTER));
    let body: Value = third.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already has 2 open streams"),
        "{body}"
    );

    // Closing one gives its place back.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let resp = app.stream(&app.client, &id, None).await;
        if resp.status() == StatusCode::OK {
            again = Some(resp);
            break;
        }
    }
    assert!(
        again.is_some(),
        "the closed stream's place was not given back"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_stream_past_its_lifetime_ends_with_retry_and_resumes_without_loss() {
    let config = Config {
        stream_lifetime: Duration::from_millis(1000),
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let sent: Vec<String> = (1..=8).map(|i| format!("m{i}")).collect();
    let id = app
        .start_ok("echo", json!({"messages": sent, "interval_ms": 300}))
        .await;

    let mut last: Option<String> = None;
    let mut got = Vec::new();
    let mut connections = 0;
    loop {
        connections += 1;
        assert!(connections < 10, "never finished");
        let resp = app.stream(&app.client, &id, last.as_deref()).await;
        if resp.status() == StatusCode::NO_CONTENT {
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.bytes().await.unwrap();
        let events = parse(&body).await;
        let ended = events
            .last()
            .is_some_and(|e| e.data == "__CLOSE_SSE__" && e.event == "message");
        if !ended {
            assert!(
                body.ends_with(b"retry: 1000\n\n"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        if let Some(e) = events.last() {
            last = Some(e.id.clone());
        }
        got.extend(events);
        if ended {
            break;
        }
    }
    assert!(connections >= 2, "the lifetime bound never cut the stream");
    let ids: Vec<u64> = got.iter().map(|e| e.id.parse().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    let mut expected: Vec<&str> = sent.iter().map(String::as_str).collect();
    expected.push("__CLOSE_SSE__");
    assert_eq!(messages(&got), expected);
    app.shutdown().await;
}

#[tokio::test]
async fn every_subscriber_gets_every_event_once_in_order() {
    let app = spawn_app(Config::default()).await;
    let sent: Vec<String> = (0..60).map(|i| format!("event {i}")).collect();
    let id = app
        .start_ok("echo", json!({"messages": sent, "interval_ms": 5}))
        .await;
    // Readers join at different moments: before, during and after the job.
    let mut readers = Vec::new();
    for i in 0..24u64 {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/jobs/{id}/events")),
        );
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 15)).await;
            read_all(client.get(url).send().await.unwrap()).await
        }));
    }
    let mut expected: Vec<&str> = sent.iter().map(String::as_str).collect();
    expected.push("__CLOSE_SSE__");
    for r in readers {
        let events = r.await.unwrap();
        assert_eq!(messages(&events), expected);
        let ids: Vec<u64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    }
    app.shutdown().await;
}

fn small_log(max_events: usize) -> Config {
    let mut config = Config::default();
    config.engine.log_limits = LogLimits {
        max_events,
        ..LogLimits::default()
    };
    config
}

#[tokio::test]
async fn resuming_from_a_position_memory_no_longer_holds_reads_the_store() {
    let app = spawn_app(small_log(16)).await;
    let id = app
        .start_ok("echo", json!({"messages": ["x"], "repeat": 100}))
        .await;
    // 1 state + 100 messages + end + sentinel = 103 events; 16 in memory,
    // all in the store: no gap, every event after 5 exactly once.
    app.events(&id, Some("0")).await;
    let events = app.events(&id, Some("5")).await;
    assert!(events.iter().all(|e| e.event != "gap"));
    let ids: Vec<u64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
    assert_eq!(ids, (6..=103).collect::<Vec<_>>());
    let recent = app.events(&id, Some("90")).await;
    assert!(recent.iter().all(|e| e.event != "gap"));
    assert_eq!(recent[0].id, "91");
    app.shutdown().await;
}

#[tokio::test]
async fn a_reader_paused_past_the_window_gets_everything_and_the_job_is_not_slowed() {
    let app = spawn_app(small_log(64)).await;
    let line = "y".repeat(1000);
    let total = 20_000u64;
    let id = app
        .start_ok("echo", json!({"messages": [line], "repeat": total}))
        .await;
    let resp = app.stream(&app.client, &id, None).await;
    // The job (20 MB of output) finishes while this reader reads nothing:
    // far more than the socket buffers and the window in memory hold.
    let started = std::time::Instant::now();
    loop {
        let page = app
            .client
            .get(app.url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap();
        if page.text().await.unwrap().contains(">succeeded</span>") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job was held up by its reader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What memory dropped meanwhile comes from the store: no gap, no
    // hole, no repeat.
    let events = read_all(resp).await;
    assert!(events.iter().all(|e| e.event != "gap"));
    let ids: Vec<u64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
    // state + messages + end + sentinel.
    assert_eq!(ids, (1..=total + 3).collect::<Vec<_>>());
    assert_eq!(messages(&events).last(), Some(&"__CLOSE_SSE__"));
    app.shutdown().await;
}

#[tokio::test]
async fn resuming_from_the_current_position_waits_for_what_comes_next() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("demo", json!({"steps": 2, "interval_ms": 1500}))
        .await;
    let resp = app.stream(&app.client, &id, None).await;
    let mut events = resp.bytes_stream().eventsource();
    let first = loop {
        let e = events.next().await.unwrap().unwrap();
        if e.event == "message" {
            break e;
        }
    };
    // Reconnect at the newest event while the job still runs.
    let rest = app.events(&id, Some(&first.id)).await;
    assert_eq!(messages(&rest), ["finish 2: ...(guest)", "__CLOSE_SSE__"]);
    assert_eq!(
        rest[0].id.parse::<u64>().unwrap(),
        first.id.parse::<u64>().unwrap() + 1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn requests_during_shutdown_get_503() {
    use tower::ServiceExt;
    let options = leptos::prelude::LeptosOptions::builder()
        .output_name("jobstream")
        .build();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::with_database(Config::default(), &dir);
    let state = jobstream::AppState::new(options, config).await.unwrap();
    state.shutdown.cancel();
    let resp = jobstream::router(state)
        .oneshot(
            axum::http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key(header::RETRY_AFTER));
}

/// Whether the server wrote `connection: close` on a stream's response:
/// the lean path does (it ends the connection with the stream); hyper
/// keeps HTTP/1.1 connections alive and does not.
async fn says_close(app: &TestApp, path: &str) -> (StatusCode, bool) {
    // A fresh client per request: the lean path only sees a connection's
    // first request.
    let response = session().get(app.url(path)).send().await.unwrap();
    let close = response
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v == "close");
    (response.status(), close)
}

#[tokio::test]
async fn stream_routes_take_the_lean_path_unless_it_is_turned_off() {
    for lean in [true, false] {
        let config = Config {
            lean_streams: lean,
            ..Config::default()
        };
        let app = spawn_app(config).await;
        let id = app.start_ok("echo", json!({"messages": ["a"]})).await;
        for path in [
            jobstream_protocol::routes::SESSION_EVENTS.to_owned(),
            jobstream_protocol::routes::job_events(&id),
        ] {
            let (status, close) = says_close(&app, &path).await;
            // The job belongs to another session: 404, still on the lean path.
            assert!(
                status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                "{path}: {status}"
            );
            assert_eq!(close, lean, "{path} with lean={lean}");
        }
        let (status, close) = says_close(&app, jobstream_protocol::routes::JOBS).await;
        assert_eq!((status, close), (StatusCode::OK, false));
    }
}
