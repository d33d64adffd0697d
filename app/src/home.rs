//! The home page: start a job of any kind, see all of the session's jobs
//! (live), set your display name and language.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::i18n::{Locale, Strings};
use crate::jobs::{JobList, JobRow};

/// Everything the home page shows, read in one go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HomeView {
    /// The page's texts in the visitor's language.
    pub strings: Strings,
    /// The visitor's display name.
    pub display_name: String,
    /// The session's newest jobs, newest first.
    pub jobs: Vec<JobRow>,
}

/// Jobs the home page lists.
pub const LISTED_JOBS: usize = 100;

/// The home page's data for the visitor.
#[server(endpoint = "home")]
pub async fn home_data() -> Result<HomeView, ServerFnError> {
    use jobstream_engine::Engine;

    let visitor = crate::ssr::visitor().await?;
    let engine = expect_context::<Engine>();
    let jobs = engine
        .list(visitor.session, LISTED_JOBS)
        .await
        .map_err(|_| ServerFnError::new("the job store is unavailable; try again shortly"))?;
    Ok(HomeView {
        strings: crate::i18n::strings(visitor.locale),
        display_name: visitor.display_name,
        jobs: jobs.into_iter().map(JobRow::from).collect(),
    })
}

/// A field's error, in the visitor's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMessage {
    /// The form field.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Starts a job of `kind` with the form's fields, then takes the visitor to
/// its page. Invalid fields come back as messages and nothing is created.
#[allow(clippy::too_many_arguments)] // one argument per form field
#[server(endpoint = "start_job")]
pub async fn start_job(
    kind: Option<String>,
    steps: Option<String>,
    interval_ms: Option<String>,
    limit: Option<String>,
    at: Option<String>,
    message: Option<String>,
    messages: Option<String>,
    repeat: Option<String>,
) -> Result<Vec<FieldMessage>, ServerFnError> {
    use crate::i18n::{tr, Arg};
    use jobstream_engine::{Engine, NewJob, PlanError, Problem, SubmitError};

    let visitor = crate::ssr::visitor().await?;
    let l = visitor.locale;
    let kind = kind.unwrap_or_else(|| "demo".to_owned());
    let mut errors = Vec::new();
    let mut params = serde_json::Map::new();
    let mut number = |field: &str, value: Option<String>, errors: &mut Vec<FieldMessage>| {
        let value = value.unwrap_or_default();
        let value = value.trim();
        if value.is_empty() {
            return; // the kind's default
        }
        match value.parse::<i64>() {
            Ok(n) => {
                params.insert(field.to_owned(), n.into());
            }
            Err(_) => errors.push(FieldMessage {
                field: field.to_owned(),
                message: tr(l, "err-number", &[]),
            }),
        }
    };
    match kind.as_str() {
        "demo" => {
            number("steps", steps, &mut errors);
            number("interval_ms", interval_ms, &mut errors);
        }
        "echo" => {
            number("repeat", repeat, &mut errors);
            number("interval_ms", interval_ms, &mut errors);
            let lines: Vec<String> = messages
                .unwrap_or_default()
                .lines()
                .map(str::trim_end)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            params.insert("messages".to_owned(), lines.into());
        }
        "primes" => number("limit", limit, &mut errors),
        "fail" => {
            number("steps", steps, &mut errors);
            number("at", at, &mut errors);
            number("interval_ms", interval_ms, &mut errors);
            if let Some(m) = message.filter(|m| !m.trim().is_empty()) {
                params.insert("message".to_owned(), m.trim().into());
            }
        }
        _ => errors.push(FieldMessage {
            field: "kind".to_owned(),
            message: tr(l, "err-kind", &[]),
        }),
    }
    if !errors.is_empty() {
        return Ok(errors);
    }
    let engine = expect_context::<Engine>();
    let submitted = engine
        .submit(NewJob {
            owner: visitor.session,
            kind,
            params: params.into(),
            display_name: visitor.display_name,
            locale: l.tag().to_owned(),
        })
        .await;
    match submitted {
        Ok(job) => {
            leptos_axum::redirect(&format!("/jobs/{}", job.id));
            Ok(Vec::new())
        }
        Err(SubmitError::Plan(PlanError::BadParams { field, problem, .. })) => {
            let message = match &problem {
                Problem::OutOfRange { min, max, .. } => tr(
                    l,
                    "err-range",
                    &[
                        ("min", Arg::Text(&min.to_string())),
                        ("max", Arg::Text(&max.to_string())),
                    ],
                ),
                Problem::TooLong { max, .. } => {
                    tr(l, "err-too-long", &[("max", Arg::Text(&max.to_string()))])
                }
                Problem::Empty => tr(l, "err-empty", &[]),
                Problem::NotANumber => tr(l, "err-number", &[]),
                Problem::Invalid(detail) => tr(l, "err-invalid", &[("detail", Arg::Text(detail))]),
            };
            // `messages[3]` is a line of the `messages` field.
            let field = field.unwrap_or_else(|| "kind".to_owned());
            let field = field.split('[').next().unwrap_or_default().to_owned();
            Ok(vec![FieldMessage { field, message }])
        }
        Err(SubmitError::Plan(PlanError::UnknownKind { .. })) => Ok(vec![FieldMessage {
            field: "kind".to_owned(),
            message: tr(l, "err-kind", &[]),
        }]),
        Err(e) => {
            expect_context::<leptos_axum::ResponseOptions>()
                .set_status(http::StatusCode::SERVICE_UNAVAILABLE);
            Err(ServerFnError::new(tr(
                l,
                "err-busy",
                &[("detail", Arg::Text(&e.to_string()))],
            )))
        }
    }
}

/// Sets the visitor's display name (kept in a cookie). Returns a message
/// saying so, or what is wrong with the name.
#[server(endpoint = "set_display_name")]
pub async fn set_display_name(name: String) -> Result<String, ServerFnError> {
    let response = expect_context::<leptos_axum::ResponseOptions>();
    match crate::ssr::validate_name(&name) {
        Ok(name) => {
            // A percent-encoded cookie value is always a valid header value.
            let cookie = http::HeaderValue::from_str(&crate::ssr::name_cookie(&name))
                .map_err(|_| ServerFnError::new("name cannot be stored"))?;
            response.append_header(http::header::SET_COOKIE, cookie);
            Ok(format!("Saved. New jobs will call you {name}."))
        }
        Err(message) => {
            response.set_status(http::StatusCode::BAD_REQUEST);
            Err(ServerFnError::new(message))
        }
    }
}

/// Sets the visitor's language (kept in a cookie) and sends them back to
/// the page they came from. A plain form posts here, with or without
/// JavaScript; the page then reloads in the new language.
#[server(endpoint = "set_locale")]
pub async fn set_locale(locale: String) -> Result<(), ServerFnError> {
    let response = expect_context::<leptos_axum::ResponseOptions>();
    let Some(locale) = Locale::from_tag(&locale) else {
        response.set_status(http::StatusCode::BAD_REQUEST);
        return Err(ServerFnError::new(format!(
            "unknown language {locale:?}; choose en, de or fr"
        )));
    };
    let cookie = http::HeaderValue::from_str(&crate::ssr::lang_cookie(locale))
        .map_err(|_| ServerFnError::new("language cannot be stored"))?;
    response.append_header(http::header::SET_COOKIE, cookie);
    let back = crate::ssr::referer_path()
        .await
        .unwrap_or_else(|| "/".to_owned());
    leptos_axum::redirect(&back);
    Ok(())
}

/// What a server function error says to a person: its message, without
/// the "error running server function" wrapping.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The language switcher: a plain form, so it works before hydration and
/// without JavaScript.
#[component]
pub fn LanguageSwitcher(strings: Strings) -> impl IntoView {
    let current = strings.locale;
    view! {
        <form class="lang" method="post" action="/api/set_locale">
            <label for="locale">{strings.t("language")}</label>
            <select id="locale" name="locale">
                {Locale::ALL.into_iter().map(|l| view! {
                    <option value=l.tag() selected=l == current lang=l.tag()>{l.name()}</option>
                }).collect_view()}
            </select>
            <button type="submit">{strings.t("button-language")}</button>
        </form>
    }
    .into_any()
}

/// `/`: the home page.
#[component]
pub fn HomePage() -> impl IntoView {
    // Blocking: the list is in the HTML, so it reads without JavaScript.
    let data = Resource::new_blocking(|| (), |()| home_data());
    view! {
        <Suspense fallback=|| view! { <p>"…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Home data/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{error_text(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Home(data: HomeView) -> impl IntoView {
    let HomeView {
        strings,
        display_name,
        jobs,
    } = data;
    let s = strings.clone();
    let rename = ServerAction::<SetDisplayName>::new();
    let rename_message = move || {
        rename.value().get().map(|r| match r {
            Ok(text) => (false, text),
            Err(e) => (true, error_text(&e)),
        })
    };
    view! {
        <div lang=strings.locale.tag()>
            <Title text="jobstream"/>
            <LanguageSwitcher strings=strings.clone()/>
            <StartForm strings=strings.clone()/>
            <section class="card">
                <h2>{s.t("jobs-heading")}</h2>
                <JobList strings=strings.clone() initial=jobs/>
            </section>
            <section class="card">
                <h2>{s.t("display-name")}</h2>
                <ActionForm action=rename>
                    <label for="display-name">{s.t("display-name")}</label>
                    <div class="row">
                        <input id="display-name" name="name" type="text" required maxlength="64"
                            autocomplete="nickname" placeholder=display_name/>
                        <button type="submit">{s.t("button-save-name")}</button>
                    </div>
                </ActionForm>
                {move || rename_message().map(|(is_error, text)| view! {
                    <p class:error=is_error class:ok=!is_error role="status">{text}</p>
                })}
            </section>
        </div>
    }
    .into_any()
}

/// The kinds the form offers, with their fields: (name, label key, default).
const KINDS: [(&str, &[(&str, &str)]); 4] = [
    ("demo", &[("steps", "4"), ("interval_ms", "1000")]),
    ("primes", &[("limit", "50000000")]),
    (
        "fail",
        &[
            ("steps", "5"),
            ("at", "3"),
            ("message", ""),
            ("interval_ms", "500"),
        ],
    ),
    (
        "echo",
        &[
            ("messages", "hello\nworld"),
            ("repeat", "1"),
            ("interval_ms", "500"),
        ],
    ),
];

#[component]
fn StartForm(strings: Strings) -> impl IntoView {
    let start = ServerAction::<StartJob>::new();
    let kind = RwSignal::new("demo".to_owned());
    let errors = move || match start.value().get() {
        Some(Ok(errors)) => errors,
        _ => Vec::new(),
    };
    let error_for = move |field: &'static str| {
        move || {
            errors()
                .into_iter()
                .find(|e| e.field == field)
                .map(|e| e.message)
        }
    };
    let general_error = move || match start.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    let s = strings.clone();
    let fieldsets = KINDS
        .iter()
        .map(|&(name, fields)| {
            let active = move || kind.get() == name;
            let inputs = fields
                .iter()
                .map(|&(field, default)| {
                    let id = format!("{name}-{field}");
                    let error_id = format!("{id}-error");
                    let error = error_for(field);
                    let has_error = move || active() && error().is_some();
                    let input = if field == "messages" {
                        view! {
                            <textarea id=id.clone() name=field rows="3"
                                aria-invalid=move || has_error().to_string()
                                aria-describedby=error_id.clone()>{default}</textarea>
                        }
                        .into_any()
                    } else {
                        let numeric = field != "message";
                        view! {
                            <input id=id.clone() name=field type="text" value=default
                                inputmode=numeric.then_some("numeric")
                                aria-invalid=move || has_error().to_string()
                                aria-describedby=error_id.clone()/>
                        }
                        .into_any()
                    };
                    view! {
                        <div class="field">
                            <label for=id>{strings.t(&format!("field-{field}"))}</label>
                            {input}
                            <p class="error field-error" id=error_id>
                                {move || if active() { error() } else { None }}
                            </p>
                        </div>
                    }
                })
                .collect_view();
            view! {
                <fieldset class="params" disabled=move || !active() hidden=move || !active()>
                    {inputs}
                </fieldset>
            }
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>{s.t("start-heading")}</h2>
            <ActionForm action=start attr:novalidate=true>
                <div class="field">
                    <label for="kind">{s.t("field-kind")}</label>
                    <select id="kind" name="kind"
                        on:change=move |ev| kind.set(event_target_value(&ev))>
                        {KINDS.iter().map(|&(name, _)| view! {
                            <option value=name selected=name == "demo">{s.t(&format!("kind-{name}"))}</option>
                        }).collect_view()}
                    </select>
                    <p class="error field-error">{error_for("kind")}</p>
                </div>
                {fieldsets}
                <button type="submit" disabled=move || start.pending().get()>{s.t("button-start")}</button>
            </ActionForm>
            {move || general_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
    .into_any()
}
