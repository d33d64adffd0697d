//! What a running job sees: its context and its emitter.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::id::{JobId, SessionId};
use crate::journal::EventLog;
use crate::model::AppendError;

/// Facts about a job captured when it was started, as the recipe's
/// `sse::job` captures the connection's locale and user.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id.
    pub id: JobId,
    /// The session that started the job and alone may read it.
    pub owner: SessionId,
    /// The visitor's display name when the job was started.
    pub display_name: String,
    /// The visitor's locale when the job was started (a BCP 47 tag, e.g. `en`).
    pub locale: String,
    /// Cancelled when the job should stop: its owner cancelled it, or the
    /// server is shutting down. A job checks it between steps (or, in
    /// blocking code, polls `is_cancelled`); on shutdown, one that does not
    /// stop within the grace period is abandoned.
    pub cancel: CancellationToken,
}

/// How a job reports messages and progress. Cheap to clone; emitting never
/// waits for readers, however slow they are, and waits for the store only
/// while its write buffer is full.
#[derive(Debug, Clone)]
pub struct Emitter {
    log: Arc<EventLog>,
    /// The job's stop signal: an emit waiting for the store gives up on it.
    cancel: CancellationToken,
}

impl Emitter {
    pub(crate) fn new(log: Arc<EventLog>, cancel: CancellationToken) -> Self {
        Emitter { log, cancel }
    }

    /// Sends one message: one SSE event, whatever lines it has. Returns
    /// its sequence id, or why it was refused (too large, empty, job over,
    /// asked to stop while waiting for room in the store's buffer).
    pub async fn emit(&self, text: &str) -> Result<u64, AppendError> {
        tokio::select! {
            // An emit that does not wait never sees the stop signal.
            biased;
            appended = self.log.append_message(text) => appended,
            () = self.cancel.cancelled() => Err(AppendError::Stopped),
        }
    }

    /// Sends raw output, such as a child process's, that may not be UTF-8.
    /// SSE is UTF-8 text, so each invalid sequence becomes U+FFFD; valid
    /// text is sent unchanged. Still one event.
    pub async fn emit_bytes(&self, bytes: &[u8]) -> Result<u64, AppendError> {
        self.emit(&String::from_utf8_lossy(bytes)).await
    }

    /// How many readers are following the job's output right now.
    pub fn readers(&self) -> usize {
        self.log.readers()
    }

    /// Reports progress: `fraction` from 0 to 1, and what the job is doing.
    /// Readers see it as an `event: progress` only when the whole
    /// percentage or the label changes, so calling this often is cheap.
    pub async fn progress(&self, fraction: f64, label: Option<&str>) -> Result<(), AppendError> {
        self.log.set_progress(fraction, label).await.map(drop)
    }
}

/// Why a job failed. Its text is shown to the job's owner, so it must say
/// what went wrong in the job's terms and hold no server internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    message: String,
}

impl JobError {
    /// A failure with a message for the job's owner.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
        }
    }
}

impl From<AppendError> for JobError {
    fn from(e: AppendError) -> Self {
        JobError::new(e.to_string())
    }
}
