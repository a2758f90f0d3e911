//! The collaborators every part that talks to Withings shares: the API
//! client, the app's credentials, the API budget, the state dir and the
//! clock. Built once per command; `serve`'s threads share it as
//! `Arc<Context>`.

use crate::clock::{Clock, SystemClock};
use crate::config::ApiSettings;
use crate::error::Result;
use crate::store::StateDir;
use crate::tls_roots;
use crate::withings::api::Api;
use crate::withings::budget::{Budget, DEFAULT_PER_MINUTE};
use crate::withings::oauth::Credentials;
use std::path::Path;
use std::sync::Arc;

pub struct Context {
    pub api: Api,
    pub creds: Credentials,
    /// Every Withings call of the process takes its turn here (facts sheet
    /// §4.2).
    pub budget: Budget,
    /// The state dir (`--state-dir`): tokens, queue, sync cursors.
    pub store: StateDir,
    /// The system clock, or one a test sets (`FixedClock`).
    pub clock: Arc<dyn Clock>,
}

impl Context {
    /// What a command runs with: the API client (with `--ca-file`'s
    /// certificates), the state dir opened and proved writable, and the
    /// system clock.
    pub fn open(state_dir: &Path, api: &ApiSettings, creds: Credentials) -> Result<Context> {
        let extra_ca = match &api.ca_file {
            Some(path) => tls_roots::read_pem("--ca-file", path)?,
            None => Vec::new(),
        };
        Ok(Context {
            api: Api::new(api.base.clone(), extra_ca),
            creds,
            budget: Budget::per_minute(DEFAULT_PER_MINUTE),
            store: StateDir::open(state_dir)?,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the default budget with `per_minute` calls a minute
    /// (`serve --api-budget`).
    pub fn with_budget(mut self, per_minute: u32) -> Context {
        self.budget = Budget::per_minute(per_minute);
        self
    }
}
