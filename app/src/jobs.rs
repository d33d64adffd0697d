//! The session's job list, server-rendered and then kept live by one
//! `EventSource` on `/api/events` for all of the session's jobs (not one
//! per job: browsers allow only 6 connections per host over HTTP/1.1).

use jobstream_protocol::{routes, JobState, JobSummary};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::i18n::Strings;

/// Cancels one of the visitor's jobs. Returns its state afterwards
/// (`cancelled`, or still `running` until it reaches its next step).
#[server(endpoint = "cancel_job")]
pub async fn cancel_job(id: String) -> Result<JobState, ServerFnError> {
    use crate::ssr::UserError;
    use jobstream_engine::{Engine, JobId};

    let visitor = crate::ssr::visitor().await?;
    let fail = |e: UserError| e.into_server_error(visitor.locale);
    // An id that cannot be one is as unknown as any other.
    let id = id
        .parse::<JobId>()
        .map_err(|_| fail(UserError::JobNotFound))?;
    match expect_context::<Engine>().cancel(visitor.session, id).await {
        Ok(job) => Ok(job.log.state()),
        Err(e) => Err(fail(e.into())),
    }
}

/// `2026-11-24 17:05:09 UTC` for a Unix time in ms: the same text on the
/// server and in the browser, so hydration matches.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `850 ms`, `12 s`, `3 min 5 s`, `2 h 4 min`.
pub fn format_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// Puts `row` in `rows` (replacing the job's old row), newest first.
pub fn upsert(rows: &mut Vec<JobSummary>, row: JobSummary) {
    match rows.iter_mut().find(|r| r.id == row.id) {
        Some(old) => *old = row,
        None => {
            let at = rows
                .iter()
                .position(|r| r.created_at < row.created_at)
                .unwrap_or(rows.len());
            rows.insert(at, row);
        }
    }
}

/// The session's jobs as a table, kept live.
#[component]
pub fn JobList(strings: Strings, initial: Vec<JobSummary>) -> impl IntoView {
    let rows = RwSignal::new(initial);
    #[cfg(feature = "hydrate")]
    follow_feed(rows);
    let s = strings.clone();
    let header = move |key: &str| view! { <th scope="col">{s.t(key)}</th> };
    let empty = strings.t("jobs-empty");
    let table_label = strings.t("jobs-heading");
    view! {
        <table class="jobs" aria-label=table_label>
            <thead>
                <tr>
                    {header("col-kind")}
                    {header("col-state")}
                    {header("col-progress")}
                    {header("col-started")}
                    {header("col-duration")}
                    <td></td>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || rows.get()
                    key=|r| (r.id.clone(), r.state, r.progress.map(|p| (p * 1000.0) as u32), r.started_at, r.finished_at)
                    let:row
                >
                    <Row row strings=strings.clone()/>
                </For>
            </tbody>
        </table>
        <p class="notice" hidden=move || !rows.with(Vec::is_empty)>{empty}</p>
    }
}

#[component]
fn Row(row: JobSummary, strings: Strings) -> impl IntoView {
    let locale = strings.locale;
    let progress = row
        .progress
        .map_or_else(|| "–".to_owned(), |p| locale.percent(p));
    let started = row
        .started_at
        .map_or_else(|| strings.t("not-yet"), format_time);
    let duration = match (row.started_at, row.finished_at) {
        (Some(a), Some(b)) => format_duration(b.saturating_sub(a)),
        (Some(_), None) => "…".to_owned(),
        _ => "–".to_owned(),
    };
    let live = !row.is_terminal();
    let state_text = strings.t(&format!("state-{}", row.state));
    let cancel_id = row.id.clone();
    let cancel_text = strings.t("button-cancel");
    let cancel_label = format!("{cancel_text} {}", row.kind);
    view! {
        <tr data-job=row.id.clone()>
            <td><a href=routes::job_page(&row.id)>{row.kind.clone()}</a></td>
            <td class=format!("state state-{}", row.state)>{state_text}</td>
            <td class="progress" title=row.label.clone().unwrap_or_default()>{progress}</td>
            <td>{started}</td>
            <td>{duration}</td>
            <td>
                {live.then(|| view! {
                    <CancelForm id=cancel_id label=cancel_label text=cancel_text hidden=Signal::stored(false)/>
                })}
            </td>
        </tr>
    }
}

/// The form that cancels job `id`: posts to [`cancel_job`] without
/// JavaScript; once hydrated it asks the JSON API instead
/// ([`routes::JOB_CANCEL`], the same engine call with the same session),
/// which the bundle can already send (gloo-net, as for the lines API), so
/// the server function's client code stays out of it. What the answer says
/// is not shown: the job's state comes over its stream or the feed.
/// `hidden` hides its button.
#[component]
pub fn CancelForm(
    id: String,
    /// The button's accessible name.
    label: String,
    /// The button's text.
    text: String,
    hidden: Signal<bool>,
) -> impl IntoView {
    let pending = RwSignal::new(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let form = crate::forms::Submitted::take(&ev);
        #[cfg(feature = "hydrate")]
        if let Some(id) = form.get("id") {
            pending.set(true);
            leptos::task::spawn_local(async move {
                let request = gloo_net::http::Request::post(&routes::job_cancel(&id));
                // Failure or not, the button is usable again; the state
                // shown is the stream's.
                let _ = request.send().await;
                pending.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = form;
    };
    view! {
        <form method="post" action=CancelJob::PATH on:submit=on_submit>
            <input type="hidden" name="id" value=id/>
            <button type="submit" class="secondary" aria-label=label hidden=hidden
                disabled=move || pending.get()>
                {text}
            </button>
        </form>
    }
}

/// Opens the session's feed and upserts every job it reports.
#[cfg(feature = "hydrate")]
fn follow_feed(rows: RwSignal<Vec<JobSummary>>) {
    let on_job = move |data: String| {
        if let Ok(row) = serde_json::from_str::<JobSummary>(&data) {
            rows.update(|r| upsert(r, row));
        }
    };
    if let Ok(feed) = crate::live::Feed::open(routes::SESSION_EVENTS, on_job) {
        let feed = send_wrapper::SendWrapper::new(feed);
        on_cleanup(move || drop(feed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_at: u64) -> JobSummary {
        JobSummary {
            id: id.into(),
            kind: "demo".into(),
            state: JobState::Queued,
            error: None,
            progress: None,
            label: None,
            created_at,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn rows_stay_newest_first_and_update_in_place() {
        let mut rows = vec![row("b", 20), row("a", 10)];
        upsert(&mut rows, row("c", 30));
        upsert(&mut rows, row("m", 15));
        let mut changed = row("a", 10);
        changed.state = JobState::Running;
        upsert(&mut rows, changed);
        let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "m", "a"]);
        assert_eq!(rows[3].state, JobState::Running);
    }

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_971_909_000), "2026-11-29 17:05:09 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(12_400), "12 s");
        assert_eq!(format_duration(185_000), "3 min 5 s");
        assert_eq!(format_duration(7_440_000), "2 h 4 min");
    }
}
