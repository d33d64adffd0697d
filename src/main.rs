//! The jobstream server binary: reads configuration (flags and
//! `JOBSTREAM_*` variables, see `jobstream --help`), binds, serves.

use jobstream::config::{ConfigError, LogFormat};
use jobstream::{serve, AppState, Config};
use leptos::prelude::get_configuration;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        // Help goes to stdout with status 0, a refused command line to
        // stderr with status 2, as with any clap program.
        Err(ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("jobstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init(),
    }
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jobstream: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    // Every open stream is a socket: allow as many as the hard limit does.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open file limit: {n}"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
    let mut leptos_options = get_configuration(None)
        .map_err(|e| format!("invalid LEPTOS_* setting: {e}"))?
        .leptos_options;
    if leptos_options.output_name.is_empty() {
        // Built without cargo-leptos: the bundle's name is fixed in Cargo.toml.
        leptos_options.output_name = "jobstream".into();
    }
    let addr = leptos_options.site_addr;
    let listener =
        listen(addr).map_err(|e| format!("cannot listen on {addr} (LEPTOS_SITE_ADDR): {e}"))?;
    tracing::info!(
        "listening on http://{} with {} workers",
        listener.local_addr().map_err(|e| e.to_string())?,
        config.engine.workers
    );
    let database = jobstream::config::redacted(&config.database_url);
    let state = AppState::new(leptos_options, config).await.map_err(|e| {
        format!("cannot open the job store {database} (JOBSTREAM_DATABASE_URL): {e}")
    })?;
    serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// A listener on `addr` with a backlog of 4,096 connections waiting to be
/// accepted (the standard library's 128 overflows when thousands of
/// clients connect at once, and an overflow costs a client a one-second
/// SYN retry; the kernel caps it at `net.core.somaxconn`).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
