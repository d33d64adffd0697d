//! The home page: start a job of any kind, see all of the session's jobs
//! (live), set your display name and language.

use jobstream_protocol::{JobSummary, KindSchema};
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::i18n::Strings;
use crate::jobs::JobList;
use crate::settings::{error_text, DisplayNameForm, LanguageSwitcher};
use crate::start::{form_kinds, FormKind, StartForm};

/// Everything the home page shows, read in one go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HomeView {
    /// The page's texts in the visitor's language.
    pub strings: Strings,
    /// The visitor's display name.
    pub display_name: String,
    /// The session's newest jobs, newest first.
    pub jobs: Vec<JobSummary>,
    /// The kinds the start form offers, with their fields.
    pub kinds: Vec<KindSchema>,
}

/// Jobs the home page lists.
pub const LISTED_JOBS: usize = 100;

/// The home page's data for the visitor.
#[server(endpoint = "home")]
pub async fn home_data() -> Result<HomeView, ServerFnError> {
    use crate::ssr::UserError;
    use jobstream_engine::Engine;

    let visitor = crate::ssr::visitor().await?;
    let engine = expect_context::<Engine>();
    let jobs = engine
        .list(visitor.session, LISTED_JOBS)
        .await
        .map_err(|e| UserError::from(e).into_server_error(visitor.locale))?;
    let kinds = engine
        .registry()
        .schemas()
        .filter(|s| s.in_form)
        .cloned()
        .collect();
    Ok(HomeView {
        strings: crate::i18n::strings(visitor.locale),
        display_name: visitor.display_name,
        jobs,
        kinds,
    })
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

/// The page: its title and the language switcher, plain HTML, and the
/// rest, one island.
#[component]
fn Home(data: HomeView) -> impl IntoView {
    let HomeView {
        strings,
        display_name,
        jobs,
        kinds,
    } = data;
    let lang = strings.locale.tag();
    let kinds = form_kinds(&strings, &kinds);
    view! {
        <div lang=lang>
            <Title text="jobstream"/>
            <LanguageSwitcher strings=strings.clone()/>
            <HomeLive strings kinds jobs display_name/>
        </div>
    }
    // Erased: the page's type is deep enough to overflow the server
    // crate's query depth. Not in the bundle (only islands are).
    .into_any()
}

/// The start form, the job list and the display name's form: one island
/// (one set of props in the page, one entry point in the bundle), its
/// props travelling in the page as JSON.
#[island]
fn HomeLive(
    strings: Strings,
    kinds: Vec<FormKind>,
    jobs: Vec<JobSummary>,
    display_name: String,
) -> impl IntoView {
    view! {
        <StartForm strings=strings.clone() kinds/>
        <section class="card">
            <h2>{strings.t("jobs-heading")}</h2>
            <JobList strings=strings.clone() initial=jobs/>
        </section>
        <DisplayNameForm strings display_name/>
    }
}
