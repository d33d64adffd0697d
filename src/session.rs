//! Sessions and the cross-site check, as middleware in front of every
//! route (pages, server functions, the API and the 404 page; static files
//! have neither, see `crate::router`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use app::ssr::{session_cookie, Visitor};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobstream_engine::SessionId;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::Config;

/// Gives a request a [`Visitor`]: the session from its cookie, or a new
/// random one that the response then sets as an HttpOnly, SameSite=Lax
/// cookie (`Secure` too when the request came over HTTPS, see
/// [`is_secure`]).
pub async fn visitor(State(config): State<Arc<Config>>, mut req: Request, next: Next) -> Response {
    let secure = is_secure(&config, &req);
    let client = client_address(&config, &req);
    let (session, display_name, locale) = Visitor::from_headers(req.headers(), secure);
    let (session, is_new) = match session {
        Some(s) => (s, false),
        None => (SessionId::random(), true),
    };
    req.extensions_mut().insert(Visitor {
        session,
        display_name,
        locale,
        secure,
        client,
    });
    let mut response = next.run(req).await;
    if is_new {
        // An id and fixed attributes: always a valid header value.
        let cookie =
            HeaderValue::from_str(&session_cookie(session, secure)).expect("cookie is ASCII");
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Whether the browser reached us over HTTPS, so its cookies may (and
/// should) be `Secure`. The server itself only speaks plain HTTP; HTTPS
/// ends at a reverse proxy, which says so in `X-Forwarded-Proto`. Anyone
/// can send that header, so it counts only on a connection from one of
/// `JOBSTREAM_TRUSTED_PROXIES` (the peer address is put in the request's
/// extensions by `crate::front`). `JOBSTREAM_COOKIE_SECURE` makes every
/// request count as HTTPS.
pub fn is_secure(config: &Config, req: &Request) -> bool {
    if config.cookie_secure {
        return true;
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return false;
    };
    config.trusted_proxies.contains(peer.ip()) && forwarded_https(req.headers())
}

/// `X-Forwarded-Proto` says `https`. When proxies in a chain each appended
/// theirs (`https, http`), the last one is the one our trusted peer wrote.
fn forwarded_https(headers: &HeaderMap) -> bool {
    let last = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back();
    last.is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Who the client is, by address, for the quota of jobs per address: the
/// peer, unless the peer is a trusted proxy; then the nearest address in
/// `X-Forwarded-For` that is not a trusted proxy itself (read from the
/// right: what a client wrote further left proves nothing). Ports and
/// brackets are dropped, and an IPv6 address counts as its /64 (one
/// subscriber's usual allocation, which it can rotate through freely).
pub fn client_address(config: &Config, req: &Request) -> Option<IpAddr> {
    let ConnectInfo(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
    let peer = peer.ip().to_canonical();
    if !config.trusted_proxies.contains(peer) {
        return Some(quota_key(peer));
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let ip = parse_hop(hop.trim())?;
        if !config.trusted_proxies.contains(ip) {
            return Some(quota_key(ip));
        }
    }
    None
}

/// An address as `X-Forwarded-For` may write it: `1.2.3.4`,
/// `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The address as the quota counts it: IPv4 as it is, IPv6 by its /64.
fn quota_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
    }
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
    use super::*;
    use crate::config::TrustedProxies;

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let config = Config {
            trusted_proxies: TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap(),
            ..Config::default()
        };
        let from = |peer: &str, forwarded: &[&str]| {
            let mut req = Request::new(axum::body::Body::empty());
            for f in forwarded {
                req.headers_mut()
                    .append("x-forwarded-for", f.parse().unwrap());
            }
            req.extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            client_address(&config, &req).map(|ip| ip.to_string())
        };
        let some = |s: &str| Some(s.to_owned());
        // A direct client: its own address; what it forwards is ignored.
        assert_eq!(
            from("203.0.113.9:1", &["198.51.100.1"]),
            some("203.0.113.9")
        );
        // Behind nginx: the address it appended.
        assert_eq!(
            from("127.0.0.1:1", &["198.51.100.1, 203.0.113.7"]),
            some("203.0.113.7")
        );
        // Behind a CDN edge that is trusted too: the hop before it.
        assert_eq!(
            from("127.0.0.1:1", &["203.0.113.7", "10.1.2.3"]),
            some("203.0.113.7")
        );
        // Ports and brackets.
        assert_eq!(
            from("127.0.0.1:1", &["203.0.113.7:5678"]),
            some("203.0.113.7")
        );
        assert_eq!(
            from("127.0.0.1:1", &["[2001:db8::1]:443"]),
            some("2001:db8::")
        );
        // IPv6 by its /64.
        assert_eq!(
            from("[2001:db8:0:1:aaaa::1]:9", &[]),
            some("2001:db8:0:1::")
        );
        // A trusted proxy that says nothing usable: not counted.
        assert_eq!(from("127.0.0.1:1", &[]), None);
        assert_eq!(from("127.0.0.1:1", &["not an address"]), None);
    }

    #[test]
    fn only_a_trusted_proxy_says_https() {
        let request = |peer: Option<&str>, proto: &[&str]| {
            let mut req = Request::new(axum::body::Body::empty());
            for p in proto {
                req.headers_mut()
                    .append("x-forwarded-proto", p.parse().unwrap());
            }
            if let Some(peer) = peer {
                let addr: SocketAddr = peer.parse().unwrap();
                req.extensions_mut().insert(ConnectInfo(addr));
            }
            req
        };
        let config = Config {
            trusted_proxies: TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap(),
            ..Config::default()
        };
        let proxy = Some("127.0.0.1:5000");
        assert!(is_secure(&config, &request(proxy, &["https"])));
        assert!(is_secure(
            &config,
            &request(Some("10.2.3.4:1"), &["HTTPS "])
        ));
        assert!(is_secure(&config, &request(proxy, &["http, https"])));
        assert!(!is_secure(&config, &request(proxy, &["https, http"])));
        assert!(!is_secure(&config, &request(proxy, &["https", "http"])));
        assert!(!is_secure(&config, &request(proxy, &["http"])));
        assert!(!is_secure(&config, &request(proxy, &[])));
        // Anyone else may say what they like.
        assert!(!is_secure(
            &config,
            &request(Some("192.168.0.9:1"), &["https"])
        ));
        assert!(!is_secure(&config, &request(None, &["https"])));
        // Told to, every request is.
        let always = Config {
            cookie_secure: true,
            ..Config::default()
        };
        assert!(is_secure(&always, &request(None, &[])));
    }

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
