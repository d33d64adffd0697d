//! The browser's `EventSource` on a job stream, turned into [`LiveEvent`]s.
//!
//! The server ends every stream with an `end` event (the final state) and
//! then a message whose data is [`CLOSE_SENTINEL`]. On that sentinel the
//! stream is closed, so the browser does not reconnect. A job message whose
//! text happens to be the sentinel arrives before `end` and is shown like
//! any other message.

use std::cell::Cell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventSource, MessageEvent};

use crate::CLOSE_SENTINEL;

/// What happened on the stream.
pub enum LiveEvent {
    /// A job message with its sequence id.
    Message { seq: u64, text: String },
    /// The job changed state.
    State(String),
    /// The job ended.
    End {
        state: String,
        error: Option<String>,
    },
    /// Events were dropped before this reader got them.
    Gap { lost: u64 },
    /// The job reported progress.
    Progress {
        fraction: f64,
        label: Option<String>,
    },
    /// The connection dropped; the browser is reconnecting.
    Reconnecting,
    /// The stream ended normally and was closed.
    Closed,
    /// The browser gave up on the stream (e.g. the server answered 404).
    Failed,
}

#[derive(Deserialize)]
struct End {
    state: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Gap {
    lost: u64,
}

#[derive(Deserialize)]
struct Progress {
    fraction: f64,
    label: Option<String>,
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
                "message",
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
            listen("state", Box::new(move |e| emit(LiveEvent::State(text(&e)))));
        }
        {
            let (emit, ended) = (Rc::clone(&emit), Rc::clone(&ended));
            listen(
                "end",
                Box::new(move |e| {
                    if let Ok(end) = serde_json::from_str::<End>(&text(&e)) {
                        ended.set(true);
                        emit(LiveEvent::End {
                            state: end.state,
                            error: end.error,
                        });
                    }
                }),
            );
        }
        {
            let emit = Rc::clone(&emit);
            listen(
                "gap",
                Box::new(move |e| {
                    if let Ok(gap) = serde_json::from_str::<Gap>(&text(&e)) {
                        emit(LiveEvent::Gap { lost: gap.lost });
                    }
                }),
            );
        }

        {
            let emit = Rc::clone(&emit);
            listen(
                "progress",
                Box::new(move |e| {
                    if let Ok(p) = serde_json::from_str::<Progress>(&text(&e)) {
                        emit(LiveEvent::Progress {
                            fraction: p.fraction,
                            label: p.label,
                        });
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

/// The session's job-list stream (`/api/events`): calls back with the data
/// of every `job` event. The browser reconnects on its own when the server
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
    /// Opens `url` and calls `on_job` with each `job` event's data.
    pub fn open(url: &str, mut on_job: impl FnMut(String) + 'static) -> Result<Self, ()> {
        let source = EventSource::new(url).map_err(|_| ())?;
        let handler = Closure::wrap(Box::new(move |e: MessageEvent| {
            on_job(e.data().as_string().unwrap_or_default());
        }) as Box<dyn FnMut(MessageEvent)>);
        let _ = source.add_event_listener_with_callback("job", handler.as_ref().unchecked_ref());
        Ok(Feed {
            source,
            _handler: handler,
        })
    }
}
