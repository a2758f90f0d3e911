//! `withings-relay unlink --user ID`: revoke the relay's own notification
//! subscriptions for the user (never another app's, never all of them,
//! facts sheet §3.1), then delete everything the relay keeps for them, and
//! say each step on stdout.
//!
//! Dead tokens do not stop it: a grant Withings no longer honours has lost
//! its subscriptions with it (§3.1), and one it still honours keeps only
//! subscriptions this relay answers and ignores for a user it no longer
//! knows, which failing deliveries end once the relay stops or moves
//! (§3.4). A Withings that cannot be reached does stop it, with nothing
//! deleted, since its subscriptions may well be alive.

use crate::config::{Shared, UnlinkSettings};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::inbound::routes::{notify_url, notify_url_prefix, redacted};
use crate::keeper::plan::OwnUrls;
use crate::store::{LockWait, StateDir, UserLock};
use crate::withings::notify;
use crate::withings::status::{family, Family};
use crate::worker::session::Session;
use std::time::Duration;

/// Home Assistant's pause after each revoke (facts sheet §3.1).
const REVOKE_SPACING: Duration = Duration::from_secs(1);

/// Pure: if this failure means the user's grant is dead, so revoking
/// cannot and need not happen, why, in words: no tokens, a refresh
/// Withings refused, or an access token refused even after a refresh.
fn dead_grant(e: &Error) -> Option<String> {
    match e {
        Error::ReauthNeeded { .. } => Some("Withings refused the refresh token".into()),
        Error::UnknownUser(_) => Some("no tokens are stored for this user".into()),
        Error::Api { status, .. } if family(*status) == Family::AuthFailed => Some(format!(
            "Withings refused the access token even after a refresh ({e})"
        )),
        _ => None,
    }
}

pub fn run(shared: &Shared, settings: UnlinkSettings) -> Result<()> {
    let ctx = Context::open(&shared.state_dir, &settings.api, settings.credentials)?;
    let (store, id) = (&ctx.store, settings.user.as_str());
    if !known(store, id)? {
        return Err(Error::Config(format!(
            "--user {id}: the relay keeps nothing for this user in {}, so there is nothing to unlink; the linked users are the files in its users/ directory",
            shared.state_dir.display()
        )));
    }
    // Held to the end: a refresh by `serve` cannot save tokens again after
    // they are deleted, nor its subscription check subscribe again.
    let lock = store.lock_user(id, LockWait::Block)?;
    let own = OwnUrls {
        current: match &settings.public_url {
            Some(public) if store.root().join("webhook-secret").exists() => {
                Some(notify_url(public, &store.webhook_secret()?))
            }
            _ => None,
        },
        recorded: store.callbacks.load(id).unwrap_or_else(|e| {
            println!("user {id}: the record of this relay's notification URLs is unreadable ({e})");
            Vec::new()
        }),
        notify_prefix: settings.public_url.as_ref().map(notify_url_prefix),
    };
    match revoke_own(&ctx, id, &own, &lock) {
        Ok(()) => {}
        Err(e) => match dead_grant(&e) {
            Some(why) => println!(
                "user {id}: the subscriptions could not be revoked: {why}. That is harmless: Withings drops the subscriptions of a grant that is gone, and any left bring only notifications this relay ignores for a user it does not know, until failing deliveries end them"
            ),
            None => {
                println!("user {id}: could not revoke the subscriptions, so nothing was deleted; run this again once Withings answers");
                return Err(e);
            }
        },
    }
    delete_local(store, id)?;
    println!("user {id}: unlinked; `withings-relay authorize` links the account again");
    Ok(())
}

/// Anything kept for the user: a user unlinked by Withings (appli 46) has
/// no tokens left, but still sync state and queued notifications.
fn known(store: &StateDir, id: &str) -> Result<bool> {
    Ok(store.users.exists(id)
        || store.sync.exists(id)
        || store.callbacks.exists(id)
        || store.health.list()?.iter().any(|u| u == id)
        || store.queue.pending()?.contains_key(id))
}

fn revoke_own(ctx: &Context, id: &str, own: &OwnUrls, lock: &UserLock) -> Result<()> {
    let mut session = Session::open(ctx, id)?.holding_lock(lock);
    let listed = session.call(notify::list)?;
    let (ours, others): (Vec<_>, Vec<_>) = listed.into_iter().partition(|p| own.owns(p));
    for (i, p) in ours.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(REVOKE_SPACING);
        }
        session.call(|api, token| notify::revoke(api, token, &p.callbackurl, p.appli))?;
        println!(
            "user {id}: revoked the subscription for appli {} at {}",
            p.appli,
            redacted(&p.callbackurl)
        );
    }
    if ours.is_empty() {
        println!("user {id}: Withings listed no subscription of this relay");
    }
    if !others.is_empty() {
        println!(
            "user {id}: left {} subscription(s) of other apps alone",
            others.len()
        );
    }
    Ok(())
}

/// Deletes what the relay keeps for the user, saying what was there.
fn delete_local(store: &StateDir, id: &str) -> Result<()> {
    if store.users.remove(id)? {
        println!("user {id}: deleted the tokens (users/{id}.json)");
    }
    if store.sync.remove(id)? {
        println!("user {id}: deleted the sync state (sync/{id}.json)");
    }
    if let Some(queued) = store.queue.pending()?.remove(id) {
        store.queue.remove(&queued)?;
        println!("user {id}: deleted {} queued notification(s)", queued.len());
    }
    if store.health.list()?.iter().any(|u| u == id) {
        store.health.remove(id)?;
        println!("user {id}: deleted the status report (health/{id}.json)");
    }
    if store.callbacks.remove(id)? {
        println!(
            "user {id}: deleted the record of this relay's notification URLs (callbacks/{id}.json)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WithingsKind;

    #[test]
    fn only_a_dead_grant_lets_unlink_go_on_without_revoking() {
        let api = |status| Error::Api {
            endpoint: "notify list",
            status,
            message: String::new(),
        };
        assert!(dead_grant(&api(401)).unwrap().contains("after a refresh"));
        let reauth = Error::ReauthNeeded { userid: "1".into() };
        assert!(dead_grant(&reauth).is_some());
        assert!(dead_grant(&Error::UnknownUser("1".into())).is_some());
        assert!(dead_grant(&api(601)).is_none(), "rate limited: try again");
        assert!(dead_grant(&api(522)).is_none());
        let timeout = Error::withings("notify list", WithingsKind::Timeout);
        assert!(dead_grant(&timeout).is_none());
    }
}
