//! `withings-relay authorize`: prints the link that connects an account.

use crate::cli::{Authorize, Cli};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::error::Result;
use crate::routes::callback_url;
use crate::store::{StateDir, NONCE_TTL_SECS};
use crate::withings::oauth::authorize_url;

pub fn run(cli: &Cli, args: &Authorize, env: Env) -> Result<()> {
    let public = config::public_url(cli)?;
    let client_id = config::client_id(cli, env)?;
    let account = config::url_option("--account-url", &cli.account_url)?;
    let state = StateDir::open(&cli.state_dir)?;
    let nonce = state.auth.issue(SystemClock.now())?;
    let redirect = callback_url(&public);
    // Alone on stdout, so scripts can capture it.
    println!(
        "{}",
        authorize_url(&account, &client_id, &redirect, nonce.as_str(), args.demo)
    );
    log::info!(
        "open this link in a browser within {} minutes; `withings-relay serve` must be running with the same --state-dir and reachable at {redirect}",
        NONCE_TTL_SECS / 60
    );
    Ok(())
}
