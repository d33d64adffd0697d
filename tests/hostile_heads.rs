//! Hostile requests against the real binary: a kept-alive connection left
//! idle and a head that never ends are closed within the head timeout, a
//! head over 64 KiB is refused, and a cookie with non-ASCII bytes from a
//! sibling site does not cost the visitor its session.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

/// What the server sends until it closes the connection, and how long
/// that took (`None`: still open after `within`).
async fn until_closed(conn: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some((got, started.elapsed()))
}

#[tokio::test]
async fn idle_connections_and_endless_heads_are_closed_and_long_heads_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = common::start(
        common::free_port(),
        data.path(),
        &[("JOBSTREAM_HEAD_TIMEOUT_SECS", "2")],
    )
    .await;
    let addr = format!("127.0.0.1:{}", server.port);

    // A kept-alive connection that asks nothing more.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, took) = until_closed(&mut idle, Duration::from_secs(10))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // A head sent a byte at a time that never ends (slowloris).
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(10) {
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0; 64];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a head that never ends was not dropped");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A head over 64 KiB.
    let mut long = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "GET /api/jobs HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let _ = long.write_all(head.as_bytes()).await;
    let (got, _) = until_closed(&mut long, Duration::from_secs(10))
        .await
        .expect("a long head is answered and closed");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
}

#[tokio::test]
async fn a_non_ascii_cookie_from_a_sibling_site_keeps_the_session() {
    let data = tempfile::tempdir().unwrap();
    let server = common::start(common::free_port(), data.path(), &[]).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = common::session_with(jar.clone());
    let id = common::start_job(
        &client,
        &server.base,
        json!({"kind": "echo", "params": {"messages": ["hi"]}}),
    )
    .await;
    // The session cookie, sent by hand beside cookies whose values are
    // Latin-1 bytes (what another app on the same host may set).
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = server.base.parse().unwrap();
    let session = jar.cookies(&url).unwrap().to_str().unwrap().to_owned();
    assert!(session.starts_with("jobstream_session="), "{session}");
    let mut value = b"theme=\xe9t\xe9; ".to_vec();
    value.extend_from_slice(session.as_bytes());
    value.extend_from_slice(b"; other=\xff");
    let list = reqwest::Client::new()
        .get(format!("{}/api/jobs", server.base))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(&value).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert!(
        list.headers().get("set-cookie").is_none(),
        "no new session was made"
    );
    let body: serde_json::Value = list.json().await.unwrap();
    assert_eq!(
        body["jobs"][0]["id"],
        id.as_str(),
        "the same session's jobs"
    );
}
