//! The browser's `EventSource` on a job stream, turned into [`LiveEvent`]s,
//! and on the session's job feed. Both use gloo-net's `EventSource` (one
//! subscription per event name) and read it in one local task.
//!
//! The server ends every stream with an [`event::END`] event (the final
//! state) and then a message whose data is [`CLOSE_SENTINEL`]. On that
//! sentinel the stream is closed, so the browser does not reconnect. A job
//! message whose text happens to be the sentinel arrives before `end` and is
//! shown like any other message. Event names and payloads are the
//! protocol's, so a change there fails the build here.
//!
//! Order: each subscription has its own queue, and the task reads them all.
//! The browser dispatches every SSE event as a task of its own, and the
//! reading task runs in the microtask checkpoint after each, so it always
//! sees events one at a time, in the order the server sent them.

use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::{select_all, StreamExt};
use gloo_net::eventsource::futures::{EventSource, EventSourceSubscription};
use gloo_net::eventsource::State;
use jobstream_protocol::event::AnyPayload;
use jobstream_protocol::{event, End, Gap, JobState, Progress, CLOSE_SENTINEL};
use web_sys::MessageEvent;

/// What happened on the stream.
pub enum LiveEvent {
    /// A job message with its sequence id.
    Message { seq: u64, text: String },
    /// The job changed state.
    State(JobState),
    /// The job ended.
    End(End),
    /// Events were dropped before this reader got them.
    Gap(Gap),
    /// The job reported progress.
    Progress(Progress),
    /// The connection dropped; the browser is reconnecting.
    Reconnecting,
    /// The stream ended normally and was closed.
    Closed,
    /// The browser gave up on the stream (e.g. the server answered 404).
    Failed,
}

/// The DOM's `error` event of an `EventSource`: fired on every dropped
/// connection, also while the browser is reconnecting (gloo-net's own error
/// item only reports a source that gave up).
const ERROR: &str = "error";

/// The event's data as an [`AnyPayload`]; `None` for data this page
/// cannot read (a newer server), which is then skipped rather than shown
/// wrong.
fn payload(e: &MessageEvent) -> Option<AnyPayload> {
    serde_json::from_str(&e.data().as_string()?).ok()
}

fn text(e: &MessageEvent) -> String {
    e.data().as_string().unwrap_or_default()
}

/// A task reading an `EventSource`. Dropping it stops the task, which
/// drops (and so closes) the source.
struct Reader(AbortHandle);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens `url` with a subscription to each of `names`, and runs `read` on
/// them in a local task until it returns or the [`Reader`] is dropped.
fn spawn_reader<F, Fut>(url: &str, names: &[&str], read: F) -> Result<Reader, ()>
where
    F: FnOnce(EventSource, Vec<EventSourceSubscription>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let mut source = EventSource::new(url).map_err(|_| ())?;
    let subscriptions = names
        .iter()
        .map(|name| source.subscribe(*name).map_err(|_| ()))
        .collect::<Result<Vec<_>, ()>>()?;
    let (handle, registration) = AbortHandle::new_pair();
    let task = Abortable::new(read(source, subscriptions), registration);
    leptos::task::spawn_local(async move {
        // Aborted: the reader was dropped; the source went with the task.
        let _ = task.await;
    });
    Ok(Reader(handle))
}

/// An open job stream. Dropping it closes the `EventSource`.
pub struct LiveStream {
    _reader: Reader,
}

impl LiveStream {
    /// Opens `url` and calls `on_event` for everything that arrives.
    pub fn open(url: &str, mut on_event: impl FnMut(LiveEvent) + 'static) -> Result<Self, ()> {
        let names = [
            event::MESSAGE,
            event::STATE,
            event::END,
            event::GAP,
            event::PROGRESS,
            ERROR,
        ];
        let reader = spawn_reader(url, &names, |source, subscriptions| async move {
            let mut events = select_all(subscriptions);
            // Set by `end`: only a sentinel after it closes the stream.
            let mut ended = false;
            while let Some(item) = events.next().await {
                let Ok((name, e)) = item else {
                    // gloo-net's word that the source is closed for good.
                    on_event(LiveEvent::Failed);
                    return;
                };
                let live = match name.as_str() {
                    event::MESSAGE => {
                        let data = text(&e);
                        if ended && data == CLOSE_SENTINEL {
                            drop(source);
                            on_event(LiveEvent::Closed);
                            return;
                        }
                        e.last_event_id()
                            .parse()
                            .ok()
                            .map(|seq| LiveEvent::Message { seq, text: data })
                    }
                    event::STATE => text(&e).parse().ok().map(LiveEvent::State),
                    event::END => payload(&e).and_then(AnyPayload::end).map(|end| {
                        ended = true;
                        LiveEvent::End(end)
                    }),
                    event::GAP => payload(&e).and_then(AnyPayload::gap).map(LiveEvent::Gap),
                    event::PROGRESS => payload(&e)
                        .and_then(AnyPayload::progress)
                        .map(LiveEvent::Progress),
                    ERROR => match source.state() {
                        State::Closed => {
                            on_event(LiveEvent::Failed);
                            return;
                        }
                        _ => Some(LiveEvent::Reconnecting),
                    },
                    _ => None,
                };
                if let Some(live) = live {
                    on_event(live);
                }
            }
        })?;
        Ok(LiveStream { _reader: reader })
    }
}

/// The session's job-list stream ([`jobstream_protocol::routes::SESSION_EVENTS`]):
/// calls back with the data of every [`event::JOB`] event. The browser
/// reconnects on its own when the server ends the stream; the server then
/// sends every job again. Dropping it closes the `EventSource`.
pub struct Feed {
    _reader: Reader,
}

impl Feed {
    /// Opens `url` and calls `on_job` with each [`event::JOB`] event's data.
    pub fn open(url: &str, mut on_job: impl FnMut(String) + 'static) -> Result<Self, ()> {
        let reader = spawn_reader(url, &[event::JOB], |source, subscriptions| async move {
            // Held for the task's life: dropping it would close the source.
            let _source = source;
            let mut jobs = select_all(subscriptions);
            while let Some(item) = jobs.next().await {
                match item {
                    Ok((_, e)) => on_job(text(&e)),
                    Err(_) => return, // closed for good
                }
            }
        })?;
        Ok(Feed { _reader: reader })
    }
}
