//! A job's output as numbered lines: the JSON of
//! `GET /api/jobs/{id}/lines` ([`crate::routes::JOB_LINES`]) and what the job
//! page renders. A line is one message of the job (a message with newlines
//! in it is still one line, shown on several rows); `n` counts messages
//! from 1, so it stays the same whichever page or stream a line came from.

use serde::{Deserialize, Serialize};

/// One message of a job, numbered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Its sequence id in the job's log (the SSE `id`).
    pub seq: u64,
    /// Its number among the job's messages: 1 for the first.
    pub n: u64,
    /// The message.
    pub text: String,
}

/// A page of lines, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinesPage {
    /// The lines.
    pub lines: Vec<Line>,
    /// Whether older lines exist before the first of these.
    pub more: bool,
}

/// Query parameter: only lines whose sequence id is below this one.
pub const BEFORE_PARAM: &str = "before";
/// Query parameter: how many lines at most.
pub const LIMIT_PARAM: &str = "limit";
/// Lines per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 200;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;
/// Lines the job page is rendered with (the newest ones).
pub const PAGE_LINES: usize = 500;
/// Query parameter of `GET /api/jobs/{id}/output`: `follow=1` keeps the
/// response open until the job ends, like `tail -f`.
pub const FOLLOW_PARAM: &str = "follow";
