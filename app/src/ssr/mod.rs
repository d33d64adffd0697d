//! Server-only parts the server functions reach: the visitor of the current
//! request, its cookies, and the errors a visitor can be shown.
//!
//! The server's session middleware builds a [`Visitor`] for every request
//! to a page, a server function or the API (from the cookies, creating a
//! session when there is none; static files get none) and puts it in the
//! request's extensions; server functions read it with [`visitor`].
//! The engine reaches them through Leptos context (`provide_context` in the
//! server's router).
//!
//! * [`cookies`]: the session, language and name cookies.
//! * [`error`]: [`UserError`], every error a visitor or an API client can
//!   get, with its status and its text in each language.

use axum::Extension;
use jobstream_engine::SessionId;
use leptos::prelude::ServerFnError;

use crate::i18n::Locale;

pub mod cookies;
pub mod error;

pub use cookies::{
    lang_cookie, name_cookie, session_cookie, session_cookie_name, COOKIE_MAX_AGE_SECS,
    LANG_COOKIE, NAME_COOKIE, SECURE_SESSION_COOKIE, SESSION_COOKIE,
};
pub use error::{StreamLimit, UserError};

pub use crate::settings::MAX_NAME_CHARS;
/// The display name of a visitor who has not set one.
pub const DEFAULT_NAME: &str = "guest";

/// Who is asking: built by the session middleware for every request to a
/// page, a server function or the API.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The session the visitor's jobs belong to.
    pub session: SessionId,
    /// Shown in the demo job's messages.
    pub display_name: String,
    /// The language chosen with the switcher, else the best match for
    /// `Accept-Language`, else English.
    pub locale: Locale,
    /// The request came over HTTPS (a trusted proxy said so, or the server
    /// is told it always does): cookies set for it get `Secure`.
    pub secure: bool,
    /// The client's address, for the quota of jobs per address: the
    /// peer's, or behind a trusted proxy the one it forwarded
    /// (`X-Forwarded-For`); `None` when a trusted proxy did not say.
    pub client: Option<std::net::IpAddr>,
}

impl Visitor {
    /// Reads the visitor from request headers (`secure`: it came over
    /// HTTPS). `None` for the session when the cookie is missing or not a
    /// valid id (a new one is then made).
    pub fn from_headers(
        headers: &http::HeaderMap,
        secure: bool,
    ) -> (Option<SessionId>, String, Locale) {
        let sent = cookies::read(headers, secure);
        let locale = sent.locale.unwrap_or_else(|| {
            headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map_or(Locale::En, Locale::negotiate)
        });
        let name = sent.name.unwrap_or_else(|| DEFAULT_NAME.to_owned());
        (sent.session, name, locale)
    }
}

/// Checks a display name: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
/// Any text is allowed otherwise; it is always rendered as text.
pub fn validate_name(name: &str) -> Result<String, UserError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(UserError::NameEmpty);
    }
    let got = name.chars().count();
    if got > MAX_NAME_CHARS {
        return Err(UserError::NameTooLong {
            max: MAX_NAME_CHARS,
            got,
        });
    }
    Ok(name.to_owned())
}

/// The visitor of the request a server function is handling.
pub async fn visitor() -> Result<Visitor, ServerFnError> {
    match leptos_axum::extract::<Extension<Visitor>>().await {
        Ok(Extension(visitor)) => Ok(visitor),
        // The middleware runs before every route, so this is a bug.
        Err(_) => Err(UserError::NoSession.into_server_error(Locale::En)),
    }
}

/// Adds a `Set-Cookie` header to the server function's response.
pub fn set_cookie(cookie: &str, locale: Locale) -> Result<(), ServerFnError> {
    // Our cookies are escaped by the `cookie` crate, so this cannot fail;
    // should it, the visitor is told rather than the server panicking.
    let value = http::HeaderValue::from_str(cookie)
        .map_err(|_| UserError::Internal.into_server_error(locale))?;
    leptos::prelude::expect_context::<leptos_axum::ResponseOptions>()
        .append_header(http::header::SET_COOKIE, value);
    Ok(())
}

/// The path (and query) of the page a form was posted from, if it is on
/// this site: where to send the visitor back. Never another site.
pub async fn referer_path() -> Option<String> {
    let headers = leptos_axum::extract::<http::HeaderMap>().await.ok()?;
    let referer = headers.get(http::header::REFERER)?.to_str().ok()?;
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    same_site_path(referer, host)
}

/// The path and query of `referer` if it is an `http(s)` URL of `host`
/// (as the `Host` header names it, port included).
fn same_site_path(referer: &str, host: &str) -> Option<String> {
    use url::Position;

    let url = url::Url::parse(referer).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return None;
    }
    // Read `Host` as a URL of the same scheme, so both sides are normalised
    // alike (case, default port, IPv6 brackets).
    let ours = url::Url::parse(&format!("{}://{host}/", url.scheme())).ok()?;
    if url.host() != ours.host() || url.port_or_known_default() != ours.port_or_known_default() {
        return None;
    }
    let path = &url[Position::BeforePath..Position::AfterQuery];
    // `//evil.example/` would be read by the browser as another host.
    (!path.starts_with("//")).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_survive_the_cookie() {
        for name in [
            "Ada",
            "Zoë ✓",
            "a; b=c",
            "line\nbreak",
            "</script>",
            "100% \"quoted\"",
        ] {
            let cookie = name_cookie(name, false);
            let value = cookie.split(';').next().unwrap();
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::COOKIE, value.parse().unwrap());
            let (_, got, _) = Visitor::from_headers(&headers, false);
            assert_eq!(got, name.trim());
        }
        // Cookies written before the `cookie` crate escaped them.
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "jobstream_name=Zo%C3%AB%20%E2%9C%93".parse().unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers, false).1, "Zoë ✓");
    }

    #[test]
    fn reads_session_and_language() {
        let id = SessionId::random();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("x=1; {SESSION_COOKIE}={id}").parse().unwrap(),
        );
        headers.insert(
            http::header::ACCEPT_LANGUAGE,
            "de-DE,de;q=0.9,en;q=0.8".parse().unwrap(),
        );
        let (session, name, locale) = Visitor::from_headers(&headers, false);
        assert_eq!(session, Some(id));
        assert_eq!(name, DEFAULT_NAME);
        assert_eq!(locale, Locale::De);
        // The switcher's choice wins over the browser's.
        headers.insert(
            http::header::COOKIE,
            format!(
                "{}; {SESSION_COOKIE}={id}",
                lang_cookie(Locale::Fr, false).split(';').next().unwrap()
            )
            .parse()
            .unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers, false).2, Locale::Fr);
    }

    #[test]
    fn a_forged_session_cookie_is_ignored() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("{SESSION_COOKIE}=1").parse().unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers, false).0, None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_name("  Ada  "), Ok("Ada".to_owned()));
        assert_eq!(validate_name("   "), Err(UserError::NameEmpty));
        let e = validate_name(&"x".repeat(65)).unwrap_err();
        assert_eq!(
            e.english(),
            "A name can have at most 64 characters; this one has 65."
        );
    }

    #[test]
    fn only_pages_of_this_site_are_gone_back_to() {
        let back = |referer| same_site_path(referer, "localhost:3000");
        assert_eq!(
            back("http://localhost:3000/jobs/x?y=1").as_deref(),
            Some("/jobs/x?y=1")
        );
        assert_eq!(back("https://localhost:3000").as_deref(), Some("/"));
        assert_eq!(back("http://localhost:3000@evil.example/"), None);
        assert_eq!(back("http://evil.example/"), None);
        assert_eq!(back("http://localhost:3001/"), None);
        assert_eq!(back("http://localhost:3000//evil.example/"), None);
        assert_eq!(back("javascript:alert(1)"), None);
        assert_eq!(back("/relative"), None);
        assert_eq!(
            same_site_path("http://Example.com:80/a", "example.com").as_deref(),
            Some("/a")
        );
    }
}
