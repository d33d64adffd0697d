//! # The jobstream app
//!
//! The Leptos side of jobstream: pages and server functions. Pages render
//! on the server (feature `ssr`); in the browser (feature `hydrate`) only
//! their islands are hydrated: the start form, the job list, the display
//! name form and the live part of the job page. Everything else (the
//! router, the page-level `Suspense`, the language switcher, headings) is
//! plain HTML with no code in the WebAssembly bundle, and links are
//! ordinary page loads.
//!
//! ## Layout
//!
//! * [`home`]: `/`: the start form, the job list, the display name and the
//!   language switcher.
//! * [`start`]: the start form, rendered from the kinds' schemas, and the
//!   server function it posts to.
//! * [`settings`]: the display name and the language, kept in cookies.
//! * [`jobs`]: the session's job list, live through one `EventSource`.
//! * [`i18n`]: English, German and French (Fluent on the server).
//! * [`job_page`]: `/jobs/{id}`: the job's state, facts ([`job_facts`]:
//!   times, params) and output, server-rendered from its log's status and
//!   newest lines, then kept live by an `EventSource`.
//! * [`log_view`]: the output as a log view (numbered, coloured rows; load
//!   earlier, follow, download); `log_window` (browser only) keeps its rows
//!   in the DOM, bounded, appending live lines once per animation frame.
//! * `live` (browser only): the `EventSource` wrapper the job page uses.
//! * [`ssr`] (server only): what server functions reach: the engine, the
//!   visitor (session cookie, display name, locale) and [`ssr::UserError`].
//!
//! The job engine itself lives in `jobstream-engine`; this crate only
//! renders it and calls it. What the server and the browser must agree on
//! (states, stream events, routes, the kinds' fields) is in
//! `jobstream-protocol`, never written here again.

// The server renders each island's whole view as one type; the home
// page's is deeper than the default limit of 128 queries.
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use crate::i18n::Strings;

mod forms;
pub mod home;
pub mod i18n;
pub mod job_facts;
pub mod job_page;
pub mod jobs;
#[cfg(feature = "hydrate")]
mod live;
pub mod log_view;
#[cfg(feature = "hydrate")]
mod log_window;
pub mod settings;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod start;

/// The HTML document around the app, rendered on the server.
///
/// The bundle and the stylesheet are named as the build left them:
/// `/pkg/jobstream.{js,wasm,css}`, or with their content hash in the name
/// when cargo-leptos hashes files (`hash-files`, `LEPTOS_HASH_FILES`; the
/// hashes are read from `hash.txt` next to the server binary). The server
/// lets browsers keep hashed files for a year (see `src/lib.rs`).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet id="leptos" options=options.clone()/>
                <HydrationScripts options islands=true/>
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
    view! {
        <Title text="jobstream"/>
        <Router>
            <header class="top">
                <a href="/" class="brand">"jobstream"</a>
            </header>
            // "true" once the browser has hydrated the page's islands
            // (set by the last of them, [`Hydrated`]). End-to-end tests wait
            // for it before they click.
            <main data-hydrated="false">
                <Routes fallback=UnknownPage>
                    // Async: the whole page is rendered in place before it is
                    // sent, so it reads without JavaScript and an unknown job
                    // gets its 404 status.
                    <Route path=path!("") view=home::HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/jobs/:id") view=job_page::JobPage ssr=SsrMode::Async/>
                </Routes>
                <Hydrated/>
            </main>
        </Router>
    }
}

/// Marks `<main>` as hydrated. The island script hydrates islands one by
/// one in document order, and this one comes after every other island of
/// the page, so its effect runs once they are all live.
#[island]
fn Hydrated() -> impl IntoView {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(main) = document().query_selector("main").ok().flatten() {
            // Setting a plain attribute cannot fail.
            let _ = main.set_attribute("data-hydrated", "true");
        }
    });
}

/// The visitor's texts, for a page that has no data of its own.
#[server(endpoint = "strings")]
pub async fn page_strings() -> Result<Strings, ServerFnError> {
    let locale = ssr::visitor().await?.locale;
    Ok(i18n::strings(locale))
}

/// Any unknown page: [`NotFound`] in the visitor's language.
#[component]
pub fn UnknownPage() -> impl IntoView {
    // Set before the texts load, so the status is in place whatever the
    // rendering mode.
    set_not_found_status();
    let strings = Resource::new_blocking(|| (), |()| page_strings());
    view! {
        <Suspense fallback=|| view! { <p>"…"</p> }>
            {move || Suspend::new(async move {
                // Without its texts the page still says 404, with their keys.
                let strings = strings.await.unwrap_or_default();
                view! { <NotFound strings/> }
            })}
        </Suspense>
    }
}

/// Says there is nothing here, with status 404 when rendered on the server.
#[component]
pub fn NotFound(strings: Strings) -> impl IntoView {
    set_not_found_status();
    view! {
        <div lang=strings.locale.tag()>
            <Title text=strings.t("not-found-title")/>
            <h1>{strings.t("not-found-heading")}</h1>
            <p>{strings.t("not-found-text")}</p>
            <p><a href="/">{strings.t("not-found-back")}</a></p>
        </div>
    }
}

fn set_not_found_status() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
}
