//! # The jobstream app
//!
//! The Leptos side of jobstream: pages and server functions. The same code
//! renders on the server (feature `ssr`) and hydrates in the browser
//! (feature `hydrate`).
//!
//! ## Layout
//!
//! * [`home`]: `/`: the start form (every kind, validated per field), the
//!   job list, the display name and the language switcher.
//! * [`jobs`]: the session's job list, live through one `EventSource`.
//! * [`i18n`]: English, German and French (Fluent on the server).
//! * [`job_page`]: `/jobs/{id}`: the job's state and output, server-rendered
//!   from a snapshot of its log, then kept live by an `EventSource`.
//! * `live` (browser only): the `EventSource` wrapper the job page uses.
//! * [`ssr`] (server only): what server functions reach: the engine and
//!   the visitor (session cookie, display name, locale).
//!
//! The job engine itself lives in `jobstream-engine`; this crate only
//! renders it and calls it.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

pub mod home;
pub mod i18n;
pub mod job_page;
pub mod jobs;
#[cfg(feature = "hydrate")]
mod live;
#[cfg(feature = "ssr")]
pub mod ssr;

/// The data of the last event of every job stream; see the engine's `sse`
/// module. The page closes its `EventSource` on it once the job has ended.
pub const CLOSE_SENTINEL: &str = "__CLOSE_SSE__";

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app's routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // "true" once the browser has hydrated the page: effects run only
    // there. End-to-end tests wait for it before they click.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/jobstream.css"/>
        <Title text="jobstream"/>
        <Router>
            <header class="top">
                <a href="/" class="brand">"jobstream"</a>
            </header>
            <main data-hydrated=move || hydrated.get().to_string()>
                <Routes fallback=NotFound>
                    // Async: the whole page is rendered in place before it is
                    // sent, so it reads without JavaScript and an unknown job
                    // gets its 404 status.
                    <Route path=path!("") view=home::HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs/:id") view=job_page::JobPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// Shown for any unknown page, with status 404 when rendered on the server.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · jobstream"/>
        <h1>"Not found"</h1>
        <p>"There is nothing here. Job pages can only be opened by the session that started the job."</p>
        <p><a href="/">"Back to the start page"</a></p>
    }
}
