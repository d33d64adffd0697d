//! The job list and its live feed, cancel, progress, the new kinds, the
//! start form's validation and the languages.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream::Config;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{messages, session, spawn_app};

fn jobs_of(list: &Value) -> Vec<Value> {
    list["jobs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_feed_reports_every_change_of_the_sessions_jobs_on_one_stream() {
    let app = spawn_app(Config::default()).await;
    // Open the feed first, then start two jobs: both are reported.
    let resp = app.client.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let mut feed = resp.bytes_stream().eventsource();
    let params = json!({"messages": ["a", "b", "c"], "interval_ms": 100});
    let a = app.start_ok("echo", params.clone()).await;
    let b = app.start_ok("echo", params).await;
    // Another session's job never shows up here.
    let stranger = session();
    stranger
        .post(app.url("/api/jobs"))
        .json(&json!({"kind": "echo", "params": {"messages": ["x"]}}))
        .send()
        .await
        .unwrap();

    let mut states: std::collections::HashMap<String, Vec<String>> = Default::default();
    let done = |states: &std::collections::HashMap<String, Vec<String>>| {
        [&a, &b].iter().all(|id| {
            states
                .get(*id)
                .is_some_and(|s| s.last().map(String::as_str) == Some("succeeded"))
        })
    };
    while !done(&states) {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed kept reporting")
            .unwrap()
            .unwrap();
        assert_eq!(event.event, "job");
        let job: Value = serde_json::from_str(&event.data).unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        assert!(id == a || id == b, "a job of another session: {job}");
        assert_eq!(job["kind"], "echo");
        let state = job["state"].as_str().unwrap().to_owned();
        let seen = states.entry(id).or_default();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
    }
    for id in [&a, &b] {
        let seen = &states[id];
        assert!(seen.contains(&"running".to_owned()), "{seen:?}");
    }

    // The list: newest first, with times.
    let list = app.get_json("/api/jobs").await;
    let jobs = jobs_of(&list);
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["id"], b.as_str());
    assert_eq!(jobs[1]["id"], a.as_str());
    assert!(jobs[0]["finished_at"].as_u64() >= jobs[0]["started_at"].as_u64());
    let other: Value = stranger
        .get(app.url("/api/jobs?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs_of(&other).len(), 1);
    let bad = app
        .client
        .get(app.url("/api/jobs?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    app.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_a_running_job_and_empties_a_queued_one() {
    let app = spawn_app(Config {
        engine: jobstream_engine::EngineConfig {
            workers: 1,
            ..Default::default()
        },
        ..Config::default()
    })
    .await;
    let running = app
        .start_ok("demo", json!({"steps": 100, "interval_ms": 200}))
        .await;
    let queued = app.start_ok("demo", json!({"steps": 2})).await;
    // Wait until the first is running.
    let resp = app.stream(&app.client, &running, None).await;
    let mut stream = resp.bytes_stream().eventsource();
    while stream.next().await.unwrap().unwrap().event != "state" {}

    let cancel = |id: &str| {
        app.client
            .post(app.url(&format!("/api/jobs/{id}/cancel")))
            .send()
    };
    let resp = cancel(&queued).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["state"], "cancelled");
    let resp = cancel(&running).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let mut rest = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the job stopped promptly")
    {
        rest.push(e.unwrap());
    }
    let end = rest.iter().find(|e| e.event == "end").unwrap();
    assert_eq!(end.data, r#"{"state":"cancelled"}"#);
    assert_eq!(rest.last().unwrap().data, "__CLOSE_SSE__");

    let again = cancel(&running).await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("already ended (cancelled)"));
    let other = session()
        .post(app.url(&format!("/api/jobs/{running}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let nonsense = cancel("nonsense").await.unwrap();
    assert_eq!(nonsense.status(), StatusCode::NOT_FOUND);
    app.shutdown().await;
}

#[tokio::test]
async fn primes_counts_reports_progress_and_speaks_the_starters_language() {
    let app = spawn_app(Config::default()).await;
    let id = app.start_ok("primes", json!({"limit": 1_000_000})).await;
    let events = app.events(&id, None).await;
    assert_eq!(
        messages(&events),
        ["Found 78,498 primes up to 1,000,000.", "__CLOSE_SSE__"]
    );
    let progress: Vec<Value> = events
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(progress.len(), 100, "one per percent");
    assert_eq!(progress[49]["fraction"], 0.5);
    assert_eq!(progress[99]["label"], "Sieving up to 1,000,000");

    let german = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(
            [(header::ACCEPT_LANGUAGE, "de-DE,de;q=0.9".parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    let created: Value = german
        .post(app.url("/api/jobs"))
        .json(&json!({"kind": "primes", "params": {"limit": 1_000_000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = german
        .get(app.url(&format!(
            "/api/jobs/{}/events",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    let events = crate::helpers::read_all(resp).await;
    assert_eq!(
        messages(&events),
        ["78.498 Primzahlen bis 1.000.000 gefunden.", "__CLOSE_SSE__"]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn fail_ends_failed_with_its_message() {
    let app = spawn_app(Config::default()).await;
    let id = app
        .start_ok(
            "fail",
            json!({"steps": 4, "at": 2, "interval_ms": 0, "message": "disk on fire"}),
        )
        .await;
    let events = app.events(&id, None).await;
    assert_eq!(
        messages(&events),
        ["Step 1 of 4: all good so far.", "__CLOSE_SSE__"]
    );
    let end = events.iter().find(|e| e.event == "end").unwrap();
    assert_eq!(end.data, r#"{"state":"failed","error":"disk on fire"}"#);
    app.shutdown().await;
}

#[tokio::test]
async fn the_start_form_answers_field_errors_and_creates_nothing() {
    let app = spawn_app(Config::default()).await;
    let post = |client: &reqwest::Client, form: &[(&str, &str)]| {
        client
            .post(app.url("/api/start_job"))
            .header(header::ACCEPT, "application/json")
            .form(form)
            .send()
    };
    // (form fields, the field at fault, its message)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 5] = [
        (
            &[("kind", "demo"), ("steps", "0")],
            "steps",
            "Must be a whole number from 1 to 1000.",
        ),
        (
            &[("kind", "demo"), ("steps", "four")],
            "steps",
            "Must be a whole number.",
        ),
        (
            &[("kind", "primes"), ("limit", "1000000001")],
            "limit",
            "Must be a whole number from 2 to 1000000000.",
        ),
        (
            &[("kind", "fail"), ("steps", "2"), ("at", "5")],
            "at",
            "Must be a whole number from 1 to 2.",
        ),
        (&[("kind", "bogus")], "kind", "Choose a kind of job."),
    ];
    for (form, field, message) in cases {
        let resp = post(&app.client, form).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{form:?}");
        let errors: Value = resp.json().await.unwrap();
        assert_eq!(
            errors,
            json!([{"field": field, "message": message}]),
            "{form:?}"
        );
    }
    let list = app.get_json("/api/jobs").await;
    assert!(jobs_of(&list).is_empty(), "nothing was created");

    // In the visitor's language, chosen with the switcher.
    let resp = app
        .client
        .post(app.url("/api/set_locale"))
        // As a browser posts a form.
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, app.url("/jobs/x?y=1"))
        .form(&[("locale", "de")])
        .send()
        .await
        .unwrap();
    assert!(
        resp.url().path().starts_with("/jobs/x"),
        "sent back: {}",
        resp.url()
    );
    let errors: Value = post(&app.client, &[("kind", "demo"), ("steps", "0")])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        errors[0]["message"],
        "Muss eine ganze Zahl von 1 bis 1000 sein."
    );
    let home = app.get_text("/").await;
    assert!(home.contains("Job starten"), "German UI");
    let bad = app
        .client
        .post(app.url("/api/set_locale"))
        .form(&[("locale", "xx")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // A valid form starts the job and answers with its page.
    let ok = app
        .client
        .post(app.url("/api/start_job"))
        .header(header::ACCEPT, "text/html")
        .form(&[("kind", "demo"), ("steps", "1"), ("interval_ms", "0")])
        .send()
        .await
        .unwrap();
    assert!(ok.url().path().starts_with("/jobs/"), "{}", ok.url());
    assert_eq!(ok.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn the_home_page_lists_the_sessions_jobs_without_javascript() {
    let app = spawn_app(Config::default()).await;
    let id = app.start_ok("echo", json!({"messages": ["x"]})).await;
    app.events(&id, None).await;
    let home = app.get_text("/").await;
    assert!(home.contains(&format!(r#"<tr data-job="{id}">"#)), "{home}");
    assert!(home.contains(&format!(r#"<a href="/jobs/{id}">echo</a>"#)));
    assert!(home.contains(r#"class="state state-succeeded">succeeded</td>"#));
    app.shutdown().await;
}
