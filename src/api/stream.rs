//! The event streams.
//!
//! * `GET /api/jobs/{id}/events`: a job's events (see the README for the
//!   guarantees). The resume point is read here, in [`resume_point`]: the
//!   `Last-Event-ID` header, else the `last_event_id` query parameter.
//! * `GET /api/events`: the session's job-list stream: one `event: job`
//!   with a summary for each job that was created or changed state or
//!   progress; on (re)connect, every job of the session in memory.
//!
//! Each stream is a named state machine ([`JobStream`], [`FeedStream`])
//! whose `next_chunk` is one write: a batch of shared frames, a keep-alive,
//! or the final `retry:` hint.

use std::convert::Infallible;

use app::ssr::Visitor;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::BytesMut;
use futures_util::{stream, StreamExt};
use jobstream_engine::{sse, Batch, Engine, EventKind, JobId, Reader, SessionId};
use jobstream_protocol::{event, routes};
use tokio::sync::watch;

use super::timers::{on_due, StreamEnds, Timers};
use crate::error::ApiError;
use crate::metrics::{self, StreamKind};
use crate::AppState;

/// Where a client resumes: the `Last-Event-ID` header (sent by a browser
/// when it reconnects), else the `last_event_id` query parameter (a new
/// `EventSource` cannot set headers), else the beginning. The query is
/// percent-decoded; giving either twice is an error, not a guess.
fn resume_point(headers: &HeaderMap, query: Option<&str>) -> Result<u64, ApiError> {
    let mut values = headers.get_all("last-event-id").iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(ApiError::BadRequest("Last-Event-ID: send it once".into()));
        }
        let text = value.to_str().map_err(|_| {
            ApiError::BadRequest("Last-Event-ID: must be a decimal event id".into())
        })?;
        return parse_event_id("Last-Event-ID", text);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let mut found = None;
    for (key, value) in pairs {
        if key == routes::LAST_EVENT_ID_PARAM {
            if found.is_some() {
                return Err(ApiError::BadRequest("last_event_id: give it once".into()));
            }
            found = Some(parse_event_id(routes::LAST_EVENT_ID_PARAM, &value)?);
        }
    }
    Ok(found.unwrap_or(0))
}

fn parse_event_id(field: &str, text: &str) -> Result<u64, ApiError> {
    sse::parse_event_id(text).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// `GET /api/jobs/{id}/events`.
pub async fn events(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::JobNotFound)?;
    // The place among the open streams first: finding the job may load it
    // from the store, which only a stream that may open should cost.
    let ends = StreamEnds::new(&state, &visitor, StreamKind::Job)?;
    let job = state
        .engine
        .find(visitor.session, id)
        .await?
        .ok_or(ApiError::JobNotFound)?;
    let after = resume_point(&headers, query.as_deref())?;
    let last = job.log.last_seq();
    if after > last {
        return Err(ApiError::BadRequest(format!(
            "event id {after} is beyond the last event of this job ({last})"
        )));
    }
    if job.log.is_closed() && after >= last {
        // Nothing more will ever come: 204 tells a browser to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stream = JobStream {
        timers: Timers::new(&ends),
        reader: state.engine.reader(&job, after),
        over: false,
        batch: None,
        _ends: ends,
    };
    Ok(sse_response(Body::from_stream(into_body(stream))))
}

/// `GET /api/events`.
pub async fn session_events(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
) -> Result<Response, ApiError> {
    let ends = StreamEnds::new(&state, &visitor, StreamKind::List)?;
    let feed = FeedStream {
        timers: Timers::new(&ends),
        rx: state.engine.watch(visitor.session),
        since: 0,
        engine: state.engine.clone(),
        owner: visitor.session,
        hello: true,
        over: false,
        _ends: ends,
    };
    Ok(sse_response(Body::from_stream(into_body(feed))))
}

/// A response carrying an SSE body, with the headers proxies need.
pub(super) fn sse_response(body: Body) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A stream that produces one write at a time until it ends.
pub(super) trait Chunks: Send + 'static {
    /// The next write, or `None` when the stream is over.
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send;
}

/// A response body over `chunks`: a chunk per write, until it ends.
pub(super) fn into_body<C: Chunks>(
    chunks: C,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    // Fused: a body may be polled again after its end (the compression
    // layer does, for a followed-up flush), which a bare `unfold` forbids.
    stream::unfold(chunks, |mut chunks| async move {
        let bytes = chunks.next_chunk().await?;
        Some((Ok(bytes), chunks))
    })
    .fuse()
}

/// One reader of a job's log, as an HTTP body.
struct JobStream {
    /// The reader's cursor in the job's log (which reads the store for
    /// what memory no longer holds).
    reader: Reader,
    timers: Timers,
    /// The batch being written and its next frame: its shared frames are
    /// handed out one by one (no copy, and nothing kept once it is done).
    batch: Option<(Batch, usize)>,
    /// Set once the final `retry:` hint is written: the stream then ends.
    over: bool,
    /// Kept for the stream's life: its permit among the open streams.
    _ends: StreamEnds,
}

impl Chunks for JobStream {
    /// Every event's shared frame as it is (no copy: a batch goes out in
    /// vectored writes of the frames it holds, up to 1,024 at a time on the
    /// lean path (`front.rs`), 16 buffers at a time through hyper, where each
    /// frame is its own chunk), a keep-alive comment after silence, and the
    /// `retry:` hint (then the end) at the end of its lifetime or on
    /// shutdown.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some((batch, next)) = &mut self.batch {
            if let Some(frame) = batch.frame(*next) {
                *next += 1;
                return Some(frame);
            }
            self.batch = None;
        }
        if self.over {
            return None;
        }
        tokio::select! {
            biased;
            due = self.timers.wait() => {
                let (bytes, go_on) = on_due(due);
                self.over = !go_on;
                Some(bytes)
            }
            batch = self.reader.next() => {
                let batch = batch?;
                let messages = batch.events.iter().filter(|e| e.kind == EventKind::Message);
                metrics::EVENTS_DELIVERED.increment(messages.count() as u64);
                if batch.gap.is_some() {
                    metrics::GAPS.increment(1);
                }
                let first = batch.frame(0);
                self.batch = Some((batch, 1));
                self.timers.sent();
                first
            }
        }
    }
}

/// A session's job-list stream: where it is in the owner's feed.
struct FeedStream {
    rx: watch::Receiver<u64>,
    /// Changes up to this feed counter value have been sent.
    since: u64,
    engine: Engine,
    owner: SessionId,
    /// The first chunk is still to come: a comment, so the browser's `open`
    /// fires at once, and then every job the session has in memory.
    hello: bool,
    timers: Timers,
    /// Set once the final `retry:` hint is written: the stream then ends.
    over: bool,
    /// Kept for the stream's life: its permit among the open streams.
    _ends: StreamEnds,
}

impl FeedStream {
    /// The jobs changed since the last call, as `event: job` frames, one
    /// write. Marks the current counter as seen *before* reading, so a
    /// change made meanwhile is sent now or next time, never lost.
    fn changes(&mut self) -> Option<Bytes> {
        let seen = *self.rx.borrow_and_update();
        let changed = self.engine.changed_since(self.owner, self.since);
        self.since = seen;
        if changed.is_empty() {
            return None;
        }
        let mut buf = BytesMut::new();
        for job in changed {
            let data = serde_json::to_string(&job).expect("a summary serialises");
            buf.extend_from_slice(&sse::event(seen, Some(event::JOB), &data));
        }
        Some(buf.freeze())
    }
}

impl Chunks for FeedStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.over {
            return None;
        }
        if std::mem::take(&mut self.hello) {
            let mut hello = BytesMut::from(&b": jobs\n\n"[..]);
            if let Some(bytes) = self.changes() {
                hello.extend_from_slice(&bytes);
            }
            self.timers.sent();
            return Some(hello.freeze());
        }
        loop {
            tokio::select! {
                biased;
                due = self.timers.wait() => {
                    let (bytes, go_on) = on_due(due);
                    self.over = !go_on;
                    return Some(bytes);
                }
                changed = self.rx.changed() => {
                    changed.ok()?; // the engine is gone
                    if let Some(bytes) = self.changes() {
                        self.timers.sent();
                        return Some(bytes);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("last-event-id", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn resume_point_reads_header_then_query() {
        assert_eq!(resume_point(&headers(&[]), None).unwrap(), 0);
        assert_eq!(
            resume_point(&headers(&["7"]), Some("last_event_id=3")).unwrap(),
            7
        );
        assert_eq!(
            resume_point(&headers(&[]), Some("x=1&last_event_id=3")).unwrap(),
            3
        );
        assert_eq!(resume_point(&headers(&[]), Some("x=1")).unwrap(), 0);
    }

    #[test]
    fn the_query_is_percent_decoded() {
        assert_eq!(
            resume_point(&headers(&[]), Some("last%5Fevent%5Fid=%34%32")).unwrap(),
            42
        );
        assert_eq!(
            resume_point(&headers(&[]), Some("a=%26&last_event_id=5")).unwrap(),
            5
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "-1",
            "1.5",
            " 1",
            "+1",
            "99999999999999999999",
            "000000000000000000001",
        ] {
            assert!(resume_point(&headers(&[bad]), None).is_err(), "{bad:?}");
        }
        assert!(resume_point(&headers(&["1", "2"]), None).is_err());
        assert!(resume_point(&headers(&[]), Some("last_event_id=1&last_event_id=2")).is_err());
        assert!(resume_point(&headers(&[]), Some("last_event_id=")).is_err());
        assert!(resume_point(&headers(&[]), Some("last_event_id=%00")).is_err());
        assert!(resume_point(&headers(&[]), Some("last_event_id=1%2B1")).is_err());
    }
}
