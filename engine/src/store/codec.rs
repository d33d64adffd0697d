//! What both stores share: how events' kinds, times and ids are written
//! in a database and read back.

use std::str::FromStr;

use super::StoreError;
use crate::model::EventKind;

pub(super) fn kind_code(kind: EventKind) -> i64 {
    match kind {
        EventKind::Message => 0,
        EventKind::State => 1,
        EventKind::End => 2,
        EventKind::Close => 3,
        EventKind::Progress => 4,
    }
}

pub(super) fn kind_from(code: i64) -> Result<EventKind, StoreError> {
    Ok(match code {
        0 => EventKind::Message,
        1 => EventKind::State,
        2 => EventKind::End,
        3 => EventKind::Close,
        4 => EventKind::Progress,
        other => {
            return Err(StoreError(format!(
                "unknown event kind {other} in the database"
            )))
        }
    })
}

pub(super) fn ms(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

pub(super) fn db_ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn db_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError(format!("invalid {what} {text:?} in the database")))
}
