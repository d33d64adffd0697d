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
/// environment `env`, and waits until it answers.
pub async fn start(port: u16, data: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobstream"));
    cmd.env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "JOBSTREAM_DATABASE_URL",
            format!("sqlite://{}/jobstream.db", data.display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
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
