//! `soak`: the long and hostile tests (issue 13), run against a jobstream
//! server started by `scripts/soak`, measured from outside: its resident
//! memory and open files in `/proc/PID`, its tokio tasks and open streams
//! in `GET /metrics`.
//!
//! ```text
//! jobstream-bench soak --url U --pid P churn      [--opens N] [--concurrency C]
//! jobstream-bench soak --url U --pid P slowloris  [--conns N] [--idle N] --head-timeout S
//! jobstream-bench soak --url U --pid P slow-reader [--readers R] [--events E] [--rate R]
//! jobstream-bench soak --url U --pid P big-job    [--mib M] --log-bytes B
//! jobstream-bench soak --url U --pid P mixed      [--duration S]
//! ```
//!
//! Each check prints its figures as a table (measured, bound, ok) and
//! fails when one is out of bounds. The bounds and why they are what they
//! are sit next to each check below. Connections are plain TCP with
//! hand-written HTTP/1.1 (`Server`): a hostile client must be able to
//! stop half-way through a request head, and a stream must close the
//! moment it is dropped. Event streams are parsed by `sse::Parser`; each
//! follower (`Follow`) checks that the `bench` job's numbered messages
//! come exactly once and in order, across reconnections with
//! `last_event_id`, and that only a `gap` event excuses a missing one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::args::{self, Check};
use crate::hist::Histogram;
use crate::now_ns;

const MIB: f64 = 1048576.0;

/// Runs one check; its figures are printed, recorded as a JSON line, and
/// any figure out of bounds makes the exit status a failure.
pub fn main(args: &args::Soak) -> ExitCode {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(run(args));
    rt.shutdown_timeout(Duration::from_secs(1));
    let table = match result {
        Ok(table) => table,
        Err(e) => {
            eprintln!("jobstream-bench soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    table.print();
    if let Err(e) = append(&table.json(), &args.out.json) {
        eprintln!("jobstream-bench soak: {e}");
    }
    let failed = table.failed(&args.known);
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "jobstream-bench soak {}: FAILED: {}",
            table.check,
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// Appends a check's figures to the results file, one JSON line (the
/// table is printed already, so not again as `record` would).
fn append(value: &Value, path: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{value}"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(args: &args::Soak) -> Result<Table, String> {
    let server = Arc::new(Server::new(&args.url.url, args.pid, args.sources).await?);
    match &args.check {
        Check::Churn(a) => churn(&server, a).await,
        Check::Slowloris(a) => slowloris(&server, a).await,
        Check::SlowReader(a) => slow_reader(&server, a).await,
        Check::BigJob(a) => big_job(&server, a).await,
        Check::Mixed(a) => mixed(&server, a).await,
    }
}

// ---------------------------------------------------------------------------
// The figures of a check.

/// One figure: what was measured, the bound it must meet (empty: shown
/// for information), and whether it met it.
struct Row {
    name: String,
    measured: String,
    bound: String,
    ok: bool,
}

/// A check's figures, printed as a Markdown table.
struct Table {
    check: &'static str,
    started: Instant,
    rows: Vec<Row>,
    /// The figures, by name, for the JSON line.
    values: serde_json::Map<String, Value>,
}

impl Table {
    fn new(check: &'static str) -> Self {
        Table {
            check,
            started: Instant::now(),
            rows: Vec::new(),
            values: serde_json::Map::new(),
        }
    }

    /// A figure shown for information.
    fn info(&mut self, name: &str, measured: impl std::fmt::Display) {
        self.push(name, measured.to_string(), String::new(), true);
    }

    /// A figure that must satisfy `ok`, described by `bound`.
    fn check(&mut self, name: &str, measured: impl std::fmt::Display, bound: &str, ok: bool) {
        self.push(name, measured.to_string(), bound.to_owned(), ok);
    }

    fn push(&mut self, name: &str, measured: String, bound: String, ok: bool) {
        let value = measured
            .parse::<f64>()
            .map_or(Value::from(measured.clone()), Value::from);
        self.values.insert(name.to_owned(), value);
        self.rows.push(Row {
            name: name.to_owned(),
            measured,
            bound,
            ok,
        });
    }

    /// The figures out of bounds, except those named in `known` (which are
    /// printed as known failures and do not fail the run).
    fn failed(&self, known: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for r in self.rows.iter().filter(|r| !r.ok) {
            if known.iter().any(|k| r.name.starts_with(k.as_str())) {
                println!(
                    "KNOWN FAILURE: soak {}: {} = {} (bound {}); report-only",
                    self.check, r.name, r.measured, r.bound
                );
            } else {
                failed.push(r.name.clone());
            }
        }
        failed
    }

    fn print(&self) {
        println!(
            "\n== soak {} ({:.0} s)\n",
            self.check,
            self.started.elapsed().as_secs_f64()
        );
        println!("| figure | measured | bound | ok |");
        println!("|---|---:|---|---|");
        for r in &self.rows {
            let ok = match (r.bound.is_empty(), r.ok) {
                (true, _) => "",
                (false, true) => "yes",
                (false, false) => "**NO**",
            };
            println!("| {} | {} | {} | {ok} |", r.name, r.measured, r.bound);
        }
        println!();
    }

    fn json(&self) -> Value {
        let mut v = self.values.clone();
        v.insert("scenario".into(), format!("soak-{}", self.check).into());
        v.insert("target".into(), "jobstream".into());
        v.insert(
            "duration_s".into(),
            self.started.elapsed().as_secs_f64().into(),
        );
        let failed: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.name.as_str())
            .collect();
        v.insert("failed".into(), failed.into());
        Value::Object(v)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

fn signed_mib(a: u64, b: u64) -> String {
    format!("{:+.1}", (a as f64 - b as f64) / MIB)
}

// ---------------------------------------------------------------------------
// The server, seen from outside.

/// What the server holds at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// `VmRSS`, bytes.
    rss: u64,
    /// Entries of `/proc/PID/fd`.
    fds: u64,
    /// `jobstream_tasks_alive` (counting the task serving the metrics
    /// request itself).
    tasks: u64,
    job_streams: u64,
    list_streams: u64,
}

/// The server under test and one session in it.
struct Server {
    addr: SocketAddr,
    pid: u32,
    /// Loopback source addresses connections are spread over.
    sources: usize,
    /// `jobstream_session=...`, sent with every request.
    cookie: String,
}

/// Opens a connection from 127.0.0.(2 + source), with a small receive
/// buffer when `rcvbuf` is set.
async fn connect(
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
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn status_of(head: &[u8]) -> u16 {
    std::str::from_utf8(head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A chunked body, de-chunked.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
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
    async fn new(url: &str, pid: u32, sources: usize) -> Result<Self, String> {
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
    async fn call_raw(
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
    async fn call(
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
    async fn start(&self, kind: &str, params: Value) -> Result<String, String> {
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

    /// A job's state (`queued`, `running`, `succeeded`, ...).
    async fn state(&self, id: &str) -> Result<String, String> {
        let v = self.call("GET", "/api/jobs?limit=500", None, 200).await?;
        v["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == id))
            .and_then(|j| j["state"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("job {id} is not listed"))
    }

    async fn cancel(&self, id: &str) {
        let _ = self
            .call_raw("POST", &format!("/api/jobs/{id}/cancel"), None)
            .await;
    }

    /// Sends `GET path` on a fresh connection and reads the response head.
    /// Returns the status, and the connection with the body bytes read
    /// along with the head.
    async fn open(&self, path: &str, source: usize) -> Result<(u16, Open), String> {
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
    async fn sample(&self) -> Result<Sample, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| format!("the server (pid {}) is gone: {e}", self.pid))?;
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map_err(|e| e.to_string())?
            .count() as u64;
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
            tasks: metric("jobstream_tasks_alive "),
            job_streams: metric("jobstream_streams_open{kind=\"job\"}"),
            list_streams: metric("jobstream_streams_open{kind=\"list\"}"),
        })
    }

    /// Waits until no stream is open beyond `streams` and open files and
    /// tasks are steady (the same in two samples half a second apart), at
    /// most `secs`; the last sample.
    async fn settle(&self, streams: u64, secs: u64) -> Result<Sample, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = self.sample().await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.sample().await?;
            let steady = now.fds == last.fds && now.tasks == last.tasks;
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
struct Open {
    tcp: TcpStream,
    /// Body bytes that came with the head.
    first: Vec<u8>,
}

// ---------------------------------------------------------------------------
// Following a `bench` job's stream.

/// The ids of complete events, read from the raw stream next to
/// `sse::Parser` (which leaves ids to the caller): the id of the last
/// complete event is where a resume starts.
#[derive(Default)]
struct Ids {
    line: Vec<u8>,
    current: u64,
    /// The id of the last event completed (its blank line seen).
    complete: u64,
}

impl Ids {
    /// jobstream ends its lines with LF only.
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            if self.line.is_empty() {
                self.complete = self.complete.max(self.current);
            } else if let Some(id) = self.line.strip_prefix(b"id: ") {
                if let Some(id) = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()) {
                    self.current = id;
                }
            }
            self.line.clear();
        }
    }
}

/// What a follower of one `bench` job saw, over all its connections.
#[derive(Default)]
struct Follow {
    /// The last message's number (`SEQ` of the payload).
    seq: u64,
    received: u64,
    lost: u64,
    dup: u64,
    /// Messages missing but announced by a `gap` event.
    gapped: u64,
    /// Events a `gap` event announced, not yet matched to a jump.
    gap_allowance: u64,
    gaps: u64,
    /// The `end` event and then the sentinel came.
    ended: bool,
    saw_end: bool,
    /// Connections after the first.
    resumes: u64,
    /// Connections the server ended before the job's end.
    server_closed: u64,
    hist: Histogram,
}

impl Follow {
    /// Reads a chunk of the stream.
    fn feed(&mut self, parser: &mut crate::sse::Parser, ids: &mut Ids, chunk: &[u8]) {
        ids.feed(chunk);
        let now = now_ns();
        parser.feed(chunk, &mut |event, data| match event {
            "gap" => {
                self.gaps += 1;
                let lost = serde_json::from_str::<Value>(data)
                    .ok()
                    .and_then(|v| v["lost"].as_u64())
                    .unwrap_or(0);
                self.gap_allowance += lost;
            }
            "end" => self.saw_end = true,
            "message" if data == "__CLOSE_SSE__" && self.saw_end => self.ended = true,
            "message" => {
                let mut parts = data.splitn(3, ' ');
                let (Some(Ok(seq)), Some(Ok(emitted))) = (
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    return;
                };
                self.received += 1;
                if seq <= self.seq {
                    self.dup += 1;
                    return;
                }
                let missing = seq - self.seq - 1;
                let excused = missing.min(self.gap_allowance);
                self.gap_allowance -= excused;
                self.gapped += excused;
                self.lost += missing - excused;
                self.seq = seq;
                self.hist.record(now.saturating_sub(emitted) / 1000);
            }
            _ => {}
        });
    }

    /// The job said `events` messages: those not seen (nor excused by a
    /// gap) are lost.
    fn finish(&mut self, events: u64) {
        let missing = events.saturating_sub(self.seq);
        let excused = missing.min(self.gap_allowance);
        self.gapped += excused;
        self.lost += missing - excused;
    }
}

/// How a follower behaves.
#[derive(Clone, Copy)]
struct Manner {
    /// Drop the connection after this many messages on it, and resume.
    drop_every: Option<u64>,
    source: usize,
}

/// Follows job `id` (a `bench` job of `events` messages) to its end, from
/// `from` (a `Last-Event-ID`), reconnecting with the last complete id when
/// the server or the manner ends a connection.
async fn follow(
    server: &Server,
    id: &str,
    events: u64,
    from: u64,
    mut f: Follow,
    manner: Manner,
) -> Result<Follow, String> {
    let mut ids = Ids {
        complete: from,
        ..Ids::default()
    };
    let mut connections = 0;
    while !f.ended {
        if connections > 0 {
            f.resumes += 1;
        }
        connections += 1;
        if connections > 1000 {
            return Err(format!("job {id}: 1,000 connections and no end"));
        }
        let path = format!("/api/jobs/{id}/events?last_event_id={}", ids.complete);
        let (status, open) = server.open(&path, manner.source).await?;
        match status {
            200 => {}
            204 => break, // nothing after that id: the stream had ended
            other => return Err(format!("GET {path} answered {other}")),
        }
        let Open { mut tcp, first } = open;
        // Each connection starts with a fresh parser, as a browser's does.
        let mut parser = crate::sse::Parser::new();
        let at_start = f.received;
        f.feed(&mut parser, &mut ids, &first);
        let mut buf = vec![0u8; 64 * 1024];
        while !f.ended {
            if manner
                .drop_every
                .is_some_and(|n| f.received - at_start >= n)
            {
                break;
            }
            let read = tokio::time::timeout(Duration::from_secs(60), tcp.read(&mut buf))
                .await
                .map_err(|_| format!("job {id}: no bytes for 60 s"))?;
            match read {
                Ok(0) | Err(_) => {
                    f.server_closed += 1;
                    break;
                }
                Ok(n) => f.feed(&mut parser, &mut ids, &buf[..n]),
            }
        }
    }
    f.finish(events);
    Ok(f)
}

/// A `bench` job's parameters.
fn bench_params(events: u64, size: usize, rate: u64, readers: u64, wait_ms: u64) -> Value {
    json!({"events": events, "size": size, "rate": rate, "readers": readers, "wait_ms": wait_ms})
}

// ---------------------------------------------------------------------------
// churn

/// Slack on open files after a round: none is expected (every connection
/// closed, the store's connections opened during the warm-up); one is
/// allowed for a connection still closing when sampled.
const FD_SLACK: u64 = 1;
/// Slack on tasks: the engine's own tasks come and go with the ticking
/// job's writes (the store's writer, timers).
const TASK_SLACK: u64 = 2;
/// Memory a round of stream churn may leave behind: the allocator keeps
/// freed pages, so a round may cost some, but a second round must reuse
/// them. A leak of one small allocation per stream (≥ 64 bytes) over
/// 5,000 streams is 320 KiB; more than this is a leak.
const ROUND_SLACK_MIB: f64 = 2.0;
/// What the server's memory may stand above its baseline after both
/// rounds: the allocator's kept pages (per-thread arenas of glibc malloc).
const BASELINE_SLACK_MIB: f64 = 8.0;

/// Opens and closes `n` streams, `concurrency` at a time: job streams
/// resuming near the job's head, job streams from the start (read from
/// the store), list streams, and requests dropped before their answer.
async fn churn_round(
    server: &Arc<Server>,
    job: &str,
    n: u64,
    concurrency: usize,
) -> Result<(u64, Histogram), String> {
    let next = Arc::new(AtomicU64::new(0));
    let head = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (server, next, head, job) = (
                Arc::clone(server),
                Arc::clone(&next),
                Arc::clone(&head),
                job.to_owned(),
            );
            tokio::spawn(async move {
                let mut hist = Histogram::default();
                let mut refused = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, String>((refused, hist));
                    }
                    let source = w + (i as usize % server.sources);
                    let path = match i % 5 {
                        0 | 1 => format!(
                            "/api/jobs/{job}/events?last_event_id={}",
                            head.load(Ordering::Relaxed)
                        ),
                        2 => format!("/api/jobs/{job}/events"),
                        3 => "/api/events".to_owned(),
                        _ => {
                            // Sends the request and closes at once.
                            let mut tcp = connect(server.addr, source, None).await?;
                            let req = format!(
                                "GET /api/jobs/{job}/events HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
                                server.cookie
                            );
                            let _ = tcp.write_all(req.as_bytes()).await;
                            continue;
                        }
                    };
                    let t = Instant::now();
                    let (status, Open { mut tcp, mut first }) = server.open(&path, source).await?;
                    if status != 200 {
                        refused += 1;
                        continue;
                    }
                    // Reads until the first event's data, then closes.
                    let mut ids = Ids::default();
                    while !first.windows(6).any(|w| w == b"\ndata:")
                        && !first.starts_with(b"data:")
                    {
                        let read = tokio::time::timeout(
                            Duration::from_secs(10),
                            tcp.read_buf(&mut first),
                        )
                        .await
                        .map_err(|_| format!("GET {path}: no event in 10 s"))?
                        .map_err(|e| e.to_string())?;
                        if read == 0 {
                            return Err(format!("GET {path}: closed before an event"));
                        }
                    }
                    hist.record(t.elapsed().as_micros() as u64);
                    if i % 5 < 3 {
                        ids.feed(&first);
                        head.fetch_max(ids.current, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let (mut refused, mut hist) = (0, Histogram::default());
    for w in workers {
        let (r, h) = w.await.map_err(|e| e.to_string())??;
        refused += r;
        hist.merge(&h);
    }
    Ok((refused, hist))
}

async fn churn(server: &Arc<Server>, a: &args::Churn) -> Result<Table, String> {
    let mut t = Table::new("churn");
    // A job that ticks all along, so every job stream has events to send
    // and notices at once when its reader is gone.
    let job = server
        .start("bench", bench_params(10_000_000, 64, 200, 0, 0))
        .await?;
    let warm = (a.opens / 10).max(500);
    churn_round(server, &job, warm, a.concurrency).await?;
    let base = server.settle(0, 20).await?;
    let half = a.opens / 2;
    let began = Instant::now();
    let (r1, h1) = churn_round(server, &job, half, a.concurrency).await?;
    let one = server.settle(0, 20).await?;
    let (r2, h2) = churn_round(server, &job, a.opens - half, a.concurrency).await?;
    let secs = began.elapsed().as_secs_f64();
    let two = server.settle(0, 20).await?;
    server.cancel(&job).await;
    let mut hist = h1;
    hist.merge(&h2);

    t.info("stream opens and closes", a.opens);
    t.info("opens per second", format!("{:.0}", a.opens as f64 / secs));
    t.check("opens refused", r1 + r2, "0", r1 + r2 == 0);
    t.info(
        "time to first event, p99 (ms)",
        format!("{:.1}", hist.quantile(0.99) as f64 / 1e3),
    );
    t.check(
        "streams open after",
        two.job_streams + two.list_streams,
        "0",
        two.job_streams + two.list_streams == 0,
    );
    t.check(
        "open files: baseline / round 1 / round 2",
        format!("{} / {} / {}", base.fds, one.fds, two.fds),
        &format!("round 2 ≤ baseline + {FD_SLACK}"),
        two.fds <= base.fds + FD_SLACK && one.fds <= base.fds + FD_SLACK,
    );
    t.check(
        "tasks: baseline / round 1 / round 2",
        format!("{} / {} / {}", base.tasks, one.tasks, two.tasks),
        &format!("≤ baseline + {TASK_SLACK}"),
        two.tasks <= base.tasks + TASK_SLACK && one.tasks <= base.tasks + TASK_SLACK,
    );
    t.info(
        "RSS: baseline / round 1 / round 2 (MiB)",
        format!("{} / {} / {}", mib(base.rss), mib(one.rss), mib(two.rss)),
    );
    t.check(
        "RSS growth in round 2 (MiB)",
        signed_mib(two.rss, one.rss),
        &format!("≤ {ROUND_SLACK_MIB}"),
        (two.rss as f64 - one.rss as f64) / MIB <= ROUND_SLACK_MIB,
    );
    t.check(
        "RSS above baseline after both rounds (MiB)",
        signed_mib(two.rss, base.rss),
        &format!("≤ {BASELINE_SLACK_MIB}"),
        (two.rss as f64 - base.rss as f64) / MIB <= BASELINE_SLACK_MIB,
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// slowloris

/// How much later than the head timeout a stalled connection may be
/// closed: the server's timer is armed at accept, ours starts after the
/// connection is made and written to, so the margin is for a busy
/// two-core machine scheduling thousands of timers at once.
const CLOSE_MARGIN_SECS: f64 = 2.0;

/// Opens `n` connections from the sources after the first `skip`; each
/// writes `send` and waits for the server to close it. The seconds each
/// took to be closed (`None`: not closed within `limit`).
async fn stalled(
    server: &Arc<Server>,
    n: usize,
    send: &'static [u8],
    read_answer: bool,
    limit: Duration,
) -> Result<Vec<Option<f64>>, String> {
    let mut tasks = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(250) {
        let conns: Vec<_> = batch
            .iter()
            .map(|&i| {
                let server = Arc::clone(server);
                async move {
                    let mut tcp = connect(server.addr, 20 + i % 16, None).await?;
                    tcp.write_all(send).await.map_err(|e| e.to_string())?;
                    let mut buf = vec![0u8; 4096];
                    if read_answer {
                        // Reads the whole answer (a `/healthz`: small, with
                        // a length), then the connection stays idle.
                        let mut got = Vec::new();
                        loop {
                            let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
                            got.extend_from_slice(&buf[..n]);
                            if n == 0 || got.ends_with(b"}") {
                                break;
                            }
                        }
                    }
                    Ok::<_, String>((tcp, Instant::now()))
                }
            })
            .collect();
        for c in futures_util::future::join_all(conns).await {
            let (mut tcp, since) = c?;
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let closed = async {
                    loop {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                };
                tokio::time::timeout(limit, closed)
                    .await
                    .ok()
                    .map(|()| since.elapsed().as_secs_f64())
            }));
        }
    }
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Requests of a well-behaved client on fresh connections while `stop` is
/// unset: their latency (µs) and failures.
async fn normal_load(server: Arc<Server>, stop: Arc<AtomicBool>) -> (Histogram, u64, u64) {
    let (mut hist, mut served, mut failed) = (Histogram::default(), 0u64, 0u64);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let path = if i.is_multiple_of(2) {
            "/healthz"
        } else {
            "/api/jobs?limit=10"
        };
        let t = Instant::now();
        match server.call_raw("GET", path, None).await {
            Ok((200, _, _)) => {
                hist.record(t.elapsed().as_micros() as u64);
                served += 1;
            }
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (hist, served, failed)
}

fn close_figures(t: &mut Table, what: &str, closed: &[Option<f64>], bound: f64) {
    let shut: Vec<f64> = closed.iter().flatten().copied().collect();
    let max = shut.iter().copied().fold(0.0, f64::max);
    let min = shut.iter().copied().fold(f64::MAX, f64::min);
    t.check(
        &format!("{what}: closed by the server"),
        format!("{} of {}", shut.len(), closed.len()),
        "all",
        shut.len() == closed.len(),
    );
    t.check(
        &format!("{what}: seconds to be closed, min / max"),
        format!(
            "{:.2} / {:.2}",
            if shut.is_empty() { 0.0 } else { min },
            max
        ),
        &format!("max ≤ {bound:.1}"),
        max <= bound,
    );
}

async fn slowloris(server: &Arc<Server>, a: &args::Slowloris) -> Result<Table, String> {
    let mut t = Table::new("slowloris");
    let base = server.settle(0, 10).await?;
    let bound = a.head_timeout as f64 + CLOSE_MARGIN_SECS;
    let limit = Duration::from_secs(a.head_timeout * 3 + 10);

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(normal_load(Arc::clone(server), Arc::clone(&stop)));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (server, peak) = (Arc::clone(server), Arc::clone(&peak));
        tokio::spawn(async move {
            loop {
                if let Ok(s) = server.sample().await {
                    peak.fetch_max(s.fds, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let half_head = b"GET /api/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: slowloris\r\n";
    let closed = stalled(server, a.conns, half_head, false, limit).await?;
    stop.store(true, Ordering::Relaxed);
    let (hist, served, failed) = load.await.map_err(|e| e.to_string())?;
    let peak_fds = peak.load(Ordering::Relaxed);

    t.info("half request heads sent", a.conns);
    t.info("server open files, peak", peak_fds);
    close_figures(&mut t, "half heads", &closed, bound);
    t.check("normal requests failed", failed, "0", failed == 0);
    t.info("normal requests served", served);
    t.check(
        "normal requests p99 (ms)",
        format!("{:.1}", hist.quantile(0.99) as f64 / 1e3),
        "< 100",
        hist.quantile(0.99) < 100_000,
    );
    t.info(
        "normal requests max (ms)",
        format!("{:.1}", hist.max() as f64 / 1e3),
    );

    let silent = stalled(server, a.idle, b"", false, limit).await?;
    close_figures(&mut t, "connections that never send", &silent, bound);
    let kept = stalled(
        server,
        a.idle,
        b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
        true,
        limit,
    )
    .await?;
    close_figures(&mut t, "kept-alive after one request", &kept, bound);
    sampler.abort();

    let after = server.settle(0, 20).await?;
    t.check(
        "open files: baseline / after",
        format!("{} / {}", base.fds, after.fds),
        &format!("≤ baseline + {FD_SLACK}"),
        after.fds <= base.fds + FD_SLACK,
    );
    t.check(
        "tasks: baseline / after",
        format!("{} / {}", base.tasks, after.tasks),
        &format!("≤ baseline + {TASK_SLACK}"),
        after.tasks <= base.tasks + TASK_SLACK,
    );
    t.info(
        "RSS: baseline / after (MiB)",
        format!("{} / {}", mib(base.rss), mib(after.rss)),
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// slow reader

/// Memory the server may take beyond the job's own bounded log while one
/// reader reads a byte a second: the store's write buffer in flight and
/// the allocator's kept pages. The reader itself holds nothing between
/// reads (README, "Bounds").
const SLOW_SLACK_MIB: f64 = 8.0;
/// p99 from emit to receipt for the other readers, as for normal
/// requests under slowloris.
const READER_P99_MS: u64 = 100;

async fn slow_reader(server: &Arc<Server>, a: &args::SlowReader) -> Result<Table, String> {
    let mut t = Table::new("slow-reader");
    let base = server.settle(0, 10).await?;
    let events = a.events;
    let job = server
        .start(
            "bench",
            bench_params(events, a.size, a.rate, a.readers as u64 + 1, 10_000),
        )
        .await?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, peak) = (server.pid, Arc::clone(&peak));
        tokio::spawn(async move {
            loop {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines().find_map(|l| {
                            l.strip_prefix("VmRSS:")?
                                .trim()
                                .trim_end_matches("kB")
                                .trim()
                                .parse::<u64>()
                                .ok()
                        })
                    })
                    .unwrap_or(0);
                peak.fetch_max(rss * 1024, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The slow reader: a small receive buffer, one byte a second while the
    // job runs, then it reads on at full speed (or resumes, if the server
    // closed it) to the end.
    let slow = {
        let (server, job) = (Arc::clone(server), job.clone());
        let secs = events / a.rate.max(1) + 2;
        tokio::spawn(async move {
            let mut tcp = connect(server.addr, 1, Some(4096)).await?;
            let req = format!(
                "GET /api/jobs/{job}/events HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
                server.cookie
            );
            tcp.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            let until = Instant::now() + Duration::from_secs(secs);
            let mut byte = [0u8; 1];
            while Instant::now() < until {
                match tcp.read(&mut byte).await {
                    Ok(1) => got.push(byte[0]),
                    _ => break,
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let slow_bytes = got.len();
            // Whatever the kernel still holds for it, then the end or EOF.
            let mut buf = vec![0u8; 64 * 1024];
            let mut f = Follow::default();
            let mut ids = Ids::default();
            let mut parser = crate::sse::Parser::new();
            let mut head_done = false;
            loop {
                if !head_done {
                    if let Some(end) = head_end(&got) {
                        head_done = true;
                        let body = got.split_off(end);
                        f.feed(&mut parser, &mut ids, &body);
                    }
                }
                if f.ended {
                    break;
                }
                let n =
                    match tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await {
                        Ok(Ok(n)) => n,
                        Ok(Err(_)) => 0,
                        Err(_) => return Err("slow reader: no bytes for 30 s".to_owned()),
                    };
                if n == 0 {
                    f.server_closed += 1;
                    break;
                }
                if head_done {
                    f.feed(&mut parser, &mut ids, &buf[..n]);
                } else {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            let from = ids.complete;
            let manner = Manner {
                drop_every: None,
                source: 1,
            };
            let f = if f.ended {
                f.finish(events);
                f
            } else {
                let mut f = follow(&server, &job, events, from, f, manner).await?;
                f.resumes += 1;
                f
            };
            Ok::<_, String>((slow_bytes, f))
        })
    };
    let readers: Vec<_> = (0..a.readers)
        .map(|i| {
            let (server, job) = (Arc::clone(server), job.clone());
            tokio::spawn(async move {
                let manner = Manner {
                    drop_every: None,
                    source: 2 + i,
                };
                follow(&server, &job, events, 0, Follow::default(), manner).await
            })
        })
        .collect();
    let mut others = Follow::default();
    let mut incomplete = 0;
    for r in readers {
        let f = r.await.map_err(|e| e.to_string())??;
        incomplete += usize::from(!f.ended);
        others.received += f.received;
        others.lost += f.lost;
        others.dup += f.dup;
        others.gaps += f.gaps;
        others.hist.merge(&f.hist);
    }
    let (slow_bytes, s) = slow.await.map_err(|e| e.to_string())??;
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    let state = server.state(&job).await?;

    t.info(
        "job: events × bytes, rate",
        format!("{events} × {} B at {}/s", a.size, a.rate),
    );
    t.check("job state", &state, "succeeded", state == "succeeded");
    t.check(
        "other readers: incomplete",
        incomplete,
        "0",
        incomplete == 0,
    );
    t.check(
        "other readers: lost / duplicated",
        format!("{} / {}", others.lost, others.dup),
        "0 / 0",
        others.lost == 0 && others.dup == 0,
    );
    t.check("other readers: gaps", others.gaps, "0", others.gaps == 0);
    t.check(
        "other readers: p99 emit to receipt (ms)",
        format!("{:.1}", others.hist.quantile(0.99) as f64 / 1e3),
        &format!("< {READER_P99_MS}"),
        others.hist.quantile(0.99) < READER_P99_MS * 1000,
    );
    t.info("slow reader: bytes read at 1 byte/s", slow_bytes);
    t.info(
        "slow reader: closed by the server (write timeout)",
        if s.server_closed > 0 { "yes" } else { "no" },
    );
    t.info("slow reader: resumed", s.resumes);
    t.check(
        "slow reader: reached the end",
        if s.ended { "yes" } else { "no" },
        "yes",
        s.ended,
    );
    t.check(
        "slow reader: received / announced by gap / lost / duplicated",
        format!("{} / {} / {} / {}", s.received, s.gapped, s.lost, s.dup),
        "lost 0, duplicated 0",
        s.lost == 0 && s.dup == 0,
    );
    let bound = a.log_bytes as f64 / MIB + SLOW_SLACK_MIB;
    t.check(
        "RSS: baseline / peak / peak above baseline (MiB)",
        format!(
            "{} / {} / {}",
            mib(base.rss),
            mib(peak),
            signed_mib(peak, base.rss)
        ),
        &format!("above ≤ {bound:.0} (log bytes + {SLOW_SLACK_MIB})"),
        (peak as f64 - base.rss as f64) / MIB <= bound,
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// big job

/// The store's write buffer: 64 MiB of events waiting to be written
/// (README, "Bounds"), which a job emitting faster than the disk fills.
const WRITE_BUFFER_MIB: f64 = 64.0;
/// The allocator's kept pages and fragmentation on top of the bounds.
const BIG_SLACK_MIB: f64 = 16.0;
/// How much the second half of the job may add to the first half's peak
/// for memory to count as a plateau.
const PLATEAU_SLACK_MIB: f64 = 8.0;

async fn big_job(server: &Arc<Server>, a: &args::BigJob) -> Result<Table, String> {
    let mut t = Table::new("big-job");
    let base = server.settle(0, 10).await?;
    let size = 65_536usize;
    let events = a.mib * 16;
    let began = Instant::now();
    let job = server
        .start("bench", bench_params(events, size, 0, 0, 0))
        .await?;
    // (seconds, RSS) every 100 ms until the job ends.
    let mut rss = Vec::new();
    let mut next_state = Instant::now();
    let state = loop {
        let s = std::fs::read_to_string(format!("/proc/{}/status", server.pid))
            .map_err(|e| e.to_string())?;
        let kb = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        rss.push((began.elapsed().as_secs_f64(), kb * 1024));
        if Instant::now() >= next_state {
            next_state = Instant::now() + Duration::from_secs(1);
            let state = server.state(&job).await?;
            if state != "queued" && state != "running" {
                break state;
            }
        }
        if began.elapsed() > Duration::from_secs(a.max_secs) {
            server.cancel(&job).await;
            break format!("still running after {} s", a.max_secs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = began.elapsed().as_secs_f64();
    let after = server.settle(0, 10).await?;
    let peak = rss.iter().map(|&(_, r)| r).max().unwrap_or(0);
    let mid = secs / 2.0;
    let first = rss
        .iter()
        .filter(|&&(s, _)| s < mid)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(0);
    let second = rss
        .iter()
        .filter(|&&(s, _)| s >= mid)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(0);
    let quarter = |q: f64| {
        rss.iter()
            .find(|&&(s, _)| s >= secs * q)
            .map_or(0, |&(_, r)| r)
    };

    t.info(
        "job: messages × bytes (MiB in all)",
        format!("{events} × {size} ({})", a.mib),
    );
    t.check("job state", &state, "succeeded", state == "succeeded");
    t.info("seconds to emit and store it", format!("{secs:.1}"));
    t.info("MiB/s", format!("{:.1}", a.mib as f64 / secs.max(1e-9)));
    t.info(
        "RSS at 25 / 50 / 75 % of the run (MiB)",
        format!(
            "{} / {} / {}",
            mib(quarter(0.25)),
            mib(quarter(0.5)),
            mib(quarter(0.75))
        ),
    );
    t.info(
        "RSS: baseline / after (MiB)",
        format!("{} / {}", mib(base.rss), mib(after.rss)),
    );
    let bound = a.log_bytes as f64 / MIB + WRITE_BUFFER_MIB + BIG_SLACK_MIB;
    t.check(
        "RSS peak above baseline (MiB)",
        signed_mib(peak, base.rss),
        &format!(
            "≤ {bound:.0} (log bytes {} + write buffer {WRITE_BUFFER_MIB} + {BIG_SLACK_MIB})",
            a.log_bytes as f64 / MIB
        ),
        (peak as f64 - base.rss as f64) / MIB <= bound,
    );
    t.check(
        "RSS peak, first half / second half (MiB)",
        format!("{} / {}", mib(first), mib(second)),
        &format!("second ≤ first + {PLATEAU_SLACK_MIB}"),
        (second as f64 - first as f64) / MIB <= PLATEAU_SLACK_MIB,
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// mixed

/// Memory growth allowed from the middle third of the run to the last
/// (peak against peak), once retained jobs have reached their bound.
const MIXED_PLATEAU_MIB: f64 = 8.0;

/// What the mixed load's followers saw, all together.
#[derive(Default)]
struct Mixed {
    jobs: u64,
    followers: u64,
    incomplete: u64,
    received: u64,
    lost: u64,
    dup: u64,
    gapped: u64,
    resumes: u64,
    list_opens: u64,
    list_events: u64,
    errors: Vec<String>,
}

async fn mixed(server: &Arc<Server>, a: &args::Mixed) -> Result<Table, String> {
    let mut t = Table::new("mixed");
    let base = server.settle(0, 10).await?;
    let began = Instant::now();
    let duration = Duration::from_secs(a.duration);
    let totals = Arc::new(Mutex::new(Mixed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let events = 1000u64;

    // Samples every second: (seconds, sample).
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (server, samples) = (Arc::clone(server), Arc::clone(&samples));
        tokio::spawn(async move {
            loop {
                if let Ok(s) = server.sample().await {
                    samples
                        .lock()
                        .expect("not poisoned: pushes only")
                        .push((began.elapsed().as_secs_f64(), s));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // List feeds: open, read for a while, close, again.
    let feeds: Vec<_> = (0..a.list_feeds)
        .map(|i| {
            let (server, totals, stop) =
                (Arc::clone(server), Arc::clone(&totals), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let hold = Duration::from_millis(500 + 700 * (i as u64 % 4));
                    let opened = server.open("/api/events", 40 + i).await;
                    let mut count = 0u64;
                    match opened {
                        Ok((200, Open { mut tcp, first })) => {
                            let mut parser = crate::sse::Parser::new();
                            let mut on = |e: &str, _: &str| count += u64::from(e == "job");
                            parser.feed(&first, &mut on);
                            let mut buf = vec![0u8; 16384];
                            let until = tokio::time::Instant::now() + hold;
                            while let Ok(Ok(n)) =
                                tokio::time::timeout_at(until, tcp.read(&mut buf)).await
                            {
                                if n == 0 {
                                    break;
                                }
                                parser.feed(&buf[..n], &mut on);
                            }
                        }
                        Ok((status, _)) => totals
                            .lock()
                            .expect("not poisoned")
                            .errors
                            .push(format!("GET /api/events answered {status}")),
                        Err(e) => totals.lock().expect("not poisoned").errors.push(e),
                    }
                    let mut m = totals.lock().expect("not poisoned");
                    m.list_opens += 1;
                    m.list_events += count;
                }
            })
        })
        .collect();

    // Jobs: one every `interval`; each followed by readers in three manners:
    // from the start, dropping and resuming every few hundred events, and
    // joining late (from the start, so partly from the store).
    let mut followers = Vec::new();
    let mut i = 0u64;
    while began.elapsed() < duration {
        i += 1;
        // Short jobs nobody follows, for the job list and the store.
        if i.is_multiple_of(3) {
            if let Err(e) = server
                .start("echo", json!({"messages": ["soak"], "repeat": 20}))
                .await
            {
                totals.lock().expect("not poisoned").errors.push(e);
            }
        }
        let job = match server
            .start("bench", bench_params(events, 128, 400, 2, 2000))
            .await
        {
            Ok(job) => job,
            Err(e) => {
                totals.lock().expect("not poisoned").errors.push(e);
                tokio::time::sleep(a.interval()).await;
                continue;
            }
        };
        totals.lock().expect("not poisoned").jobs += 1;
        for k in 0..3u64 {
            let (server, totals, job) = (Arc::clone(server), Arc::clone(&totals), job.clone());
            let manner = Manner {
                drop_every: (k == 1).then_some(150 + (i * 37) % 300),
                source: (i * 3 + k) as usize,
            };
            followers.push(tokio::spawn(async move {
                if k == 2 {
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                }
                let result = follow(&server, &job, events, 0, Follow::default(), manner).await;
                let mut m = totals.lock().expect("not poisoned");
                m.followers += 1;
                match result {
                    Ok(f) => {
                        m.incomplete += u64::from(!f.ended);
                        m.received += f.received;
                        m.lost += f.lost;
                        m.dup += f.dup;
                        m.gapped += f.gapped;
                        m.resumes += f.resumes;
                    }
                    Err(e) => {
                        m.incomplete += 1;
                        m.errors.push(e);
                    }
                }
            }));
        }
        tokio::time::sleep(a.interval()).await;
    }
    stop.store(true, Ordering::Relaxed);
    for f in followers.into_iter().chain(feeds) {
        f.await.map_err(|e| e.to_string())?;
    }
    sampler.abort();
    let after = server.settle(0, 20).await?;
    let secs = began.elapsed().as_secs_f64();
    let m = std::mem::take(&mut *totals.lock().expect("not poisoned"));
    let samples = std::mem::take(&mut *samples.lock().expect("not poisoned"));

    let third = a.duration as f64 / 3.0;
    let peak_in = |from: f64, to: f64, f: fn(&Sample) -> u64| {
        samples
            .iter()
            .filter(|(s, _)| *s >= from && *s < to)
            .map(|(_, x)| f(x))
            .max()
            .unwrap_or(0)
    };
    let (rss_mid, rss_last) = (
        peak_in(third, 2.0 * third, |s| s.rss),
        peak_in(2.0 * third, f64::MAX, |s| s.rss),
    );
    let (fds_mid, fds_last) = (
        peak_in(third, 2.0 * third, |s| s.fds),
        peak_in(2.0 * third, f64::MAX, |s| s.fds),
    );
    let (tasks_mid, tasks_last) = (
        peak_in(third, 2.0 * third, |s| s.tasks),
        peak_in(2.0 * third, f64::MAX, |s| s.tasks),
    );

    t.info(
        "seconds of load (and draining)",
        format!("{} ({secs:.0})", a.duration),
    );
    t.info("bench jobs started (1,000 events each)", m.jobs);
    t.check(
        "errors (refused or failed requests)",
        m.errors.len(),
        "0",
        m.errors.is_empty(),
    );
    for e in m.errors.iter().take(5) {
        eprintln!("soak mixed: {e}");
    }
    t.info("followers (from start / resuming / late)", m.followers);
    t.info("resumes with last_event_id", m.resumes);
    t.info("events received", m.received);
    t.check(
        "lost / duplicated / incomplete followers",
        format!("{} / {} / {}", m.lost, m.dup, m.incomplete),
        "0 / 0 / 0",
        m.lost == 0 && m.dup == 0 && m.incomplete == 0,
    );
    t.check("events announced by gap", m.gapped, "0", m.gapped == 0);
    t.info(
        "list feeds opened / job events on them",
        format!("{} / {}", m.list_opens, m.list_events),
    );
    t.check(
        "RSS peak, middle third / last third (MiB)",
        format!("{} / {}", mib(rss_mid), mib(rss_last)),
        &format!("last ≤ middle + {MIXED_PLATEAU_MIB}"),
        (rss_last as f64 - rss_mid as f64) / MIB <= MIXED_PLATEAU_MIB,
    );
    t.info(
        "open files peak, middle / last third",
        format!("{fds_mid} / {fds_last}"),
    );
    t.info(
        "tasks peak, middle / last third",
        format!("{tasks_mid} / {tasks_last}"),
    );
    t.check(
        "open files: baseline / after",
        format!("{} / {}", base.fds, after.fds),
        &format!("≤ baseline + {FD_SLACK}"),
        after.fds <= base.fds + FD_SLACK,
    );
    t.check(
        "tasks: baseline / after",
        format!("{} / {}", base.tasks, after.tasks),
        &format!("≤ baseline + {TASK_SLACK}"),
        after.tasks <= base.tasks + TASK_SLACK,
    );
    t.info(
        "RSS: baseline / after (MiB)",
        format!("{} / {}", mib(base.rss), mib(after.rss)),
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_those_of_complete_events() {
        let mut ids = Ids::default();
        ids.feed(b"id: 1\nevent: state\ndata: running\n\nid: 2\nda");
        assert_eq!((ids.current, ids.complete), (2, 1));
        ids.feed(b"ta: x\n\n");
        assert_eq!(ids.complete, 2);
    }

    #[test]
    fn a_follower_counts_lost_duplicated_and_gap_excused_messages() {
        let mut f = Follow::default();
        let (mut p, mut ids) = (crate::sse::Parser::new(), Ids::default());
        let msg = |seq: u64| format!("id: {}\ndata: {seq} 1 xx\n\n", seq + 1);
        let stream = [
            msg(1),
            msg(2),
            msg(2),
            msg(4),
            "id: 6\nevent: gap\ndata: {\"lost\":2,\"from\":5,\"to\":6}\n\n".to_owned(),
            msg(7),
            "id: 9\nevent: end\ndata: {}\n\nid: 10\ndata: __CLOSE_SSE__\n\n".to_owned(),
        ]
        .concat();
        f.feed(&mut p, &mut ids, stream.as_bytes());
        f.finish(8);
        assert_eq!((f.received, f.dup, f.lost, f.gapped), (5, 1, 2, 2));
        assert!(f.ended);
        assert_eq!(ids.complete, 10);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
