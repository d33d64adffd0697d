//! The real `jobstream` binary as a child process, for tests that signal
//! or kill it.

#![allow(dead_code)] // each test binary uses part of it

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed when this is dropped (a failing
/// test must not leave it running: it would hold the test runner's output
/// open).
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub port: u16,
}

impl Server {
    /// The process.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not taken")
    }

    /// Its process id.
    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// The process, for a test that waits for it itself; no longer killed
    /// on drop.
    pub fn take_child(&mut self) -> Child {
        self.child.take().expect("not taken")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary on `port` with its database in `data` and the extra
/// environment `env`, and waits until it answers. Its log (warnings and
/// errors) is shown when `TEST_SERVER_LOGS` is set.
pub async fn start(port: u16, data: &Path, env: &[(&str, &str)]) -> Server {
    let log = if std::env::var_os("TEST_SERVER_LOGS").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    start_logging_to(port, data, env, log).await
}

/// As [`start`], with the server's log (its standard output) going to
/// `log`: a file, for a test that reads it.
pub async fn start_logging_to(port: u16, data: &Path, env: &[(&str, &str)], log: Stdio) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobstream"));
    cmd.env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "JOBSTREAM_DATABASE_URL",
            format!("sqlite://{}/jobstream.db", data.display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let started = Instant::now();
    while probe.get(format!("{base}/api/jobs")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        child: Some(child),
        base,
        port,
    }
}

/// A line of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`, ...).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kb * 1024
}

/// The process's resident memory now, in bytes.
pub fn rss(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// The process's peak resident memory since it started or since
/// [`reset_peak_rss`], in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    status_kb(pid, "VmHWM")
}

/// Starts measuring the peak resident memory from now.
pub fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// How many sockets the process has open (its listener and connections;
/// not its database files, whose pool grows and shrinks by itself).
pub fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Waits until `done` holds, checking every 100 ms for at most `within`;
/// how long it took, or `None` if it never did.
pub async fn until(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if done() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A client with a cookie jar: one session.
pub fn session() -> reqwest::Client {
    session_with(std::sync::Arc::new(reqwest::cookie::Jar::default()))
}

/// A client whose cookies are kept in `jar`.
pub fn session_with(jar: std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .build()
        .unwrap()
}

/// Starts a job as `client` and gives its id.
pub async fn start_job(client: &reqwest::Client, base: &str, body: serde_json::Value) -> String {
    let resp = client
        .post(format!("{base}/api/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let created: serde_json::Value = resp.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// `GET url` as `client`, the answer as JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let resp = client.get(url).send().await.unwrap();
    resp.json().await.unwrap()
}

/// Waits (at most 60 s) until the session's newest job has `state`.
pub async fn until_newest_is(client: &reqwest::Client, base: &str, state: &str) {
    for _ in 0..600 {
        let list = get_json(client, &format!("{base}/api/jobs")).await;
        if list["jobs"][0]["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the newest job never became {state}");
}
