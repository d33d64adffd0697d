//! The HTTP surface against a real server on port 0; streams are read with
//! a spec-conformant SSE parser (`eventsource-stream`).

mod helpers;
mod hostile;
mod jobs;
mod list;
mod nginx;
mod output;
mod page;
mod quota;
mod store_down;
mod streams;
