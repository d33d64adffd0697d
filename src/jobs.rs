//! The job kinds this server offers. Their messages are in the locale the
//! visitor had when the job started (see `app::i18n`).
//!
//! * `demo`: the recipe's job. Says `finish i: ...(NAME)` for i = 1..=steps,
//!   `interval_ms` apart, with progress. Params: `steps` (1 to 1000,
//!   default 4), `interval_ms` (0 to 60000, default 1000).
//! * `echo`: says each of `messages` `repeat` times (default 1), with
//!   `interval_ms` (default 0) between emits. For scripts, tests, benchmarks.
//! * `primes`: counts the primes up to `limit` (2 to 10^9, default
//!   50,000,000) with a segmented sieve on the blocking pool, reporting
//!   progress every 1 % and stopping within one segment when cancelled.
//! * `bench`: for load tests (`bench/`): waits until it has `readers`
//!   readers (at most `wait_ms`), then emits `events` messages of `size`
//!   bytes, `SEQ EMIT_UNIX_NANOS xxx...`, at `rate` per second (0: as
//!   fast as it can).
//! * `fail`: reports `steps` steps (1 to 1000, default 5) and fails at step
//!   `at` (default 3) with `message` (optional, at most 200 characters).

use std::time::Duration;

use app::i18n::{tr, Arg, Locale};
use jobstream_engine::{Emitter, FieldError, JobContext, JobError, Params, Registry};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The registry with every kind above.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("demo", demo)
        .register("echo", echo)
        .register("primes", primes)
        .register("fail", fail)
        .register("bench", bench);
    r
}

fn locale(ctx: &JobContext) -> Locale {
    Locale::from_tag(&ctx.locale).unwrap_or_default()
}

fn step_text(ctx: &JobContext, step: u32) -> String {
    let l = locale(ctx);
    tr(l, "stopped", &[("step", Arg::Text(&l.int(step.into())))])
}

/// Waits `ms` milliseconds, or ends the job if it is asked to stop
/// (cancelled, or the server is shutting down) meanwhile.
async fn pause(ctx: &JobContext, ms: u64, step: u32) -> Result<(), JobError> {
    if ms == 0 {
        return stop_requested(ctx, step);
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
        () = ctx.cancel.cancelled() => Err(JobError::new(step_text(ctx, step))),
    }
}

fn stop_requested(ctx: &JobContext, step: u32) -> Result<(), JobError> {
    if ctx.cancel.is_cancelled() {
        return Err(JobError::new(step_text(ctx, step)));
    }
    Ok(())
}

/// Parameters of `demo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    #[serde(default = "Demo::default_steps")]
    steps: u32,
    #[serde(default = "Demo::default_interval")]
    interval_ms: u64,
}

impl Demo {
    fn default_steps() -> u32 {
        4
    }
    fn default_interval() -> u64 {
        1000
    }
}

fn range_u64(field: &str, got: u64, min: i64, max: i64) -> Result<(), FieldError> {
    FieldError::range(field, i64::try_from(got).unwrap_or(i64::MAX), min, max)
}

impl Params for Demo {
    fn validate(&self) -> Result<(), FieldError> {
        FieldError::range("steps", self.steps, 1, 1000)?;
        range_u64("interval_ms", self.interval_ms, 0, 60_000)
    }
}

async fn demo(ctx: JobContext, p: Demo, out: Emitter) -> Result<(), JobError> {
    let l = locale(&ctx);
    for i in 1..=p.steps {
        let step = l.int(i.into());
        out.emit(&tr(
            l,
            "demo-step",
            &[
                ("step", Arg::Text(&step)),
                ("name", Arg::Text(&ctx.display_name)),
            ],
        ))
        .await?;
        out.progress(f64::from(i) / f64::from(p.steps), None)
            .await?;
        if i < p.steps {
            pause(&ctx, p.interval_ms, i).await?;
        }
    }
    Ok(())
}

/// Parameters of `echo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Echo {
    messages: Vec<String>,
    #[serde(default = "Echo::default_repeat")]
    repeat: u32,
    #[serde(default)]
    interval_ms: u64,
}

impl Echo {
    fn default_repeat() -> u32 {
        1
    }
    /// Most events one echo job may emit in all.
    pub const MAX_TOTAL: u64 = 1_000_000;
}

impl Params for Echo {
    fn validate(&self) -> Result<(), FieldError> {
        use jobstream_engine::Problem;
        range_u64("messages", self.messages.len() as u64, 1, 10_000)?;
        if let Some(i) = self.messages.iter().position(String::is_empty) {
            return Err(FieldError::new(
                &format!("messages[{i}]"),
                Problem::Invalid(
                    "must not be empty (an SSE event cannot carry empty data)".to_owned(),
                ),
            ));
        }
        FieldError::range("repeat", self.repeat, 1, 1_000_000)?;
        range_u64("interval_ms", self.interval_ms, 0, 60_000)?;
        let total = self.messages.len() as u64 * u64::from(self.repeat);
        if total > Self::MAX_TOTAL {
            return Err(FieldError::new(
                "repeat",
                Problem::Invalid(format!(
                    "messages × repeat must be at most {}, got {total}",
                    Self::MAX_TOTAL
                )),
            ));
        }
        Ok(())
    }
}

async fn echo(ctx: JobContext, p: Echo, out: Emitter) -> Result<(), JobError> {
    let mut step = 0;
    for m in &p.messages {
        for _ in 0..p.repeat {
            if step > 0 {
                pause(&ctx, p.interval_ms, step).await?;
            }
            step += 1;
            out.emit(m).await?;
            // A long burst without pauses still lets other tasks run.
            if p.interval_ms == 0 {
                tokio::task::consume_budget().await;
            }
        }
    }
    Ok(())
}

/// Parameters of `primes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Primes {
    #[serde(default = "Primes::default_limit")]
    limit: u64,
}

impl Primes {
    fn default_limit() -> u64 {
        50_000_000
    }
    /// The largest limit accepted.
    pub const MAX_LIMIT: u64 = 1_000_000_000;
}

impl Params for Primes {
    fn validate(&self) -> Result<(), FieldError> {
        range_u64("limit", self.limit, 2, Self::MAX_LIMIT as i64)
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

async fn primes(ctx: JobContext, p: Primes, out: Emitter) -> Result<(), JobError> {
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

/// Parameters of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    #[serde(default = "Fail::default_steps")]
    steps: u32,
    #[serde(default = "Fail::default_at")]
    at: u32,
    #[serde(default)]
    message: Option<String>,
    #[serde(default = "Fail::default_interval")]
    interval_ms: u64,
}

impl Fail {
    fn default_steps() -> u32 {
        5
    }
    fn default_at() -> u32 {
        3
    }
    fn default_interval() -> u64 {
        500
    }
}

impl Params for Fail {
    fn validate(&self) -> Result<(), FieldError> {
        FieldError::range("steps", self.steps, 1, 1000)?;
        FieldError::range("at", self.at, 1, i64::from(self.steps))?;
        if let Some(m) = &self.message {
            FieldError::text("message", m, 200)?;
        }
        range_u64("interval_ms", self.interval_ms, 0, 60_000)
    }
}

async fn fail(ctx: JobContext, p: Fail, out: Emitter) -> Result<(), JobError> {
    let l = locale(&ctx);
    for i in 1..p.at {
        let (step, at) = (l.int(i.into()), l.int(p.steps.into()));
        out.emit(&tr(
            l,
            "fail-step",
            &[("step", Arg::Text(&step)), ("at", Arg::Text(&at))],
        ))
        .await?;
        out.progress(f64::from(i) / f64::from(p.steps), None)
            .await?;
        pause(&ctx, p.interval_ms, i).await?;
    }
    Err(JobError::new(p.message.unwrap_or_else(|| {
        tr(
            l,
            "fail-default",
            &[("step", Arg::Text(&l.int(p.at.into())))],
        )
    })))
}

/// Parameters of `bench`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    events: u64,
    #[serde(default = "Bench::default_size")]
    size: usize,
    #[serde(default)]
    rate: u64,
    #[serde(default)]
    readers: u64,
    #[serde(default = "Bench::default_wait")]
    wait_ms: u64,
}

impl Bench {
    fn default_size() -> usize {
        64
    }
    fn default_wait() -> u64 {
        60_000
    }
}

impl Params for Bench {
    fn validate(&self) -> Result<(), FieldError> {
        range_u64("events", self.events, 1, 10_000_000)?;
        range_u64("size", self.size as u64, 32, 65_536)?;
        range_u64("rate", self.rate, 0, 10_000_000)?;
        range_u64("readers", self.readers, 0, 1_000_000)?;
        range_u64("wait_ms", self.wait_ms, 0, 600_000)
    }
}

/// `SEQ EMIT_UNIX_NANOS ` padded with `x` to `size` bytes.
fn bench_payload(seq: u64, size: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut text = format!("{seq} {nanos} ");
    let pad = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

async fn bench(ctx: JobContext, p: Bench, out: Emitter) -> Result<(), JobError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(p.wait_ms);
    while (out.readers() as u64) < p.readers {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        pause(&ctx, 5, 0).await?;
    }
    let started = tokio::time::Instant::now();
    for seq in 1..=p.events {
        if p.rate > 0 {
            let due = started + Duration::from_secs_f64(seq as f64 / p.rate as f64);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = ctx.cancel.cancelled() => return Err(JobError::new(step_text(&ctx, seq as u32))),
            }
        } else if seq % 1024 == 0 {
            stop_requested(&ctx, seq as u32)?;
            tokio::task::consume_budget().await;
        }
        out.emit(&bench_payload(seq, p.size)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_err(kind: &str, params: serde_json::Value) -> String {
        registry()
            .plan(kind, &params)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn demo_params_are_checked() {
        assert!(registry().plan("demo", &json!({})).is_ok());
        assert!(plan_err("demo", json!({"steps": 0}))
            .ends_with("steps: must be between 1 and 1000, got 0"));
        assert!(plan_err("demo", json!({"steps": 1001})).contains("got 1001"));
        assert!(plan_err("demo", json!({"interval_ms": 60001}))
            .contains("interval_ms: must be between 0 and 60000"));
        assert!(plan_err("demo", json!({"steps": "4"})).contains("steps: invalid type"));
    }

    #[test]
    fn echo_params_are_checked() {
        assert!(registry().plan("echo", &json!({"messages": ["a"]})).is_ok());
        assert!(plan_err("echo", json!({})).contains("missing field `messages`"));
        assert!(plan_err("echo", json!({"messages": []}))
            .contains("messages: must be between 1 and 10000"));
        assert!(plan_err("echo", json!({"messages": ["a", ""]}))
            .contains("messages[1]: must not be empty"));
        assert!(
            plan_err("echo", json!({"messages": ["a", "b"], "repeat": 600000}))
                .contains("at most 1000000")
        );
    }

    #[test]
    fn primes_and_fail_params_are_checked() {
        assert!(registry().plan("primes", &json!({})).is_ok());
        assert!(plan_err("primes", json!({"limit": 1_000_000_001u64}))
            .ends_with("limit: must be between 2 and 1000000000, got 1000000001"));
        assert!(plan_err("fail", json!({"steps": 2, "at": 3}))
            .ends_with("at: must be between 1 and 2, got 3"));
        assert!(plan_err("fail", json!({"message": ""})).ends_with("message: must not be empty"));
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
