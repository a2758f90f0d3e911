//! The Withings public API, as `docs/withings-api.md` (the facts sheet) describes it.

pub mod api;
pub mod budget;
pub mod lenient;
pub mod measure;
pub mod notify;
pub mod oauth;
pub mod status;
