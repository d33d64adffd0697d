//! The JSON API and the SSE stream.
//!
//! * `POST /api/jobs` `{"kind": "...", "params": {...}}` → 201
//!   `{"id": "...", "url": "/jobs/..."}`.
//! * `GET /api/jobs` → `{"jobs": [summary, ...]}`, the session's newest
//!   jobs first (`?limit=` 1 to 500, default 100).
//! * `POST /api/jobs/{id}/cancel` → 202 with the job's summary (200 when it
//!   is already `cancelled`), 409 when it has ended otherwise.
//! * `GET /api/jobs/{id}/events` → the job's event stream (see the README
//!   for its guarantees).
//! * `GET /api/events` → the session's job-list stream: one `event: job`
//!   with a summary for each job that was created or changed state or
//!   progress; on (re)connect, every job of the session in memory.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use app::ssr::Visitor;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::BytesMut;
use futures_util::stream;
use jobstream_engine::{sse, Engine, JobId, NewJob, Subscription};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::{Refused, StreamPermit};
use crate::AppState;

/// Body of `POST /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// A registered kind, e.g. `demo`.
    pub kind: String,
    /// The kind's parameters; missing means defaults.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// Answer of `POST /api/jobs`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    /// The job's id.
    pub id: String,
    /// Its page.
    pub url: String,
}

/// `POST /api/jobs`.
pub async fn create_job(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::NotJson);
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    let request: CreateJob = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body at {path}: {inner}"))
        }
    })?;
    let job = engine
        .submit(NewJob {
            owner: visitor.session,
            kind: request.kind,
            params: request.params,
            display_name: visitor.display_name,
            locale: visitor.locale.tag().to_owned(),
        })
        .await?;
    let url = format!("/jobs/{}", job.id);
    let location = HeaderValue::from_str(&url).expect("ids are URL-safe");
    let body = Json(Created {
        id: job.id.to_string(),
        url,
    });
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response())
}

/// Where a client resumes: the `Last-Event-ID` header (sent by a browser
/// when it reconnects), else the `last_event_id` query parameter (a new
/// `EventSource` cannot set headers), else the beginning.
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
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "last_event_id" {
            if found.is_some() {
                return Err(ApiError::BadRequest("last_event_id: give it once".into()));
            }
            found = Some(parse_event_id("last_event_id", value)?);
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
    let ends = StreamEnds::new(&state, &visitor)?;
    Ok(sse_response(Body::from_stream(event_stream(
        job.log.subscribe(after),
        ends,
    ))))
}

/// A response carrying an SSE body, with the headers proxies need.
fn sse_response(body: Body) -> Response {
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

/// When a stream says something other than events, or stops.
struct StreamEnds {
    /// Silence after which a keep-alive comment is sent.
    keep_alive: Duration,
    /// The stream's lifetime ends here: it closes with a `retry:` hint and
    /// the client resumes from its last id, losing nothing.
    deadline: tokio::time::Instant,
    /// Shutdown: likewise.
    shutdown: CancellationToken,
    /// The stream's place among the open streams, given back on drop.
    _permit: StreamPermit,
}

impl StreamEnds {
    /// Takes a place among the open streams (429 when there is none).
    fn new(state: &AppState, visitor: &Visitor) -> Result<Self, ApiError> {
        let permit = state.streams.acquire(visitor.session).map_err(|refused| {
            ApiError::TooManyStreams(match refused {
                Refused::Session { limit } => format!(
                    "this session already has {limit} open streams; close one (another tab?) and retry"
                ),
                Refused::Total { limit } => {
                    format!("the server has {limit} open streams, its limit; retry shortly")
                }
            })
        })?;
        Ok(StreamEnds {
            keep_alive: state.config.keep_alive,
            deadline: tokio::time::Instant::now() + state.config.stream_lifetime,
            shutdown: state.shutdown.clone(),
            _permit: permit,
        })
    }
}

/// How soon a client whose stream we ended should come back.
const RETRY_AFTER_END_MS: u64 = 1000;

/// A stream's two timers, set up once per stream (not once per write):
/// the end of its lifetime, and a keep-alive tick that fires at most once
/// per keep-alive period however many events are sent.
struct Timers {
    /// Shutdown, waited on by the same future for the stream's life (a
    /// new wait per write would re-register with the token every time).
    shutdown: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    lifetime: Pin<Box<Sleep>>,
    tick: Pin<Box<Sleep>>,
    keep_alive: Duration,
    /// When the stream last wrote anything.
    sent_at: Instant,
}

/// Why [`Timers::wait`] returned.
enum Due {
    /// Nothing was written for a keep-alive period.
    KeepAlive,
    /// The stream's lifetime is over, or the server is shutting down.
    End,
}

impl Timers {
    fn new(ends: &StreamEnds) -> Self {
        let now = Instant::now();
        Timers {
            shutdown: Box::pin(ends.shutdown.clone().cancelled_owned()),
            lifetime: Box::pin(tokio::time::sleep_until(ends.deadline)),
            tick: Box::pin(tokio::time::sleep_until(now + ends.keep_alive)),
            keep_alive: ends.keep_alive,
            sent_at: now,
        }
    }

    fn sent(&mut self) {
        self.sent_at = Instant::now();
    }

    async fn wait(&mut self) -> Due {
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return Due::End,
                () = self.lifetime.as_mut() => return Due::End,
                () = self.tick.as_mut() => {
                    let due = self.sent_at + self.keep_alive;
                    if Instant::now() >= due {
                        self.sent();
                        self.tick.as_mut().reset(self.sent_at + self.keep_alive);
                        return Due::KeepAlive;
                    }
                    // Something was written meanwhile: look again later.
                    self.tick.as_mut().reset(due);
                }
            }
        }
    }
}

/// What a stream writes when one of its timers is due: a keep-alive
/// comment, or (lifetime over) a `retry:` hint, after which it ends.
fn on_due(due: Due) -> (Bytes, bool) {
    match due {
        Due::KeepAlive => (Bytes::from_static(sse::KEEP_ALIVE), true),
        Due::End => (sse::retry(RETRY_AFTER_END_MS), false),
    }
}

/// The bytes of one stream: every batch of shared frames as one write, a
/// keep-alive comment after silence, and an early end with a `retry:` hint
/// at the end of its lifetime or on shutdown.
fn event_stream(
    sub: Subscription,
    ends: StreamEnds,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let timers = Timers::new(&ends);
    stream::unfold(Some((sub, ends, timers)), move |st| async move {
        let (mut sub, ends, mut timers) = st?;
        tokio::select! {
            biased;
            due = timers.wait() => {
                let (bytes, go_on) = on_due(due);
                Some((Ok(bytes), go_on.then_some((sub, ends, timers))))
            }
            batch = sub.next() => {
                let batch = batch?;
                let mut frames = batch.frames();
                let first = frames.next()?;
                let bytes = match frames.next() {
                    None => first,
                    Some(second) => {
                        let mut buf = BytesMut::from(&first[..]);
                        buf.extend_from_slice(&second);
                        frames.for_each(|f| buf.extend_from_slice(&f));
                        buf.freeze()
                    }
                };
                timers.sent();
                Some((Ok(bytes), Some((sub, ends, timers))))
            }
        }
    })
}

/// Query of `GET /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many jobs, 1 to 500 (default 100).
    pub limit: Option<usize>,
}

/// Most jobs one list answer holds.
pub const MAX_LIST: usize = 500;

/// `GET /api/jobs`.
pub async fn list_jobs(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: ListQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be between 1 and {MAX_LIST}, got {limit}"
        )));
    }
    let jobs = engine.list(visitor.session, limit).await?;
    Ok(Json(serde_json::json!({ "jobs": jobs })).into_response())
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel_job(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::JobNotFound)?;
    let job = engine.cancel(visitor.session, id).await?;
    let summary = job.summary();
    let status = if summary.state.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(summary)).into_response())
}

/// `GET /api/events`.
pub async fn session_events(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
) -> Result<Response, ApiError> {
    let ends = StreamEnds::new(&state, &visitor)?;
    let feed = Feed {
        rx: state.engine.watch(visitor.session),
        since: 0,
        engine: state.engine.clone(),
        owner: visitor.session,
    };
    Ok(sse_response(Body::from_stream(feed_stream(feed, ends))))
}

/// A session's job-list stream: where it is in the owner's feed.
struct Feed {
    rx: tokio::sync::watch::Receiver<u64>,
    /// Changes up to this feed counter value have been sent.
    since: u64,
    engine: Engine,
    owner: jobstream_engine::SessionId,
}

impl Feed {
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
            buf.extend_from_slice(&sse::event(seen, Some("job"), &data));
        }
        Some(buf.freeze())
    }
}

fn feed_stream(
    feed: Feed,
    ends: StreamEnds,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    // The first item says hello (so the browser's `open` fires at once) and
    // carries every job the session has in memory.
    let hello = Bytes::from_static(b": jobs\n\n");
    let timers = Timers::new(&ends);
    futures_util::StreamExt::chain(
        stream::once(async move { Ok(hello) }),
        stream::unfold(Some((feed, ends, timers, true)), move |st| async move {
            let (mut feed, ends, mut timers, first) = st?;
            if first {
                if let Some(bytes) = feed.changes() {
                    timers.sent();
                    return Some((Ok(bytes), Some((feed, ends, timers, false))));
                }
            }
            loop {
                tokio::select! {
                    biased;
                    due = timers.wait() => {
                        let (bytes, go_on) = on_due(due);
                        return Some((Ok(bytes), go_on.then_some((feed, ends, timers, false))));
                    }
                    changed = feed.rx.changed() => {
                        if changed.is_err() {
                            return None; // the engine is gone
                        }
                        if let Some(bytes) = feed.changes() {
                            timers.sent();
                            return Some((Ok(bytes), Some((feed, ends, timers, false))));
                        }
                    }
                }
            }
        }),
    )
}

/// Any other path under `/api`.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
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
    }
}
