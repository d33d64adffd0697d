//! A job as lists show it.

use serde::{Deserialize, Serialize};

use crate::JobState;

/// A job as the job list shows it: the JSON of `GET /api/jobs` (in
/// `{"jobs":[...]}`) and of the session feed's `job` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Why it failed or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Last reported progress, 0 to 1 (`null` before any).
    #[serde(default)]
    pub progress: Option<f64>,
    /// The label of that progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was submitted, Unix ms.
    pub created_at: u64,
    /// When it started running, Unix ms.
    #[serde(default)]
    pub started_at: Option<u64>,
    /// When it ended, Unix ms.
    #[serde(default)]
    pub finished_at: Option<u64>,
}

impl JobSummary {
    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }
}
