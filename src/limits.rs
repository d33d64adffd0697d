//! Bounds on open streams: per session and in total.
//!
//! A stream holds a [`StreamPermit`] for as long as it is open; the permit
//! gives its place back when the stream is dropped, however it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jobstream_engine::SessionId;

/// Why a new stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This session already has `limit` open streams.
    Session { limit: usize },
    /// The server already has `limit` open streams.
    Total { limit: usize },
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Open streams per session; a session leaves the map at zero, so the
    /// map never holds more entries than there are open streams.
    by_session: HashMap<SessionId, usize>,
}

/// Counts open streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    per_session: usize,
    total: usize,
    /// std `Mutex`: held for a counter update, never across `.await`.
    counts: Arc<Mutex<Counts>>,
}

impl StreamLimits {
    /// Limits of `per_session` streams per session and `total` in all.
    pub fn new(per_session: usize, total: usize) -> Self {
        StreamLimits {
            per_session,
            total,
            counts: Arc::default(),
        }
    }

    /// Takes a place for a new stream of `session`, or says why not.
    pub fn acquire(&self, session: SessionId) -> Result<StreamPermit, Refused> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.total {
            return Err(Refused::Total { limit: self.total });
        }
        let mine = c.by_session.entry(session).or_default();
        if *mine >= self.per_session {
            return Err(Refused::Session {
                limit: self.per_session,
            });
        }
        *mine += 1;
        c.total += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            session,
        })
    }

    /// Open streams now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// One open stream's place; given back on drop.
#[derive(Debug)]
pub struct StreamPermit {
    limits: StreamLimits,
    session: SessionId,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.by_session.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                c.by_session.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_session_and_in_total_and_gives_places_back() {
        let limits = StreamLimits::new(2, 3);
        let (a, b) = (SessionId::random(), SessionId::random());
        let a1 = limits.acquire(a).unwrap();
        let _a2 = limits.acquire(a).unwrap();
        assert_eq!(
            limits.acquire(a).unwrap_err(),
            Refused::Session { limit: 2 }
        );
        let _b1 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).unwrap_err(), Refused::Total { limit: 3 });
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _a3 = limits.acquire(a).unwrap();
        assert_eq!(limits.open(), 3);
    }
}
