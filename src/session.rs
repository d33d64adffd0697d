//! Sessions and the cross-site check, as middleware in front of every route.

use app::ssr::{session_cookie, Visitor};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobstream_engine::SessionId;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// Gives every request a [`Visitor`]: the session from its cookie, or a new
/// random one that the response then sets as an HttpOnly, SameSite=Lax cookie.
pub async fn visitor(mut req: Request, next: Next) -> Response {
    let (session, display_name, locale) = Visitor::from_headers(req.headers());
    let (session, is_new) = match session {
        Some(s) => (s, false),
        None => (SessionId::random(), true),
    };
    req.extensions_mut().insert(Visitor {
        session,
        display_name,
        locale,
    });
    let mut response = next.run(req).await;
    if is_new {
        // An id and fixed attributes: always a valid header value.
        let cookie = HeaderValue::from_str(&session_cookie(session)).expect("cookie is ASCII");
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Refuses state-changing requests that come from another site: a browser
/// says so in `Sec-Fetch-Site`, or in an `Origin` that does not match `Host`.
/// Requests without either (curl, scripts) are let through; they carry no
/// ambient browser credentials of a victim.
pub async fn same_origin(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return ApiError::CrossSite.into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let same = match (origin.to_str().ok().map(origin_authority), host) {
            (Some(Some(origin)), Some(host)) => origin.eq_ignore_ascii_case(host),
            // `Origin: null` (sandboxed, file:), unparsable, or no Host.
            _ => false,
        };
        if !same {
            return ApiError::CrossSite.into_response();
        }
    }
    next.run(req).await
}

/// `host[:port]` of an `Origin` header, as a `Host` header would say it
/// (no port when it is the scheme's default).
fn origin_authority(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Answers 503 once shutdown has begun, for requests that still arrive on
/// open connections while the server drains.
pub async fn draining(
    State(shutdown): State<CancellationToken>,
    req: Request,
    next: Next,
) -> Response {
    if shutdown.is_cancelled() {
        return ApiError::Draining.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::origin_authority;

    #[test]
    fn origins_read_as_host_headers() {
        assert_eq!(
            origin_authority("http://127.0.0.1:3000").as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(
            origin_authority("https://example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            origin_authority("https://example.com:443").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            origin_authority("http://[::1]:8080").as_deref(),
            Some("[::1]:8080")
        );
        assert_eq!(origin_authority("null"), None);
        assert_eq!(origin_authority("example.com"), None);
    }
}
