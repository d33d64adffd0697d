//! HTTP/1.1 connections (hyper) from chosen loopback source addresses, and
//! the two servers' ways of making a channel and publishing to it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, BodyStream, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::args::Server;
use crate::hist::Histogram;
use crate::now_ns;

/// The server under test.
#[derive(Clone)]
pub struct Target {
    kind: Server,
    addr: SocketAddr,
    /// jobstream: the session every request belongs to.
    cookie: String,
}

/// Opens a connection to `addr` from 127.0.0.(2 + source).
async fn connect(addr: SocketAddr, source: usize) -> Result<SendRequest<Full<Bytes>>, String> {
    let local = Ipv4Addr::new(127, 0, 0, 2 + (source % 200) as u8);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(local), 0))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// `http://IP:PORT` as a socket address.
fn socket_addr(url: &str) -> Result<SocketAddr, String> {
    let hostport = url
        .strip_prefix("http://")
        .ok_or("--url: expected http://HOST:PORT")?
        .trim_end_matches('/');
    hostport
        .parse()
        .map_err(|_| format!("--url {url:?}: expected http://IP:PORT"))
}

impl Target {
    /// `--target jobstream|nchan --url http://127.0.0.1:PORT`.
    pub async fn new(kind: Server, url: &str) -> Result<Self, String> {
        let mut target = Target {
            kind,
            addr: socket_addr(url)?,
            cookie: String::new(),
        };
        if kind == Server::Jobstream {
            let mut api = target.api_conn(0).await?;
            let resp = api.send("GET", "/api/jobs", None).await?;
            let cookie = resp
                .headers()
                .get_all(hyper::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("jobstream_session="))
                .ok_or("the server set no session cookie")?;
            target.cookie = cookie.split(';').next().unwrap_or_default().to_owned();
        }
        Ok(target)
    }

    /// The same session on another node of a cluster at `url` (a session
    /// is its cookie's random id, known to every node).
    pub fn on_node(&self, url: &str) -> Result<Self, String> {
        Ok(Target {
            addr: socket_addr(url)?,
            ..self.clone()
        })
    }

    /// `jobstream` or `nchan`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Server::Jobstream => "jobstream",
            Server::Nchan => "nchan",
        }
    }

    /// A keep-alive connection for API calls.
    pub async fn api_conn(&self, source: usize) -> Result<Api, String> {
        Ok(Api {
            sender: connect(self.addr, source).await?,
            cookie: self.cookie.clone(),
        })
    }

    /// Makes a channel: for jobstream a `bench` job that waits for
    /// `readers` subscribers before it emits; for Nchan a fresh channel id.
    pub async fn create_channel(
        &self,
        events: u64,
        size: usize,
        rate: u64,
        readers: u64,
    ) -> Result<String, String> {
        match self.kind {
            Server::Nchan => Ok(format!("bench{:x}", now_ns())),
            Server::Jobstream => {
                self.start_job(serde_json::json!({"kind": "bench", "params": {
                    "events": events, "size": size, "rate": rate,
                    "readers": readers.min(1_000_000), "wait_ms": 600_000,
                }}))
                .await
            }
        }
    }

    /// Starts a jobstream job (`{"kind", "params"}`); returns its id.
    pub async fn start_job(&self, body: serde_json::Value) -> Result<String, String> {
        let mut api = self.api_conn(0).await?;
        let resp = api
            .send("POST", "/api/jobs", Some(body.to_string()))
            .await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!(
                "POST /api/jobs answered {status}: {}",
                String::from_utf8_lossy(&body.to_bytes())
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())?;
        Ok(v["id"].as_str().ok_or("no id")?.to_owned())
    }

    /// `GET path` on a fresh connection from source address `source`, in
    /// the session; an answer other than 200 is an error.
    pub async fn get(&self, path: &str, source: usize) -> Result<Conn, String> {
        let mut sender = connect(self.addr, source).await?;
        let req = Request::get(path)
            .header("host", self.addr.to_string())
            .header("accept", "*/*")
            .header("cookie", &self.cookie)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("GET {path} answered {}", resp.status()));
        }
        Ok(Conn {
            resp,
            _sender: sender,
        })
    }

    /// Opens one subscriber on `channel`.
    pub async fn subscribe(&self, channel: &str, source: usize) -> Result<Conn, String> {
        let path = match self.kind {
            Server::Jobstream => format!("/api/jobs/{channel}/events"),
            Server::Nchan => format!("/sub?id={channel}"),
        };
        let mut sender = connect(self.addr, source).await?;
        let req = Request::get(path)
            .header("host", self.addr.to_string())
            .header("accept", "text/event-stream")
            .header("cookie", &self.cookie)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("subscribe answered {}", resp.status()));
        }
        Ok(Conn {
            resp,
            _sender: sender,
        })
    }

    /// Makes the channel's events happen. jobstream's job does it by
    /// itself once its readers are there; for Nchan this waits until the
    /// channel has `readers` subscribers, then publishes over one
    /// keep-alive connection.
    pub async fn publish(
        &self,
        channel: &str,
        events: u64,
        size: usize,
        rate: u64,
        readers: usize,
    ) -> Result<(), String> {
        if self.kind == Server::Jobstream {
            return Ok(());
        }
        let mut api = self.api_conn(0).await?;
        let path = format!("/pub?id={channel}");
        // Nchan's count of subscribers across workers can lag behind; every
        // subscriber has had its 200 already, so wait at most 3 s for it.
        for _ in 0..150 {
            let resp = api.send_accept("GET", &path, None, "text/json").await?;
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
            if v["subscribers"].as_u64().unwrap_or(0) >= readers as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = tokio::time::Instant::now();
        for seq in 1..=events {
            if rate > 0 {
                tokio::time::sleep_until(
                    started + Duration::from_secs_f64(seq as f64 / rate as f64),
                )
                .await;
            }
            let resp = api.send("POST", &path, Some(payload(seq, size))).await?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("publish answered {status}"));
            }
        }
        Ok(())
    }

    /// Ends a channel (jobstream: cancels its job; Nchan: deletes it).
    pub async fn close_channel(&self, channel: &str) {
        if let Ok(mut api) = self.api_conn(0).await {
            let _ = match self.kind {
                Server::Jobstream => {
                    api.send("POST", &format!("/api/jobs/{channel}/cancel"), None)
                        .await
                }
                Server::Nchan => {
                    api.send("DELETE", &format!("/pub?id={channel}"), None)
                        .await
                }
            };
        }
    }
}

/// The bench payload: `SEQ EMIT_UNIX_NANOS ` padded with `x` to `size` bytes.
pub fn payload(seq: u64, size: usize) -> String {
    let mut text = format!("{seq} {} ", now_ns());
    while text.len() < size {
        text.push('x');
    }
    text
}

/// A keep-alive connection for API calls.
pub struct Api {
    sender: SendRequest<Full<Bytes>>,
    cookie: String,
}

impl Api {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<Response<Incoming>, String> {
        self.send_accept(method, path, body, "*/*").await
    }

    async fn send_accept(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
        accept: &str,
    ) -> Result<Response<Incoming>, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("accept", accept)
            .header("cookie", &self.cookie)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        self.sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())
    }

    /// Starts a one-message `echo` job; returns the status.
    pub async fn start_tiny_job(&mut self) -> Result<u16, String> {
        let body = r#"{"kind":"echo","params":{"messages":["hi"]}}"#.to_owned();
        let resp = self.send("POST", "/api/jobs", Some(body)).await?;
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// An open subscriber.
pub struct Conn {
    resp: Response<Incoming>,
    _sender: SendRequest<Full<Bytes>>,
}

/// What one subscriber saw.
#[derive(Default, Clone)]
pub struct Seen {
    pub hist: Histogram,
    pub received: u64,
    pub lost: u64,
    pub dup: u64,
    pub first_emit_ns: u64,
    pub last_receipt_ns: u64,
    pub complete: bool,
}

/// Silence after which a subscriber gives up waiting for events (then
/// the events it did not get count as lost).
const QUIET: Duration = Duration::from_secs(120);

impl Conn {
    /// The response body, chunk by chunk.
    pub fn body(self) -> BodyStream<Incoming> {
        BodyStream::new(self.resp.into_body())
    }

    /// The whole response body as JSON.
    pub async fn json(self) -> Result<serde_json::Value, String> {
        let body = self
            .resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())
    }

    /// Reads until the server ends the stream (keep-alives and all).
    pub async fn drain(self) {
        let mut body = BodyStream::new(self.resp.into_body());
        while let Some(Ok(_)) = body.next().await {}
    }

    /// Reads events numbered 1..=`events`, timing each from its emit.
    pub async fn read_events(self, events: u64) -> Seen {
        let mut body = BodyStream::new(self.resp.into_body());
        let mut parser = crate::sse::Parser::new();
        let mut seen = Seen::default();
        let mut last = 0u64;
        while last < events {
            let Ok(Some(Ok(frame))) = tokio::time::timeout(QUIET, body.next()).await else {
                break;
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let now = now_ns();
            parser.feed(&chunk, &mut |event, data| {
                if event != "message" {
                    return;
                }
                let mut parts = data.splitn(3, ' ');
                let (Some(Ok(seq)), Some(Ok(emitted))) = (
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    return; // the sentinel, or not ours
                };
                seen.received += 1;
                if seq <= last {
                    seen.dup += 1;
                    return;
                }
                seen.lost += seq - last - 1;
                last = seq;
                if seen.first_emit_ns == 0 || emitted < seen.first_emit_ns {
                    seen.first_emit_ns = emitted;
                }
                seen.last_receipt_ns = now;
                seen.hist.record(now.saturating_sub(emitted) / 1000);
            });
        }
        seen.lost += events - last;
        seen.complete = last == events;
        seen
    }
}
