//! `/jobs/{id}`: one job's state and output.
//!
//! The server renders a snapshot of the job's log (state and every retained
//! message) and remembers the last sequence id in it. Once hydrated, the
//! page opens an `EventSource` that resumes right after that id, so nothing
//! shown is repeated and nothing said in between is missed; on reload the
//! same happens again from the new snapshot.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::home::error_text;

/// One message of a job, as shown on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Its sequence id in the job's log (the SSE `id`).
    pub seq: u64,
    /// The message, shown as text.
    pub text: String,
}

/// What the job page shows, as of one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The retained messages, oldest first.
    pub lines: Vec<Line>,
    /// Events dropped from the log before the first retained one.
    pub dropped: u64,
    /// The last sequence id in the snapshot; the live stream resumes after it.
    pub last_seq: u64,
}

/// Whether a state is final.
pub fn is_terminal(state: &str) -> bool {
    matches!(state, "succeeded" | "failed")
}

/// The job, if it exists and belongs to the visitor's session. Another
/// session's job and an unknown id both give `None`.
#[server(endpoint = "job")]
pub async fn get_job(id: String) -> Result<Option<JobView>, ServerFnError> {
    use jobstream_engine::{Engine, EventKind, JobId};

    let visitor = crate::ssr::visitor().await?;
    let Ok(id) = id.parse::<JobId>() else {
        return Ok(None);
    };
    let engine = expect_context::<Engine>();
    let Some(job) = engine.get(visitor.session, id) else {
        return Ok(None);
    };
    let snap = job.log.snapshot();
    let lines = snap
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Message)
        .map(|e| Line {
            seq: e.seq,
            text: e.text.to_string(),
        })
        .collect();
    Ok(Some(JobView {
        id: job.id.to_string(),
        kind: job.kind.clone(),
        state: snap.state.as_str().to_owned(),
        error: snap.error,
        lines,
        dropped: snap.dropped,
        last_seq: snap.last_seq,
    }))
}

/// The job page.
#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    // Blocking: the server waits for the job before sending headers, so an
    // unknown job gets a real 404 status.
    let job = Resource::new_blocking(id, get_job);
    view! {
        <Suspense fallback=|| view! { <p>"Loading the job…"</p> }>
            {move || Suspend::new(async move {
                match job.await {
                    Ok(Some(view)) => view! { <JobDetail view/> }.into_any(),
                    Ok(None) => view! { <crate::NotFound/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{error_text(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn JobDetail(view: JobView) -> impl IntoView {
    let JobView {
        id,
        kind,
        state,
        error,
        lines,
        dropped,
        last_seq,
    } = view;
    let lines = RwSignal::new(lines);
    let state = RwSignal::new(state);
    let error = RwSignal::new(error);
    let lost = RwSignal::new(dropped);
    // Shown while the browser is reconnecting on its own.
    let connection = RwSignal::new(None::<&'static str>);

    #[cfg(feature = "hydrate")]
    if !is_terminal(&state.get_untracked()) {
        follow(&id, last_seq, lines, state, error, lost, connection);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (last_seq, connection.set(None));

    let title = format!("{kind} job · jobstream");
    view! {
        <Title text=title/>
        <h1>"Job " <code class="job-id">{id}</code></h1>
        <p class="meta">
            "Kind: " <strong>{kind}</strong> " · State: "
            <span role="status" class=move || format!("state state-{}", state.get())>{move || state.get()}</span>
            {move || connection.get().map(|c| view! { <span class="connection">" · " {c}</span> })}
        </p>
        {move || error.get().map(|e| view! { <p class="error">"Error: " {e}</p> })}
        {move || (lost.get() > 0).then(|| view! {
            <p class="notice">{format!("{} earlier events are no longer kept and are not shown.", lost.get())}</p>
        })}
        <ul class="output" aria-label="Job output">
            <For each=move || lines.get() key=|line| line.seq let:line>
                <li>{line.text}</li>
            </For>
        </ul>
        <p><a href="/">"Start another job"</a></p>
    }
}

/// Opens the live stream and feeds it into the page's signals; closes it
/// when the page goes away.
#[cfg(feature = "hydrate")]
fn follow(
    id: &str,
    last_seq: u64,
    lines: RwSignal<Vec<Line>>,
    state: RwSignal<String>,
    error: RwSignal<Option<String>>,
    lost: RwSignal<u64>,
    connection: RwSignal<Option<&'static str>>,
) {
    use crate::live::{LiveEvent, LiveStream};

    let url = format!("/api/jobs/{id}/events?last_event_id={last_seq}");
    let mut seen = last_seq;
    let on_event = move |event: LiveEvent| match event {
        LiveEvent::Message { seq, text } => {
            connection.set(None);
            // The server sends each event once; this guards the list's keys
            // against anything replayed twice all the same.
            if seq > seen {
                seen = seq;
                lines.update(|l| l.push(Line { seq, text }));
            }
        }
        LiveEvent::State(s) => state.set(s),
        LiveEvent::End { state: s, error: e } => {
            state.set(s);
            error.set(e);
        }
        LiveEvent::Gap { lost: n } => lost.update(|l| *l += n),
        LiveEvent::Reconnecting => connection.set(Some("reconnecting…")),
        LiveEvent::Closed => connection.set(None),
        LiveEvent::Failed => {
            connection.set(Some("the live connection was lost; reload to see more"))
        }
    };
    match LiveStream::open(&url, on_event) {
        Ok(stream) => {
            let stream = send_wrapper::SendWrapper::new(stream);
            on_cleanup(move || drop(stream));
        }
        Err(()) => connection.set(Some("live updates are unavailable in this browser")),
    }
}
