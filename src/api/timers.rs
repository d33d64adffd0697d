//! When a stream says something other than events, or stops: a keep-alive
//! comment after silence, and an early end with a `retry:` hint when its
//! lifetime is over or the server shuts down. Also the stream's place among
//! the open streams, held for its life.
//!
//! The keep-alive comes from one tick shared by every stream of the
//! process ([`KeepAliveTicks`], every `JOBSTREAM_KEEPALIVE_SECS`), not from a
//! timer per stream: a stream that wrote nothing since the last tick sends
//! a comment. So an idle stream hears something every period, and a stream
//! is never silent for more than two periods, while tens of thousands of
//! idle streams cost one timer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use app::ssr::Visitor;
use axum::body::Bytes;
use jobstream_engine::sse;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, StreamLimit};
use crate::limits::{Refused, StreamPermit};
use crate::metrics::{self, OpenStream, StreamKind};
use crate::AppState;

/// What bounds one stream: its timers' settings and its permit.
pub struct StreamEnds {
    /// The process's keep-alive tick.
    ticks: watch::Receiver<u64>,
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
            ticks: state.ticks.subscribe(),
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
    /// The shared keep-alive tick.
    tick: watch::Receiver<u64>,
    /// Whether the stream wrote anything since the last tick.
    sent_since_tick: bool,
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
        Timers {
            shutdown: Box::pin(ends.shutdown.clone().cancelled_owned()),
            lifetime: Box::pin(tokio::time::sleep_until(ends.deadline)),
            tick: ends.ticks.clone(),
            // A stream begins with its headers: nothing is due before the
            // next tick but one.
            sent_since_tick: true,
        }
    }

    /// Notes that the stream just wrote: no keep-alive at the next tick.
    pub fn sent(&mut self) {
        self.sent_since_tick = true;
    }

    /// Waits until a timer is due. Cancel-safe: nothing is lost when the
    /// stream's `select!` takes another branch (`watch::Receiver::changed`
    /// is cancel-safe).
    pub async fn wait(&mut self) -> Due {
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return Due::End,
                () = self.lifetime.as_mut() => return Due::End,
                ticked = self.tick.changed() => {
                    if ticked.is_err() {
                        // The ticker is gone (the server is stopping): no
                        // more keep-alives; the other timers still end it.
                        std::future::pending::<()>().await;
                    }
                    if !std::mem::take(&mut self.sent_since_tick) {
                        return Due::KeepAlive;
                    }
                }
            }
        }
    }
}

/// The process's keep-alive tick: a counter bumped every period by one
/// task, which every open stream watches.
pub struct KeepAliveTicks;

impl KeepAliveTicks {
    /// Starts the tick, every `period`, until `shutdown`.
    pub fn start(period: Duration, shutdown: CancellationToken) -> Arc<watch::Sender<u64>> {
        let ticks = Arc::new(watch::channel(0u64).0);
        let ticker = Arc::clone(&ticks);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => ticker.send_modify(|n| *n += 1),
                }
            }
        });
        ticks
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
