//! The real binary on PostgreSQL (`JOBSTREAM_DATABASE_URL=postgres://`):
//! jobs and their output survive a restart, and a database that goes away
//! makes `/readyz` answer 503 (while `/healthz` stays 200) until it is
//! back, with nothing the running job said lost.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

mod common;
#[path = "../engine/tests/support/postgres.rs"]
mod postgres;

async fn status(client: &reqwest::Client, url: String) -> StatusCode {
    match client.get(url).send().await {
        Ok(resp) => resp.status(),
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

async fn until_status(client: &reqwest::Client, url: String, want: StatusCode) {
    for _ in 0..300 {
        if status(client, url.clone()).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {want}");
}

async fn output(client: &reqwest::Client, base: &str, id: &str) -> String {
    let resp = client
        .get(format!("{base}/api/jobs/{id}/output"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let mut text = Vec::new();
    while let Some(chunk) = body.next().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn on_postgres_jobs_survive_a_restart_and_a_database_outage() {
    let url = postgres::database().await;
    let data = tempfile::tempdir().unwrap();
    let env = [("JOBSTREAM_DATABASE_URL", url.as_str())];
    let client = common::session();

    let mut first = common::start(common::free_port(), data.path(), &env).await;
    let done = common::start_job(
        &client,
        &first.base,
        json!({"kind": "echo", "params": {"messages": ["one", "two \u{0} ä"], "repeat": 2}}),
    )
    .await;
    common::until_newest_is(&client, &first.base, "succeeded").await;
    // A clean stop (SIGTERM): everything is written.
    let mut child = first.take_child();
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    child.wait().unwrap();

    let server = common::start(common::free_port(), data.path(), &env).await;
    let base = server.base.clone();
    assert_eq!(
        output(&client, &base, &done).await,
        "one\none\ntwo \u{0} ä\ntwo \u{0} ä\n"
    );

    // A job that talks for 6 s, through an outage of the database.
    let id = common::start_job(
        &client,
        &base,
        json!({"kind": "echo", "params": {"messages": ["tick"], "repeat": 60, "interval_ms": 100}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres::server().kill();
    until_status(
        &client,
        format!("{base}/readyz"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(
        status(&client, format!("{base}/healthz")).await,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    postgres::server().restart();
    until_status(&client, format!("{base}/readyz"), StatusCode::OK).await;
    common::until_newest_is(&client, &base, "succeeded").await;
    assert_eq!(output(&client, &base, &id).await, "tick\n".repeat(60));
}
