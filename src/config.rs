//! Configuration from the environment. Every variable is optional; a value
//! that is set but invalid stops the server with a message naming it.

use std::time::Duration;

use jobstream_engine::{EngineConfig, LogLimits};

/// Everything the server reads from the environment besides Leptos' own
/// `LEPTOS_*` variables (`LEPTOS_SITE_ADDR` sets the address).
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
        }
    }
}

/// The store used when `JOBSTREAM_DATABASE_URL` is not set, relative to
/// the working directory; the folder is created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/jobstream.db";

/// A variable that is set to something unusable.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is invalid: {expected}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    expected: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Config::default();
        let num =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                let Some(value) = get(name) else {
                    return Ok(default);
                };
                match value.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(ConfigError {
                        name,
                        value,
                        expected: format!("expected a whole number from {min} to {max}"),
                    }),
                }
            };
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let limits = LogLimits {
            max_events: size(num(
                "JOBSTREAM_LOG_EVENTS",
                d.engine.log_limits.max_events as u64,
                16,
                10_000_000,
            )?),
            max_bytes: size(num(
                "JOBSTREAM_LOG_BYTES",
                d.engine.log_limits.max_bytes as u64,
                1024,
                1 << 34,
            )?),
            max_message_bytes: size(num(
                "JOBSTREAM_MAX_MESSAGE_BYTES",
                d.engine.log_limits.max_message_bytes as u64,
                16,
                16 * 1024 * 1024,
            )?),
        };
        if limits.max_message_bytes > limits.max_bytes {
            return Err(ConfigError {
                name: "JOBSTREAM_MAX_MESSAGE_BYTES",
                value: limits.max_message_bytes.to_string(),
                expected: format!("must not exceed JOBSTREAM_LOG_BYTES ({})", limits.max_bytes),
            });
        }
        let database_url = match get("JOBSTREAM_DATABASE_URL") {
            None => d.database_url,
            Some(url) if url.starts_with("sqlite:") => url,
            Some(value) => {
                return Err(ConfigError {
                    name: "JOBSTREAM_DATABASE_URL",
                    value,
                    expected: "expected a SQLite URL such as sqlite://data/jobstream.db \
                               (PostgreSQL is not supported yet)"
                        .to_owned(),
                })
            }
        };
        Ok(Config {
            database_url,
            engine: EngineConfig {
                workers: size(num("JOBSTREAM_WORKERS", d.engine.workers as u64, 1, 1024)?),
                queue_capacity: size(num(
                    "JOBSTREAM_QUEUE",
                    d.engine.queue_capacity as u64,
                    1,
                    1_000_000,
                )?),
                log_limits: limits,
                retained_jobs: size(num(
                    "JOBSTREAM_RETAINED_JOBS",
                    d.engine.retained_jobs as u64,
                    0,
                    10_000_000,
                )?),
                retention: Duration::from_secs(num(
                    "JOBSTREAM_RETENTION_SECS",
                    d.engine.retention.as_secs(),
                    1,
                    10 * 365 * 24 * 3600,
                )?),
            },
            keep_alive: Duration::from_secs(num(
                "JOBSTREAM_KEEPALIVE_SECS",
                d.keep_alive.as_secs(),
                1,
                3600,
            )?),
            shutdown_grace: Duration::from_secs(num(
                "JOBSTREAM_SHUTDOWN_GRACE_SECS",
                d.shutdown_grace.as_secs(),
                0,
                3600,
            )?),
            streams_per_session: size(num(
                "JOBSTREAM_STREAMS_PER_SESSION",
                d.streams_per_session as u64,
                1,
                1_000_000,
            )?),
            streams_total: size(num(
                "JOBSTREAM_STREAMS_TOTAL",
                d.streams_total as u64,
                1,
                10_000_000,
            )?),
            stream_lifetime: Duration::from_secs(num(
                "JOBSTREAM_STREAM_LIFETIME_SECS",
                d.stream_lifetime.as_secs(),
                1,
                7 * 24 * 3600,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.engine.workers, 4);
        assert_eq!(c.engine.queue_capacity, 1000);
        assert_eq!(c.keep_alive, Duration::from_secs(15));
    }

    #[test]
    fn reads_values() {
        let c = with(&[("JOBSTREAM_WORKERS", "8"), ("JOBSTREAM_QUEUE", " 5 ")]).unwrap();
        assert_eq!((c.engine.workers, c.engine.queue_capacity), (8, 5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = with(&[("JOBSTREAM_WORKERS", "0")]).unwrap_err().to_string();
        assert_eq!(
            e,
            r#"JOBSTREAM_WORKERS="0" is invalid: expected a whole number from 1 to 1024"#
        );
        assert!(with(&[("JOBSTREAM_QUEUE", "lots")]).is_err());
        let e = with(&[
            ("JOBSTREAM_LOG_BYTES", "2048"),
            ("JOBSTREAM_MAX_MESSAGE_BYTES", "4096"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("must not exceed JOBSTREAM_LOG_BYTES"), "{e}");
    }
}
