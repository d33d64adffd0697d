//! The start page: start a job, set your display name.

use leptos::prelude::*;
use leptos_meta::Title;

/// Starts the recipe's `demo` job for the visitor, then takes them to its
/// page. Without JavaScript the form post is answered with a redirect.
#[server(endpoint = "start_job")]
pub async fn start_job() -> Result<String, ServerFnError> {
    use jobstream_engine::{Engine, NewJob, SubmitError};

    let visitor = crate::ssr::visitor().await?;
    let engine = expect_context::<Engine>();
    let job = engine.submit(NewJob {
        owner: visitor.session,
        kind: "demo".to_owned(),
        params: serde_json::Value::Null,
        display_name: visitor.display_name,
        locale: visitor.locale,
    });
    match job {
        Ok(job) => {
            let url = format!("/jobs/{}", job.id);
            leptos_axum::redirect(&url);
            Ok(url)
        }
        Err(e) => {
            let status = match e {
                SubmitError::QueueFull { .. } | SubmitError::ShuttingDown => {
                    http::StatusCode::SERVICE_UNAVAILABLE
                }
                SubmitError::Plan(_) => http::StatusCode::BAD_REQUEST,
            };
            expect_context::<leptos_axum::ResponseOptions>().set_status(status);
            Err(ServerFnError::new(e.to_string()))
        }
    }
}

/// The visitor's display name.
#[server(endpoint = "display_name")]
pub async fn display_name() -> Result<String, ServerFnError> {
    Ok(crate::ssr::visitor().await?.display_name)
}

/// Sets the visitor's display name (kept in a cookie). Returns the name as
/// stored, or a message saying what is wrong with it.
#[server(endpoint = "set_display_name")]
pub async fn set_display_name(name: String) -> Result<String, ServerFnError> {
    let response = expect_context::<leptos_axum::ResponseOptions>();
    match crate::ssr::validate_name(&name) {
        Ok(name) => {
            // A percent-encoded cookie value is always a valid header value.
            let cookie = http::HeaderValue::from_str(&crate::ssr::name_cookie(&name))
                .map_err(|_| ServerFnError::new("name cannot be stored"))?;
            response.append_header(http::header::SET_COOKIE, cookie);
            Ok(name)
        }
        Err(message) => {
            response.set_status(http::StatusCode::BAD_REQUEST);
            Err(ServerFnError::new(message))
        }
    }
}

/// What a server function error says to a person: its message, without
/// the "error running server function" wrapping.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `/`: the home page.
#[component]
pub fn HomePage() -> impl IntoView {
    let start = ServerAction::<StartJob>::new();
    let rename = ServerAction::<SetDisplayName>::new();
    let name = Resource::new(move || rename.version().get(), |_| display_name());

    let start_error = move || {
        start
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    let rename_message = move || {
        rename.value().get().map(|r| match r {
            Ok(name) => (false, format!("Saved. New jobs will call you {name}.")),
            Err(e) => (true, error_text(&e)),
        })
    };

    view! {
        <Title text="jobstream"/>
        <h1>"Run a job, watch it live"</h1>
        <p class="lede">
            "A job runs on the server in a pool of workers; its messages stream to this page "
            "as they happen, and stay there if you reload."
        </p>

        <section class="card">
            <h2>"Start the demo job"</h2>
            <p>
                "It reports four steps, one a second, each addressed to "
                <Suspense fallback=|| view! { <strong>"you"</strong> }>
                    {move || name.get().map(|n| view! { <strong class="name">{n.unwrap_or_default()}</strong> })}
                </Suspense>
                "."
            </p>
            <ActionForm action=start>
                <button type="submit" disabled=move || start.pending().get()>"Start job"</button>
            </ActionForm>
            {move || start_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>

        <section class="card">
            <h2>"Your display name"</h2>
            <ActionForm action=rename>
                <label for="display-name">"Display name"</label>
                <div class="row">
                    <input id="display-name" name="name" type="text" required maxlength="64"
                        autocomplete="nickname" placeholder="guest"/>
                    <button type="submit">"Save name"</button>
                </div>
            </ActionForm>
            {move || rename_message().map(|(is_error, text)| view! {
                <p class:error=is_error class:ok=!is_error role="status">{text}</p>
            })}
        </section>
    }
}
