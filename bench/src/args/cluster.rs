//! The flags of `cluster` and its runs (see `crate::cluster`).

use clap::{Args, Subcommand, ValueEnum};

use super::{count, Output};

/// `cluster`: one run against several nodes on one PostgreSQL (or, for
/// the comparison, one server on SQLite).
#[derive(Debug, Args)]
pub struct Cluster {
    /// The nodes, comma-separated: http://IP:PORT,http://IP:PORT,...
    /// (one for a single server)
    #[arg(long, value_name = "URL,..", value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// The store the nodes use, as it appears in the results
    #[arg(long, value_enum)]
    pub store: Store,
    /// Loopback source addresses (127.0.0.2, ...) connections are spread over
    #[arg(long, default_value_t = 8, value_parser = count::<usize>)]
    pub sources: usize,
    #[command(flatten)]
    pub out: Output,
    #[command(subcommand)]
    pub run: Run,
}

/// The database behind the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Store {
    Postgres,
    Sqlite,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Postgres => "postgres",
            Store::Sqlite => "sqlite",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Run {
    /// A job says E messages as fast as it can: the time until the
    /// database holds them all (and, with several nodes, until a reader on
    /// another node has them)
    Persist(Persist),
    /// A paced job, its readers all on its node, then split over every
    /// node: throughput, latency from emit to receipt, lost and duplicated
    Fanout(Fanout),
    /// Jobs started per second, the clients spread over the nodes, and
    /// which node ran how many
    Start(Start),
}

#[derive(Debug, Args)]
pub struct Persist {
    /// The nodes' database, read directly to see what is stored:
    /// postgres://USER@HOST:PORT/DB or sqlite://PATH
    #[arg(long, value_name = "URL")]
    pub db: String,
    /// Messages the job says
    #[arg(long, default_value_t = 100_000, value_parser = count::<u64>)]
    pub events: u64,
    /// Bytes per message
    #[arg(long, default_value_t = 64, value_parser = count::<usize>)]
    pub size: usize,
}

#[derive(Debug, Args)]
pub struct Fanout {
    /// Readers per node when they are split (so per_node × nodes in all,
    /// the same number when they are all on the job's node)
    #[arg(long, default_value_t = 100, value_parser = count::<usize>)]
    pub per_node: usize,
    /// Messages the job says
    #[arg(long, default_value_t = 5_000, value_parser = count::<u64>)]
    pub events: u64,
    /// Bytes per message
    #[arg(long, default_value_t = 64, value_parser = count::<usize>)]
    pub size: usize,
    /// Messages per second
    #[arg(long, default_value_t = 1_000, value_parser = count::<u64>)]
    pub rate: u64,
    /// Runs of each layout, alternating; the one with the median p99
    /// latency is reported (the machine is shared: one stall of another
    /// process would otherwise decide the comparison)
    #[arg(long, default_value_t = 3, value_parser = count::<usize>)]
    pub repeats: usize,
}

#[derive(Debug, Args)]
pub struct Start {
    /// Clients starting jobs at once (client i talks to node i mod nodes)
    #[arg(long, default_value_t = 8, value_parser = count::<usize>)]
    pub concurrency: usize,
    /// Seconds the clients keep starting jobs
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = count::<u64>)]
    pub duration: u64,
}
