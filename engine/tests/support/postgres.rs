//! A PostgreSQL server for tests, started by the test binary itself: a
//! throwaway cluster under `target/tmp/`, on a free loopback port, run as
//! the `postgres` user (the server refuses root) and killed with the test
//! process. One server per test binary; [`database`] gives each test a
//! database of its own.
//!
//! Without PostgreSQL's binaries (Debian's `postgresql`, installed by
//! `scripts/setup`) or without root, the tests fail saying so: they never
//! pass untested.

#![allow(dead_code)] // each test binary uses part of it

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running server.
pub struct Postgres {
    pub port: u16,
    pub dir: PathBuf,
    child: Mutex<Child>,
}

impl Postgres {
    /// `postgres://` URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server at once (a database that goes away); [`restart`]
    /// brings it back on the same port and data.
    ///
    /// [`restart`]: Postgres::restart
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        // The whole process group: the server's backends too, which would
        // otherwise hold its shared memory and keep a new one from starting.
        let pid = child.id() as i32;
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait();
    }

    /// Starts the server again after [`Postgres::kill`].
    pub fn restart(&self) {
        let mut child = self.child.lock().unwrap();
        *child = spawn(&self.dir, self.port);
        wait_ready(self.port);
    }
}

/// The binaries of the newest PostgreSQL installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().expect(
        "PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin); \
         run scripts/setup",
    )
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let gid = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .unwrap();
    let num = |o: &std::process::Output| -> u32 {
        assert!(o.status.success(), "no postgres user; run scripts/setup");
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    (num(&out), num(&gid))
}

/// `cmd` as the postgres user, and killed when this process dies.
fn as_postgres(cmd: &mut Command) -> &mut Command {
    let (uid, gid) = postgres_user();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Runs `f` on a thread that lives as long as the process: the server's
/// death signal (`PR_SET_PDEATHSIG`) fires when the thread that started it
/// ends, and each test's thread ends with the test.
fn on_keeper<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for job in rx {
                job();
            }
        });
        Mutex::new(tx)
    });
    let (done, result) = std::sync::mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    keeper.lock().unwrap().send(job).unwrap();
    result.recv().unwrap()
}

fn spawn(dir: &Path, port: u16) -> Child {
    let dir = dir.to_owned();
    on_keeper(move || start_postgres(&dir, port))
}

fn start_postgres(dir: &Path, port: u16) -> Child {
    as_postgres(
        Command::new(bin_dir().join("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so `kill` reaches its backends.
            .process_group(0),
    )
    .spawn()
    .expect("start postgres")
}

/// Waits until the server takes logins (not only connections: a server
/// still starting up refuses them).
fn wait_ready(port: u16) {
    let started = Instant::now();
    loop {
        let ready = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && Command::new(bin_dir().join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "PostgreSQL did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test binary's server, started on first use.
pub fn server() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the PostgreSQL tests start a server as the postgres user: run them as root"
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|p| p.join("Cargo.lock").exists())
            .unwrap()
            .join("target/tmp");
        std::fs::create_dir_all(&root).unwrap();
        // What earlier runs left (their servers died with them).
        for old in std::fs::read_dir(&root).unwrap().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("pg-") {
                let alive = Path::new("/proc")
                    .join(pid.split('-').next().unwrap_or(""))
                    .exists();
                if !alive {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
        }
        let dir = root.join(format!("pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        let out = as_postgres(
            Command::new(bin_dir().join("initdb"))
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]),
        )
        .output()
        .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = spawn(&dir, port);
        wait_ready(port);
        Postgres {
            port,
            dir,
            child: Mutex::new(child),
        }
    })
}

/// A new, empty database on the test binary's server; its URL.
pub async fn database() -> String {
    use sqlx::Connection;
    let server = server();
    let name = format!(
        "t{}",
        jobstream_engine::JobId::random().to_string().to_lowercase()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let mut conn = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    server.url(&name)
}
