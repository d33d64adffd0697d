//! Configuration: every setting is a command-line flag and an environment
//! variable (`--workers` or `JOBSTREAM_WORKERS`), declared once with clap so
//! `jobstream --help` lists them all with their defaults. Every setting is
//! optional; a value that is set but invalid stops the server with a message
//! naming the variable (or flag) and what it accepts.
//!
//! Leptos reads its own `LEPTOS_*` variables (`get_configuration`); they are
//! not declared here.

use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use jobstream_engine::{EngineConfig, LogLimits};

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
    /// Event streams on fresh connections go through the lean writer
    /// (`front.rs`) rather than through hyper.
    pub lean_streams: bool,
    /// Peers whose `X-Forwarded-Proto: https` is believed: the reverse
    /// proxies in front of the server. Nobody by default.
    pub trusted_proxies: TrustedProxies,
    /// Cookies always get `Secure`, whoever asks (the site is only ever
    /// reached over HTTPS).
    pub cookie_secure: bool,
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
            lean_streams: true,
            trusted_proxies: TrustedProxies::default(),
            cookie_secure: false,
        }
    }
}

/// The peers allowed to say how a request reached them
/// (`JOBSTREAM_TRUSTED_PROXIES`): IP addresses and CIDR ranges. Anyone can
/// send `X-Forwarded-Proto`; only a proxy we know sets it truthfully, so the
/// header counts only when the connection comes from one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Reads `127.0.0.1, 10.0.0.0/8, ::1`: IPv4 or IPv6 addresses (one
    /// host each) and CIDR ranges, separated by commas; spaces around each
    /// are allowed, and an empty list trusts nobody.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in value.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let net = match item.parse::<IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => item.parse::<ipnet::IpNet>().map_err(|_| {
                    format!(
                        "expected IP addresses or CIDR ranges separated by commas, \
                         such as 127.0.0.1,10.0.0.0/8; {item:?} is neither"
                    )
                })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether a connection from `peer` comes from a trusted proxy. An
    /// IPv4 peer seen on an IPv6 socket (`::ffff:a.b.c.d`) counts as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }

    /// Nobody is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// The settings as clap sees them: flags in the units people type (seconds,
/// counts); [`Config`] holds them in the units the code uses.
///
/// Each flag's long name is its variable's name without `JOBSTREAM_`, in
/// lower case with dashes (a unit test keeps them in step).
#[derive(Debug, Parser)]
#[command(
    name = "jobstream",
    version,
    about = "Runs jobs and streams their output to browsers over SSE.",
    long_about = None,
    after_help = "Every flag may be given as its environment variable instead; a flag wins over \
                  its variable. Leptos reads its own: LEPTOS_SITE_ADDR (address to listen on, \
                  default 127.0.0.1:3000) and LEPTOS_SITE_ROOT (the built site, default \
                  target/site). RUST_LOG sets the log filter (default info)."
)]
struct Flags {
    /// The job store, a SQLite URL; the file and its folder are created and
    /// migrations run at start
    // The value is hidden in --help: a future PostgreSQL URL holds a password.
    #[arg(long, env = "JOBSTREAM_DATABASE_URL", value_name = "URL", hide_env_values = true,
          default_value = DEFAULT_DATABASE_URL, value_parser = sqlite_url)]
    database_url: String,

    /// Finished jobs and their events are deleted this long after they
    /// ended (1 s to 10 years)
    #[arg(long, env = "JOBSTREAM_RETENTION_SECS", value_name = "SECS",
          default_value_t = Config::default().engine.retention.as_secs(),
          value_parser = whole::<1, { 10 * 365 * 24 * 3600 }>)]
    retention_secs: u64,

    /// Jobs that run at once (1 to 1024)
    #[arg(long, env = "JOBSTREAM_WORKERS", value_name = "N",
          default_value_t = Config::default().engine.workers as u64,
          value_parser = whole::<1, 1024>)]
    workers: u64,

    /// Jobs that may wait; beyond it starting a job answers 503 with
    /// Retry-After (1 to 1000000)
    #[arg(long, env = "JOBSTREAM_QUEUE", value_name = "N",
          default_value_t = Config::default().engine.queue_capacity as u64,
          value_parser = whole::<1, 1_000_000>)]
    queue: u64,

    /// Events kept per job; older ones are dropped and readers who needed
    /// them get `gap` (16 to 10000000)
    #[arg(long, env = "JOBSTREAM_LOG_EVENTS", value_name = "N",
          default_value_t = Config::default().engine.log_limits.max_events as u64,
          value_parser = whole::<16, 10_000_000>)]
    log_events: u64,

    /// Encoded bytes kept per job, likewise (1024 to 2^34)
    #[arg(long, env = "JOBSTREAM_LOG_BYTES", value_name = "BYTES",
          default_value_t = Config::default().engine.log_limits.max_bytes as u64,
          value_parser = whole::<1024, { 1 << 34 }>)]
    log_bytes: u64,

    /// Largest single message; a larger emit fails with an error to the
    /// job, nothing is cut (16 to 16 MiB, at most the log bytes)
    #[arg(long, env = "JOBSTREAM_MAX_MESSAGE_BYTES", value_name = "BYTES",
          default_value_t = Config::default().engine.log_limits.max_message_bytes as u64,
          value_parser = whole::<16, { 16 * 1024 * 1024 }>)]
    max_message_bytes: u64,

    /// Finished jobs kept in memory; beyond it the oldest is dropped from
    /// memory and loaded again from the store when asked for (0 to
    /// 10000000)
    #[arg(long, env = "JOBSTREAM_RETAINED_JOBS", value_name = "N",
          default_value_t = Config::default().engine.retained_jobs as u64,
          value_parser = whole::<0, 10_000_000>)]
    retained_jobs: u64,

    /// Idle time before a keep-alive comment (1 to 3600)
    #[arg(long, env = "JOBSTREAM_KEEPALIVE_SECS", value_name = "SECS",
          default_value_t = Config::default().keep_alive.as_secs(),
          value_parser = whole::<1, 3600>)]
    keepalive_secs: u64,

    /// How long shutdown waits for jobs and connections (0 to 3600)
    #[arg(long, env = "JOBSTREAM_SHUTDOWN_GRACE_SECS", value_name = "SECS",
          default_value_t = Config::default().shutdown_grace.as_secs(),
          value_parser = whole::<0, 3600>)]
    shutdown_grace_secs: u64,

    /// Open streams per session; beyond it 429 (1 to 1000000)
    #[arg(long, env = "JOBSTREAM_STREAMS_PER_SESSION", value_name = "N",
          default_value_t = Config::default().streams_per_session as u64,
          value_parser = whole::<1, 1_000_000>)]
    streams_per_session: u64,

    /// Open streams in all; beyond it 429 (1 to 10000000)
    #[arg(long, env = "JOBSTREAM_STREAMS_TOTAL", value_name = "N",
          default_value_t = Config::default().streams_total as u64,
          value_parser = whole::<1, 10_000_000>)]
    streams_total: u64,

    /// A stream's lifetime; then it ends with a `retry:` hint and the
    /// client resumes (1 s to 7 days)
    #[arg(long, env = "JOBSTREAM_STREAM_LIFETIME_SECS", value_name = "SECS",
          default_value_t = Config::default().stream_lifetime.as_secs(),
          value_parser = whole::<1, { 7 * 24 * 3600 }>)]
    stream_lifetime_secs: u64,

    /// Serve event streams on fresh connections through the lean writer
    /// (src/front.rs); 0 sends them through hyper like every other response
    #[arg(long, env = "JOBSTREAM_LEAN_STREAMS", value_name = "BOOL",
          default_value_t = Config::default().lean_streams, value_parser = switch,
          action = clap::ArgAction::Set)]
    lean_streams: bool,

    /// Reverse proxies whose X-Forwarded-Proto is believed, IP addresses or
    /// CIDR ranges separated by commas (such as 127.0.0.1,10.0.0.0/8);
    /// cookies get Secure when one of them says https; nobody by default
    #[arg(long, env = "JOBSTREAM_TRUSTED_PROXIES", value_name = "LIST",
          value_parser = TrustedProxies::parse)]
    trusted_proxies: Option<TrustedProxies>,

    /// Cookies always get Secure (the site is only reached over HTTPS)
    #[arg(long, env = "JOBSTREAM_COOKIE_SECURE", value_name = "BOOL",
          default_value_t = Config::default().cookie_secure, value_parser = switch,
          action = clap::ArgAction::Set)]
    cookie_secure: bool,
}

/// A whole number from `MIN` to `MAX`; spaces around it are allowed
/// because they slip into env files and YAML.
fn whole<const MIN: u64, const MAX: u64>(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {MIN} to {MAX}")),
    }
}

/// Refuses other databases at start, not at the first query.
fn sqlite_url(value: &str) -> Result<String, String> {
    if value.starts_with("sqlite:") {
        Ok(value.to_owned())
    } else {
        Err("expected a SQLite URL such as sqlite://data/jobstream.db \
             (PostgreSQL is not supported yet)"
            .to_owned())
    }
}

/// The spellings of on and off people put in environments.
fn switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1, true, yes or on; or 0, false, no or off".to_owned()),
    }
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
            value: get(name).unwrap_or_default(),
            expected: expected.to_string(),
        },
        _ => ConfigError::Usage(e),
    }
}

impl Flags {
    fn into_config(self) -> Result<Config, ConfigError> {
        if self.max_message_bytes > self.log_bytes {
            return Err(ConfigError::Invalid {
                name: "JOBSTREAM_MAX_MESSAGE_BYTES".to_owned(),
                value: self.max_message_bytes.to_string(),
                expected: format!("must not exceed JOBSTREAM_LOG_BYTES ({})", self.log_bytes),
            });
        }
        // The ranges fit in 64 bits; a 32-bit build caps the byte limits.
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Config {
            database_url: self.database_url,
            engine: EngineConfig {
                workers: size(self.workers),
                queue_capacity: size(self.queue),
                log_limits: LogLimits {
                    max_events: size(self.log_events),
                    max_bytes: size(self.log_bytes),
                    max_message_bytes: size(self.max_message_bytes),
                },
                retained_jobs: size(self.retained_jobs),
                retention: Duration::from_secs(self.retention_secs),
            },
            keep_alive: Duration::from_secs(self.keepalive_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            streams_per_session: size(self.streams_per_session),
            streams_total: size(self.streams_total),
            stream_lifetime: Duration::from_secs(self.stream_lifetime_secs),
            lean_streams: self.lean_streams,
            trusted_proxies: self.trusted_proxies.unwrap_or_default(),
            cookie_secure: self.cookie_secure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every variable with a value its range accepts, none a default.
    const ALL: [(&str, &str); 16] = [
        ("JOBSTREAM_DATABASE_URL", "sqlite::memory:"),
        ("JOBSTREAM_RETENTION_SECS", "60"),
        ("JOBSTREAM_WORKERS", "8"),
        ("JOBSTREAM_QUEUE", "5"),
        ("JOBSTREAM_LOG_EVENTS", "100"),
        ("JOBSTREAM_LOG_BYTES", "2048"),
        ("JOBSTREAM_MAX_MESSAGE_BYTES", "512"),
        ("JOBSTREAM_RETAINED_JOBS", "0"),
        ("JOBSTREAM_KEEPALIVE_SECS", "3"),
        ("JOBSTREAM_SHUTDOWN_GRACE_SECS", "0"),
        ("JOBSTREAM_STREAMS_PER_SESSION", "7"),
        ("JOBSTREAM_STREAMS_TOTAL", "70"),
        ("JOBSTREAM_STREAM_LIFETIME_SECS", "120"),
        ("JOBSTREAM_LEAN_STREAMS", "0"),
        ("JOBSTREAM_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ("JOBSTREAM_COOKIE_SECURE", "1"),
    ];

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(lookup(vars))
    }

    fn args(argv: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse_from(
            std::iter::once("jobstream").chain(argv.iter().copied()),
            lookup(vars),
        )
    }

    fn help() -> String {
        match args(&["--help"], &[]) {
            Err(ConfigError::Usage(e)) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                e.to_string()
            }
            other => panic!("--help gave {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        let d = Config::default();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.engine.workers, 4);
        assert_eq!(c.engine.queue_capacity, 1000);
        assert_eq!(c.engine.log_limits, d.engine.log_limits);
        assert_eq!(c.engine.retained_jobs, d.engine.retained_jobs);
        assert_eq!(c.engine.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.keep_alive, Duration::from_secs(15));
        assert_eq!(c.shutdown_grace, d.shutdown_grace);
        assert_eq!(c.streams_per_session, 32);
        assert_eq!(c.streams_total, 10_000);
        assert_eq!(c.stream_lifetime, Duration::from_secs(3600));
        assert!(c.lean_streams);
        assert!(c.trusted_proxies.is_empty());
        assert!(!c.cookie_secure);
    }

    #[test]
    fn reads_values() {
        let c = with(&[("JOBSTREAM_WORKERS", "8"), ("JOBSTREAM_QUEUE", " 5 ")]).unwrap();
        assert_eq!((c.engine.workers, c.engine.queue_capacity), (8, 5));
    }

    #[test]
    fn reads_every_variable() {
        let c = with(&ALL).unwrap();
        assert_eq!(c.database_url, "sqlite::memory:");
        assert_eq!(c.engine.retention, Duration::from_secs(60));
        assert_eq!((c.engine.workers, c.engine.queue_capacity), (8, 5));
        assert_eq!(
            c.engine.log_limits,
            LogLimits {
                max_events: 100,
                max_bytes: 2048,
                max_message_bytes: 512
            }
        );
        assert_eq!(c.engine.retained_jobs, 0);
        assert_eq!(c.keep_alive, Duration::from_secs(3));
        assert_eq!(c.shutdown_grace, Duration::ZERO);
        assert_eq!((c.streams_per_session, c.streams_total), (7, 70));
        assert_eq!(c.stream_lifetime, Duration::from_secs(120));
        assert!(!c.lean_streams);
        assert_eq!(
            c.trusted_proxies,
            TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap()
        );
        assert!(c.cookie_secure);
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = TrustedProxies::parse(" 127.0.0.1 , 10.0.0.0/8,fd00::/8, ::1,").unwrap();
        for peer in ["127.0.0.1", "10.1.2.3", "fd12::7", "::1", "::ffff:10.9.9.9"] {
            assert!(trusted.contains(ip(peer)), "{peer}");
        }
        for peer in [
            "127.0.0.2",
            "11.0.0.1",
            "fe80::1",
            "::2",
            "::ffff:127.0.0.2",
        ] {
            assert!(!trusted.contains(ip(peer)), "{peer}");
        }
        // A range written with its host bits set still means the range.
        assert!(TrustedProxies::parse("192.168.1.7/24")
            .unwrap()
            .contains(ip("192.168.1.200")));
        // Nobody, however it is said.
        for nobody in ["", " ", ",", " , "] {
            let t = TrustedProxies::parse(nobody).unwrap();
            assert!(t.is_empty() && !t.contains(ip("127.0.0.1")), "{nobody:?}");
        }
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "1.2.3",
            "::1/129",
            "10.0.0.1;10.0.0.2",
            "*",
        ] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?} is neither")), "{bad}: {e}");
        }
    }

    #[test]
    fn new_settings_name_their_variable() {
        let e = with(&[("JOBSTREAM_TRUSTED_PROXIES", "127.0.0.1,proxy")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_TRUSTED_PROXIES="127.0.0.1,proxy" is invalid: expected IP addresses or CIDR ranges separated by commas, such as 127.0.0.1,10.0.0.0/8; "proxy" is neither"#
        );
        let e = with(&[("JOBSTREAM_COOKIE_SECURE", "https")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_COOKIE_SECURE="https" is invalid: expected 1, true, yes or on; or 0, false, no or off"#
        );
        let c = args(&["--trusted-proxies", "::1", "--cookie-secure=on"], &[]).unwrap();
        assert!(c.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(c.cookie_secure);
    }

    #[test]
    fn lean_streams_spellings() {
        for (value, on) in [("1", true), ("true", true), ("0", false), ("false", false)] {
            let c = with(&[("JOBSTREAM_LEAN_STREAMS", value)]).unwrap();
            assert_eq!(c.lean_streams, on, "{value}");
        }
        let e = with(&[("JOBSTREAM_LEAN_STREAMS", "maybe")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_LEAN_STREAMS="maybe" is invalid: expected 1, true, yes or on; or 0, false, no or off"#
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = with(&[("JOBSTREAM_WORKERS", "0")]).unwrap_err().to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_WORKERS="0" is invalid: expected a whole number from 1 to 1024"#
        );
        let e = with(&[("JOBSTREAM_QUEUE", "lots")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_QUEUE="lots" is invalid: expected a whole number from 1 to 1000000"#
        );
        let e = with(&[("JOBSTREAM_STREAMS_TOTAL", "")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_STREAMS_TOTAL="" is invalid: expected a whole number from 1 to 10000000"#
        );
        let e = with(&[("JOBSTREAM_DATABASE_URL", "postgres://db")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_DATABASE_URL="postgres://db" is invalid: expected a SQLite URL such as sqlite://data/jobstream.db (PostgreSQL is not supported yet)"#
        );
        let e = with(&[
            ("JOBSTREAM_LOG_BYTES", "2048"),
            ("JOBSTREAM_MAX_MESSAGE_BYTES", "4096"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_MAX_MESSAGE_BYTES="4096" is invalid: must not exceed JOBSTREAM_LOG_BYTES (2048)"#
        );
    }

    #[test]
    fn flags_set_values_and_win_over_variables() {
        let c = args(
            &["--workers", "2", "--lean-streams=false"],
            &[("JOBSTREAM_WORKERS", "0"), ("JOBSTREAM_QUEUE", "9")],
        )
        .unwrap();
        assert_eq!((c.engine.workers, c.engine.queue_capacity), (2, 9));
        assert!(!c.lean_streams);
    }

    #[test]
    fn a_bad_flag_value_names_the_flag() {
        let Err(ConfigError::Usage(e)) = args(&["--workers", "0"], &[]) else {
            panic!("--workers 0 was accepted");
        };
        let text = e.to_string();
        assert!(text.contains("--workers"), "{text}");
        assert!(
            text.contains("expected a whole number from 1 to 1024"),
            "{text}"
        );
    }

    #[test]
    fn unknown_arguments_are_refused() {
        for argv in [&["--wokers", "8"][..], &["serve"]] {
            match args(argv, &[]) {
                Err(ConfigError::Usage(e)) => assert!(e.use_stderr(), "{argv:?}: {e}"),
                other => panic!("{argv:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn help_lists_every_variable_with_its_flag_and_default() {
        let help = help();
        for (name, _) in ALL {
            assert!(
                help.contains(&format!("[env: {name}")),
                "{name} missing:\n{help}"
            );
            let flag = name
                .trim_start_matches("JOBSTREAM_")
                .to_ascii_lowercase()
                .replace('_', "-");
            assert!(
                help.contains(&format!("--{flag} ")),
                "--{flag} missing:\n{help}"
            );
        }
        assert!(help.contains("[default: 4]"), "{help}");
        assert!(help.contains("LEPTOS_SITE_ADDR"), "{help}");
        let declared = Flags::command()
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .count();
        assert_eq!(declared, ALL.len(), "a setting is missing from ALL");
    }
}
