//! The configuration as a user meets it: variables, flags, messages, help.

use super::*;
use std::collections::HashMap;
use std::net::IpAddr;

use jobstream_engine::{LogLimits, QuotaConfig};

/// Every variable with a value its range accepts, none a default.
const ALL: [(&str, &str); 31] = [
    ("JOBSTREAM_DATABASE_URL", "sqlite::memory:"),
    ("JOBSTREAM_RETENTION_SECS", "60"),
    ("JOBSTREAM_JOB_MAX_SECS", "90"),
    ("JOBSTREAM_WORKERS", "8"),
    ("JOBSTREAM_QUEUE", "5"),
    ("JOBSTREAM_LOG_EVENTS", "100"),
    ("JOBSTREAM_LOG_BYTES", "2048"),
    ("JOBSTREAM_MAX_MESSAGE_BYTES", "512"),
    ("JOBSTREAM_JOB_MAX_BYTES", "2097152"),
    ("JOBSTREAM_JOB_MAX_EVENTS", "5000"),
    ("JOBSTREAM_METRICS_ADDR", "127.0.0.1:9100"),
    ("JOBSTREAM_LOG_FORMAT", "json"),
    ("JOBSTREAM_RETAINED_JOBS", "0"),
    ("JOBSTREAM_KEEPALIVE_SECS", "3"),
    ("JOBSTREAM_SHUTDOWN_GRACE_SECS", "0"),
    ("JOBSTREAM_STREAMS_PER_SESSION", "7"),
    ("JOBSTREAM_STREAMS_TOTAL", "70"),
    ("JOBSTREAM_STREAM_LIFETIME_SECS", "120"),
    ("JOBSTREAM_WRITE_TIMEOUT_SECS", "4"),
    ("JOBSTREAM_HEAD_TIMEOUT_SECS", "5"),
    ("JOBSTREAM_MAX_CONNECTIONS", "300"),
    ("JOBSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "0"),
    ("JOBSTREAM_LEAN_STREAMS", "0"),
    ("JOBSTREAM_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
    ("JOBSTREAM_COOKIE_SECURE", "1"),
    ("JOBSTREAM_BENCH", "1"),
    ("JOBSTREAM_JOBS_PER_SESSION", "3"),
    ("JOBSTREAM_STARTS_PER_MINUTE", "0"),
    ("JOBSTREAM_JOBS_PER_ADDRESS", "9"),
    ("JOBSTREAM_HEARTBEAT_SECS", "3"),
    ("JOBSTREAM_NODE_TIMEOUT_SECS", "12"),
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
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(
        (c.max_connections, c.max_connections_per_address),
        (16_384, 512)
    );
    assert_eq!(c.head_timeout, Duration::from_secs(30));
    assert!(c.trusted_proxies.is_empty());
    assert!(!c.cookie_secure);
    assert!(!c.bench_jobs);
    assert_eq!(
        c.engine.quotas,
        QuotaConfig {
            jobs_per_session: 100,
            jobs_per_address: 250,
            starts_per_minute: 60,
        }
    );
}

#[test]
fn a_database_password_is_never_shown() {
    assert_eq!(
        redacted("postgres://jobs:s3cret@db:5432/jobs"),
        "postgres://jobs:***@db:5432/jobs"
    );
    assert_eq!(
        redacted("postgres://jobs@db/jobs"),
        "postgres://jobs@db/jobs"
    );
    assert_eq!(
        redacted("sqlite://data/jobstream.db"),
        "sqlite://data/jobstream.db"
    );
    assert!(!redacted("postgres://u:s3cret@[bad").contains("s3cret"));
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
    assert_eq!(c.engine.max_duration, Duration::from_secs(90));
    assert_eq!((c.engine.workers, c.engine.queue_capacity), (8, 5));
    assert_eq!(
        c.engine.log_limits,
        LogLimits {
            max_events: 100,
            max_bytes: 2048,
            max_message_bytes: 512,
            max_job_bytes: 2 * 1024 * 1024,
            max_job_events: 5000,
        }
    );
    assert_eq!(c.engine.retained_jobs, 0);
    assert_eq!(c.keep_alive, Duration::from_secs(3));
    assert_eq!(c.shutdown_grace, Duration::ZERO);
    assert_eq!((c.streams_per_session, c.streams_total), (7, 70));
    assert_eq!(c.stream_lifetime, Duration::from_secs(120));
    assert!(!c.lean_streams);
    assert_eq!(c.write_timeout, Duration::from_secs(4));
    assert_eq!((c.max_connections, c.max_connections_per_address), (300, 0));
    assert_eq!(c.head_timeout, Duration::from_secs(5));
    assert_eq!(
        c.trusted_proxies,
        TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap()
    );
    assert!(c.cookie_secure);
    assert!(c.bench_jobs);
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(
        c.engine.quotas,
        QuotaConfig {
            jobs_per_session: 3,
            jobs_per_address: 9,
            starts_per_minute: 0,
        }
    );
    // The cluster's settings apply on PostgreSQL.
    let mut on_pg = ALL;
    on_pg[0].1 = "postgres://db/jobs";
    let cluster = with(&on_pg).unwrap().engine.cluster.unwrap();
    assert_eq!(cluster.heartbeat, Duration::from_secs(3));
    assert_eq!(cluster.node_timeout, Duration::from_secs(12));
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
    assert!(!c.bench_jobs);
    assert!(args(&["--bench=1"], &[]).unwrap().bench_jobs);
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
    let e = with(&[("JOBSTREAM_DATABASE_URL", "mysql://u:secret@db/jobs")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"JOBSTREAM_DATABASE_URL="…" is invalid: expected sqlite://PATH such as sqlite://data/jobstream.db, or postgres://USER:PASSWORD@HOST:PORT/DB"#,
        "the password is not repeated"
    );
    let c = with(&[("JOBSTREAM_DATABASE_URL", "postgres://u:p@db:5432/jobs")]).unwrap();
    assert_eq!(c.database_url, "postgres://u:p@db:5432/jobs");
    let cluster = c.engine.cluster.expect("on PostgreSQL a node of a cluster");
    assert_eq!(
        (cluster.heartbeat.as_secs(), cluster.node_timeout.as_secs()),
        (2, 10)
    );
    assert!(
        with(&[]).unwrap().engine.cluster.is_none(),
        "SQLite: one process"
    );
    let e = with(&[
        ("JOBSTREAM_HEARTBEAT_SECS", "5"),
        ("JOBSTREAM_NODE_TIMEOUT_SECS", "5"),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        r#"JOBSTREAM_NODE_TIMEOUT_SECS="5" is invalid: must be at least three heartbeats (JOBSTREAM_HEARTBEAT_SECS is 5): a live node must not be taken for dead for one late heartbeat"#
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
