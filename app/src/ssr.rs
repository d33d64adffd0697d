//! Server-only parts the server functions reach: the visitor of the current
//! request and the engine.
//!
//! The server's session middleware builds a [`Visitor`] for every request
//! (from the cookies, creating a session when there is none) and puts it in
//! the request's extensions; server functions read it with [`visitor`].
//! The engine reaches them through Leptos context (`provide_context` in the
//! server's router).

use axum::Extension;
use jobstream_engine::SessionId;

use crate::i18n::Locale;
use leptos::prelude::ServerFnError;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Name of the HttpOnly cookie holding the session id.
pub const SESSION_COOKIE: &str = "jobstream_session";
/// Name of the cookie holding the language chosen with the switcher.
pub const LANG_COOKIE: &str = "jobstream_lang";
/// Name of the cookie holding the display name, percent-encoded.
pub const NAME_COOKIE: &str = "jobstream_name";
/// The display name of a visitor who has not set one.
pub const DEFAULT_NAME: &str = "guest";
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// How long the cookies live: a year, refreshed by every visit that sets them.
pub const COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Who is asking: built by the session middleware for every request.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The session the visitor's jobs belong to.
    pub session: SessionId,
    /// Shown in the demo job's messages.
    pub display_name: String,
    /// The language chosen with the switcher, else the best match for
    /// `Accept-Language`, else English.
    pub locale: Locale,
}

impl Visitor {
    /// Reads the visitor from request headers. `None` for the session when
    /// the cookie is missing or not a valid id (a new one is then made).
    pub fn from_headers(headers: &http::HeaderMap) -> (Option<SessionId>, String, Locale) {
        let mut session = None;
        let mut name = None;
        let mut chosen = None;
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                let Some((k, v)) = pair.trim().split_once('=') else {
                    continue;
                };
                match k {
                    SESSION_COOKIE => session = v.parse().ok(),
                    NAME_COOKIE => name = decode_name(v),
                    LANG_COOKIE => chosen = Locale::from_tag(v),
                    _ => {}
                }
            }
        }
        let locale = chosen.unwrap_or_else(|| {
            headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map_or(Locale::En, Locale::negotiate)
        });
        (
            session,
            name.unwrap_or_else(|| DEFAULT_NAME.to_owned()),
            locale,
        )
    }
}

/// Characters kept as they are in the name cookie; all others are escaped,
/// so any name (newlines, `;`, quotes, non-ASCII) survives the trip.
const NAME_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The `Set-Cookie` value storing a display name.
pub fn name_cookie(name: &str) -> String {
    format!(
        "{NAME_COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax",
        utf8_percent_encode(name, NAME_ESCAPE)
    )
}

/// The `Set-Cookie` value storing the chosen language.
pub fn lang_cookie(locale: Locale) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax",
        locale.tag()
    )
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(session: SessionId) -> String {
    format!(
        "{SESSION_COOKIE}={session}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax"
    )
}

fn decode_name(v: &str) -> Option<String> {
    let name = percent_decode_str(v).decode_utf8().ok()?;
    validate_name(&name).ok()
}

/// Checks a display name: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
/// Any text is allowed otherwise; it is always rendered as text.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Enter a name.".to_owned());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "A name can have at most {MAX_NAME_CHARS} characters; this one has {chars}."
        ));
    }
    Ok(name.to_owned())
}

/// The visitor of the request a server function is handling.
pub async fn visitor() -> Result<Visitor, ServerFnError> {
    let Extension(visitor) = leptos_axum::extract::<Extension<Visitor>>()
        .await
        .map_err(|_| ServerFnError::new("no session on this request"))?;
    Ok(visitor)
}

/// The path (and query) of the page a form was posted from, if it is on
/// this site: where to send the visitor back. Never another site.
pub async fn referer_path() -> Option<String> {
    let headers = leptos_axum::extract::<http::HeaderMap>().await.ok()?;
    let referer = headers.get(http::header::REFERER)?.to_str().ok()?;
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("http://")
        .or_else(|| referer.strip_prefix("https://"))?;
    let path = rest.strip_prefix(host)?;
    let path = if path.is_empty() { "/" } else { path };
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
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
            let cookie = name_cookie(name);
            let value = cookie.split(';').next().unwrap();
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::COOKIE, value.parse().unwrap());
            let (_, got, _) = Visitor::from_headers(&headers);
            assert_eq!(got, name.trim());
        }
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
        let (session, name, locale) = Visitor::from_headers(&headers);
        assert_eq!(session, Some(id));
        assert_eq!(name, DEFAULT_NAME);
        assert_eq!(locale, Locale::De);
        // The switcher's choice wins over the browser's.
        headers.insert(
            http::header::COOKIE,
            format!(
                "{}; {SESSION_COOKIE}={id}",
                lang_cookie(Locale::Fr).split(';').next().unwrap()
            )
            .parse()
            .unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers).2, Locale::Fr);
    }

    #[test]
    fn a_forged_session_cookie_is_ignored() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("{SESSION_COOKIE}=1").parse().unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers).0, None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_name("  Ada  "), Ok("Ada".to_owned()));
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"x".repeat(65))
            .unwrap_err()
            .contains("at most 64"));
    }
}
