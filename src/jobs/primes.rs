//! `primes`: counts the primes up to `limit` with a segmented sieve on the
//! blocking pool, reporting progress every 1 % and stopping within one
//! segment when cancelled.

use app::i18n::{tr, Arg};
use jobstream_engine::{Emitter, FieldSchema, JobContext, JobError, Params};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{locale, step_text};

/// Parameters of `primes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Primes {
    limit: u64,
}

impl Primes {
    /// The largest limit accepted.
    pub const MAX_LIMIT: i64 = 1_000_000_000;
}

impl Params for Primes {
    fn fields() -> Vec<FieldSchema> {
        vec![FieldSchema::integer(
            "limit",
            2,
            Self::MAX_LIMIT,
            50_000_000,
        )]
    }
}

/// Numbers sieved between two looks at the cancellation token.
const SEGMENT: u64 = 1 << 18;

/// The primes up to `sqrt(limit)`, by a plain sieve.
fn small_primes(limit: u64) -> Vec<u64> {
    let root = (limit as f64).sqrt() as u64 + 1;
    let mut composite = vec![false; usize::try_from(root + 1).unwrap_or(0)];
    let mut primes = Vec::new();
    for n in 2..=root {
        if !composite[n as usize] {
            primes.push(n);
            let mut m = n * n;
            while m <= root {
                composite[m as usize] = true;
                m += n;
            }
        }
    }
    primes
}

/// Counts the primes in `lo..hi` (`lo >= 2`) with `base` holding every
/// prime up to `sqrt(hi)`. `None` if `stop` was cancelled meanwhile.
fn count_primes_in(lo: u64, hi: u64, base: &[u64], stop: &CancellationToken) -> Option<u64> {
    let mut count = 0;
    let mut sieve = vec![true; SEGMENT as usize];
    let mut start = lo;
    while start < hi {
        if stop.is_cancelled() {
            return None;
        }
        let end = (start + SEGMENT).min(hi);
        let seg = &mut sieve[..(end - start) as usize];
        seg.fill(true);
        for &p in base {
            if p * p >= end {
                break;
            }
            let first = (p * p).max(start.div_ceil(p) * p);
            let mut m = first;
            while m < end {
                seg[(m - start) as usize] = false;
                m += p;
            }
        }
        count += seg.iter().filter(|&&is_prime| is_prime).count() as u64;
        start = end;
    }
    Some(count)
}

pub async fn run(ctx: JobContext, p: Primes, out: Emitter) -> Result<(), JobError> {
    let l = locale(&ctx);
    let base = std::sync::Arc::new(small_primes(p.limit));
    let (mut count, mut done) = (0u64, 2u64);
    for percent in 1..=100u64 {
        let upto = 2 + (p.limit - 1) * percent / 100; // exclusive
        let (lo, base, stop) = (done, std::sync::Arc::clone(&base), ctx.cancel.clone());
        let found = tokio::task::spawn_blocking(move || count_primes_in(lo, upto, &base, &stop))
            .await
            .map_err(|_| JobError::new("the sieve crashed"))?;
        let Some(found) = found else {
            return Err(JobError::new(step_text(&ctx, percent as u32)));
        };
        count += found;
        done = upto;
        let label = tr(
            l,
            "primes-sieving",
            &[("upto", Arg::Text(&l.int(upto - 1)))],
        );
        out.progress(percent as f64 / 100.0, Some(&label)).await?;
    }
    out.emit(&tr(
        l,
        "primes-found",
        &[
            ("count", Arg::Number(count as f64)),
            ("countText", Arg::Text(&l.int(count))),
            ("limit", Arg::Text(&l.int(p.limit))),
        ],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{plan_err, registry};
    use super::*;
    use serde_json::json;

    #[test]
    fn primes_params_are_checked() {
        assert!(registry(true).plan("primes", &json!({})).is_ok());
        assert!(plan_err("primes", json!({"limit": 1_000_000_001u64}))
            .ends_with("limit: must be between 2 and 1000000000, got 1000000001"));
    }

    #[test]
    fn the_sieve_counts_right() {
        let stop = CancellationToken::new();
        for (limit, expected) in [(2u64, 1u64), (3, 2), (100, 25), (1_000_000, 78_498)] {
            let base = small_primes(limit);
            // In uneven pieces, as the job splits it.
            let mid = 2 + (limit - 1) / 3;
            let a = count_primes_in(2, mid, &base, &stop).unwrap();
            let b = count_primes_in(mid, limit + 1, &base, &stop).unwrap();
            assert_eq!(a + b, expected, "primes up to {limit}");
        }
        stop.cancel();
        assert_eq!(
            count_primes_in(2, 1_000_000, &small_primes(1_000_000), &stop),
            None
        );
    }
}
