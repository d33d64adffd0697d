//! The built site's files (`LEPTOS_SITE_ROOT`), and how responses are
//! cached and compressed.
//!
//! * `/pkg/*` (the bundle and the stylesheet) is served from the site
//!   root's `pkg/` folder. `scripts/compress-site` writes a `.br` and a
//!   `.gz` next to every file after each build; the one the browser accepts
//!   (`Accept-Encoding`) is sent as it is, so the largest responses cost no
//!   compression work per request. They say `Vary: Accept-Encoding`, so a
//!   cache keeps one copy per encoding. The copies carry their original's
//!   modification time; a copy whose time differs is stale (the file was
//!   rebuilt without `compress-site`, by `cargo leptos watch` say) and is
//!   never sent: the file is then compressed on the fly.
//! * Those files are cached by browsers for a year (`immutable`) only when
//!   their names carry their content hash (Leptos' `hash_files`, set by
//!   cargo-leptos' `hash-files` or `LEPTOS_HASH_FILES`): a new build then
//!   has new names, and the page (never cached, below) names the new ones.
//!   With plain names they are `no-cache`: revalidated on every use
//!   (`Last-Modified`, 304), so a new build is picked up at once.
//! * Other files of the site root (a favicon, say) are served the same way
//!   with `no-cache`; a path that is no file gets the app's 404 page.
//! * None of them gets a session: static files are answered before the
//!   session middleware, so they set no cookie and cost no session work.
//! * HTML pages are `no-cache`: they show the session's live state and
//!   name the bundle's current files.
//! * Everything else the server says (HTML, JSON) is compressed on the fly
//!   (gzip or brotli, `CompressionLayer` in `crate::router`), except event
//!   streams: tower-http's default predicate leaves `text/event-stream`
//!   alone, so every event leaves as soon as it is written, on hyper's path
//!   and on the lean one (`crate::front`) alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

use crate::session;

/// `Cache-Control` of files whose names carry their content hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything a browser must check before reusing.
pub const NO_CACHE: &str = "no-cache";

/// The route of the bundle's folder: `/pkg` (`LEPTOS_SITE_PKG_DIR`).
pub fn pkg_route(options: &LeptosOptions) -> String {
    format!("/{}", options.site_pkg_dir.trim_matches('/'))
}

/// The bundle's folder, precompressed variants first; `immutable` when the
/// file names are hashed. Answers 503 while the server drains, like every
/// other route.
pub fn pkg_files(options: &LeptosOptions, shutdown: CancellationToken) -> Router {
    let dir = Path::new(&*options.site_root).join(options.site_pkg_dir.trim_matches('/'));
    let cache = if options.hash_files {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    Router::new()
        .fallback_service(files(&dir))
        .layer(middleware::from_fn_with_state(Arc::new(dir), fresh_copies))
        .layer(middleware::from_fn_with_state(
            HeaderValue::from_static(cache),
            file_headers,
        ))
        .layer(middleware::from_fn_with_state(shutdown, session::draining))
}

/// The rest of the site root; a request for anything that is no file there
/// (or that is not a `GET` or `HEAD`) goes on to `not_found`.
pub fn site_files(
    options: &LeptosOptions,
    shutdown: CancellationToken,
    not_found: Router,
) -> Router {
    let served = files(Path::new(&*options.site_root))
        .call_fallback_on_method_not_allowed(true)
        .fallback(not_found);
    Router::new()
        .fallback_service(served)
        .layer(middleware::from_fn_with_state(
            HeaderValue::from_static(NO_CACHE),
            file_headers,
        ))
        .layer(middleware::from_fn_with_state(shutdown, session::draining))
}

/// A folder's files, with the `.br` or `.gz` next to one sent in its place
/// when the browser accepts it.
fn files(dir: &Path) -> ServeDir {
    ServeDir::new(dir).precompressed_br().precompressed_gzip()
}

/// Lets `ServeDir` pick a `.br` or `.gz` copy only when every copy of the
/// file has its original's modification time (`scripts/compress-site` gives
/// them that); otherwise the file is sent as it is and compressed on the
/// fly by the `CompressionLayer` around the router.
async fn fresh_copies(State(dir): State<Arc<PathBuf>>, mut req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::ACCEPT_ENCODING) {
        let path = req.uri().path().trim_start_matches('/');
        // Percent-escapes and `..` are ServeDir's to judge; ours have none.
        let plain = !path.contains('%') && path.split('/').all(|s| s != "..");
        if plain && stale_copies(&dir.join(path)).await {
            req.headers_mut().remove(header::ACCEPT_ENCODING);
        }
    }
    next.run(req).await
}

/// Whether a `.br` or `.gz` next to `original` was not written from it.
async fn stale_copies(original: &Path) -> bool {
    let modified = |path: PathBuf| async move {
        tokio::fs::metadata(path)
            .await
            .and_then(|m| m.modified())
            .ok()
    };
    let Some(time) = modified(original.to_owned()).await else {
        return false; // no such file: ServeDir says 404
    };
    for ext in ["br", "gz"] {
        let mut copy = original.as_os_str().to_owned();
        copy.push(".");
        copy.push(ext);
        if modified(PathBuf::from(copy))
            .await
            .is_some_and(|t| t != time)
        {
            return true;
        }
    }
    false
}

/// Adds `cache` and `Vary: Accept-Encoding` to a file's response (not to
/// the 404 page, which says `no-cache` as every page does).
async fn file_headers(State(cache): State<HeaderValue>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.entry(header::CACHE_CONTROL).or_insert(cache);
        let varies = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"));
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}

/// Pages are `no-cache` unless their handler said otherwise.
pub async fn html_no_cache(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static(NO_CACHE));
    }
    response
}
