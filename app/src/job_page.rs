//! `/jobs/{id}`: one job's state and output.
//!
//! The server renders a snapshot of the job's log (state and every retained
//! message) and remembers the last sequence id in it. Once hydrated, the
//! page opens an `EventSource` that resumes right after that id, so nothing
//! shown is repeated and nothing said in between is missed; on reload the
//! same happens again from the new snapshot.

use jobstream_protocol::JobState;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::i18n::Strings;
use crate::jobs::CancelJob;
use crate::settings::{error_text, LanguageSwitcher};

/// One message of a job, as shown on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Its sequence id in the job's log (the SSE `id`).
    pub seq: u64,
    /// The message, shown as text.
    pub text: String,
}

/// What the job page shows, as of one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Last reported progress, 0 to 1.
    pub progress: Option<f64>,
    /// What it was doing then.
    pub label: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The retained messages, oldest first.
    pub lines: Vec<Line>,
    /// Events dropped from the log before the first retained one.
    pub dropped: u64,
    /// The last sequence id in the snapshot; the live stream resumes after it.
    pub last_seq: u64,
}

/// The job page's data: its texts, and the job if it exists and belongs
/// to the visitor's session (another session's job and an unknown id both
/// give `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobData {
    /// The page's texts in the visitor's language.
    pub strings: Strings,
    /// The job.
    pub job: Option<JobView>,
}

/// The job page's data.
#[server(endpoint = "job")]
pub async fn get_job(id: String) -> Result<JobData, ServerFnError> {
    use crate::ssr::UserError;
    use jobstream_engine::{Engine, EventKind, JobId};

    let visitor = crate::ssr::visitor().await?;
    let strings = crate::i18n::strings(visitor.locale);
    let Ok(id) = id.parse::<JobId>() else {
        return Ok(JobData { strings, job: None });
    };
    let engine = expect_context::<Engine>();
    let found = engine
        .find(visitor.session, id)
        .await
        .map_err(|e| UserError::from(e).into_server_error(visitor.locale))?;
    let Some(job) = found else {
        return Ok(JobData { strings, job: None });
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
    let (progress, label) = match snap.progress {
        Some(p) => (Some(p.fraction), p.label),
        None => (None, None),
    };
    Ok(JobData {
        strings,
        job: Some(JobView {
            id: job.id.to_string(),
            kind: job.kind.clone(),
            state: snap.state,
            progress,
            label,
            error: snap.error,
            lines,
            dropped: snap.dropped,
            last_seq: snap.last_seq,
        }),
    })
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
        <Suspense fallback=|| view! { <p>"…"</p> }>
            {move || Suspend::new(async move {
                match job.await {
                    Ok(JobData { strings, job: Some(view) }) => view! { <JobDetail view strings/> }.into_any(),
                    Ok(JobData { strings, job: None }) => view! { <crate::NotFound strings/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{error_text(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn JobDetail(view: JobView, strings: Strings) -> impl IntoView {
    let JobView {
        id,
        kind,
        state,
        progress,
        label,
        error,
        lines,
        dropped,
        last_seq,
    } = view;
    let lines = RwSignal::new(lines);
    let state = RwSignal::new(state);
    let progress = RwSignal::new(progress);
    let label = RwSignal::new(label);
    let error = RwSignal::new(error);
    let lost = RwSignal::new(dropped);
    // The Fluent key of what is shown while the browser is reconnecting on
    // its own (the page's texts are all at hand in the browser).
    let connection = RwSignal::new(None::<&'static str>);
    let cancel = ServerAction::<CancelJob>::new();

    #[cfg(feature = "hydrate")]
    if !state.get_untracked().is_terminal() {
        let live = Live {
            lines,
            state,
            progress,
            label,
            error,
            lost,
            connection,
        };
        follow(&id, last_seq, live);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (last_seq, connection.set(None));

    let locale = strings.locale;
    let title = format!("{kind} · jobstream");
    let s = strings.clone();
    let state_text = move || s.t(&format!("state-{}", state.get()));
    let connection_text = {
        let s = strings.clone();
        move || connection.get().map(|key| s.t(key))
    };
    let lost_text = {
        let s = strings.clone();
        move || {
            let lost = lost.get();
            (lost > 0).then(|| s.fill("job-lost", &[("lost", &locale.int(lost))]))
        }
    };
    let percent = move || {
        progress
            .get()
            .map(|p| (p.clamp(0.0, 1.0) * 100.0).floor() as u32)
    };
    let s = strings.clone();
    let cancel_label = strings.t("button-cancel");
    let cancel_id = id.clone();
    let back = strings.t("job-back");
    let error_label = strings.t("job-error");
    view! {
        <div lang=locale.tag()>
            <Title text=title/>
            <LanguageSwitcher strings=strings.clone()/>
            <h1>{strings.t("job-heading")} " " <code class="job-id">{id}</code></h1>
            <p class="meta">
                {strings.t("col-kind")} ": " <strong>{kind}</strong> " · " {strings.t("col-state")} ": "
                <span role="status" data-state=move || state.get().as_str() class=move || format!("state state-{}", state.get())>{state_text}</span>
                {move || connection_text().map(|c| view! { <span class="connection">" · " {c}</span> })}
            </p>
            {move || (progress.get().is_some() || state.get() == JobState::Running).then(|| view! {
                <div class="progress-row">
                    <div class="progressbar" role="progressbar" aria-label=s.t("job-progress")
                        aria-valuemin="0" aria-valuemax="100"
                        aria-valuenow=move || percent().unwrap_or(0).to_string()
                        aria-valuetext=move || {
                            let p = locale.percent(progress.get().unwrap_or(0.0));
                            match label.get() { Some(l) => format!("{p} – {l}"), None => p }
                        }>
                        <div class="bar" style=move || format!("width: {}%", percent().unwrap_or(0))></div>
                    </div>
                    <span class="percent">{move || locale.percent(progress.get().unwrap_or(0.0))}</span>
                    <span class="label">{move || label.get()}</span>
                </div>
            })}
            <ActionForm action=cancel>
                <input type="hidden" name="id" value=cancel_id/>
                <button type="submit" class="secondary" hidden=move || state.get().is_terminal()
                    disabled=move || cancel.pending().get()>{cancel_label}</button>
            </ActionForm>
            {move || error.get().map(|e| view! { <p class="error">{error_label.clone()} ": " {e}</p> })}
            {move || lost_text().map(|text| view! { <p class="notice">{text}</p> })}
            // The list's accessible name stays English in every language:
            // tests and outside checks find the output by it.
            <ul class="output" aria-label="Job output">
                <For each=move || lines.get() key=|line| line.seq let:line>
                    <li>{line.text}</li>
                </For>
            </ul>
            <p><a href="/">{back}</a></p>
        </div>
    }
    .into_any()
}

/// The signals the live stream feeds.
#[cfg(feature = "hydrate")]
#[derive(Clone, Copy)]
struct Live {
    lines: RwSignal<Vec<Line>>,
    state: RwSignal<JobState>,
    progress: RwSignal<Option<f64>>,
    label: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    lost: RwSignal<u64>,
    connection: RwSignal<Option<&'static str>>,
}

/// Opens the live stream and feeds it into the page's signals; closes it
/// when the page goes away.
#[cfg(feature = "hydrate")]
fn follow(id: &str, last_seq: u64, live: Live) {
    use crate::live::{LiveEvent, LiveStream};
    use jobstream_protocol::routes;

    // The query parameter, not `Last-Event-ID`: an `EventSource` cannot set
    // headers on its first request.
    let url = format!(
        "{}?{}={last_seq}",
        routes::job_events(id),
        routes::LAST_EVENT_ID_PARAM
    );
    let mut seen = last_seq;
    let on_event = move |event: LiveEvent| match event {
        LiveEvent::Message { seq, text } => {
            live.connection.set(None);
            // The server sends each event once; this guards the list's keys
            // against anything replayed twice all the same.
            if seq > seen {
                seen = seq;
                live.lines.update(|l| l.push(Line { seq, text }));
            }
        }
        LiveEvent::State(s) => live.state.set(s),
        LiveEvent::End(end) => {
            live.state.set(end.state);
            live.error.set(end.error);
        }
        LiveEvent::Gap(gap) => live.lost.update(|l| *l += gap.lost),
        LiveEvent::Progress(p) => {
            live.progress.set(Some(p.fraction));
            live.label.set(p.label);
        }
        LiveEvent::Reconnecting => live.connection.set(Some("live-reconnecting")),
        LiveEvent::Closed => live.connection.set(None),
        LiveEvent::Failed => live.connection.set(Some("live-lost")),
    };
    match LiveStream::open(&url, on_event) {
        Ok(stream) => {
            let stream = send_wrapper::SendWrapper::new(stream);
            on_cleanup(move || drop(stream));
        }
        Err(()) => live.connection.set(Some("live-unavailable")),
    }
}
