//! The Withings public API, as `../shared/withings-api.md` describes it.

pub mod api;
pub mod measure;
pub mod notify;
pub mod oauth;
pub mod status;
