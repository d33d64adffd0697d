//! The job kinds this server offers, one file each. Their messages are in
//! the locale the visitor had when the job started (see `app::i18n`).
//!
//! Adding a kind: a file here with its params (their [`Params::fields`] are
//! the only place its fields, ranges and defaults are written; the home
//! page's form is rendered from them) and its run function, a line in
//! [`registry`], and its texts (`kind-NAME`, `field-FIELD`, messages) in
//! `app/locales/*.ftl`.
//!
//! * [`demo`]: numbered steps with progress, one every `interval_ms`.
//! * [`echo`]: says the given messages; for scripts, tests, benchmarks.
//! * [`primes`]: counts primes with a segmented sieve on the blocking pool.
//! * [`fail`]: fails at a given step; shows how failures look.
//! * [`log`]: a build log of many numbered lines, some in colour.
//! * [`bench`]: for the load generator (`bench/`).

use std::time::Duration;

use app::i18n::{tr, Arg, Locale};
use jobstream_engine::{JobContext, JobError, Registry};

pub mod bench;
pub mod demo;
pub mod echo;
pub mod fail;
pub mod log;
pub mod primes;

/// The registry with every kind above; `bench` only when `bench` is set
/// (`JOBSTREAM_BENCH=1`): it can write gigabytes.
pub fn registry(bench: bool) -> Registry {
    let mut r = Registry::new();
    r.register("demo", demo::run)
        .register("echo", echo::run)
        .register("primes", primes::run)
        .register("fail", fail::run)
        .register("log", log::run);
    if bench {
        r.register("bench", bench::run);
    }
    r
}

/// The locale the job was started in.
fn locale(ctx: &JobContext) -> Locale {
    Locale::from_tag(&ctx.locale).unwrap_or_default()
}

/// "stopped at step N", the error of a job asked to stop.
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

/// Ends the job if it was asked to stop.
fn stop_requested(ctx: &JobContext, step: u32) -> Result<(), JobError> {
    if ctx.cancel.is_cancelled() {
        return Err(JobError::new(step_text(ctx, step)));
    }
    Ok(())
}

/// What planning `params` for `kind` says is wrong ("" if nothing).
#[cfg(test)]
fn plan_err(kind: &str, params: serde_json::Value) -> String {
    registry(true)
        .plan(kind, &params)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_schema_and_only_bench_stays_out_of_the_form() {
        let r = registry(true);
        let in_form: Vec<_> = r
            .schemas()
            .filter(|s| s.in_form)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(in_form, ["demo", "echo", "fail", "log", "primes"]);
        for schema in r.schemas() {
            assert!(!schema.fields.is_empty(), "{}", schema.name);
        }
    }

    #[test]
    fn bench_is_offered_only_when_asked_for() {
        assert!(registry(true).schema("bench").is_some());
        assert!(registry(false).schema("bench").is_none());
        assert!(registry(false)
            .plan("bench", &serde_json::json!({"events": 1}))
            .is_err());
    }
}
