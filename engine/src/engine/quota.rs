//! Quotas that hold against minted sessions: one visitor cannot fill the
//! shared queue for everyone.
//!
//! * At most `jobs_per_session` queued or running jobs per session, and
//!   `jobs_per_address` per client address (sessions cost nothing to
//!   mint; an address does). Counted from the table of jobs under the
//!   queue lock, so two submits cannot both take the last place.
//! * At most `starts_per_minute` starts per session: a GCRA limiter
//!   (`governor`), so a burst of that many, then one every
//!   `60 / starts_per_minute` seconds; a refused start says when to retry.
//!   The sessions of one client address share ten times that rate
//!   ([`ADDRESS_STARTS`]), so minting sessions does not multiply it. A
//!   start is taken under the queue lock, just before the job is queued:
//!   a start refused for another reason costs nothing.
//!
//! Zero turns a quota off. The limiter keeps one small entry per session
//! that started a job within the last minute; entries older than that are
//! dropped every [`RETAIN_EVERY`] starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use super::jobs::{Job, SubmitError};
use crate::id::{JobId, SessionId};

/// The limits; zero turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Queued or running jobs one session may have.
    pub jobs_per_session: usize,
    /// Queued or running jobs the sessions of one client address may have.
    pub jobs_per_address: usize,
    /// Jobs one session may start in a minute.
    pub starts_per_minute: u32,
}

impl QuotaConfig {
    /// No quotas at all (a library default for tests and benchmarks).
    pub const OFF: QuotaConfig = QuotaConfig {
        jobs_per_session: 0,
        jobs_per_address: 0,
        starts_per_minute: 0,
    };
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            jobs_per_session: 100,
            jobs_per_address: 250,
            starts_per_minute: 60,
        }
    }
}

/// How many sessions' worth of starts one client address may make.
pub const ADDRESS_STARTS: u32 = 10;

/// Starts between two sweeps of the limiter's idle entries.
const RETAIN_EVERY: u64 = 1024;

pub(super) struct Quotas {
    config: QuotaConfig,
    starts: Option<DefaultKeyedRateLimiter<SessionId>>,
    address_starts: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Starts checked so far, to sweep the limiter now and then.
    checked: AtomicU64,
}

impl Quotas {
    pub(super) fn new(config: QuotaConfig) -> Self {
        let starts = NonZeroU32::new(config.starts_per_minute)
            .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        let address_starts =
            NonZeroU32::new(config.starts_per_minute.saturating_mul(ADDRESS_STARTS))
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        Quotas {
            config,
            starts,
            address_starts,
            checked: AtomicU64::new(0),
        }
    }

    /// Takes one of `owner`'s starts (and one of `client`'s), or says how
    /// long until the next.
    pub(super) fn start(
        &self,
        owner: SessionId,
        client: Option<IpAddr>,
    ) -> Result<(), SubmitError> {
        let (Some(limiter), limit) = (&self.starts, self.config.starts_per_minute) else {
            return Ok(());
        };
        if self.checked.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            if let Some(by_address) = &self.address_starts {
                by_address.retain_recent();
                by_address.shrink_to_fit();
            }
        }
        let refused = |wait: Duration, limit: u32| SubmitError::TooManyStarts {
            limit,
            // Whole seconds, rounded up: retrying then succeeds.
            retry_after: Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
        };
        // The address first: a start it refuses takes nothing from the
        // session.
        if let (Some(by_address), Some(client)) = (&self.address_starts, client) {
            by_address.check_key(&client).map_err(|not_until| {
                refused(
                    not_until.wait_time_from(by_address.clock().now()),
                    limit.saturating_mul(ADDRESS_STARTS),
                )
            })?;
        }
        limiter
            .check_key(&owner)
            .map_err(|not_until| refused(not_until.wait_time_from(limiter.clock().now()), limit))
    }

    /// Whether one more job fits `owner`'s and `client`'s quotas, given the
    /// table of jobs (to be called under the queue lock).
    pub(super) fn room(
        &self,
        jobs: &HashMap<JobId, Arc<Job>>,
        owner: SessionId,
        client: Option<IpAddr>,
    ) -> Result<(), SubmitError> {
        let QuotaConfig {
            jobs_per_session: per_session,
            jobs_per_address: per_address,
            ..
        } = self.config;
        let client = client.filter(|_| per_address > 0);
        if per_session == 0 && client.is_none() {
            return Ok(());
        }
        let (mut mine, mut theirs) = (0, 0);
        for job in jobs.values() {
            let same_owner = job.owner == owner;
            let same_client = client.is_some() && job.client == client;
            if (same_owner || same_client) && !job.log.state().is_terminal() {
                mine += usize::from(same_owner);
                theirs += usize::from(same_client);
            }
        }
        if per_session > 0 && mine >= per_session {
            return Err(SubmitError::TooManyJobs { limit: per_session });
        }
        if client.is_some() && theirs >= per_address {
            return Err(SubmitError::TooManyJobsFromAddress { limit: per_address });
        }
        Ok(())
    }
}
