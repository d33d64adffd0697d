//! The accept loop, and a lean HTTP/1 path for event streams.
//!
//! hyper gives every HTTP/1 connection an 8 KiB read buffer and an 8 KiB
//! header write buffer for its whole life (see BENCHMARKS.md). For a page
//! or an API call that does not matter; for tens of thousands of idle SSE
//! subscribers it is most of the memory. So each new connection's first
//! request head is read here, into a buffer that is dropped once parsed:
//!
//! * A plain `GET` of an event stream (one of
//!   `jobstream_protocol::routes::STREAMS`, the same table the router is
//!   built from) with no body and no upgrade goes through the
//!   same axum router (so the same middleware and handlers decide
//!   everything: session, limits, resume, errors), and its response is
//!   written here: the status line and headers, `Connection: close`, then
//!   each body chunk straight to the socket. The connection ends with the
//!   stream. While streaming, a read of the socket notices the client
//!   leaving.
//! * Everything else is handed to hyper with the bytes already read, and
//!   served as usual (keep-alive, graceful shutdown). The app has no
//!   upgrades (WebSockets), so connections are not upgradeable.
//!
//! `JOBSTREAM_LEAN_STREAMS=0` turns the lean path off: every connection
//! then goes to hyper as it is.
//!
//! On both paths a write that makes no progress for the write timeout
//! fails and ends the connection ([`crate::deadline`]), a request head
//! must arrive within the head timeout (hyper's timer also closes a
//! kept-alive connection idle that long), and a connection still waiting
//! for its first head closes on shutdown.
//!
//! On both paths every request carries the connection's peer address as
//! axum's `ConnectInfo<SocketAddr>` extension: the session middleware
//! believes `X-Forwarded-Proto` only from `JOBSTREAM_TRUSTED_PROXIES`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, Version};
use axum::{Extension, Router};
use futures_util::FutureExt as _;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use jobstream_protocol::routes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::{Layer, ServiceExt};

use crate::deadline::WriteDeadline;
use crate::frames::Frames;

/// Longest request head read here; a longer one goes to hyper.
const MAX_HEAD: usize = 16 * 1024;

/// Most body frames gathered for one write on the lean path: a batch (at
/// most 512 events and a gap frame) goes out in one `writev` when the
/// socket takes it whole ([`Frames::write_to`]).
const MAX_GATHER: usize = 1024;

/// Most bytes hyper buffers for one connection's reads (its own default is
/// ~400 KiB). hyper checks it before each read, and one read may add up to
/// as much again, so a request head over twice this (64 KiB) is always
/// answered 431; one between 32 and 64 KiB may be read.
const MAX_HYPER_BUFFER: usize = 32 * 1024;

/// How connections are served: the settings from the config, and the
/// server's shutdown.
#[derive(Debug, Clone)]
pub struct Options {
    /// Event streams take the lean path.
    pub lean: bool,
    /// Time for a request head, and for an idle kept-alive connection.
    pub head_timeout: Duration,
    /// A write making no progress this long ends the connection.
    pub write_timeout: Duration,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

impl Options {
    /// hyper's HTTP/1 server, with a timer for the head timeout.
    fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.head_timeout)
            .max_buf_size(MAX_HYPER_BUFFER);
        builder
    }
}

/// Serves one accepted connection; event streams take the lean path when
/// `options.lean` is set.
pub async fn connection(stream: TcpStream, router: Router, watcher: Watcher, options: Options) {
    let _ = stream.set_nodelay(true);
    // Gone already (or not a TCP peer at all): nothing to serve.
    let Ok(peer) = stream.peer_addr() else { return };
    // Adds the extension to each request; the router itself is not rebuilt.
    let hyper_service =
        || TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(router.clone()));
    if !options.lean {
        let io = WriteDeadline::new(stream, options.write_timeout);
        let conn = options
            .http1()
            .serve_connection(TokioIo::new(io), hyper_service());
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!("connection: {e}");
        }
        return;
    }
    let mut stream = stream;
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(options.head_timeout, read_head(&mut stream, &mut head));
    let lean = tokio::select! {
        read = read => match read {
            Err(_) | Ok(Err(_)) => return, // silent or gone before a request
            Ok(Ok(request)) => request,
        },
        () = options.shutdown.cancelled() => return,
    };
    let stream = WriteDeadline::new(stream, options.write_timeout);
    match lean {
        Some(mut request) => {
            drop(head);
            request.extensions_mut().insert(ConnectInfo(peer));
            serve_stream(stream, router, request).await;
        }
        None => {
            let io = TokioIo::new(Prefixed {
                prefix: head,
                at: 0,
                stream,
            });
            let conn = options.http1().serve_connection(io, hyper_service());
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!("connection: {e}");
            }
        }
    }
}

/// Reads until the first request head is complete (or is not ours to
/// serve). `Some` with the request when it takes the lean path. The head
/// is parsed once it is complete, not after every read, so a head sent a
/// byte at a time costs linear time.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request<Body>>> {
    loop {
        let scanned = buf.len();
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !ends_head(buf, scanned) {
            if buf.len() < MAX_HEAD {
                continue;
            }
            return Ok(None); // too long: hyper answers it
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        return match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => Ok(lean_request(&req)),
            // Too many headers, or malformed: hyper answers it.
            _ => Ok(None),
        };
    }
}

/// Whether `buf` holds the blank line that ends a request head, looking
/// only at what came after `scanned` (and the two bytes before it, where
/// the line end may have started).
fn ends_head(buf: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(2);
    buf[from..].iter().enumerate().any(|(i, b)| {
        *b == b'\n' && matches!(&buf[from + i + 1..], [b'\n', ..] | [b'\r', b'\n', ..])
    })
}

/// The request, if it is a plain GET of an event stream.
fn lean_request(req: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    if req.method != Some("GET") {
        return None;
    }
    let target = req.path?;
    let path = target.split('?').next().unwrap_or(target);
    if !routes::is_stream(path) {
        return None;
    }
    let version = match req.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut builder = Request::get(target).version(version);
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        // A body or an upgrade: not a plain stream request.
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "upgrade" | "expect"
        ) {
            return None;
        }
        builder = builder.header(h.name, h.value);
    }
    builder.body(Body::empty()).ok()
}

/// Runs `request` through the router and writes the response itself.
async fn serve_stream(
    mut stream: WriteDeadline<TcpStream>,
    router: Router,
    request: Request<Body>,
) {
    let Ok(response) = router.oneshot(request).await;
    let (parts, mut body) = response.into_parts();
    let head = response_head(&Response::from_parts(parts, ()), body.size_hint().exact());
    if stream.write_all(&head).await.is_err() {
        return;
    }
    drop(head);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut scratch = [0u8; 16];
    let mut out = Frames::default();
    loop {
        tokio::select! {
            frame = body.frame() => {
                let Some(Ok(frame)) = frame else { break };
                out.extend(frame.into_data().ok());
                // Whatever else the body has ready (the rest of a batch)
                // goes out in the same vectored write.
                let mut ended = false;
                while out.len() < MAX_GATHER {
                    match body.frame().now_or_never() {
                        None => break,
                        Some(Some(Ok(frame))) => out.extend(frame.into_data().ok()),
                        Some(_) => {
                            ended = true;
                            break;
                        }
                    }
                }
                if out.write_to(&mut writer).await.is_err() || ended {
                    break;
                }
                // Written: nothing of the batch is kept (not even the
                // queue's slots) while the stream waits for the next.
                out = Frames::default();
            }
            read = reader.read(&mut scratch) => {
                // The client closed (or broke) the connection; anything it
                // sends otherwise (a pipelined request) is not served here.
                if matches!(read, Ok(0) | Err(_)) {
                    break;
                }
            }
        }
    }
    let _ = writer.shutdown().await;
}

/// `HTTP/1.1 STATUS` and the headers, ending the connection afterwards.
fn response_head(response: &Response<()>, exact_len: Option<u64>) -> Vec<u8> {
    let status = response.status();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let headers = response.headers();
    for (name, value) in headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let bodiless = status.is_informational() || status.as_u16() == 204 || status.as_u16() == 304;
    if !bodiless && !headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(len) = exact_len {
            head.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
        }
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// A stream whose first bytes were already read: they are read again first.
struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    stream: WriteDeadline<TcpStream>,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new(); // done with it: give the memory back
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Option<Request<Body>> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw).unwrap().is_complete());
        lean_request(&req)
    }

    #[test]
    fn only_plain_stream_gets_take_the_lean_path() {
        let lean = parse(b"GET /api/jobs/abc/events?last_event_id=3 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 2\r\n\r\n")
            .unwrap();
        assert_eq!(lean.uri(), "/api/jobs/abc/events?last_event_id=3");
        assert_eq!(lean.headers()["last-event-id"], "2");
        assert!(parse(b"GET /api/events HTTP/1.1\r\n\r\n").is_some());
        for other in [
            &b"POST /api/jobs/abc/events HTTP/1.1\r\n\r\n"[..],
            b"HEAD /api/events HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET /api/jobs/a/b/events HTTP/1.1\r\n\r\n",
            b"GET /api/jobs//events HTTP/1.1\r\n\r\n",
            b"GET /api/events HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            b"GET /api/events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert!(parse(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn every_stream_route_and_nothing_else_takes_the_lean_path() {
        let get = |path: &str| parse(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        for route in routes::STREAMS {
            let path = route.replace("{id}", "0123abcd");
            assert!(get(&path).is_some(), "{route} is a stream");
        }
        for route in [
            routes::JOBS,
            routes::JOB_CANCEL,
            routes::JOB_PAGE,
            "/",
            "/pkg/jobstream.js",
            "/api/start_job",
            "/api/nope",
        ] {
            let path = route.replace("{id}", "0123abcd");
            assert!(get(&path).is_none(), "{route} is not a stream");
        }
    }

    #[test]
    fn a_head_ends_at_its_blank_line_wherever_the_reads_split_it() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 0..head.len() {
            let found = (1..=head.len()).find(|&end| ends_head(&head[..end], split.min(end)));
            // Scanning from any earlier point finds the end only at the end.
            assert_eq!(found, Some(head.len()), "split at {split}");
        }
        assert!(ends_head(b"GET / HTTP/1.1\n\n", 0));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
    }

    #[test]
    fn the_head_says_close_and_keeps_the_headers() {
        let response = Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("retry-after", "5")
            .header("connection", "keep-alive")
            .body(())
            .unwrap();
        let head = String::from_utf8(response_head(&response, Some(12))).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 5\r\n\
             content-length: 12\r\nconnection: close\r\n\r\n"
        );
        let no_content = Response::builder().status(204).body(()).unwrap();
        assert!(!String::from_utf8(response_head(&no_content, Some(0)))
            .unwrap()
            .contains("content-length"));
    }
}
