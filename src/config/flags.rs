//! The settings as clap declares them: one flag and one variable each,
//! with the value parsers that check them, and their conversion to
//! [`Config`].

use std::time::Duration;

use clap::Parser;
use jobstream_engine::{ClusterConfig, EngineConfig, LogLimits, QuotaConfig};

use super::{Config, ConfigError, TrustedProxies, DEFAULT_DATABASE_URL};

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
pub(super) struct Flags {
    /// The job store: sqlite://PATH (one process; the file and its folder
    /// are created) or postgres://USER:PASSWORD@HOST:PORT/DB (any number of
    /// nodes share its queue); migrations run at start
    // The value is hidden in --help: a PostgreSQL URL may hold a password.
    #[arg(long, env = "JOBSTREAM_DATABASE_URL", value_name = "URL", hide_env_values = true,
          default_value = DEFAULT_DATABASE_URL, value_parser = database_url)]
    database_url: String,

    /// On PostgreSQL: how often this node records that it is alive (1 to
    /// 60 s)
    #[arg(long, env = "JOBSTREAM_HEARTBEAT_SECS", value_name = "SECS",
          default_value_t = 2, value_parser = whole::<1, 60>)]
    heartbeat_secs: u64,

    /// On PostgreSQL: a node not heard from for this long is dead; its
    /// running jobs end interrupted, its claimed jobs run elsewhere (2 to
    /// 3600 s, at least three heartbeats)
    #[arg(long, env = "JOBSTREAM_NODE_TIMEOUT_SECS", value_name = "SECS",
          default_value_t = 10, value_parser = whole::<2, 3600>)]
    node_timeout_secs: u64,

    /// Finished jobs and their events are deleted this long after they
    /// ended (1 s to 10 years)
    #[arg(long, env = "JOBSTREAM_RETENTION_SECS", value_name = "SECS",
          default_value_t = Config::default().engine.retention.as_secs(),
          value_parser = whole::<1, { 10 * 365 * 24 * 3600 }>)]
    retention_secs: u64,

    /// Longest a job may run (a kind may allow less); then it is asked to
    /// stop and ends failed (1 s to 1 year)
    #[arg(long, env = "JOBSTREAM_JOB_MAX_SECS", value_name = "SECS",
          default_value_t = Config::default().engine.max_duration.as_secs(),
          value_parser = whole::<1, { 365 * 24 * 3600 }>)]
    job_max_secs: u64,

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

    /// Events kept in memory per job; readers who need older ones read them
    /// from the store (16 to 10000000)
    #[arg(long, env = "JOBSTREAM_LOG_EVENTS", value_name = "N",
          default_value_t = Config::default().engine.log_limits.max_events as u64,
          value_parser = whole::<16, 10_000_000>)]
    log_events: u64,

    /// Bytes of memory the events kept per job may hold (text, encoded
    /// frame and bookkeeping), likewise (1024 to 2^34)
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

    /// Most bytes of messages one job may say in all; an emit beyond it
    /// fails with an error to the job (1 MiB to 1 TiB)
    #[arg(long, env = "JOBSTREAM_JOB_MAX_BYTES", value_name = "BYTES",
          default_value_t = Config::default().engine.log_limits.max_job_bytes,
          value_parser = whole::<{ 1024 * 1024 }, { 1 << 40 }>)]
    job_max_bytes: u64,

    /// Most messages one job may say in all (each is a row in the store,
    /// however short); an emit beyond it fails with an error to the job
    /// (1000 to 1000000000)
    #[arg(long, env = "JOBSTREAM_JOB_MAX_EVENTS", value_name = "N",
          default_value_t = Config::default().engine.log_limits.max_job_events,
          value_parser = whole::<1000, 1_000_000_000>)]
    job_max_events: u64,

    /// Finished jobs kept in memory; beyond it the oldest is dropped from
    /// memory and loaded again from the store when asked for (0 to
    /// 10000000)
    #[arg(long, env = "JOBSTREAM_RETAINED_JOBS", value_name = "N",
          default_value_t = Config::default().engine.retained_jobs as u64,
          value_parser = whole::<0, 10_000_000>)]
    retained_jobs: u64,

    /// Queued or running jobs one session may have; beyond it starting a
    /// job answers 429 (0 = no limit, up to 1000000)
    #[arg(long, env = "JOBSTREAM_JOBS_PER_SESSION", value_name = "N",
          default_value_t = Config::default().engine.quotas.jobs_per_session as u64,
          value_parser = whole::<0, 1_000_000>)]
    jobs_per_session: u64,

    /// Jobs one session may start in a minute; beyond it 429 with
    /// Retry-After (0 = no limit, up to 1000000)
    #[arg(long, env = "JOBSTREAM_STARTS_PER_MINUTE", value_name = "N",
          default_value_t = u64::from(Config::default().engine.quotas.starts_per_minute),
          value_parser = whole::<0, 1_000_000>)]
    starts_per_minute: u64,

    /// Queued or running jobs the sessions of one client address may have,
    /// so minted sessions do not get around the session's limit; behind a
    /// trusted proxy the address it forwards counts (0 = no limit, up to
    /// 1000000)
    #[arg(long, env = "JOBSTREAM_JOBS_PER_ADDRESS", value_name = "N",
          default_value_t = Config::default().engine.quotas.jobs_per_address as u64,
          value_parser = whole::<0, 1_000_000>)]
    jobs_per_address: u64,

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

    /// A client that takes longer than this to read what the server writes
    /// (a full TCP window) has its connection closed, and its stream's place
    /// given back (1 to 3600)
    #[arg(long, env = "JOBSTREAM_WRITE_TIMEOUT_SECS", value_name = "SECS",
          default_value_t = Config::default().write_timeout.as_secs(),
          value_parser = whole::<1, 3600>)]
    write_timeout_secs: u64,

    /// Time a client has to send a request head, and that a kept-alive
    /// connection may stay idle before its next one (1 to 3600)
    #[arg(long, env = "JOBSTREAM_HEAD_TIMEOUT_SECS", value_name = "SECS",
          default_value_t = Config::default().head_timeout.as_secs(),
          value_parser = whole::<1, 3600>)]
    head_timeout_secs: u64,

    /// Open connections in all; beyond it a new one is closed at once
    /// (each takes a file descriptor; 16 to 10000000)
    #[arg(long, env = "JOBSTREAM_MAX_CONNECTIONS", value_name = "N",
          default_value_t = Config::default().max_connections as u64,
          value_parser = whole::<16, 10_000_000>)]
    max_connections: u64,

    /// Open connections per client address; beyond it a new one is closed
    /// at once. Not applied to JOBSTREAM_TRUSTED_PROXIES (behind a proxy,
    /// cap per address there). 0: no cap (0 to 10000000)
    #[arg(long, env = "JOBSTREAM_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N",
          default_value_t = Config::default().max_connections_per_address as u64,
          value_parser = whole::<0, 10_000_000>)]
    max_connections_per_address: u64,

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

    /// Offer the `bench` job kind (for the load generator, scripts/bench):
    /// it can write gigabytes, so it is off unless asked for
    #[arg(long, env = "JOBSTREAM_BENCH", value_name = "BOOL",
          default_value_t = Config::default().bench_jobs, value_parser = switch,
          action = clap::ArgAction::Set)]
    bench: bool,

    /// Serve GET /metrics on this address (HOST:PORT) instead of the main
    /// port, e.g. 127.0.0.1:9100 (default: on the main port)
    #[arg(long, env = "JOBSTREAM_METRICS_ADDR", value_name = "HOST:PORT")]
    metrics_addr: Option<std::net::SocketAddr>,

    /// How log lines are written: text, or json (one object per line)
    #[arg(
        long,
        env = "JOBSTREAM_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        value_enum
    )]
    log_format: super::LogFormat,
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
fn database_url(value: &str) -> Result<String, String> {
    if value.starts_with("sqlite:") || jobstream_engine::store::is_postgres(value) {
        Ok(value.to_owned())
    } else {
        Err(
            "expected sqlite://PATH such as sqlite://data/jobstream.db, \
             or postgres://USER:PASSWORD@HOST:PORT/DB"
                .to_owned(),
        )
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

impl Flags {
    pub(super) fn into_config(self) -> Result<Config, ConfigError> {
        if self.max_message_bytes > self.log_bytes {
            return Err(ConfigError::Invalid {
                name: "JOBSTREAM_MAX_MESSAGE_BYTES".to_owned(),
                value: self.max_message_bytes.to_string(),
                expected: format!("must not exceed JOBSTREAM_LOG_BYTES ({})", self.log_bytes),
            });
        }
        if self.node_timeout_secs < 3 * self.heartbeat_secs {
            return Err(ConfigError::Invalid {
                name: "JOBSTREAM_NODE_TIMEOUT_SECS".to_owned(),
                value: self.node_timeout_secs.to_string(),
                expected: format!(
                    "must be at least three heartbeats (JOBSTREAM_HEARTBEAT_SECS is {}): \
                     a live node must not be taken for dead for one late heartbeat",
                    self.heartbeat_secs
                ),
            });
        }
        let cluster =
            jobstream_engine::store::is_postgres(&self.database_url).then(|| ClusterConfig {
                heartbeat: Duration::from_secs(self.heartbeat_secs),
                node_timeout: Duration::from_secs(self.node_timeout_secs),
                ..ClusterConfig::default()
            });
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
                    max_job_bytes: self.job_max_bytes,
                    max_job_events: self.job_max_events,
                },
                retained_jobs: size(self.retained_jobs),
                retention: Duration::from_secs(self.retention_secs),
                max_duration: Duration::from_secs(self.job_max_secs),
                quotas: QuotaConfig {
                    jobs_per_session: size(self.jobs_per_session),
                    jobs_per_address: size(self.jobs_per_address),
                    starts_per_minute: u32::try_from(self.starts_per_minute)
                        .expect("at most 1000000"),
                },
                cluster,
            },
            keep_alive: Duration::from_secs(self.keepalive_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            streams_per_session: size(self.streams_per_session),
            streams_total: size(self.streams_total),
            stream_lifetime: Duration::from_secs(self.stream_lifetime_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            head_timeout: Duration::from_secs(self.head_timeout_secs),
            max_connections: size(self.max_connections),
            max_connections_per_address: size(self.max_connections_per_address),
            lean_streams: self.lean_streams,
            trusted_proxies: self.trusted_proxies.unwrap_or_default(),
            cookie_secure: self.cookie_secure,
            bench_jobs: self.bench,
            metrics_addr: self.metrics_addr,
            log_format: self.log_format,
        })
    }
}
