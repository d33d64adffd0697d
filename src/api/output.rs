//! A job's output as lines and as text.
//!
//! * `GET /api/jobs/{id}/lines?before=SEQ&limit=N`: a page of numbered
//!   messages, oldest first, JSON [`LinesPage`] (`limit` 1 to 1000,
//!   default 200; without `before`, the newest).
//! * `GET /api/jobs/{id}/output`: every message as `text/plain`, one per
//!   line, as a download named `KIND-ID.txt`, read from memory and the
//!   store a page at a time (constant memory whatever the job's size).
//!   `?follow=1` keeps the response open and adds messages as they come,
//!   until the job ends (`curl -N` then works like `tail -f`).
//!
//! Both answer 404 for another session's job, as the stream does.

use std::pin::Pin;

use app::ssr::Visitor;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::BytesMut;
use jobstream_engine::{EventKind, Job, JobId, Reader};
use jobstream_protocol::lines::{DEFAULT_LIMIT, MAX_LIMIT};
use jobstream_protocol::LinesPage;
use serde::Deserialize;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::stream::{into_body, Chunks};
use super::timers::StreamEnds;
use crate::error::ApiError;
use crate::metrics::StreamKind;
use crate::AppState;

/// The visitor's job `id`, or 404.
async fn owned_job(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
) -> Result<std::sync::Arc<Job>, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::JobNotFound)?;
    state
        .engine
        .find(visitor.session, id)
        .await?
        .ok_or(ApiError::JobNotFound)
}

fn query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
}

/// Query of `GET /api/jobs/{id}/lines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesQuery {
    /// Only lines with a sequence id below this.
    before: Option<u64>,
    /// How many, 1 to [`MAX_LIMIT`].
    limit: Option<usize>,
}

/// `GET /api/jobs/{id}/lines`.
pub async fn lines(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LinesPage>, ApiError> {
    let q: LinesQuery = query(raw.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    let job = owned_job(&state, &visitor, &id).await?;
    Ok(Json(state.engine.lines(&job, q.before, limit).await?))
}

/// Query of `GET /api/jobs/{id}/output`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    /// `1` (or `true`): keep the response open until the job ends.
    follow: Option<String>,
}

/// `GET /api/jobs/{id}/output`.
pub async fn output(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q: OutputQuery = query(raw.as_deref())?;
    let follow = match q.follow.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "follow: must be 1 or 0, got {other:?}"
            )))
        }
    };
    // Reading a long output holds a reader, as a stream does: it takes a
    // place among the open streams, before the job may be loaded.
    let ends = StreamEnds::new(&state, &visitor, StreamKind::Job)?;
    let job = owned_job(&state, &visitor, &id).await?;
    let body = Output {
        reader: state.engine.reader(&job, 0),
        until: (!follow).then(|| job.log.last_seq()),
        shutdown: Box::pin(state.shutdown.clone().cancelled_owned()),
        over: false,
        _ends: ends,
    };
    // Kinds are registered names and ids are URL-safe base64: nothing to
    // escape in the file name.
    let disposition = format!("attachment; filename=\"{}-{}.txt\"", job.kind, job.id);
    let mut response = Body::from_stream(into_body(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|_| ApiError::JobNotFound)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if follow {
        // Written as it comes: no proxy buffering, no compression (which
        // would hold lines back until its buffer fills).
        headers.insert(
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
    }
    Ok(response)
}

/// A job's messages as text, one write per page of events.
struct Output {
    reader: Reader,
    /// Without `follow`: the last event to send (the job's last when asked).
    until: Option<u64>,
    /// The server is shutting down: a following response ends.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set once the events up to `until` are sent.
    over: bool,
    /// Kept for the response's life: its place among the open streams.
    _ends: StreamEnds,
}

impl Chunks for Output {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.over
                || self
                    .until
                    .is_some_and(|until| self.reader.cursor() >= until)
            {
                return None;
            }
            let batch = tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return None,
                batch = self.reader.next() => batch?,
            };
            let mut text = BytesMut::new();
            for event in &batch.events {
                if self.until.is_some_and(|until| event.seq > until) {
                    self.over = true;
                    break;
                }
                if event.kind == EventKind::Message {
                    text.extend_from_slice(event.text.as_bytes());
                    text.extend_from_slice(b"\n");
                }
            }
            if !text.is_empty() {
                return Some(text.freeze());
            }
        }
    }
}
