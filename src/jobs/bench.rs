//! `bench`: for load tests (`bench/`): waits until it has `readers` readers
//! (at most `wait_ms`), then emits `events` messages of `size` bytes,
//! `SEQ EMIT_UNIX_NANOS xxx...`, at `rate` per second (0: as fast as it can).

use std::time::Duration;

use jobstream_engine::{Emitter, FieldSchema, JobContext, JobError, Params};
use serde::Deserialize;

use super::{pause, step_text, stop_requested};

/// Parameters of `bench`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    events: u64,
    size: usize,
    rate: u64,
    readers: u64,
    wait_ms: u64,
}

impl Params for Bench {
    const IN_FORM: bool = false;

    fn fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::required_integer("events", 1, 10_000_000),
            FieldSchema::integer("size", 32, 65_536, 64),
            FieldSchema::integer("rate", 0, 10_000_000, 0),
            FieldSchema::integer("readers", 0, 1_000_000, 0),
            FieldSchema::integer("wait_ms", 0, 600_000, 60_000),
        ]
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

pub async fn run(ctx: JobContext, p: Bench, out: Emitter) -> Result<(), JobError> {
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
