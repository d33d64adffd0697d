//! # The jobstream server
//!
//! An axum server around the engine (`jobstream-engine`) and the Leptos app
//! (`app`): `src/main.rs` reads the configuration and calls [`serve`].
//!
//! ## Layout
//!
//! * [`router`]: every route; tests call it directly.
//! * [`api`]: the JSON API, the job stream `GET /api/jobs/{id}/events` and
//!   the session's job-list stream `GET /api/events`.
//! * [`front`]: the accept loop; event streams are written without
//!   hyper's per-connection buffers, everything else is served by hyper.
//! * [`session`]: the session cookie, the cross-site check, 503 while draining.
//! * [`site`]: the built site's files (precompressed, cached), and why
//!   what is compressed and cached is.
//! * [`limits`]: caps on open streams.
//! * [`jobs`]: the job kinds (`demo`, `echo`, `primes`, `fail`).
//! * [`config`]: the `JOBSTREAM_*` environment variables.
//! * [`error`]: API errors and their status codes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::{shell, App};
use axum::extract::FromRef;
use axum::routing::{any, get, post};
use axum::{middleware, Router};
use jobstream_engine::{Engine, StoreError};
use jobstream_protocol::routes;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub mod api;
pub mod config;
pub mod deadline;
pub mod error;
pub mod frames;
pub mod front;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod session;
pub mod site;

pub use config::Config;

/// Largest request body accepted; beyond it the answer is 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Leptos' settings (site root, address, ...).
    pub leptos_options: LeptosOptions,
    /// The job engine.
    pub engine: Engine,
    /// Server settings.
    pub config: Arc<Config>,
    /// Cancelled when shutdown begins: open streams end.
    pub shutdown: CancellationToken,
    /// Open streams, capped per session and in all.
    pub streams: limits::StreamLimits,
    /// The keep-alive tick every stream watches.
    pub ticks: Arc<tokio::sync::watch::Sender<u64>>,
}

impl AppState {
    /// Opens the store at `config.database_url` (creating it, running its
    /// migrations, recovering what the last run left) and starts the engine
    /// with the server's job kinds.
    pub async fn new(leptos_options: LeptosOptions, config: Config) -> Result<Self, StoreError> {
        let store = jobstream_engine::store::open(&config.database_url).await?;
        Self::with_store(leptos_options, config, store).await
    }

    /// As [`AppState::new`], on a store of the caller's (tests use one
    /// that fails on demand).
    pub async fn with_store(
        leptos_options: LeptosOptions,
        config: Config,
        store: Arc<dyn jobstream_engine::Store>,
    ) -> Result<Self, StoreError> {
        // Before anything counts: the engine's handles are made on first use.
        metrics::handle();
        let engine = Engine::start(
            config.engine.clone(),
            jobs::registry(config.bench_jobs),
            store,
        )
        .await?;
        let shutdown = CancellationToken::new();
        Ok(AppState {
            leptos_options,
            engine,
            streams: limits::StreamLimits::new(config.streams_per_session, config.streams_total),
            ticks: api::KeepAliveTicks::start(config.keep_alive, shutdown.clone()),
            config: Arc::new(config),
            shutdown,
        })
    }
}

/// Every route of the server.
///
/// Pages, server functions and the API get the session middleware (the
/// visitor, the cross-site check, 503 while draining); the site's static
/// files do not, so they never set a cookie (see [`site`]). A path that is
/// neither gets the app's 404 page, with the same middleware as a page.
/// Responses are compressed on the fly (gzip or brotli, as the client
/// accepts), except event streams and files already compressed.
pub fn router(state: AppState) -> Router {
    let engine = state.engine.clone();
    let options = state.leptos_options.clone();
    let shutdown = state.shutdown.clone();
    let config = state.config.clone();
    // The middleware every page and API route gets, innermost first.
    let with_session = |router: Router<AppState>, route: bool| {
        let (shutdown, config) = (shutdown.clone(), config.clone());
        let same_origin = middleware::from_fn(session::same_origin);
        let draining = middleware::from_fn_with_state(shutdown, session::draining);
        let visitor = middleware::from_fn_with_state(config, session::visitor);
        if route {
            // Only on matched routes (a 405 of theirs included), so that
            // the static files added below stay without a session.
            router
                .route_layer(same_origin)
                .route_layer(draining)
                .route_layer(visitor)
        } else {
            router.layer(same_origin).layer(draining).layer(visitor)
        }
    };
    let not_found = with_session(
        Router::new().fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell)),
        false,
    )
    .with_state(state.clone());
    // Event streams are never compressed, so they are kept out of the
    // compression layer altogether: its body wrapper holds every encoder's
    // state inline (5.8 KB), which each open stream would carry for its
    // whole life (most of an idle subscriber's memory).
    let streams = with_session(
        Router::new()
            .route(routes::JOB_EVENTS, get(api::events))
            .route(routes::SESSION_EVENTS, get(api::session_events)),
        true,
    )
    .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    let pages = Router::new()
        .route(routes::JOBS, post(api::create_job).get(api::list_jobs))
        .route(routes::JOB_CANCEL, post(api::cancel_job))
        .route(routes::JOB_LINES, get(api::lines))
        .route(routes::JOB_OUTPUT, get(api::output))
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || provide_context(engine.clone()),
            move || shell(options.clone()),
        )
        .route(routes::API_FALLBACK, any(api::no_route));
    let options = &state.leptos_options;
    // Outside the session middleware: a probe gets no cookie, and an
    // answer while draining.
    let mut app = with_session(pages, true)
        .route(routes::READYZ, get(api::readyz))
        .route(routes::HEALTHZ, get(api::healthz));
    if config.metrics_addr.is_none() {
        app = app.route(routes::METRICS, get(metrics::metrics));
    }
    app.nest_service(
        &site::pkg_route(options),
        site::pkg_files(options, shutdown.clone()),
    )
    .fallback_service(site::site_files(options, shutdown.clone(), not_found))
    .layer(middleware::from_fn(site::html_no_cache))
    .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
    // gzip and brotli (the crate features enabled); its default
    // predicate skips `text/event-stream`, small bodies and images,
    // and it never touches a response that has a Content-Encoding.
    // Nor one that says `X-Accel-Buffering: no` (a followed output):
    // a compressor holds bytes back until its buffer fills.
    .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(unbuffered)))
    .merge(streams)
    .with_state(state)
}

/// The compression predicate's part that leaves alone responses that must
/// reach the client as they are written.
fn unbuffered(
    _: axum::http::StatusCode,
    _: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _: &axum::http::Extensions,
) -> bool {
    headers.get("x-accel-buffering").is_none_or(|v| v != "no")
}

/// Serves until `signal` completes, then shuts down: streams end with a
/// `retry:` hint, the engine stops its jobs, and connections drain, all
/// within the configured grace period (plus one second to log what is left).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    let engine = state.engine.clone();
    let grace = state.config.shutdown_grace;
    if let Some(addr) = state.config.metrics_addr {
        let metrics_listener = TcpListener::bind(addr).await?;
        tracing::info!("metrics on http://{addr}{}", routes::METRICS);
        let app = Router::new()
            .route(routes::METRICS, get(metrics::metrics))
            .with_state(engine.clone());
        let stop = token.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let options = front::Options {
        lean: state.config.lean_streams,
        head_timeout: state.config.head_timeout,
        write_timeout: state.config.write_timeout,
        shutdown: token.clone(),
    };
    let connections_open = limits::ConnectionLimits::new(
        state.config.max_connections_per_address,
        state.config.max_connections,
    );
    let proxies = state.config.trusted_proxies.clone();
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = tokio_util::task::TaskTracker::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // A trusted proxy carries many clients: not capped as one.
                    let taken = if proxies.contains(peer.ip()) {
                        connections_open.acquire_uncapped(None)
                    } else {
                        connections_open.acquire(Some(peer.ip()))
                    };
                    match taken {
                        Ok(permit) => {
                            let serve = front::connection(stream, app.clone(), graceful.watcher(), options.clone());
                            connections.spawn(async move {
                                serve.await;
                                drop(permit);
                            });
                        }
                        // Closed at once: answering would cost what the cap saves.
                        Err(refused) => {
                            metrics::refused(match refused {
                                limits::Refused::PerOwner { .. } => "address",
                                limits::Refused::Total { .. } => "connections",
                            });
                            tracing::debug!(%peer, ?refused, "connection refused");
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors, most likely: the open streams'
                    // own limits answer 429 long before; wait, then go on.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!("shutting down");
    token.cancel();
    connections.close();
    let drain = async {
        tokio::join!(
            engine.shutdown(grace),
            graceful.shutdown(),
            connections.wait()
        );
    };
    if tokio::time::timeout(grace + Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; exiting anyway");
    }
    Ok(())
}
