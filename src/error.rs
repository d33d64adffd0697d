//! The HTTP API's errors. There is one enum of user-facing errors for both
//! doors, [`app::ssr::UserError`]: it maps each error to its status and its
//! text (English here, the visitor's language in the server functions) and
//! answers the JSON API as `{"error": "..."}`. Internals go to the server
//! log only.

pub use app::ssr::{StreamLimit, UserError as ApiError};
