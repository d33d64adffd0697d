//! Logs rebuilt from the store: a job loaded back, and a mirror of a job
//! that runs on another node, fed with the events that node stores.

use std::sync::Arc;

use jobstream_protocol::End;

use super::{EventLog, Links, Writer};
use crate::log::LogState;
use crate::model::{Event, EventKind, JobState, LogLimits, Progress};
use crate::store::{JobRecord, StoredEvent};

impl EventLog {
    /// Persists what the log appends from now on, from id `next_seq` at
    /// least: this node runs the job it mirrored. False if it was already.
    pub(crate) fn attach(&self, writer: Writer, next_seq: u64) -> bool {
        let mut st = self.log.lock();
        if self.writer.set(writer).is_err() {
            return false;
        }
        self.log.skip_to(&mut st, next_seq);
        true
    }

    /// Whether the log persists its changes (the job runs here).
    pub fn is_attached(&self) -> bool {
        self.writer.get().is_some()
    }

    /// A log rebuilt from the store: the job's record and its last stored
    /// events (oldest first, ids increasing). Closed if the job has ended.
    /// With `links`, later appends are persisted and continue from
    /// `next_seq` (at least one past the last stored id). Without a writer
    /// (a mirror, a job loaded back), the events' states, progress and end
    /// win over the record's, which may have been read before them.
    pub(crate) fn restore(
        limits: LogLimits,
        record: &JobRecord,
        events: Vec<StoredEvent>,
        (links, writer): (Option<Links>, Option<Writer>),
        next_seq: u64,
    ) -> Arc<Self> {
        let last = events.last().map_or(0, |e| e.seq);
        let follow_events = writer.is_none();
        let this = Self::build(limits, links, writer, next_seq.max(last + 1), record.state);
        let last_seq = {
            let mut st = this.log.lock();
            st.error.clone_from(&record.error);
            st.closed = record.state.is_terminal();
            st.progress = record.progress.map(|fraction| Progress {
                fraction,
                label: record.progress_label.clone(),
            });
            st.started_at = record.started_at;
            st.finished_at = record.finished_at;
            // What came before the first restored event is not in memory.
            st.dropped_through = events.first().map_or(0, |e| e.seq - 1);
            for e in events {
                if follow_events {
                    follow(&mut st, e.kind, &e.text);
                }
                let event = Event::encoded(e.seq, e.kind, e.text.into_boxed_str(), e.line);
                this.log.keep(&mut st, event);
            }
            st.last_seq()
        };
        this.log.publish(last_seq);
        this
    }

    /// Appends `events` read from the store after the last one here: this
    /// log mirrors a job another node runs (or one waiting in the shared
    /// queue). Their states, progress and end change the log as they did
    /// on that node; `record`, read after them, gives the times. Nothing
    /// happens to a log that persists its own changes or is closed.
    /// Returns whether the job list sees a change.
    pub(crate) fn apply_stored(
        &self,
        events: Vec<StoredEvent>,
        record: Option<&JobRecord>,
    ) -> bool {
        let mut visible = false;
        let last = {
            let mut st = self.log.lock();
            if st.closed || self.is_attached() {
                return false;
            }
            for e in events {
                if e.seq <= st.last_seq() {
                    continue; // read twice (a notice and a poll)
                }
                visible |= follow(&mut st, e.kind, &e.text);
                self.log.skip_to(&mut st, e.seq + 1);
                let event = Event::encoded(e.seq, e.kind, e.text.into_boxed_str(), e.line);
                self.log.keep(&mut st, event);
            }
            if let Some(rec) = record {
                st.started_at = st.started_at.or(rec.started_at);
                st.finished_at = st.finished_at.or(rec.finished_at);
            }
            if visible {
                self.touch(&mut st);
            }
            st.last_seq()
        };
        self.log.publish(last);
        visible
    }
}

/// What a stored event of `kind` with `text` says about its job, applied
/// as the node that ran it applied it. Whether the job list sees a change.
fn follow(st: &mut LogState, kind: EventKind, text: &str) -> bool {
    match kind {
        EventKind::Message => false,
        EventKind::State => text.parse::<JobState>().map(|s| st.state = s).is_ok(),
        EventKind::Progress => serde_json::from_str::<Progress>(text)
            .map(|p| st.progress = Some(p))
            .is_ok(),
        EventKind::End => serde_json::from_str::<End>(text)
            .map(|end| {
                st.state = end.state;
                st.error = end.error;
            })
            .is_ok(),
        EventKind::Close => {
            st.closed = true;
            false
        }
    }
}
