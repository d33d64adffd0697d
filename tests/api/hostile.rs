//! Clients that do not play along: streams nobody reads, heads that never
//! end, connections kept alive and left idle.

use std::time::{Duration, Instant};

use jobstream::Config;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Streams that nobody reads, to a job that says 30 MB: each fills its TCP
/// window, its writes stall, and after the write timeout it is ended and
/// its place among the open streams given back.
async fn unread_streams_end_after_the_write_timeout(lean: bool) {
    let app = spawn_app(Config {
        write_timeout: Duration::from_secs(1),
        streams_per_session: 4,
        lean_streams: lean,
        ..Config::default()
    })
    .await;
    let line = "w".repeat(1000);
    let id = app
        .start_ok("echo", json!({"messages": [line], "repeat": 30_000}))
        .await;
    // Held, never read.
    let mut held = Vec::new();
    for _ in 0..4 {
        let resp = app.stream(&app.client, &id, None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        held.push(resp);
    }
    assert_eq!(
        app.stream(&app.client, &id, None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Within a few write timeouts, the places are free again.
    let started = Instant::now();
    loop {
        let resp = app.stream(&app.client, &id, Some("0")).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "streams nobody reads still hold their places (lean path: {lean})"
        );
        drop(resp);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And what the held ones got was cut short: the server closed them.
    let body = held.pop().unwrap().bytes().await;
    assert!(body.map_or(true, |b| !b.ends_with(b"data: __CLOSE_SSE__\n\n")));
    app.shutdown().await;
}

#[tokio::test]
async fn unread_streams_end_after_the_write_timeout_on_the_lean_path() {
    unread_streams_end_after_the_write_timeout(true).await;
}

#[tokio::test]
async fn unread_streams_end_after_the_write_timeout_through_hyper() {
    unread_streams_end_after_the_write_timeout(false).await;
}

/// Reads what the server sends until it closes the connection (or
/// `within` passes: `None`).
async fn until_closed(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
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
    Some(got)
}

fn with_head_timeout(lean: bool) -> Config {
    Config {
        head_timeout: Duration::from_secs(1),
        lean_streams: lean,
        ..Config::default()
    }
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    for lean in [true, false] {
        let app = spawn_app(with_head_timeout(lean)).await;
        let mut conn = TcpStream::connect(app.base.trim_start_matches("http://"))
            .await
            .unwrap();
        conn.write_all(b"GET /api/jobs HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let got = until_closed(&mut conn, Duration::from_secs(10))
            .await
            .expect("an idle kept-alive connection is closed");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn heads_that_never_end_are_dropped() {
    for lean in [true, false] {
        let app = spawn_app(with_head_timeout(lean)).await;
        let addr = app.base.trim_start_matches("http://").to_owned();
        // A head that stops halfway.
        let mut half = TcpStream::connect(&addr).await.unwrap();
        half.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // A head longer than the lean path reads, still going.
        let mut long = TcpStream::connect(&addr).await.unwrap();
        long.write_all(b"GET / HTTP/1.1\r\nX-Long: ").await.unwrap();
        long.write_all(&[b'a'; 20_000]).await.unwrap();
        for conn in [&mut half, &mut long] {
            assert!(
                until_closed(conn, Duration::from_secs(10)).await.is_some(),
                "a head that never ends keeps its connection (lean path: {lean})"
            );
        }
        app.shutdown().await;
    }
}

#[tokio::test]
async fn a_head_longer_than_64_kib_is_refused() {
    let app = spawn_app(Config::default()).await;
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    head.extend_from_slice(&[b'a'; 100_000]);
    head.extend_from_slice(b"\r\n\r\n");
    // The server may close before it has read it all.
    let _ = conn.write_all(&head).await;
    let got = until_closed(&mut conn, Duration::from_secs(10))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let app = spawn_app(Config {
        max_connections_per_address: 3,
        ..Config::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Let the server take them up before the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(&addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = until_closed(&mut fourth, Duration::from_secs(5))
        .await
        .expect("closed at once");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // One given back, one more taken.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(held);
    app.shutdown().await;
}

#[tokio::test]
async fn a_trusted_proxy_is_not_capped_as_one_address() {
    let app = spawn_app(Config {
        max_connections_per_address: 3,
        trusted_proxies: jobstream::config::TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Config::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(held);
    app.shutdown().await;
}

#[tokio::test]
async fn cookieless_streams_from_one_address_cannot_take_the_global_cap() {
    // Every request without a cookie is a new session, so the cap per
    // session does not hold them; the cap per address does.
    let app = spawn_app(Config {
        streams_total: 40,
        max_connections_per_address: 20,
        ..Config::default()
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let open_from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut conn = socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        conn.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        let ok = conn.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200");
        (ok, conn)
    };
    let mut held = Vec::new();
    for _ in 0..30 {
        held.push(open_from("127.0.0.1").await);
    }
    let opened = held.iter().filter(|(ok, _)| *ok).count();
    assert_eq!(opened, 20, "one address holds at most its cap");
    // Another address still gets a stream: the global cap was not taken.
    let (ok, _other) = open_from("127.0.0.2").await;
    assert!(ok, "the streams of one address took the global cap");
    drop(held);
    app.shutdown().await;
}
