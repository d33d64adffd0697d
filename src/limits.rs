//! Caps on what clients hold open: event streams per session and in total
//! ([`StreamLimits`]), and connections per client address and in total
//! ([`ConnectionLimits`]).
//!
//! Each open thing holds a [`Permit`] for as long as it is open; the permit
//! gives its place back when it is dropped, however the thing ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use jobstream_engine::SessionId;

/// Why a new one was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its owner (a session, an address) already has `limit` open.
    PerOwner { limit: usize },
    /// The server already has `limit` open.
    Total { limit: usize },
}

#[derive(Debug)]
struct Counts<K> {
    total: usize,
    /// Open ones per owner; an owner leaves the map at zero, so the map
    /// never holds more entries than there are open ones.
    by_owner: HashMap<K, usize>,
}

/// Counts open things per owner `K` and in total. Cheap to clone.
#[derive(Debug)]
pub struct Caps<K> {
    per_owner: usize,
    total: usize,
    /// std `Mutex`: held for a counter update, never across `.await`.
    counts: Arc<Mutex<Counts<K>>>,
}

impl<K> Clone for Caps<K> {
    fn clone(&self) -> Self {
        Caps {
            per_owner: self.per_owner,
            total: self.total,
            counts: Arc::clone(&self.counts),
        }
    }
}

/// Open event streams, per session.
pub type StreamLimits = Caps<SessionId>;
/// An open stream's place.
pub type StreamPermit = Permit<SessionId>;
/// Open connections, per client address (`None`: one not capped on its
/// own, a trusted proxy's: see [`Caps::acquire_uncapped`]).
pub type ConnectionLimits = Caps<Option<IpAddr>>;

impl<K: Hash + Eq + Clone> Caps<K> {
    /// At most `per_owner` per owner (0: no cap per owner) and `total` in all.
    pub fn new(per_owner: usize, total: usize) -> Self {
        Caps {
            per_owner,
            total,
            counts: Arc::new(Mutex::new(Counts {
                total: 0,
                by_owner: HashMap::new(),
            })),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts<K>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for `owner`, or says why not.
    pub fn acquire(&self, owner: K) -> Result<Permit<K>, Refused> {
        self.take(owner, true)
    }

    /// Takes a place for `owner` within the total only: an owner that
    /// stands for many (a trusted proxy's connections) is not capped as one.
    pub fn acquire_uncapped(&self, owner: K) -> Result<Permit<K>, Refused> {
        self.take(owner, false)
    }

    fn take(&self, owner: K, capped: bool) -> Result<Permit<K>, Refused> {
        let mut c = self.counts();
        if c.total >= self.total {
            return Err(Refused::Total { limit: self.total });
        }
        let mine = c.by_owner.entry(owner.clone()).or_default();
        if capped && self.per_owner > 0 && *mine >= self.per_owner {
            return Err(Refused::PerOwner {
                limit: self.per_owner,
            });
        }
        *mine += 1;
        c.total += 1;
        Ok(Permit {
            caps: self.clone(),
            owner,
        })
    }

    /// Open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

/// One open thing's place; given back on drop.
#[derive(Debug)]
pub struct Permit<K: Hash + Eq + Clone> {
    caps: Caps<K>,
    owner: K,
}

impl<K: Hash + Eq + Clone> Drop for Permit<K> {
    fn drop(&mut self) {
        let mut c = self.caps.counts();
        c.total -= 1;
        if let Some(n) = c.by_owner.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                c.by_owner.remove(&self.owner);
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
            Refused::PerOwner { limit: 2 }
        );
        let _b1 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).unwrap_err(), Refused::Total { limit: 3 });
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _a3 = limits.acquire(a).unwrap();
        assert_eq!(limits.open(), 3);
    }

    #[test]
    fn an_uncapped_owner_counts_only_against_the_total() {
        let limits = ConnectionLimits::new(1, 3);
        let _a = limits.acquire(None).unwrap();
        assert!(limits.acquire(None).is_err());
        let _b = limits.acquire_uncapped(None).unwrap();
        let _c = limits.acquire_uncapped(None).unwrap();
        assert_eq!(
            limits.acquire_uncapped(None).unwrap_err(),
            Refused::Total { limit: 3 }
        );
    }

    #[test]
    fn no_cap_per_owner_at_zero() {
        let limits = ConnectionLimits::new(0, 3);
        let permits: Vec<_> = (0..3).map(|_| limits.acquire(None).unwrap()).collect();
        assert_eq!(
            limits.acquire(None).unwrap_err(),
            Refused::Total { limit: 3 }
        );
        drop(permits);
        assert_eq!(limits.open(), 0);
    }
}
