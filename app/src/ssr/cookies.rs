//! The visitor's cookies: which there are, how they are written, and how a
//! request's `Cookie` headers are read. The `cookie` crate does the parsing,
//! escaping and formatting; this file only says what goes in them.

use cookie::{Cookie, SameSite};
use jobstream_engine::SessionId;

use crate::i18n::Locale;

/// Name of the HttpOnly cookie holding the session id, over plain HTTP.
pub const SESSION_COOKIE: &str = "jobstream_session";
/// Its name over HTTPS. Browsers accept a `__Host-` cookie only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot set it
/// for us: over HTTPS only this one names the session (a plain
/// `jobstream_session`, which a sibling could have planted, is ignored and
/// the visitor gets a new session of its own).
pub const SECURE_SESSION_COOKIE: &str = "__Host-jobstream_session";
/// Name of the cookie holding the language chosen with the switcher.
pub const LANG_COOKIE: &str = "jobstream_lang";
/// Name of the cookie holding the display name, percent-encoded.
pub const NAME_COOKIE: &str = "jobstream_name";
/// How long the cookies live: a year, refreshed by every visit that sets them.
pub const COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// A cookie of ours with the attributes they all share: the whole site,
/// a year, out of reach of scripts, and not sent on cross-site requests.
/// `secure` (the request came over HTTPS, see [`super::Visitor::secure`])
/// adds `Secure`, so the browser never sends it over plain HTTP; over plain
/// HTTP it is left out, or the browser would drop the cookie.
fn ours(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    let max_age = i64::try_from(COOKIE_MAX_AGE_SECS).unwrap_or(i64::MAX);
    Cookie::build((name, value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

/// The `Set-Cookie` value storing a display name. Percent-encoded, so any
/// name (newlines, `;`, quotes, non-ASCII) survives the trip.
pub fn name_cookie(name: &str, secure: bool) -> String {
    ours(NAME_COOKIE, name.to_owned(), secure)
        .encoded()
        .to_string()
}

/// The `Set-Cookie` value storing the chosen language.
pub fn lang_cookie(locale: Locale, secure: bool) -> String {
    ours(LANG_COOKIE, locale.tag().to_owned(), secure).to_string()
}

/// The session cookie's name: [`SECURE_SESSION_COOKIE`] over HTTPS.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(session: SessionId, secure: bool) -> String {
    ours(session_cookie_name(secure), session.to_string(), secure).to_string()
}

/// What a request's cookies say. Each is taken from the first cookie of
/// its name that holds a valid value, so a later broken duplicate (set by
/// another path or another app on the host) cannot replace a good one.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// The session.
    pub session: Option<SessionId>,
    /// The display name, checked.
    pub name: Option<String>,
    /// The language chosen with the switcher.
    pub locale: Option<Locale>,
}

/// Reads our cookies from a request's `Cookie` headers; `secure`: the
/// request came over HTTPS (the session is then read from
/// [`SECURE_SESSION_COOKIE`] only).
pub(super) fn read(headers: &http::HeaderMap, secure: bool) -> Sent {
    let session_name = session_cookie_name(secure);
    let mut sent = Sent::default();
    for value in headers.get_all(http::header::COOKIE) {
        // Lossy rather than `to_str`: a byte that is not ASCII, in a cookie
        // some other app set, spoils only the pair it is in.
        let value = String::from_utf8_lossy(value.as_bytes());
        // Pairs that do not parse (or decode) are skipped one by one.
        for cookie in Cookie::split_parse_encoded(value.as_ref()).flatten() {
            let value = cookie.value();
            match cookie.name() {
                name if name == session_name && sent.session.is_none() => {
                    sent.session = value.parse().ok();
                }
                NAME_COOKIE if sent.name.is_none() => sent.name = super::validate_name(value).ok(),
                LANG_COOKIE if sent.locale.is_none() => sent.locale = Locale::from_tag(value),
                _ => {}
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_plain(headers: &http::HeaderMap) -> Sent {
        read(headers, false)
    }

    #[test]
    fn over_https_only_the_host_prefixed_cookie_names_the_session() {
        let (a, b) = (SessionId::random(), SessionId::random());
        let both = format!("{SESSION_COOKIE}={a}; {SECURE_SESSION_COOKIE}={b}");
        let h = headers(&[both.as_bytes()]);
        assert_eq!(read(&h, true).session, Some(b));
        assert_eq!(read(&h, false).session, Some(a));
        // A plain one (a sibling subdomain may have set it) counts for nothing.
        let planted = format!("{SESSION_COOKIE}={a}");
        assert_eq!(read(&headers(&[planted.as_bytes()]), true).session, None);
        let set = session_cookie(b, true);
        assert!(
            set.starts_with(&format!("{SECURE_SESSION_COOKIE}={b};")),
            "{set}"
        );
        assert!(set.contains("Secure") && set.contains("Path=/") && !set.contains("Domain"));
    }

    fn headers(cookies: &[&[u8]]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for c in cookies {
            headers.append(
                http::header::COOKIE,
                http::HeaderValue::from_bytes(c).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn cookies_have_the_same_attributes() {
        let id = SessionId::random();
        for secure in [false, true] {
            for cookie in [
                session_cookie(id, secure),
                lang_cookie(Locale::De, secure),
                name_cookie("Zoë; x", secure),
            ] {
                let parsed = Cookie::parse_encoded(cookie.clone()).unwrap();
                assert_eq!(parsed.path(), Some("/"), "{cookie}");
                assert_eq!(
                    parsed.max_age(),
                    Some(cookie::time::Duration::seconds(31_536_000))
                );
                assert_eq!(parsed.http_only(), Some(true));
                assert_eq!(parsed.same_site(), Some(SameSite::Lax));
                // `Secure` only when asked for: a plain-HTTP site would
                // otherwise lose its cookies.
                assert_eq!(parsed.secure(), secure.then_some(true), "{cookie}");
                assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
            }
        }
        assert!(session_cookie(id, false).starts_with(&format!("{SESSION_COOKIE}={id};")));
        assert!(lang_cookie(Locale::De, true).starts_with("jobstream_lang=de;"));
        assert!(name_cookie("Zoë; x", false).starts_with("jobstream_name=Zo%C3%AB%3B%20x;"));
    }

    #[test]
    fn the_first_valid_session_wins() {
        let id = SessionId::random();
        let both = format!("{SESSION_COOKIE}={id}; {SESSION_COOKIE}=forged");
        assert_eq!(read_plain(&headers(&[both.as_bytes()])).session, Some(id));
        let forged_first = format!("{SESSION_COOKIE}=forged; {SESSION_COOKIE}={id}");
        assert_eq!(
            read_plain(&headers(&[forged_first.as_bytes()])).session,
            Some(id)
        );
    }

    #[test]
    fn one_broken_cookie_spoils_only_itself() {
        let id = SessionId::random();
        let mut line = b"other=caf\xe9; broken; x=%FF; ".to_vec();
        line.extend_from_slice(format!("{SESSION_COOKIE}={id}; {LANG_COOKIE}=fr").as_bytes());
        let sent = read_plain(&headers(&[b"junk\xff=1", &line]));
        assert_eq!(sent.session, Some(id));
        assert_eq!(sent.locale, Some(Locale::Fr));
    }
}
