//! `JOBSTREAM_LOG_FORMAT=json` on the real binary: every line is one JSON
//! object; a job's lines carry its id and kind; what a job says and the
//! session cookie never reach the log at `info`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

#[tokio::test]
async fn json_logs_carry_the_job_and_no_secrets() {
    let data = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jobstream"))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "JOBSTREAM_DATABASE_URL",
            format!("sqlite://{}/jobstream.db", data.path().display()),
        )
        .env("JOBSTREAM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "no start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = common::session();
    let id = common::start_job(
        &client,
        &base,
        json!({"kind": "fail", "params": {"message": "secret-text-of-the-job"}}),
    )
    .await;
    common::until_newest_is(&client, &base, "failed").await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let lines = lines.join().unwrap();
    assert!(!lines.is_empty());
    let mut about_the_job = 0;
    for line in &lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{line}"
        );
        assert!(
            !line.contains("secret-text-of-the-job"),
            "a job's text logged: {line}"
        );
        assert!(
            !line.contains("jobstream_session"),
            "a cookie logged: {line}"
        );
        if entry["span"]["id"] == id.as_str() {
            assert_eq!(entry["span"]["kind"], "fail", "{line}");
            about_the_job += 1;
        }
    }
    assert!(about_the_job >= 1, "no line about the job: {lines:#?}");
}
