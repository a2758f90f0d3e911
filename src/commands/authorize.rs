//! `withings-relay authorize`: prints the link that connects an account.

use crate::clock::{Clock, SystemClock};
use crate::config::{AuthorizeSettings, Shared};
use crate::error::Result;
use crate::inbound::routes::callback_url;
use crate::store::{StateDir, NONCE_TTL_SECS};
use crate::withings::oauth::authorize_url;

pub fn run(shared: &Shared, settings: &AuthorizeSettings) -> Result<()> {
    let store = StateDir::open(&shared.state_dir)?;
    let nonce = store.auth.issue(SystemClock.now())?;
    let redirect = callback_url(&settings.public_url);
    // Alone on stdout, so scripts can capture it.
    println!(
        "{}",
        authorize_url(
            &settings.account_url,
            &settings.client_id,
            &redirect,
            nonce.as_str(),
            settings.demo
        )
    );
    log::info!(
        "open this link in a browser within {} minutes; `withings-relay serve` must be running with the same --state-dir and reachable at {redirect}",
        NONCE_TTL_SECS / 60
    );
    Ok(())
}
