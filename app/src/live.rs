//! The browser's `EventSource` on a job stream, turned into [`LiveEvent`]s.
//!
//! The server ends every stream with an [`event::END`] event (the final
//! state) and then a message whose data is [`CLOSE_SENTINEL`]. On that
//! sentinel the stream is closed, so the browser does not reconnect. A job
//! message whose text happens to be the sentinel arrives before `end` and is
//! shown like any other message. Event names and payloads are the
//! protocol's, so a change there fails the build here.

use std::cell::Cell;
use std::rc::Rc;

use jobstream_protocol::{event, End, Gap, JobState, Progress, CLOSE_SENTINEL};
use serde::de::DeserializeOwned;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventSource, MessageEvent};

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

/// The event's data read as `T`; `None` for data this page cannot read
/// (a newer server), which is then skipped rather than shown wrong.
fn payload<T: DeserializeOwned>(e: &MessageEvent) -> Option<T> {
    serde_json::from_str(&e.data().as_string()?).ok()
}

type Handler = Closure<dyn FnMut(MessageEvent)>;

/// An open stream. Dropping it closes the `EventSource`.
pub struct LiveStream {
    source: EventSource,
    // The JS callbacks must live as long as the source may call them.
    _handlers: Vec<Handler>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.source.close();
    }
}

impl LiveStream {
    /// Opens `url` and calls `on_event` for everything that arrives.
    pub fn open(url: &str, on_event: impl FnMut(LiveEvent) + 'static) -> Result<Self, ()> {
        let source = EventSource::new(url).map_err(|_| ())?;
        let on_event = Rc::new(std::cell::RefCell::new(on_event));
        let emit = {
            let on_event = Rc::clone(&on_event);
            move |e: LiveEvent| (on_event.borrow_mut())(e)
        };
        let emit = Rc::new(emit);
        let ended = Rc::new(Cell::new(false));
        let text = |e: &MessageEvent| e.data().as_string().unwrap_or_default();

        let mut handlers = Vec::new();
        let mut listen = |name: &str, mut f: Box<dyn FnMut(MessageEvent)>| {
            let closure = Closure::wrap(
                Box::new(move |e: MessageEvent| f(e)) as Box<dyn FnMut(MessageEvent)>
            );
            // Adding a listener to a live EventSource does not fail.
            let _ = source.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
            handlers.push(closure);
        };

        {
            let (emit, ended, source) = (Rc::clone(&emit), Rc::clone(&ended), source.clone());
            listen(
                event::MESSAGE,
                Box::new(move |e| {
                    let data = text(&e);
                    if ended.get() && data == CLOSE_SENTINEL {
                        source.close();
                        emit(LiveEvent::Closed);
                        return;
                    }
                    if let Ok(seq) = e.last_event_id().parse() {
                        emit(LiveEvent::Message { seq, text: data });
                    }
                }),
            );
        }
        {
            let emit = Rc::clone(&emit);
            listen(
                event::STATE,
                Box::new(move |e| {
                    if let Ok(state) = text(&e).parse() {
                        emit(LiveEvent::State(state));
                    }
                }),
            );
        }
        {
            let (emit, ended) = (Rc::clone(&emit), Rc::clone(&ended));
            listen(
                event::END,
                Box::new(move |e| {
                    if let Some(end) = payload(&e) {
                        ended.set(true);
                        emit(LiveEvent::End(end));
                    }
                }),
            );
        }
        {
            let emit = Rc::clone(&emit);
            listen(
                event::GAP,
                Box::new(move |e| {
                    if let Some(gap) = payload(&e) {
                        emit(LiveEvent::Gap(gap));
                    }
                }),
            );
        }
        {
            let emit = Rc::clone(&emit);
            listen(
                event::PROGRESS,
                Box::new(move |e| {
                    if let Some(p) = payload(&e) {
                        emit(LiveEvent::Progress(p));
                    }
                }),
            );
        }

        let on_error = {
            let (emit, source) = (Rc::clone(&emit), source.clone());
            Closure::wrap(Box::new(move |_: Event| {
                if source.ready_state() == EventSource::CLOSED {
                    emit(LiveEvent::Failed);
                } else {
                    emit(LiveEvent::Reconnecting);
                }
            }) as Box<dyn FnMut(Event)>)
        };
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));

        Ok(LiveStream {
            source,
            _handlers: handlers,
            _on_error: on_error,
        })
    }
}

/// The session's job-list stream ([`jobstream_protocol::routes::SESSION_EVENTS`]):
/// calls back with the data of every [`event::JOB`] event. The browser reconnects on its own when the server
/// ends the stream; the server then sends every job again. Dropping it
/// closes the `EventSource`.
pub struct Feed {
    source: EventSource,
    _handler: Handler,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.source.close();
    }
}

impl Feed {
    /// Opens `url` and calls `on_job` with each [`event::JOB`] event's data.
    pub fn open(url: &str, mut on_job: impl FnMut(String) + 'static) -> Result<Self, ()> {
        let source = EventSource::new(url).map_err(|_| ())?;
        let handler = Closure::wrap(Box::new(move |e: MessageEvent| {
            on_job(e.data().as_string().unwrap_or_default());
        }) as Box<dyn FnMut(MessageEvent)>);
        let _ =
            source.add_event_listener_with_callback(event::JOB, handler.as_ref().unchecked_ref());
        Ok(Feed {
            source,
            _handler: handler,
        })
    }
}
