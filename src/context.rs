//! The collaborators every part that talks to Withings shares: the API
//! client, the app's credentials, the state dir and the clock. Built once
//! per command; `serve`'s threads share it as `Arc<Context>`.

use crate::clock::Clock;
use crate::store::StateDir;
use crate::withings::api::Api;
use crate::withings::oauth::Credentials;
use std::sync::Arc;

pub struct Context {
    pub api: Api,
    pub creds: Credentials,
    /// The state dir (`--state-dir`): tokens, queue, sync cursors.
    pub store: StateDir,
    /// The system clock, or one a test sets (`FixedClock`).
    pub clock: Arc<dyn Clock>,
}
