//! `/jobs/{id}`: one job's state, facts and output.
//!
//! The server renders the job's state, times and params, and its newest
//! [`PAGE_LINES`](jobstream_protocol::lines::PAGE_LINES) lines as a log view (see [`crate::log_view`]), all as of
//! one status of its log whose last sequence id it remembers. Once
//! hydrated, the page opens an `EventSource` that resumes right after that
//! id, so nothing shown is repeated and nothing said in between is missed;
//! older lines are fetched page by page on demand.

use jobstream_protocol::JobState;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::i18n::Strings;
use crate::job_facts::{JobParams, JobTimes};
use crate::jobs::CancelForm;
use crate::log_view::{LogHandle, LogStart, LogView};
use crate::settings::{error_text, LanguageSwitcher};

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
    /// Its params as submitted (defaults filled in), name and value as shown.
    pub params: Vec<(String, String)>,
    /// When it was submitted (Unix ms).
    pub created_at: u64,
    /// When it started running (Unix ms).
    pub started_at: Option<u64>,
    /// When it ended (Unix ms).
    pub finished_at: Option<u64>,
    /// How many of the newest lines the page shows (at most
    /// [`PAGE_LINES`](jobstream_protocol::lines::PAGE_LINES)).
    pub shown: usize,
    /// Whether older lines exist before them.
    pub more: bool,
    /// The last sequence id of the log at that instant; the live stream
    /// resumes after it.
    pub last_seq: u64,
    /// The number of the last line shown (0 for none): live lines count on.
    pub last_n: u64,
    /// The shown lines as the list's HTML, made on the server. Never
    /// serialized: the page carries the rows once, in its HTML, not again
    /// in the island's props. Empty in the browser, where the rows are
    /// already in the list.
    #[serde(skip)]
    pub rows_html: String,
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
    use crate::job_facts::param_text;
    use crate::ssr::UserError;
    use jobstream_engine::{Engine, JobId};
    use jobstream_protocol::lines::PAGE_LINES;

    let visitor = crate::ssr::visitor().await?;
    let strings = crate::i18n::strings(visitor.locale);
    let Ok(id) = id.parse::<JobId>() else {
        return Ok(JobData { strings, job: None });
    };
    let engine = expect_context::<Engine>();
    let fail = |e| UserError::from(e).into_server_error(visitor.locale);
    let Some(job) = engine.find(visitor.session, id).await.map_err(fail)? else {
        return Ok(JobData { strings, job: None });
    };
    let status = job.log.status();
    // The lines up to that status's last event, no newer: the live stream
    // resumes after it and would repeat them.
    let page = engine
        .lines(&job, Some(status.last_seq + 1), PAGE_LINES)
        .await
        .map_err(fail)?;
    let params = match &job.params {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(name, value)| (name.clone(), param_text(value)))
            .collect(),
        _ => Vec::new(),
    };
    let (progress, label) = match status.progress {
        Some(p) => (Some(p.fraction), p.label),
        None => (None, None),
    };
    Ok(JobData {
        strings,
        job: Some(JobView {
            id: job.id.to_string(),
            kind: job.kind.clone(),
            state: status.state,
            progress,
            label,
            error: status.error,
            params,
            created_at: job.created_at,
            started_at: status.started_at,
            finished_at: status.finished_at,
            shown: page.lines.len(),
            more: page.more,
            last_seq: status.last_seq,
            last_n: page.lines.last().map_or(0, |l| l.n),
            rows_html: crate::log_view::rows_html(&page.lines),
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

/// The page around the job: its title and the language switcher, plain
/// HTML, and the live part, an island.
#[component]
fn JobDetail(view: JobView, strings: Strings) -> impl IntoView {
    let title = format!("{} · jobstream", view.kind);
    let lang = strings.locale.tag();
    view! {
        <div lang=lang>
            <Title text=title/>
            <LanguageSwitcher strings=strings.clone()/>
            <JobLive view strings/>
        </div>
    }
    // Erased: the page's type is deep enough to overflow the server
    // crate's query depth. Not in the bundle (only islands are).
    .into_any()
}

/// What changes while the page is open: state, progress, times, cancel,
/// error, and the log view with its live stream. An island: `view` travels
/// in the page as JSON, without its rows (`rows_html` is not serialized;
/// the rows are in the HTML once).
#[island]
fn JobLive(view: JobView, strings: Strings) -> impl IntoView {
    let JobView {
        id,
        kind,
        state,
        progress,
        label,
        error,
        params,
        created_at,
        started_at,
        finished_at,
        shown,
        more,
        last_seq,
        last_n,
        rows_html,
    } = view;
    let start = LogStart {
        shown,
        more,
        last_seq,
        last_n,
    };
    let log = LogHandle::new(&id, start);
    let state = RwSignal::new(state);
    let progress = RwSignal::new(progress);
    let label = RwSignal::new(label);
    let error = RwSignal::new(error);
    let started = RwSignal::new(started_at);
    let finished = RwSignal::new(finished_at);
    // Events lost for good (a `gap` on the live stream).
    let lost = RwSignal::new(0u64);
    // The Fluent key of what is shown while the browser is reconnecting on
    // its own (the page's texts are all at hand in the browser).
    let connection = RwSignal::new(None::<&'static str>);

    #[cfg(feature = "hydrate")]
    if !state.get_untracked().is_terminal() {
        let live = Live {
            log: log.clone(),
            state,
            progress,
            label,
            error,
            started,
            finished,
            lost,
            connection,
        };
        follow(&id, last_seq, live);
    }
    #[cfg(not(feature = "hydrate"))]
    connection.set(None);

    let locale = strings.locale;
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
            <h1>{strings.t("job-heading")} " " <code class="job-id">{id.clone()}</code></h1>
            <p class="meta">
                {strings.t("col-kind")} ": " <strong>{kind}</strong> " · " {strings.t("col-state")} ": "
                <span role="status" data-state=move || state.get().as_str() class=move || format!("state state-{}", state.get())>{state_text}</span>
                {move || connection_text().map(|c| view! { <span class="connection">" · " {c}</span> })}
            </p>
            <div class="job-facts">
                <JobTimes strings=strings.clone() created_at started finished/>
                <JobParams strings=strings.clone() params/>
            </div>
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
            <CancelForm id=cancel_id label=cancel_label.clone() text=cancel_label
                hidden=Signal::derive(move || state.get().is_terminal())/>
            {move || error.get().map(|e| view! { <p class="error">{error_label.clone()} ": " {e}</p> })}
            {move || lost_text().map(|text| view! { <p class="notice">{text}</p> })}
            <LogView id strings=strings.clone() log start rows_html/>
            <p><a href="/">{back}</a></p>
    }
}

/// The signals and the log the live stream feeds.
#[cfg(feature = "hydrate")]
#[derive(Clone)]
struct Live {
    log: LogHandle,
    state: RwSignal<JobState>,
    progress: RwSignal<Option<f64>>,
    label: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    started: RwSignal<Option<u64>>,
    finished: RwSignal<Option<u64>>,
    lost: RwSignal<u64>,
    connection: RwSignal<Option<&'static str>>,
}

/// Opens the live stream and feeds it into the page's signals and log;
/// closes it when the page goes away.
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
    // The stream carries no times: the browser's clock stands in for the
    // server's when the job starts or ends while the page is open.
    let now = || Some(web_sys::js_sys::Date::now() as u64);
    let connection = live.connection;
    let on_event = move |event: LiveEvent| match event {
        LiveEvent::Message { seq, text } => {
            live.connection.set(None);
            live.log.push(seq, text);
        }
        LiveEvent::State(s) => {
            live.state.set(s);
            if s == JobState::Running && live.started.get_untracked().is_none() {
                live.started.set(now());
            }
        }
        LiveEvent::End(end) => {
            live.state.set(end.state);
            live.error.set(end.error);
            if live.finished.get_untracked().is_none() {
                live.finished.set(now());
            }
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
        Err(()) => connection.set(Some("live-unavailable")),
    }
}
