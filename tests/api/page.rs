//! A page that arrives fast: compression, caching, no session on static
//! files, and Secure cookies behind an HTTPS proxy.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use jobstream::config::TrustedProxies;
use jobstream::Config;
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const JS: &str = "export function hydrate() { console.log('jobstream'); }\n";
const JS_BR: &[u8] = b"brotli bytes as the build wrote them";
const JS_GZ: &[u8] = b"gzip bytes as the build wrote them";

/// A site root as `cargo leptos build` and `scripts/compress-site` leave
/// it: `pkg/jobstream.js` with its `.br` and `.gz` (with the original's
/// modification time, as the script gives them), and a favicon.
fn site() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let pkg = root.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(pkg.join("jobstream.js"), JS).unwrap();
    std::fs::write(pkg.join("jobstream.js.br"), JS_BR).unwrap();
    std::fs::write(pkg.join("jobstream.js.gz"), JS_GZ).unwrap();
    let built = std::fs::metadata(pkg.join("jobstream.js"))
        .unwrap()
        .modified()
        .unwrap();
    for copy in ["jobstream.js.br", "jobstream.js.gz"] {
        set_modified(&pkg.join(copy), built);
    }
    std::fs::write(root.path().join("favicon.ico"), [0u8; 64]).unwrap();
    root
}

fn set_modified(path: &Path, time: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// A server serving `root`, with `hash_files` as given.
async fn spawn_site(config: Config, root: &Path, hash_files: bool) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let config = with_database(config, &data);
    let root = root.display().to_string();
    spawn_app_with(config, data, |options| {
        options.site_root = root.into();
        options.hash_files = hash_files;
    })
    .await
}

/// A client without cookies that sends `Accept-Encoding` only when told
/// (reqwest is built without its decompression features, so what the
/// server sent is what the test sees).
fn cookieless() -> Client {
    Client::new()
}

/// `GET url` with `Accept-Encoding: accept` when given.
async fn fetch(client: &Client, url: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = client.get(url);
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT_ENCODING, accept);
    }
    req.send().await.unwrap()
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn varies_on_encoding(headers: &HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    })
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("valid gzip");
    text
}

#[tokio::test]
async fn bundle_files_are_sent_precompressed_as_accepted_without_a_session() {
    let root = site();
    let app = spawn_site(Config::default(), root.path(), false).await;
    let client = cookieless();
    let url = app.url("/pkg/jobstream.js");
    for (accept, encoding, body) in [
        (Some("br"), Some("br"), JS_BR),
        (Some("gzip"), Some("gzip"), JS_GZ),
        (Some("gzip, deflate, br"), Some("br"), JS_BR),
        (Some("identity"), None, JS.as_bytes()),
        (None, None, JS.as_bytes()),
    ] {
        let resp = fetch(&client, &url, accept).await;
        assert_eq!(resp.status(), StatusCode::OK, "{accept:?}");
        let headers = resp.headers().clone();
        assert_eq!(
            header(&headers, header::CONTENT_ENCODING),
            encoding,
            "{accept:?}"
        );
        assert!(varies_on_encoding(&headers), "{accept:?}: {headers:?}");
        assert!(
            header(&headers, header::CONTENT_TYPE).is_some_and(|t| t.contains("javascript")),
            "{headers:?}"
        );
        // Plain names: the browser must check before reusing the file.
        assert_eq!(header(&headers, header::CACHE_CONTROL), Some("no-cache"));
        assert!(headers.get(header::SET_COOKIE).is_none(), "{headers:?}");
        assert_eq!(resp.bytes().await.unwrap(), body, "{accept:?}");
    }

    // Other files of the site root and a missing bundle file: no session
    // either. A page that does not exist is still a page: the 404 page, in
    // the visitor's session, like before.
    for (path, status, session) in [
        ("/favicon.ico", StatusCode::OK, false),
        ("/pkg/nope.js", StatusCode::NOT_FOUND, false),
        ("/no/such/page", StatusCode::NOT_FOUND, true),
    ] {
        let resp = fetch(&client, &app.url(path), None).await;
        assert_eq!(resp.status(), status, "{path}");
        let headers = resp.headers();
        assert_eq!(headers.contains_key(header::SET_COOKIE), session, "{path}");
        if status == StatusCode::OK || session {
            assert_eq!(
                header(headers, header::CACHE_CONTROL),
                Some("no-cache"),
                "{path}"
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_copy_older_than_its_rebuilt_file_is_never_sent() {
    let root = site();
    // Rebuilt (by `cargo leptos watch`, say) without compress-site.
    let js = root.path().join("pkg/jobstream.js");
    let later = std::fs::metadata(&js).unwrap().modified().unwrap() + Duration::from_secs(5);
    set_modified(&js, later);
    let app = spawn_site(Config::default(), root.path(), false).await;
    for encoding in ["br", "gzip"] {
        let resp = fetch(&cookieless(), &app.url("/pkg/jobstream.js"), Some(encoding)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        // Compressed on the fly from the file itself instead.
        assert_eq!(
            header(resp.headers(), header::CONTENT_ENCODING),
            Some(encoding)
        );
        let body = resp.bytes().await.unwrap();
        assert!(body != JS_BR && body != JS_GZ, "a stale copy was sent");
        if encoding == "gzip" {
            assert_eq!(gunzip(&body), JS);
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn hashed_bundle_files_are_immutable() {
    let root = site();
    let app = spawn_site(Config::default(), root.path(), true).await;
    let resp = fetch(&cookieless(), &app.url("/pkg/jobstream.js"), Some("br")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), header::CACHE_CONTROL),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(header(resp.headers(), header::CONTENT_ENCODING), Some("br"));
    assert!(resp.headers().get(header::SET_COOKIE).is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn json_and_pages_are_compressed_on_the_fly() {
    let app = spawn_app(Config::default()).await;
    for _ in 0..3 {
        app.start_ok("echo", json!({"messages": ["hello"]})).await;
    }

    let resp = fetch(&app.client, &app.url("/api/jobs"), Some("gzip")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), header::CONTENT_ENCODING),
        Some("gzip")
    );
    assert!(varies_on_encoding(resp.headers()));
    let list: Value = serde_json::from_str(&gunzip(&resp.bytes().await.unwrap())).unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3);

    // Without Accept-Encoding: as before.
    let plain = app.get_json("/api/jobs").await;
    assert_eq!(plain["jobs"].as_array().unwrap().len(), 3);

    for encoding in ["gzip", "br"] {
        let resp = fetch(&app.client, &app.url("/"), Some(encoding)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let headers = resp.headers().clone();
        assert_eq!(header(&headers, header::CONTENT_ENCODING), Some(encoding));
        assert!(header(&headers, header::CONTENT_TYPE).is_some_and(|t| t.starts_with("text/html")));
        assert_eq!(header(&headers, header::CACHE_CONTROL), Some("no-cache"));
        assert!(varies_on_encoding(&headers));
        let body = resp.bytes().await.unwrap();
        if encoding == "gzip" {
            let html = gunzip(&body);
            assert!(html.contains("</html>"), "{html}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn event_streams_are_never_compressed_or_held_back() {
    for lean in [true, false] {
        let app = spawn_app(Config {
            lean_streams: lean,
            ..Config::default()
        })
        .await;
        // 3 steps 5 s apart: the job ends 15 s from now.
        let id = app
            .start_ok("demo", json!({"steps": 3, "interval_ms": 5000}))
            .await;
        let resp = fetch(
            &app.client,
            &app.url(&format!("/api/jobs/{id}/events")),
            Some("gzip, br"),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let headers = resp.headers().clone();
        assert_eq!(
            header(&headers, header::CONTENT_ENCODING),
            None,
            "lean {lean}"
        );
        assert!(header(&headers, header::CONTENT_TYPE)
            .is_some_and(|t| t.starts_with("text/event-stream")));
        let mut body = resp.bytes_stream();
        let first = tokio::time::timeout(Duration::from_secs(4), body.next())
            .await
            .unwrap_or_else(|_| panic!("lean {lean}: no event within 4 s"))
            .expect("a chunk")
            .unwrap();
        let text = String::from_utf8(first.to_vec()).expect("plain text, not compressed");
        assert!(text.starts_with("id: 1\n"), "lean {lean}: {text:?}");
        drop(body);
        app.shutdown().await;
    }
}

/// The `Set-Cookie` values of a response.
fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn is_secure(cookie: &str) -> bool {
    cookie
        .split(';')
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

/// The session cookie a new visitor gets on `GET path`, with
/// `X-Forwarded-Proto: https` when `https`.
async fn first_cookie(app: &TestApp, path: &str, https: bool) -> String {
    let mut req = cookieless().get(app.url(path));
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let cookies = set_cookies(&resp);
    assert_eq!(cookies.len(), 1, "{path}: {cookies:?}");
    // A Secure session cookie is `__Host-` prefixed: no sibling subdomain
    // can set it.
    let name = if is_secure(&cookies[0]) {
        "__Host-jobstream_session="
    } else {
        "jobstream_session="
    };
    assert!(cookies[0].starts_with(name), "{cookies:?}");
    cookies[0].clone()
}

/// A new visitor sets a display name (`X-Forwarded-Proto: https` when
/// `https`): the cookies set, the name's among them.
async fn rename(app: &TestApp, https: bool) -> Vec<String> {
    let mut req = cookieless()
        .post(app.url("/api/set_display_name"))
        .form(&[("name", "Ada")]);
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies = set_cookies(&resp);
    assert!(
        cookies.iter().any(|c| c.starts_with("jobstream_name=Ada;")),
        "{cookies:?}"
    );
    cookies
}

#[tokio::test]
async fn cookies_are_secure_when_a_trusted_proxy_says_https() {
    let trusted = Config {
        trusted_proxies: TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Config::default()
    };
    let app = spawn_app(trusted).await;
    // A page over hyper, and a stream over the lean path: both know the peer.
    for path in ["/", "/api/events"] {
        assert!(is_secure(&first_cookie(&app, path, true).await), "{path}");
        assert!(!is_secure(&first_cookie(&app, path, false).await), "{path}");
    }
    // The cookies server functions set, too.
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .post(app.url("/api/set_locale"))
        .header(header::ACCEPT, "text/html")
        .header("x-forwarded-proto", "https")
        .form(&[("locale", "de")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let cookies = set_cookies(&resp);
    assert!(
        cookies.iter().any(|c| c.starts_with("jobstream_lang=de;")),
        "{cookies:?}"
    );
    assert!(cookies.iter().all(|c| is_secure(c)), "{cookies:?}");
    let cookies = rename(&app, true).await;
    assert!(cookies.iter().all(|c| is_secure(c)), "{cookies:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_peer_cannot_claim_https() {
    let app = spawn_app(Config {
        trusted_proxies: TrustedProxies::parse("10.0.0.0/8, ::2").unwrap(),
        ..Config::default()
    })
    .await;
    for path in ["/", "/api/events"] {
        assert!(!is_secure(&first_cookie(&app, path, true).await), "{path}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn cookie_secure_makes_every_cookie_secure() {
    let app = spawn_app(Config {
        cookie_secure: true,
        ..Config::default()
    })
    .await;
    for path in ["/", "/api/events"] {
        assert!(is_secure(&first_cookie(&app, path, false).await), "{path}");
    }
    let cookies = rename(&app, false).await;
    assert_eq!(cookies.len(), 2, "session and name: {cookies:?}");
    assert!(cookies.iter().all(|c| is_secure(c)), "{cookies:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn over_https_a_plain_session_cookie_is_ignored_and_a_host_cookie_kept() {
    let app = spawn_app(Config {
        cookie_secure: true,
        ..Config::default()
    })
    .await;
    let id = jobstream_engine::SessionId::random();
    // Planted by a sibling subdomain, say: not ours over HTTPS.
    let resp = cookieless()
        .get(app.url("/api/jobs"))
        .header(header::COOKIE, format!("jobstream_session={id}"))
        .send()
        .await
        .unwrap();
    let set = set_cookies(&resp);
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("__Host-jobstream_session="), "{set:?}");
    assert!(!set[0].contains(&id.to_string()));
    // The prefixed one is the session: nothing new is set.
    let resp = cookieless()
        .get(app.url("/api/jobs"))
        .header(header::COOKIE, format!("__Host-jobstream_session={id}"))
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&resp).is_empty());
    app.shutdown().await;
}
