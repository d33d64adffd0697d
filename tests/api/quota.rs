//! Quotas on starting jobs: per session (429), starts per minute (429 with
//! the wait in `Retry-After`), and per client address, which minted
//! sessions do not get around.

use jobstream::config::TrustedProxies;
use jobstream::Config;
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};

use super::helpers::*;

fn with_quotas(per_session: usize, per_address: usize, per_minute: u32) -> Config {
    let mut config = Config::default();
    config.engine.workers = 1;
    config.engine.quotas.jobs_per_session = per_session;
    config.engine.quotas.jobs_per_address = per_address;
    config.engine.quotas.starts_per_minute = per_minute;
    config
}

/// A job that runs until it is cancelled (for our purposes).
fn long() -> Value {
    json!({"steps": 1000, "interval_ms": 1000})
}

/// Starts a long job as `client`, which says it is from `forwarded`.
async fn start_from(app: &TestApp, client: &Client, forwarded: &str) -> reqwest::Response {
    client
        .post(app.url("/api/jobs"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"kind": "demo", "params": long()}))
        .send()
        .await
        .unwrap()
}

async fn refused(response: reqwest::Response) -> (Option<String>, String) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    (retry, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_session_beyond_its_jobs_is_told_to_wait_for_one() {
    let app = spawn_app(with_quotas(2, 0, 0)).await;
    let first = app.start_ok("demo", long()).await;
    app.start_ok("demo", long()).await;
    let (retry, error) = refused(app.start("demo", long()).await).await;
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(
        error,
        "this session already has 2 jobs queued or running; wait for one to end or cancel one"
    );
    // Another visitor is not affected.
    let other = session()
        .post(app.url("/api/jobs"))
        .json(&json!({"kind": "demo", "params": long()}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
    // Cancelling one makes room.
    let cancel = app
        .client
        .post(app.url(&format!("/api/jobs/{first}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success());
    // Once it has ended (a running job stops at its next step).
    for _ in 0..100 {
        let list = app.get_json("/api/jobs").await;
        let jobs = list["jobs"].as_array().unwrap();
        if jobs
            .iter()
            .any(|j| j["id"] == first && j["state"] == "cancelled")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.start("demo", long()).await.status(),
        StatusCode::CREATED
    );
    app.shutdown().await;
}

#[tokio::test]
async fn starts_beyond_the_rate_say_when_to_retry_on_both_doors() {
    let app = spawn_app(with_quotas(0, 0, 2)).await;
    let quick = json!({"steps": 1, "interval_ms": 0});
    app.start_ok("demo", quick.clone()).await;
    app.start_ok("demo", quick.clone()).await;
    let (retry, error) = refused(app.start("demo", quick).await).await;
    // Two a minute: the next start comes back within 30 s.
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    assert_eq!(
        error,
        format!("this session may start 2 jobs a minute; try again in {secs} s")
    );
    // The start form's server function answers the same way.
    let form = app
        .client
        .post(app.url("/api/start_job"))
        .form(&[("kind", "demo"), ("steps", "1"), ("interval_ms", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(form.headers().contains_key(header::RETRY_AFTER));
    assert!(form.text().await.unwrap().contains("2 jobs a minute"));
    app.shutdown().await;
}

#[tokio::test]
async fn cookieless_clients_of_one_address_share_its_limit_behind_a_trusted_proxy() {
    let mut config = with_quotas(100, 3, 0);
    config.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    let app = spawn_app(config).await;
    // No cookie jar: every request is a new session.
    let bare = Client::new();
    let start = |forwarded| start_from(&app, &bare, forwarded);
    for _ in 0..3 {
        assert_eq!(start("203.0.113.7").await.status(), StatusCode::CREATED);
    }
    let (_, error) = refused(start("203.0.113.7").await).await;
    assert_eq!(
        error,
        "your address already has 3 jobs queued or running; wait for one to end or cancel one"
    );
    // The proxy appends the client's address; what the client wrote
    // before it proves nothing.
    refused(start("198.51.100.1, 203.0.113.7").await).await;
    assert_eq!(
        start("203.0.113.8").await.status(),
        StatusCode::CREATED,
        "another client behind the same proxy"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn without_a_trusted_proxy_the_peer_address_counts_and_forwarding_is_ignored() {
    let app = spawn_app(with_quotas(100, 2, 0)).await;
    let bare = Client::new();
    for forwarded in ["203.0.113.1", "203.0.113.2"] {
        let created = start_from(&app, &bare, forwarded).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    refused(start_from(&app, &bare, "203.0.113.3").await).await;
    app.shutdown().await;
}
