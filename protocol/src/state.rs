//! The lifecycle of a job.

use serde::{Deserialize, Serialize};

/// The state of a job, as shown to users. Its wire name (JSON, stream,
/// CSS classes, Fluent keys `state-NAME`) is the lowercase variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting in the queue for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// It returned successfully.
    Succeeded,
    /// It returned an error or panicked.
    Failed,
    /// Its owner cancelled it.
    Cancelled,
    /// The server stopped while it ran.
    Interrupted,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    /// The lowercase name used in the UI, the API and the stream.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    /// Whether the job has ended and its log is closed.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`JobState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState;

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a job state")
    }
}

impl std::error::Error for UnknownState {}

impl std::str::FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or(UnknownState)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        assert_eq!("Running".parse::<JobState>(), Err(UnknownState));
    }

    #[test]
    fn only_queued_and_running_are_not_terminal() {
        let live: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(live, [JobState::Queued, JobState::Running]);
    }
}
