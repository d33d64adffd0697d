//! Configuration: every setting is a command-line flag and an environment
//! variable (`--workers` or `JOBSTREAM_WORKERS`), declared once with clap so
//! `jobstream --help` lists them all with their defaults. Every setting is
//! optional; a value that is set but invalid stops the server with a message
//! naming the variable (or flag) and what it accepts.
//!
//! Leptos reads its own `LEPTOS_*` variables (`get_configuration`); they are
//! not declared here.

//!
//! * this file: [`Config`] (the settings in the units the code uses), how
//!   they are read, and [`ConfigError`];
//! * `flags.rs`: the clap declaration of every flag and its variable, with
//!   the value parsers;
//! * [`proxies`]: [`TrustedProxies`], the `JOBSTREAM_TRUSTED_PROXIES` list.

use std::ffi::OsString;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use jobstream_engine::EngineConfig;

use flags::Flags;
pub use proxies::TrustedProxies;

mod flags;
pub mod proxies;
#[cfg(test)]
mod tests;

/// Everything the server reads from its flags and environment besides
/// Leptos' own `LEPTOS_*` variables (`LEPTOS_SITE_ADDR` sets the address).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where jobs and their events are stored (a sqlx SQLite URL).
    pub database_url: String,
    /// The engine's sizes.
    pub engine: EngineConfig,
    /// Idle time after which a stream gets a keep-alive comment.
    pub keep_alive: Duration,
    /// How long shutdown waits for running jobs and open connections.
    pub shutdown_grace: Duration,
    /// Open streams one session may have; beyond it 429.
    pub streams_per_session: usize,
    /// Open streams in all; beyond it 429.
    pub streams_total: usize,
    /// How long one stream stays open before it ends with a `retry:` hint
    /// (the client then resumes where it was).
    pub stream_lifetime: Duration,
    /// A write to a client that makes no progress for this long closes the
    /// connection.
    pub write_timeout: Duration,
    /// Time to send a request head; also how long a kept-alive connection
    /// may wait idle for its next request.
    pub head_timeout: Duration,
    /// Open connections in all; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Open connections per client address (0: no cap); a trusted proxy's
    /// connections are not capped this way.
    pub max_connections_per_address: usize,
    /// Event streams on fresh connections go through the lean writer
    /// (`front.rs`) rather than through hyper.
    pub lean_streams: bool,
    /// Peers whose `X-Forwarded-Proto: https` is believed: the reverse
    /// proxies in front of the server. Nobody by default.
    pub trusted_proxies: TrustedProxies,
    /// Cookies always get `Secure`, whoever asks (the site is only ever
    /// reached over HTTPS).
    pub cookie_secure: bool,
    /// The `bench` job kind is offered (`JOBSTREAM_BENCH=1`).
    pub bench_jobs: bool,
    /// Where `GET /metrics` is served instead of the main port (for a
    /// port only the monitoring can reach); `None`: on the main port.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// How log lines are written (`JOBSTREAM_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line each, coloured on a terminal.
    #[default]
    Text,
    /// For log collectors: one JSON object per line, with the fields of
    /// the spans it is in (a job's `id` and `kind`).
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            engine: EngineConfig::default(),
            keep_alive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(10),
            streams_per_session: 32,
            streams_total: 10_000,
            stream_lifetime: Duration::from_secs(3600),
            write_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(30),
            max_connections: 16_384,
            max_connections_per_address: 512,
            lean_streams: true,
            trusted_proxies: TrustedProxies::default(),
            cookie_secure: false,
            bench_jobs: false,
            metrics_addr: None,
            log_format: LogFormat::Text,
        }
    }
}

/// `url` with its password (if any) replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparsable: it may still hold a password somewhere.
        Err(_) => "(the configured URL)".to_owned(),
    }
}

/// The store used when `JOBSTREAM_DATABASE_URL` is not set, relative to
/// the working directory; the folder is created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/jobstream.db";

/// Why the server cannot start with what it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting with an unusable value, named by its variable (a
    /// cross-check names it even when its flag set it).
    #[error("{name}={value:?} is invalid: {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
    /// The command line: `--help`, `--version`, or something clap refused
    /// (an unknown flag, a bad flag value). `exit()` prints it the way clap
    /// does, help on stdout with status 0, errors on stderr with status 2.
    #[error("{0}")]
    Usage(clap::Error),
}

impl Config {
    /// Reads the configuration from the process's command line and
    /// environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse_from(std::env::args_os(), |name| std::env::var(name).ok())
    }

    /// Reads the configuration from variables answered by `get` alone, with
    /// no flags (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::parse_from(["jobstream"], get)
    }

    /// Reads the configuration from `argv` (program name first) and the
    /// variables answered by `get`; a flag wins over its variable.
    pub fn parse_from<I, T>(
        argv: I,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        // Clap reads the process environment itself, which would bypass
        // `get` and would not tell a bad variable from a bad flag; so its
        // reading is off and set variables are passed as flags below.
        let command = Flags::command().mut_args(|arg| arg.env(None));
        // Built, so its arguments print as clap's errors show them.
        let mut declared = Flags::command();
        declared.build();
        let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let given = command
            .clone()
            .try_get_matches_from(&argv)
            .map_err(|e| usage(e, &argv))?;
        for arg in declared.get_arguments() {
            let (Some(name), Some(long)) = (arg.get_env().and_then(|n| n.to_str()), arg.get_long())
            else {
                continue;
            };
            if given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
                continue;
            }
            if let Some(value) = get(name) {
                argv.push(format!("--{long}={value}").into());
            }
        }
        // The command line alone parsed, so what fails now is a variable.
        let matches = command
            .try_get_matches_from(&argv)
            .map_err(|e| invalid_variable(e, &declared, &get))?;
        let flags = Flags::from_arg_matches(&matches).map_err(ConfigError::Usage)?;
        flags.into_config()
    }
}

/// A command-line error as clap reports it, except that help is rendered
/// from the declared command so it lists each flag's variable (the parsing
/// command has them removed). Help is decided before any value is read, so
/// parsing `argv` again yields the same help.
fn usage(e: clap::Error, argv: &[OsString]) -> ConfigError {
    if e.kind() == clap::error::ErrorKind::DisplayHelp {
        if let Err(help) = Flags::command().try_get_matches_from(argv) {
            return ConfigError::Usage(help);
        }
    }
    ConfigError::Usage(e)
}

/// Names the variable behind a value clap refused, with what it accepts.
fn invalid_variable(
    e: clap::Error,
    declared: &clap::Command,
    get: &impl Fn(&str) -> Option<String>,
) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return ConfigError::Usage(e);
    };
    let name = declared
        .get_arguments()
        .find(|arg| arg.to_string() == *shown)
        .and_then(|arg| arg.get_env()?.to_str());
    match (name, std::error::Error::source(&e)) {
        (Some(name), Some(expected)) => ConfigError::Invalid {
            name: name.to_owned(),
            // A database URL may hold a password: not repeated.
            value: if name == "JOBSTREAM_DATABASE_URL" {
                "…".to_owned()
            } else {
                get(name).unwrap_or_default()
            },
            expected: expected.to_string(),
        },
        _ => ConfigError::Usage(e),
    }
}
