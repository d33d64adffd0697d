//! The server under test, seen from outside: one session in it, requests
//! as hand-written HTTP/1.1 on fresh connections (a hostile client must be
//! able to stop half-way through a head; a stream must close the moment it
//! is dropped), and its memory, open files, tasks and streams
//! (`/proc/PID`, `GET /metrics`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::table::Table;

/// What the server holds at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sample {
    /// `VmRSS`, bytes.
    pub(super) rss: u64,
    /// Entries of `/proc/PID/fd`.
    pub(super) fds: u64,
    /// Those of them that are sockets (connections and listeners).
    pub(super) sockets: u64,
    /// `jobstream_tasks_alive` (counting the task serving the metrics
    /// request itself).
    pub(super) tasks: u64,
    pub(super) job_streams: u64,
    pub(super) list_streams: u64,
}

/// Slack on sockets after a check: none is expected; one is allowed for a
/// connection still closing when sampled.
pub(super) const SOCKET_SLACK: u64 = 1;
/// Slack on the other open files: the store's read pool (4 SQLite
/// connections, each the database and its WAL, opened on demand and closed
/// after 10 idle minutes) may have grown under load.
pub(super) const STORE_FD_SLACK: u64 = 16;
/// Slack on tasks: the engine's own tasks come and go with the store's
/// writes and timers.
pub(super) const TASK_SLACK: u64 = 2;

/// The rows that say whether connections, files and tasks came back to the
/// baseline (`samples[0]`) in the later samples.
pub(super) fn back_to_baseline(t: &mut Table, names: &str, samples: &[Sample]) {
    let base = samples[0];
    let show = |f: fn(&Sample) -> u64| {
        samples
            .iter()
            .map(|s| f(s).to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let within =
        |f: fn(&Sample) -> u64, slack: u64| samples.iter().all(|s| f(s) <= f(&base) + slack);
    t.check(
        &format!("sockets: {names}"),
        show(|s| s.sockets),
        &format!("≤ baseline + {SOCKET_SLACK}"),
        within(|s| s.sockets, SOCKET_SLACK),
    );
    t.check(
        &format!("other open files (the store's): {names}"),
        show(|s| s.fds - s.sockets),
        &format!("≤ baseline + {STORE_FD_SLACK}"),
        within(|s| s.fds - s.sockets, STORE_FD_SLACK),
    );
    t.check(
        &format!("tasks: {names}"),
        show(|s| s.tasks),
        &format!("≤ baseline + {TASK_SLACK}"),
        within(|s| s.tasks, TASK_SLACK),
    );
}

/// The server under test and one session in it.
pub(super) struct Server {
    pub(super) addr: SocketAddr,
    pub(super) pid: u32,
    /// Loopback source addresses connections are spread over.
    pub(super) sources: usize,
    /// `jobstream_session=...`, sent with every request.
    pub(super) cookie: String,
}

/// Opens a connection from 127.0.0.(2 + source), with a small receive
/// buffer when `rcvbuf` is set.
pub(super) async fn connect(
    addr: SocketAddr,
    source: usize,
    rcvbuf: Option<u32>,
) -> Result<TcpStream, String> {
    let local = Ipv4Addr::new(127, 0, 0, 2 + (source % 200) as u8);
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(size) = rcvbuf {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| e.to_string())?;
    }
    socket
        .bind(SocketAddr::new(IpAddr::V4(local), 0))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr} from {local}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Where a response's head ends (after its blank line).
pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

pub(super) fn status_of(head: &[u8]) -> u16 {
    std::str::from_utf8(head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A chunked body, de-chunked.
pub(super) fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&body[i + 2..i + 2 + size]);
        body = &body[(i + 4 + size).min(body.len())..];
    }
    out
}

impl Server {
    pub(super) async fn new(url: &str, pid: u32, sources: usize) -> Result<Self, String> {
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .map(|u| u.trim_end_matches('/'))
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| format!("--url {url:?}: expected http://IP:PORT"))?;
        let mut server = Server {
            addr,
            pid,
            sources,
            cookie: String::new(),
        };
        let (status, head, _) = server.call_raw("GET", "/api/jobs", None).await?;
        if status != 200 {
            return Err(format!("GET /api/jobs answered {status}"));
        }
        server.cookie = head
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie")
                    .then(|| value.trim())
            })
            .find(|v| v.starts_with("jobstream_session="))
            .and_then(|v| v.split(';').next())
            .ok_or("the server set no session cookie")?
            .to_owned();
        Ok(server)
    }

    /// One request on a fresh connection (closed after it): status, head
    /// and body.
    pub(super) async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String, Vec<u8>), String> {
        let mut tcp = connect(self.addr, 0, None).await?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncookie: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.addr,
            self.cookie,
            body.len()
        );
        let mut buf = Vec::new();
        let io = async {
            tcp.write_all(req.as_bytes()).await?;
            tcp.read_to_end(&mut buf).await
        };
        tokio::time::timeout(Duration::from_secs(30), io)
            .await
            .map_err(|_| format!("{method} {path}: no answer in 30 s"))?
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let end = head_end(&buf).ok_or_else(|| format!("{method} {path}: no response head"))?;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut body = buf[end..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status_of(head.as_bytes()), head, body))
    }

    /// A JSON API call; an answer other than `want` is an error.
    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Value, String> {
        let text = body.map(Value::to_string);
        let (status, _, body) = self.call_raw(method, path, text.as_deref()).await?;
        if status != want {
            return Err(format!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Starts a job; its id.
    pub(super) async fn start(&self, kind: &str, params: Value) -> Result<String, String> {
        let v = self
            .call(
                "POST",
                "/api/jobs",
                Some(&json!({"kind": kind, "params": params})),
                201,
            )
            .await?;
        Ok(v["id"].as_str().ok_or("POST /api/jobs: no id")?.to_owned())
    }

    /// Waits until job `id` has said its `n`th message (at most 60 s).
    pub(super) async fn wait_for_line(&self, id: &str, n: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let page = self
                .call("GET", &format!("/api/jobs/{id}/lines?limit=1"), None, 200)
                .await?;
            if page["lines"][0]["n"].as_u64().is_some_and(|said| said >= n) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("job {id} did not say {n} messages in 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A job's state (`queued`, `running`, `succeeded`, ...).
    pub(super) async fn state(&self, id: &str) -> Result<String, String> {
        let v = self.call("GET", "/api/jobs?limit=500", None, 200).await?;
        v["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == id))
            .and_then(|j| j["state"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("job {id} is not listed"))
    }

    pub(super) async fn cancel(&self, id: &str) {
        let _ = self
            .call_raw("POST", &format!("/api/jobs/{id}/cancel"), None)
            .await;
    }

    /// Sends `GET path` on a fresh connection and reads the response head.
    /// Returns the status, and the connection with the body bytes read
    /// along with the head.
    pub(super) async fn open(&self, path: &str, source: usize) -> Result<(u16, Open), String> {
        let mut tcp = connect(self.addr, source, None).await?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\ncookie: {}\r\n\r\n",
            self.addr, self.cookie
        );
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            if let Some(end) = head_end(&buf) {
                let status = status_of(&buf[..end]);
                buf.drain(..end);
                return Ok((status, Open { tcp, first: buf }));
            }
            let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_buf(&mut buf))
                .await
                .map_err(|_| format!("GET {path}: no response head in 30 s"))?
                .map_err(|e| format!("GET {path}: {e}"))?;
            if read == 0 {
                return Err(format!("GET {path}: closed before a response head"));
            }
        }
    }

    /// The server's memory, open files, tasks and streams.
    pub(super) async fn sample(&self) -> Result<Sample, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| format!("the server (pid {}) is gone: {e}", self.pid))?;
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        let (mut fds, mut sockets) = (0, 0);
        for entry in std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map_err(|e| e.to_string())?
            .flatten()
        {
            fds += 1;
            let link = std::fs::read_link(entry.path()).unwrap_or_default();
            sockets += u64::from(link.to_string_lossy().starts_with("socket:"));
        }
        let (status, _, body) = self.call_raw("GET", "/metrics", None).await?;
        if status != 200 {
            return Err(format!("GET /metrics answered {status}"));
        }
        let text = String::from_utf8_lossy(&body);
        let metric = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        };
        Ok(Sample {
            rss,
            fds,
            sockets,
            tasks: metric("jobstream_tasks_alive "),
            job_streams: metric("jobstream_streams_open{kind=\"job\"}"),
            list_streams: metric("jobstream_streams_open{kind=\"list\"}"),
        })
    }

    /// Waits until no stream is open beyond `streams` and sockets and
    /// tasks are steady (the same in two samples half a second apart), at
    /// most `secs`; the last sample.
    pub(super) async fn settle(&self, streams: u64, secs: u64) -> Result<Sample, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = self.sample().await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.sample().await?;
            let steady = now.sockets == last.sockets && now.tasks == last.tasks;
            if (steady && now.job_streams + now.list_streams <= streams)
                || Instant::now() > deadline
            {
                return Ok(now);
            }
            last = now;
        }
    }
}

/// A connection whose response head has been read.
pub(super) struct Open {
    pub(super) tcp: TcpStream,
    /// Body bytes that came with the head.
    pub(super) first: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
