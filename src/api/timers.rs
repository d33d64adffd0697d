//! When a stream says something other than events, or stops: a keep-alive
//! comment after silence, and an early end with a `retry:` hint when its
//! lifetime is over or the server shuts down. Also the stream's place among
//! the open streams, held for its life.

use std::pin::Pin;
use std::time::Duration;

use app::ssr::Visitor;
use axum::body::Bytes;
use jobstream_engine::sse;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, StreamLimit};
use crate::limits::{Refused, StreamPermit};
use crate::metrics::{self, OpenStream, StreamKind};
use crate::AppState;

/// What bounds one stream: its timers' settings and its permit.
pub struct StreamEnds {
    /// Silence after which a keep-alive comment is sent.
    keep_alive: Duration,
    /// The stream's lifetime ends here: it closes with a `retry:` hint and
    /// the client resumes from its last id, losing nothing.
    deadline: Instant,
    /// Shutdown: likewise.
    shutdown: CancellationToken,
    /// The stream's place among the open streams, given back on drop.
    _permit: StreamPermit,
    /// Counted among the open streams of its kind while it lives.
    _open: OpenStream,
}

impl StreamEnds {
    /// Takes a place among the open streams (429 when there is none).
    pub fn new(state: &AppState, visitor: &Visitor, kind: StreamKind) -> Result<Self, ApiError> {
        let permit = state.streams.acquire(visitor.session).map_err(|refused| {
            ApiError::TooManyStreams(match refused {
                Refused::PerOwner { limit } => {
                    metrics::refused("session");
                    StreamLimit::Session(limit)
                }
                Refused::Total { limit } => {
                    metrics::refused("server");
                    StreamLimit::Server(limit)
                }
            })
        })?;
        Ok(StreamEnds {
            keep_alive: state.config.keep_alive,
            deadline: Instant::now() + state.config.stream_lifetime,
            shutdown: state.shutdown.clone(),
            _permit: permit,
            _open: OpenStream::new(kind),
        })
    }
}

/// How soon a client whose stream we ended should come back.
const RETRY_AFTER_END_MS: u64 = 1000;

/// A stream's two timers, set up once per stream (not once per write):
/// the end of its lifetime, and a keep-alive tick that fires at most once
/// per keep-alive period however many events are sent.
pub struct Timers {
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
pub enum Due {
    /// Nothing was written for a keep-alive period.
    KeepAlive,
    /// The stream's lifetime is over, or the server is shutting down.
    End,
}

impl Timers {
    /// The timers of a stream bounded by `ends`, starting now.
    pub fn new(ends: &StreamEnds) -> Self {
        let now = Instant::now();
        Timers {
            shutdown: Box::pin(ends.shutdown.clone().cancelled_owned()),
            lifetime: Box::pin(tokio::time::sleep_until(ends.deadline)),
            tick: Box::pin(tokio::time::sleep_until(now + ends.keep_alive)),
            keep_alive: ends.keep_alive,
            sent_at: now,
        }
    }

    /// Notes that the stream just wrote: the keep-alive waits again.
    pub fn sent(&mut self) {
        self.sent_at = Instant::now();
    }

    /// Waits until a timer is due. Cancel-safe: nothing is lost when the
    /// stream's `select!` takes another branch.
    pub async fn wait(&mut self) -> Due {
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
pub fn on_due(due: Due) -> (Bytes, bool) {
    match due {
        Due::KeepAlive => (Bytes::from_static(sse::KEEP_ALIVE), true),
        Due::End => (sse::retry(RETRY_AFTER_END_MS), false),
    }
}
