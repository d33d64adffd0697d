//! The hostile-client checks at their full scale, on the real binary:
//! streams that never read, many concurrent reloads of a big stored job,
//! and ten thousand cookieless streams from one address.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod common;

/// Opens a connection from `from` with a tiny receive window and sends
/// `GET path` (with `cookie`); the answer is never read.
async fn unread_get(server: SocketAddr, from: &str, path: &str, cookie: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut conn = socket.connect(server).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n{cookie}\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn
}

/// The session cookie `client` holds for `base`, as a request header line.
fn cookie_line(client_jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = base.parse().unwrap();
    let cookies = client_jar.cookies(&url).unwrap();
    format!("Cookie: {}\r\n", cookies.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_that_never_read_end_within_the_write_timeout() {
    const STREAMS: usize = 1000;
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut server = common::start(
        common::free_port(),
        data.path(),
        &[
            ("JOBSTREAM_WRITE_TIMEOUT_SECS", "2"),
            ("JOBSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "0"),
            ("JOBSTREAM_STREAMS_PER_SESSION", "5000"),
            // Exactly the thousand: a stream afterwards proves they all
            // gave their places back.
            ("JOBSTREAM_STREAMS_TOTAL", "1000"),
            // The whole output in memory: the streams stall on their
            // writes, not on reads of the store (which a thousand readers
            // at once would queue for).
            ("JOBSTREAM_LOG_BYTES", "67108864"),
        ],
    )
    .await;
    let pid = server.pid();
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    // 8 MB of output: far more than a stalled socket's buffers take.
    let id = common::start_job(
        &client,
        &server.base,
        json!({"kind": "echo", "params": {"messages": ["x".repeat(800)], "repeat": 10_000}}),
    )
    .await;
    common::until_newest_is(&client, &server.base, "succeeded").await;
    let (sockets, memory) = (common::open_sockets(pid), common::rss(pid));

    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let cookie = cookie_line(&jar, &server.base);
    let path = format!("/api/jobs/{id}/events");
    let mut after = Vec::new();
    // Twice: what the first thousand leave behind is the allocator's, if a
    // second thousand does not add to it.
    for round in 1..=2 {
        let mut conns = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS / 100 {
            let batch = (0..100).map(|_| unread_get(addr, "127.0.0.1", &path, &cookie));
            conns.extend(join_all(batch).await);
        }
        let peak = common::rss(pid);
        // Each stalls once the socket's buffers are full, then fails its
        // write after 2 s without progress and is closed.
        let took = common::until(Duration::from_secs(60), || {
            common::open_sockets(pid) <= sockets + 5
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{} sockets still open ({sockets} before the streams)",
                common::open_sockets(pid)
            )
        });
        // Each was a stream (not refused), which the server then closed.
        for conn in &mut conns {
            let mut status = [0u8; 12];
            conn.read_exact(&mut status).await.unwrap();
            assert_eq!(&status, b"HTTP/1.1 200");
        }
        // Every place is back: one more stream fits under the cap of 1,000.
        let resp = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        drop(resp);
        drop(conns);
        after.push(common::rss(pid));
        eprintln!(
            "round {round}: 1,000 unread streams closed {took:?} after opening; RSS {} MB \
             before, {} MB with them, {} MB after",
            memory >> 20,
            peak >> 20,
            after[round - 1] >> 20
        );
    }
    // No batch copy or buffer per stream outlives it.
    assert!(
        after[1] < after[0] + (8 << 20),
        "RSS grew from {} MB to {} MB with the second thousand",
        after[0] >> 20,
        after[1] >> 20
    );
    assert!(
        after[1] < memory + (48 << 20),
        "RSS {} MB after the streams ended, {} MB before",
        after[1] >> 20,
        memory >> 20
    );
}

#[tokio::test]
async fn twenty_concurrent_reloads_of_a_big_stored_job_share_one_bounded_load() {
    const RELOADS: usize = 20;
    let data = tempfile::tempdir().unwrap();
    let mut server = common::start(
        common::free_port(),
        data.path(),
        // A finished job leaves memory at once: every reload loads it back.
        &[("JOBSTREAM_RETAINED_JOBS", "0")],
    )
    .await;
    let pid = server.pid();
    let client = common::session();
    // 32 MB of output, 8 times the log's byte bound in memory (4 MiB).
    let id = common::start_job(
        &client,
        &server.base,
        json!({"kind": "echo", "params": {"messages": ["y".repeat(1000)], "repeat": 32_000}}),
    )
    .await;
    common::until_newest_is(&client, &server.base, "succeeded").await;
    tokio::time::sleep(Duration::from_millis(500)).await; // its end stored
    common::reset_peak_rss(pid);
    let before = common::rss(pid);

    let page = format!("{}/jobs/{id}", server.base);
    let pages = join_all((0..RELOADS).map(|_| async {
        let resp = client.get(&page).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }))
    .await;
    for html in &pages {
        assert!(html.contains(r#"data-n="32000""#), "the last line is shown");
    }
    let grown = common::peak_rss(pid).saturating_sub(before);
    eprintln!(
        "{RELOADS} concurrent reloads of a 32 MB job: peak RSS grew {} MB",
        grown >> 20
    );
    // One shared load of at most 4 MiB of events (their frames and
    // bookkeeping included) and twenty pages of 500 rows; twenty loads
    // would be 80 MiB and more.
    assert!(
        grown < 24 << 20,
        "the server's peak memory grew by {} MB",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_cookieless_streams_from_one_address_cannot_take_the_global_cap() {
    const ATTEMPTS: usize = 10_000;
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let data = tempfile::tempdir().unwrap();
    // The defaults: 10,000 streams in all, 512 connections per address.
    let mut server = common::start(common::free_port(), data.path(), &[]).await;
    let pid = server.pid();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    // The job lists of new sessions (no cookie: a new session each time),
    // which stay open.
    let mut conns = Vec::with_capacity(ATTEMPTS);
    for _ in 0..ATTEMPTS / 500 {
        let batch = (0..500).map(|_| unread_get(addr, "127.0.0.1", "/api/events", ""));
        conns.extend(join_all(batch).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = common::open_sockets(pid);
    assert!(
        open < 512 + 100,
        "{open} sockets open in the server after {ATTEMPTS} connections from one address"
    );
    // Another address is still served.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let resp = other
        .get(format!("http://{addr}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream",
        "a stream, not an error"
    );
    drop(conns);
}
