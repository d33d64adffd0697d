//! The visitor's settings, kept in cookies: the display name and the
//! language. Also how a server function's error is shown.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::i18n::{Locale, Strings};

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Sets the visitor's display name (kept in a cookie). Returns a message
/// saying so, or what is wrong with the name.
#[server(endpoint = "set_display_name")]
pub async fn set_display_name(name: String) -> Result<String, ServerFnError> {
    use crate::i18n::{tr, Arg};
    use crate::ssr::{name_cookie, set_cookie, validate_name};

    let visitor = crate::ssr::visitor().await?;
    let locale = visitor.locale;
    let name = validate_name(&name).map_err(|e| e.into_server_error(locale))?;
    set_cookie(&name_cookie(&name, visitor.secure), locale)?;
    Ok(tr(locale, "name-saved", &[("name", Arg::Text(&name))]))
}

/// Sets the visitor's language (kept in a cookie) and sends them back to
/// the page they came from. A plain form posts here, with or without
/// JavaScript; the page then reloads in the new language.
#[server(endpoint = "set_locale")]
pub async fn set_locale(locale: String) -> Result<(), ServerFnError> {
    use crate::ssr::{lang_cookie, set_cookie, UserError};

    let visitor = crate::ssr::visitor().await?;
    let chosen = Locale::from_tag(&locale)
        .ok_or_else(|| UserError::UnknownLanguage(locale).into_server_error(visitor.locale))?;
    set_cookie(&lang_cookie(chosen, visitor.secure), chosen)?;
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
        <form class="lang" method="post" action=SetLocale::PATH>
            <label for="locale">{strings.t("language")}</label>
            <select id="locale" name="locale">
                {Locale::ALL.into_iter().map(|l| view! {
                    <option value=l.tag() selected=l == current lang=l.tag()>{l.name()}</option>
                }).collect_view()}
            </select>
            <button type="submit">{strings.t("button-language")}</button>
        </form>
    }
}

/// The display name's form; says whether the name was saved.
#[component]
pub fn DisplayNameForm(strings: Strings, display_name: String) -> impl IntoView {
    // The last answer: the server's message, or an error's text.
    let answer = RwSignal::new(None::<Result<String, String>>);
    let rename_message = move || {
        answer.get().map(|r| match r {
            Ok(text) => (false, text),
            Err(e) => (true, e),
        })
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let form = crate::forms::Submitted::take(&ev);
        let name = form.get("name").unwrap_or_default();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let result = crate::forms::call(SetDisplayName::PATH, &[("name", &name)]).await;
            answer.set(Some(result));
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (name, answer);
    };
    let s = strings;
    view! {
        <section class="card">
            <h2>{s.t("display-name")}</h2>
            <form method="post" action=SetDisplayName::PATH on:submit=on_submit>
                <label for="display-name">{s.t("display-name")}</label>
                <div class="row">
                    <input id="display-name" name="name" type="text" required maxlength=MAX_NAME_CHARS.to_string()
                        autocomplete="nickname" placeholder=display_name/>
                    <button type="submit">{s.t("button-save-name")}</button>
                </div>
            </form>
            {move || rename_message().map(|(is_error, text)| view! {
                <p class:error=is_error class:ok=!is_error role="status">{text}</p>
            })}
        </section>
    }
}
