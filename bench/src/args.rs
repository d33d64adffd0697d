//! The command line: one subcommand per scenario, each with only the flags
//! it reads, so a mistyped flag is an error rather than a silent default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod cluster;
mod soak;
pub use cluster::Cluster;
pub use soak::{BigJob, Check, Churn, Mixed, SlowReader, Slowloris, Soak};

/// Load generator for SSE servers: jobstream and Nchan under the same load.
#[derive(Debug, Parser)]
#[command(name = "jobstream-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// N subscribers held open with keep-alives: the server's memory per
    /// subscriber and its CPU while idle
    Idle(Idle),
    /// One channel, E events of S bytes, N subscribers: delivered events/s,
    /// latency, lost and duplicated events
    Fanout(Fanout),
    /// J concurrent jobs, one subscriber each (jobstream only)
    Jobs(Jobs),
    /// Jobs started per second through POST /api/jobs (jobstream only)
    Start(Start),
    /// R readers catch up at once on a finished `log` job of L lines from
    /// its first event (jobstream only): the server's peak memory and the
    /// time to read it all
    Catchup(Catchup),
    /// The long and hostile tests (issue 13): churn, slowloris, a slow
    /// reader, a big job, mixed load (jobstream only; see `scripts/soak`)
    Soak(Soak),
    /// Several nodes on one PostgreSQL (issue 11): events persisted,
    /// fan-out across nodes, jobs started (see `scripts/bench --cluster`)
    Cluster(Cluster),
    /// The side-by-side comparison of recorded runs
    Report(Report),
}

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    Jobstream,
    Nchan,
}

/// Where the server listens.
#[derive(Debug, Args)]
pub struct Url {
    /// The server's address, http://IP:PORT
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
}

/// A server either kind may be, with the subscribers' source addresses and
/// the processes measured.
#[derive(Debug, Args)]
pub struct Subject {
    /// Which server is under test
    #[arg(long, value_enum, default_value_t = Server::Jobstream)]
    pub target: Server,
    #[command(flatten)]
    pub url: Url,
    /// Loopback source addresses (127.0.0.2, ...) the connections are
    /// spread over, so ephemeral ports do not run out
    #[arg(long, default_value_t = 8, value_parser = count::<usize>)]
    pub sources: usize,
    /// The server's processes, comma-separated, for memory and CPU
    // A plain value (not clap's list): an empty entry, as a script's
    // `$(pgrep ...)` may leave, is skipped rather than refused.
    #[arg(long, value_name = "PID,..", default_value = "", hide_default_value = true,
          value_parser = pid_list)]
    pub pids: ::std::vec::Vec<u32>,
}

/// Where a run's JSON line is appended.
#[derive(Debug, Args)]
pub struct Output {
    /// The results file (one JSON line per run)
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/bench/results.jsonl"
    )]
    pub json: PathBuf,
}

/// What a channel emits.
#[derive(Debug, Clone, Copy, Args)]
pub struct Load {
    /// Events per channel
    #[arg(long, default_value_t = 1000, value_parser = count::<u64>)]
    pub events: u64,
    /// Bytes per event
    #[arg(long, default_value_t = 64, value_parser = count::<usize>)]
    pub size: usize,
    /// Events per second; 0 emits as fast as possible
    #[arg(long, default_value_t = 0, value_parser = count::<u64>)]
    pub rate: u64,
}

#[derive(Debug, Args)]
pub struct Idle {
    #[command(flatten)]
    pub subject: Subject,
    /// Subscribers
    #[arg(short = 'n', long = "subscribers", value_name = "N", default_value_t = 1000,
          value_parser = count::<usize>)]
    pub n: usize,
    /// Seconds the subscribers are held
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = count::<u64>)]
    pub hold: u64,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct Fanout {
    #[command(flatten)]
    pub subject: Subject,
    /// Subscribers
    #[arg(short = 'n', long = "subscribers", value_name = "N", default_value_t = 100,
          value_parser = count::<usize>)]
    pub n: usize,
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct Jobs {
    #[command(flatten)]
    pub url: Url,
    /// Concurrent jobs
    #[arg(long, default_value_t = 16, value_parser = count::<usize>)]
    pub jobs: usize,
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct Start {
    #[command(flatten)]
    pub url: Url,
    /// Clients starting jobs at once
    #[arg(long, default_value_t = 8, value_parser = count::<usize>)]
    pub concurrency: usize,
    /// Seconds the clients keep starting jobs
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = count::<u64>)]
    pub duration: u64,
    #[command(flatten)]
    pub out: Output,
}

/// How a `catchup` reader reads the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `GET /api/jobs/{id}/events?last_event_id=0`
    Events,
    /// `GET /api/jobs/{id}/output`
    Output,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Events => "events",
            Via::Output => "output",
        }
    }
}

#[derive(Debug, Args)]
pub struct Catchup {
    #[command(flatten)]
    pub url: Url,
    /// The server's process: its memory is read, and its peak reset, in
    /// /proc/PID
    #[arg(long, value_parser = count::<u32>)]
    pub pid: u32,
    /// Lines of the `log` job
    #[arg(long, default_value_t = 200_000, value_parser = count::<u64>)]
    pub lines: u64,
    /// Readers at once
    #[arg(long, default_value_t = 100, value_parser = count::<usize>)]
    pub readers: usize,
    /// What they read
    #[arg(long, value_enum, default_value_t = Via::Events)]
    pub via: Via,
    /// The server's SQLite file, to report what the job added to it
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct Report {
    /// The runs to compare (JSON lines)
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/bench/results.jsonl"
    )]
    pub results: PathBuf,
    /// A Markdown file whose table between `<!-- results:start -->` and
    /// `<!-- results:end -->` is rewritten
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Where to write the chart
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// A whole number; `_` may group digits, as in `10_000`.
pub(crate) fn count<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|_| "expected a whole number".to_owned())
}

fn pid_list(value: &str) -> Result<Vec<u32>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|_| format!("bad pid {p:?}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Scenario, clap::Error> {
        let argv = std::iter::once("jobstream-bench").chain(line.split_whitespace());
        Cli::try_parse_from(argv).map(|cli| cli.scenario)
    }

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command line `scripts/bench` runs, as it expands them.
    #[test]
    fn the_script_s_command_lines_parse() {
        let (j, n) = ("--url http://127.0.0.1:3410", "--url http://127.0.0.1:3411");
        let out = "--json target/bench/smoke.jsonl";
        let c = "http://127.0.0.1:3421,http://127.0.0.1:3422,http://127.0.0.1:3423";
        let (s1, co) = ("http://127.0.0.1:3424", "--json target/bench/cluster.jsonl");
        let pg = "postgres://postgres@127.0.0.1:3420/jobstream";
        for line in [
            format!("idle --target jobstream {j} --pids 41 -n 100 --hold 2 {out}"),
            format!("idle --target nchan {n} --pids 42,43,44 -n 18000 --hold 10 {out}"),
            format!("fanout --target jobstream {j} --pids 41 -n 50 --events 200 --size 64 {out}"),
            format!(
                "fanout --target nchan {n} --pids 42, -n 10000 --events 2000 --size 64 --rate 1000 {out}"
            ),
            format!("jobs {j} --jobs 16 --events 5000 {out}"),
            format!("start {j} --concurrency 2 --duration 2 {out}"),
            "report --results target/bench/smoke.jsonl".to_owned(),
            format!("catchup {j} --pid 41 --lines 2000 --readers 10 --db /tmp/x.db {out}"),
            format!("catchup {j} --pid 41 --lines 200_000 --readers 100 --via output"),
            "report --results r.jsonl --markdown BENCHMARKS.md --svg bench/chart.svg".to_owned(),
            format!("soak {j} --pid 41 churn --opens 10_000"),
            format!("soak {j} --pid 41 --known RSS slowloris --conns 5000 --head-timeout 5"),
            format!("soak {j} --pid 41 slow-reader --events 20000 --log-bytes 4194304"),
            format!("soak {j} --pid 41 big-job --mib 1024 --log-bytes 4194304"),
            format!("soak {j} --pid 41 --json target/soak/short.jsonl mixed --duration 50"),
            format!("cluster --nodes {c} --store postgres {co} persist --db {pg} --events 100_000"),
            format!("cluster --nodes {s1} --store sqlite {co} persist --db sqlite:///tmp/x.db"),
            format!("cluster --nodes {c} --store postgres {co} fanout --per-node 100 --rate 1000"),
            format!("cluster --nodes {s1} --store sqlite {co} start --concurrency 8 --duration 10"),
            "report --results target/bench/cluster.jsonl --markdown BENCHMARKS.md".to_owned(),
        ] {
            if let Err(e) = parse(&line) {
                panic!("{line}: {e}");
            }
        }
        let Ok(Scenario::Fanout(f)) = parse(&format!(
            "fanout --target nchan {n} --pids 42, -n 10_000 --rate 1000"
        )) else {
            panic!("fanout did not parse");
        };
        assert_eq!(f.subject.target, Server::Nchan);
        assert_eq!(f.subject.pids, [42]);
        assert_eq!(
            (f.n, f.load.events, f.load.size, f.load.rate),
            (10_000, 1000, 64, 1000)
        );
    }

    #[test]
    fn defaults() {
        let Ok(Scenario::Idle(i)) = parse("idle") else {
            panic!("idle did not parse");
        };
        assert_eq!(
            (i.subject.target, i.n, i.hold, i.subject.sources),
            (Server::Jobstream, 1000, 10, 8)
        );
        assert_eq!(i.subject.url.url, "http://127.0.0.1:3000");
        assert!(i.subject.pids.is_empty());
        assert_eq!(i.out.json, PathBuf::from("target/bench/results.jsonl"));
        let Ok(Scenario::Report(r)) = parse("report") else {
            panic!("report did not parse");
        };
        assert!(r.markdown.is_none() && r.svg.is_none());
    }

    #[test]
    fn unknown_or_misplaced_flags_are_refused() {
        for line in [
            "fanout --event 200",
            "idle -n 10 --hodl 2",
            "jobs --target nchan",
            "report --json x",
            "idle -n lots",
            "idle --pids 1,x",
            "warmup",
            "catchup --lines 10",
            "catchup --pid 1 --via sse",
            "soak --pid 1",
            "soak churn",
            "soak --pid 1 slowloris",
            "cluster --store postgres start",
            "cluster --nodes http://127.0.0.1:1 start",
            "cluster --nodes http://127.0.0.1:1 --store mysql start",
            "cluster --nodes http://127.0.0.1:1 --store sqlite persist",
            "",
        ] {
            assert!(parse(line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn help_lists_each_scenario() {
        let help = Cli::command().render_help().to_string();
        for scenario in [
            "idle", "fanout", "jobs", "start", "catchup", "soak", "cluster", "report",
        ] {
            assert!(help.contains(scenario), "{scenario} missing:\n{help}");
        }
    }
}
