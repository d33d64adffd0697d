//! A disk that fills up under the real binary (its database on a small
//! tmpfs): starting a job answers 503 at once, `/readyz` says why, the
//! running job waits instead of losing what it says, and everything
//! recovers when space returns. And SIGTERM while a job is blocked on the
//! full write buffer still exits within the grace period.
//!
//! A store that cannot even delete (a delete is logged first) gives up the
//! space it keeps back, so jobs past their retention make room.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN), as `scripts/test` runs;
//! without it these tests fail saying so rather than pass untested.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

/// A small tmpfs mounted on a new folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs for the full-disk tests needs root (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of it with a file; gives the file.
    fn fill(&self) -> PathBuf {
        self.fill_but(0)
    }

    /// Fills all but `left` bytes of it with a file; gives the file.
    fn fill_but(&self, left: u64) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // Down to the last bytes.
        while file.write_all(&chunk[..512]).is_ok() {}
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(left)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `/readyz`'s status.
async fn ready(client: &reqwest::Client, base: &str) -> StatusCode {
    client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Waits (at most 30 s) until `/readyz` answers `status`.
async fn until_ready_is(client: &reqwest::Client, base: &str, status: StatusCode) {
    for _ in 0..300 {
        if ready(client, base).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status}");
}

fn chatty(lines: u32) -> Value {
    json!({"kind": "echo", "params": {"messages": ["z".repeat(200)], "repeat": lines}})
}

#[tokio::test]
async fn a_full_disk_gives_503_and_everything_recovers_when_space_returns() {
    const LINES: u32 = 20_000;
    let disk = Tmpfs::mount("32m");
    let server = common::start(common::free_port(), disk.path(), &[]).await;
    let (client, base) = (common::session(), server.base.clone());
    common::start_job(&client, &base, chatty(10)).await;
    common::until_newest_is(&client, &base, "succeeded").await;
    assert_eq!(ready(&client, &base).await, StatusCode::OK);

    let filler = disk.fill();
    // 4 MB of output that has nowhere to go.
    let id = common::start_job(&client, &base, chatty(LINES)).await;
    until_ready_is(&client, &base, StatusCode::SERVICE_UNAVAILABLE).await;
    let refused = client
        .post(format!("{base}/api/jobs"))
        .json(&chatty(1))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        "the job store is unavailable; try again shortly"
    );

    std::fs::remove_file(filler).unwrap();
    until_ready_is(&client, &base, StatusCode::OK).await;
    common::until_newest_is(&client, &base, "succeeded").await;
    // Nothing the job said was lost while the disk was full.
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
    let line = "z".repeat(200);
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), LINES as usize);
    assert!(text.lines().all(|l| l == line));
    common::start_job(&client, &base, chatty(1)).await;
}

#[tokio::test]
async fn sigterm_with_a_job_blocked_on_the_full_write_buffer_exits_within_the_grace() {
    let disk = Tmpfs::mount("32m");
    let mut server = common::start(
        common::free_port(),
        disk.path(),
        &[("JOBSTREAM_SHUTDOWN_GRACE_SECS", "2")],
    )
    .await;
    let (client, base) = (common::session(), server.base.clone());
    disk.fill();
    // More events than the write buffer holds (8,192 writes): its emits
    // block on the full buffer.
    common::start_job(&client, &base, chatty(50_000)).await;
    until_ready_is(&client, &base, StatusCode::SERVICE_UNAVAILABLE).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut child = server.take_child();
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            eprintln!("exited {status} {:?} after SIGTERM", signalled.elapsed());
            break;
        }
        // The grace, the second the server allows itself to log what is
        // left, and one for a loaded machine (it takes 2.05 s here).
        if signalled.elapsed() > Duration::from_secs(4) {
            let _ = child.kill();
            panic!("still running 4 s after SIGTERM with a grace of 2 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn on_a_full_disk_jobs_past_their_retention_are_deleted_to_make_room() {
    let disk = Tmpfs::mount("48m");
    let client = common::session();
    // A first run leaves a finished 6 MB job and the store's reserve.
    let mut first = common::start(common::free_port(), disk.path(), &[]).await;
    let old = common::start_job(
        &client,
        &first.base,
        json!({"kind": "echo", "params": {"messages": ["a".repeat(1000)], "repeat": 6000}}),
    )
    .await;
    common::until_newest_is(&client, &first.base, "succeeded").await;
    assert!(disk.path().join("jobstream.db-reserve").exists());
    let mut child = first.take_child();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    // The disk fills (all but what opening the database needs), and the
    // old job is past a retention of 1 s.
    disk.fill_but(36 * 1024);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let server = common::start(
        common::free_port(),
        disk.path(),
        &[("JOBSTREAM_RETENTION_SECS", "1")],
    )
    .await;
    let base = server.base.clone();
    let mut gone = false;
    for _ in 0..200 {
        let page = client
            .get(format!("{base}/api/jobs/{old}/lines"))
            .send()
            .await
            .unwrap();
        if page.status() == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the expired job was never deleted from the full disk");
    // (Whether its delete needed the reserve depends on the last few KB of
    // the disk; engine/tests/sweeper.rs checks that logic exactly.)
    // Its pages hold a new job's output, with the disk still full.
    let id = common::start_job(&client, &base, chatty(10_000)).await;
    common::until_newest_is(&client, &base, "succeeded").await;
    assert_eq!(ready(&client, &base).await, StatusCode::OK);
    let lines = common::get_json(&client, &format!("{base}/api/jobs/{id}/lines?limit=1")).await;
    assert_eq!(lines["lines"][0]["n"], 10_000);
}
