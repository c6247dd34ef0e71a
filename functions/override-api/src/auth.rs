//! Who is asking and what they may do: the role patterns live in the API crate
//! ([`revscale_api::auth`]), where `revscale doctor` reads the same rules the API
//! enforces, so the two cannot disagree about who is an approver.

pub use revscale_api::auth::*;
