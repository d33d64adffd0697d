//! Starting jobs and reading their streams.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream::Config;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn a_job_streams_every_message_once_then_ends_with_the_sentinel() {
    let app = spawn_app(Config::default()).await;
    let sent = [
        "plain",
        "two\nlines",
        "crlf\r\nand\rcr",
        "__CLOSE_SSE__",
        "after the fake sentinel",
    ];
    let id = app
        .start_ok("echo", json!({"messages": sent, "interval_ms": 20}))
        .await;

    let resp = app.stream(&app.client, &id, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let events = read_all(resp).await;

    assert_eq!(
        messages(&events),
        [
            "plain",
            "two\nlines",
            "crlf\nand\ncr",
            "__CLOSE_SSE__",
            "after the fake sentinel",
            "__CLOSE_SSE__"
        ]
    );
    // Ids are present, increasing by one, on every event.
    let ids: Vec<u64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"state"));
    assert_eq!(kinds[kinds.len() - 2..], ["end", "message"]);
    let end: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(end, json!({"state": "succeeded"}));
    app.shutdown().await;
}

#[tokio::test]
async fn messages_said_before_anyone_listens_are_kept() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("echo", json!({"messages": ["early", "bird"]}))
        .await;
    // Let the job finish before the stream is opened.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = app.events(&id, None).await;
    assert_eq!(messages(&events), ["early", "bird", "__CLOSE_SSE__"]);
    app.shutdown().await;
}

#[tokio::test]
async fn the_demo_job_addresses_the_visitor_by_name() {
    let app = spawn_app(Config::default()).await;
    let id = app.start_ok("demo", json!({"interval_ms": 0})).await;
    let events = app.events(&id, None).await;
    assert_eq!(
        messages(&events),
        [
            "finish 1: ...(guest)",
            "finish 2: ...(guest)",
            "finish 3: ...(guest)",
            "finish 4: ...(guest)",
            "__CLOSE_SSE__"
        ]
    );

    let resp = app
        .client
        .post(app.url("/api/set_display_name"))
        .form(&[("name", " Ada <b>Lovelace</b> ")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = app.start_ok("demo", json!({"steps": 1})).await;
    let events = app.events(&id, None).await;
    assert_eq!(messages(&events)[0], "finish 1: ...(Ada <b>Lovelace</b>)");

    let resp = app
        .client
        .post(app.url("/api/set_display_name"))
        .form(&[("name", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    app.shutdown().await;
}

#[tokio::test]
async fn another_session_cannot_see_the_job() {
    let app = spawn_app(Config::default()).await;
    let id = app.start_ok("echo", json!({"messages": ["secret"]})).await;
    let stranger = session();

    let theirs = app.stream(&stranger, &id, None).await;
    let unknown = app
        .stream(&app.client, "AAAAAAAAAAAAAAAAAAAAAA", None)
        .await;
    let garbage = app.stream(&app.client, "1", None).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(garbage.status(), StatusCode::NOT_FOUND);
    let (a, b) = (theirs.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(
        a, b,
        "another session's job looks exactly like an unknown one"
    );

    let page = stranger
        .get(app.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(!page.text().await.unwrap().contains("secret"));
    let own = app
        .client
        .get(app.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn the_session_cookie_is_random_httponly_and_lax() {
    let app = spawn_app(Config::default()).await;
    let mut cookies = Vec::new();
    for _ in 0..2 {
        let resp = reqwest::get(app.url("/")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        cookies.push(cookie);
    }
    assert_ne!(cookies[0], cookies[1]);
    // A session that has its cookie is not given another.
    app.client.get(app.url("/")).send().await.unwrap();
    let again = app.client.get(app.url("/")).send().await.unwrap();
    assert!(again.headers().get(header::SET_COOKIE).is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn the_page_shows_the_output_so_far_as_text() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok(
            "echo",
            json!({"messages": ["<img src=x onerror=alert(1)>", "</script>"]}),
        )
        .await;
    app.events(&id, None).await; // wait for the end
    let html = app
        .client
        .get(app.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(
            r#"role="status" data-state="succeeded" class="state state-succeeded">succeeded</span>"#
        ),
        "{html}"
    );
    assert!(html.contains(r#"aria-label="Job output" tabindex="0" class="output"><li data-seq="2" data-n="1">&lt;img src=x onerror=alert(1)&gt;</li><li data-seq="3" data-n="2">&lt;/script&gt;</li></ul>"#), "{html}");
    assert!(!html.contains("<img src=x"));
    app.shutdown().await;
}

#[tokio::test]
async fn resuming_replays_exactly_what_comes_after_the_given_id() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("echo", json!({"messages": ["a", "b", "c", "d"]}))
        .await;
    let all = app.events(&id, None).await;
    assert_eq!(all.len(), 7); // state, a, b, c, d, end, sentinel

    let after_b = app.events(&id, Some("3")).await;
    assert_eq!(messages(&after_b), ["c", "d", "__CLOSE_SSE__"]);
    assert_eq!(after_b[0].id, "4");

    let by_query = app
        .client
        .get(app.url(&format!("/api/jobs/{id}/events?last_event_id=4")))
        .send()
        .await
        .unwrap();
    assert_eq!(messages(&read_all(by_query).await), ["d", "__CLOSE_SSE__"]);

    // Nothing left after the sentinel: 204, so a browser stops for good.
    let done = app.stream(&app.client, &id, Some("7")).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);

    for bad in ["8", "x", "-1", "", "1 2", "99999999999999999999999"] {
        let resp = app.stream(&app.client, &id, Some(bad)).await;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_REQUEST,
            "Last-Event-ID {bad:?}"
        );
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("event id"),
            "{body}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_and_loses_nothing() {
    let mut config = Config::default();
    config.engine.workers = 1;
    config.engine.queue_capacity = 1;
    let app = spawn_app(config).await;
    let slow = json!({"steps": 2, "interval_ms": 60000});
    let running = app.start_ok("demo", slow.clone()).await;
    // Wait until the worker has taken the first job, so the queue is empty.
    let mut stream = app
        .stream(&app.client, &running, None)
        .await
        .bytes_stream()
        .eventsource();
    assert_eq!(stream.next().await.unwrap().unwrap().data, "running");
    let queued = app.start_ok("demo", slow.clone()).await;
    let refused = app.start("demo", slow).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the job queue is full (1 jobs waiting); try again shortly"
    );
    // The queued job is still there.
    let page = app
        .client
        .get(app.url(&format!("/jobs/{queued}")))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains(">queued</span>"));
    app.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let app = spawn_app(Config::default()).await;
    let cases = [
        (json!({"kind": "nope"}), "unknown job kind \"nope\"; known kinds: demo, echo, fail, log, primes"),
        (json!({"kind": "demo", "params": {"steps": 0}}), "invalid params for \"demo\": steps: must be between 1 and 1000, got 0"),
        (json!({"kind": "demo", "params": {"interval_ms": "soon"}}), "invalid params for \"demo\": interval_ms: invalid type: string \"soon\", expected u64"),
        (json!({"kind": "echo", "params": {"messages": [""]}}), "invalid params for \"echo\": messages[0]: must not be empty (an SSE event cannot carry empty data)"),
        (json!({"params": {}}), "invalid JSON body: missing field `kind` at line 1 column 13"),
    ];
    for (body, error) in cases {
        let resp = app
            .client
            .post(app.url("/api/jobs"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["error"], error);
    }
    let not_json = app
        .client
        .post(app.url("/api/jobs"))
        .body("kind=demo")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = app
        .client
        .post(app.url("/api/jobs"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; jobstream::MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let cross = app
        .client
        .post(app.url("/api/jobs"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({"kind": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // The server functions behind the page's forms are guarded the same way.
    for (path, site) in [
        ("/api/start_job", "cross-site"),
        ("/api/set_display_name", "same-site"),
    ] {
        let resp = app
            .client
            .post(app.url(path))
            .header("sec-fetch-site", site)
            .form(&[("name", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let same_origin = app
        .client
        .post(app.url("/api/set_display_name"))
        .header(header::ORIGIN, &app.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    assert_eq!(
        app.client
            .delete(app.url("/api/jobs"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        app.client
            .get(app.url("/api/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client
            .get(app.url("/no/such/page"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.shutdown().await;
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let config = Config {
        keep_alive: Duration::from_millis(200),
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let id = app
        .start_ok("demo", json!({"steps": 2, "interval_ms": 1500}))
        .await;
    let mut body = app.stream(&app.client, &id, None).await.bytes_stream();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = body.next().await {
            seen.extend_from_slice(&chunk.unwrap());
            if seen.windows(14).any(|w| w == b": keep-alive\n\n") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{}", String::from_utf8_lossy(&seen));
    app.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_keeps_talking_gets_no_keep_alive() {
    // One tick for every stream: a comment goes only to a stream that was
    // silent since the last tick.
    let config = Config {
        keep_alive: Duration::from_millis(300),
        ..Config::default()
    };
    let app = spawn_app(config).await;
    let id = app
        .start_ok("demo", json!({"steps": 20, "interval_ms": 100}))
        .await;
    let mut body = app.stream(&app.client, &id, None).await.bytes_stream();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(chunk) = body.next().await {
            seen.extend_from_slice(&chunk.unwrap());
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.matches("data: ").count() >= 8, "{text}");
    assert!(!text.contains(": keep-alive"), "{text}");
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_promptly() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok("demo", json!({"steps": 3, "interval_ms": 60000}))
        .await;
    let resp = app.stream(&app.client, &id, None).await;
    let reader = tokio::spawn(read_all(resp));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    app.shutdown().await;
    let events = reader.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(messages(&events)[0], "finish 1: ...(guest)");
}
