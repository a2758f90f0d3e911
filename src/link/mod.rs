//! Linking an account: the last step of OAuth, shared by the callback
//! route (`inbound/oauth_callback.rs`) and `authorize --paste`. The code
//! is traded for tokens at once (it lives 30 s, facts sheet §1.2), and the
//! user is stored with a sync cursor a day back, so the first sync brings
//! the latest measurements without replaying years of history.
//!
//! `landing.rs` reads the address a browser landed on, for `--paste`.

pub mod landing;

use crate::context::Context;
use crate::error::{Error, Result, WithingsKind};
use crate::store::{is_valid_userid, LockWait, SyncState};
use crate::withings::budget::Priority;
use crate::withings::oauth;
use crate::worker::session::record_from_tokens;
use crate::worker::sync::INITIAL_LOOKBACK_SECS;

/// Trades `code` for tokens, with the `redirect_uri` the authorization
/// link carried (Withings compares the two, §1.3), and stores the user;
/// returns the Withings user id. A user linked before keeps its sync
/// cursor, so nothing is fetched twice.
pub fn store_tokens(ctx: &Context, code: &str, redirect_uri: &str) -> Result<String> {
    // Urgent: the code dies 30 s after it was issued (facts sheet §1.2).
    ctx.budget.take(Priority::Urgent, "being linked");
    let tokens = oauth::exchange_code(&ctx.api, &ctx.creds, code, redirect_uri)?;
    if !is_valid_userid(&tokens.userid) {
        return Err(Error::withings(
            "oauth2 requesttoken",
            WithingsKind::Malformed(format!("userid {:?} is not a number", tokens.userid)),
        ));
    }
    let now = ctx.clock.now();
    let _lock = ctx.store.lock_user(&tokens.userid, LockWait::Block)?;
    ctx.store
        .users
        .save(&tokens.userid, &record_from_tokens(&tokens, now, now))?;
    if ctx.store.sync.load(&tokens.userid)?.is_none() {
        let start = SyncState::starting_at(now - INITIAL_LOOKBACK_SECS);
        ctx.store.sync.save(&tokens.userid, &start)?;
    }
    // Linked again after Withings said the user had unlinked (appli 46).
    let health = &ctx.store.health;
    if health.load(&tokens.userid).unlinked.is_some() {
        if let Err(e) = health.update(&tokens.userid, |h| h.unlinked = None) {
            log::warn!("user {}: {e}", tokens.userid);
        }
    }
    Ok(tokens.userid)
}
