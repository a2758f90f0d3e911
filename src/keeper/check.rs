//! One user's subscription check (facts sheet §3.1, §3.4): one
//! `notify list`, then subscribe where the current URL is missing and
//! revoke the relay's own stale URLs, as `plan` decides; each repair is
//! logged, and the result kept in `health/<id>.json` for `status`.

use super::plan::{plan, OwnUrls, Plan};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::inbound::routes::redacted;
use crate::store::{LockWait, Subscription, SubscriptionCheck};
use crate::withings::budget::Priority;
use crate::withings::notify::{self, Profile};
use crate::worker::session::Session;
use std::sync::Arc;
use std::time::Duration;

/// What Withings does when the HEAD check of a subscribe fails (§3.1,
/// §3.2), and how to fix it; the OAuth callback's page says the same.
pub const HEAD_CHECK_ADVICE: &str = "Withings checks the notification URL with a HEAD request: it must be https on port 443 under a public host name that reaches this relay";

/// How a check ended, for when the next one is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every appli is subscribed at the current URL.
    Checked,
    /// Something failed: try again sooner than a whole period.
    Problems,
    /// Not checked: the user needs re-authorization, was unlinked, or
    /// another process holds its lock. Looked at again shortly.
    Skipped,
}

/// What the checks of one `serve` share.
pub struct Keeper {
    pub ctx: Arc<Context>,
    /// The notification URL Withings should call now.
    pub current: String,
    /// `<public URL>/notify/` (see `plan::OwnUrls`).
    pub notify_prefix: String,
    /// `--appli`.
    pub applis: Vec<u32>,
    /// The pause after each subscribe; a fifth of it after each revoke
    /// (Home Assistant's 5 s and 1 s, facts sheet §3.1).
    pub spacing: Duration,
}

/// Pure: does this failure mean the user cannot be checked now, rather
/// than that the check failed? (The worker already says so loudly.)
fn not_checkable(e: &Error) -> bool {
    matches!(e, Error::ReauthNeeded { .. } | Error::UnknownUser(_))
}

impl Keeper {
    pub fn check(&self, userid: &str) -> Outcome {
        let store = &self.ctx.store;
        // Held for the whole check, so `unlink` cannot revoke and delete
        // between our list and our subscribe (which would leave a
        // subscription for a user the relay no longer knows). A refresh in
        // progress elsewhere makes us come back shortly.
        let lock = match store.lock_user(userid, LockWait::GiveUp) {
            Ok(lock) => lock,
            Err(e) => {
                log::debug!("user {userid}: subscription check postponed: {e}");
                return Outcome::Skipped;
            }
        };
        // Background: a notification's sync goes ahead of a check.
        let session = Session::open(&self.ctx, userid)
            .map(|s| s.holding_lock(&lock).with_priority(Priority::Background));
        let mut session = match session {
            Ok(s) => s,
            Err(e) if not_checkable(&e) => return Outcome::Skipped,
            Err(e) => return self.failed(userid, &e),
        };
        let listed = match session.call(notify::list) {
            Ok(listed) => listed,
            Err(e) if not_checkable(&e) => return Outcome::Skipped,
            Err(e) => return self.failed(userid, &e),
        };
        self.repair(&mut session, listed)
    }

    fn repair(&self, session: &mut Session, listed: Vec<Profile>) -> Outcome {
        let store = &self.ctx.store;
        let userid = session.userid().to_string();
        let recorded = store.callbacks.load(&userid).unwrap_or_else(|e| {
            log::warn!("user {userid}: {e}");
            Vec::new()
        });
        let own = OwnUrls {
            current: Some(self.current.clone()),
            recorded,
            notify_prefix: Some(self.notify_prefix.clone()),
        };
        let todo = plan(&listed, &self.current, &own, &self.applis);
        let mut seen = listed;
        let mut problems = Vec::new();
        let mut unsubscribed = Vec::new();
        // Recorded before any subscribe, and also when the current URL was
        // subscribed by a relay that did not record yet.
        if let Err(e) = store.callbacks.remember(&userid, &self.current) {
            log::warn!("user {userid}: cannot record the relay's notification URL: {e}");
        }
        for &appli in &todo.subscribe {
            match session.call(|api, token| notify::subscribe(api, token, &self.current, appli)) {
                Ok(()) if todo.revoke.iter().any(|p| p.appli == appli) => {
                    log::warn!("user {userid}: the relay's notification URL changed (a new --public-url or webhook secret); subscribed appli {appli} at the new one");
                    seen.push(own_profile(appli, &self.current));
                }
                Ok(()) => {
                    log::warn!("user {userid}: Withings had no subscription for appli {appli} at the relay's URL; subscribed again");
                    seen.push(own_profile(appli, &self.current));
                }
                Err(e) => {
                    let fix = subscribe_fix(&e);
                    log::error!("user {userid}: Withings has no subscription for appli {appli} at the relay's URL, and subscribing failed: {e}; {fix}");
                    problems.push(format!("appli {appli}: subscribing failed: {e}"));
                    unsubscribed.push(appli);
                }
            }
            std::thread::sleep(self.spacing);
        }
        for stale in &todo.revoke {
            let (url, appli) = (&stale.callbackurl, stale.appli);
            // An old URL may still reach the relay (only the host name
            // changed): it stays until the new one is subscribed.
            if unsubscribed.contains(&appli) {
                log::warn!(
                    "user {userid}: kept the relay's old notification URL {} for appli {appli} until the current one is subscribed",
                    redacted(url)
                );
                continue;
            }
            match session.call(|api, token| notify::revoke(api, token, url, appli)) {
                Ok(()) => {
                    log::warn!(
                        "user {userid}: revoked the relay's old notification URL {} for appli {appli}",
                        redacted(url)
                    );
                    seen.retain(|p| p != stale);
                }
                Err(e) => log::error!(
                    "user {userid}: could not revoke the relay's old notification URL {} for appli {appli}: {e}; the next check tries again",
                    redacted(url)
                ),
            }
            std::thread::sleep(self.spacing / 5);
        }
        let gone: Vec<String> = own
            .recorded
            .iter()
            .filter(|u| **u != self.current && !seen.iter().any(|p| p.callbackurl == **u))
            .cloned()
            .collect();
        if let Err(e) = store.callbacks.forget(&userid, &gone) {
            log::warn!("user {userid}: {e}");
        }
        let outcome = match problems.is_empty() {
            true => Outcome::Checked,
            false => Outcome::Problems,
        };
        if todo == Plan::default() {
            log::debug!("user {userid}: subscriptions checked, all in place");
        }
        let check = SubscriptionCheck {
            checked_at: self.ctx.clock.now(),
            seen: seen
                .into_iter()
                .map(|p| Subscription {
                    appli: p.appli,
                    callbackurl: p.callbackurl,
                })
                .collect(),
            problems,
        };
        self.record(&userid, |old| *old = Some(check));
        outcome
    }

    /// A check that could not list: logged, and kept as the problem of the
    /// last check (with the subscriptions the check before saw).
    fn failed(&self, userid: &str, e: &Error) -> Outcome {
        log::error!("user {userid}: could not check the notification subscriptions: {e}; trying again within the hour");
        let (now, problem) = (self.ctx.clock.now(), format!("notify list failed: {e}"));
        self.record(userid, |old| {
            let check = old.get_or_insert_with(SubscriptionCheck::default);
            check.checked_at = now;
            check.problems = vec![problem];
        });
        Outcome::Problems
    }

    fn record(&self, userid: &str, change: impl FnOnce(&mut Option<SubscriptionCheck>)) {
        let saved: Result<()> = self
            .ctx
            .store
            .health
            .update(userid, |h| change(&mut h.subscriptions));
        if let Err(e) = saved {
            log::warn!("user {userid}: cannot record the subscription check: {e}");
        }
    }
}

fn own_profile(appli: u32, url: &str) -> Profile {
    Profile {
        appli,
        callbackurl: url.to_string(),
        comment: Some(notify::OWN_COMMENT.into()),
    }
}

/// Pure: what to tell the person after a failed subscribe.
pub fn subscribe_fix(e: &Error) -> String {
    match e {
        Error::Api { status: 293, .. } => format!(
            "status 293 means the HEAD check failed. {HEAD_CHECK_ADVICE}; fix that, and the next check subscribes again"
        ),
        _ => "the next check tries again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_grant_or_a_gone_user_skips_the_check() {
        assert!(not_checkable(&Error::ReauthNeeded { userid: "1".into() }));
        assert!(not_checkable(&Error::UnknownUser("1".into())));
        assert!(!not_checkable(&Error::Internal("x")));
    }

    #[test]
    fn a_failed_head_check_gets_its_fix() {
        let api = |status| Error::Api {
            endpoint: "notify subscribe",
            status,
            message: String::new(),
        };
        assert!(subscribe_fix(&api(293)).contains(HEAD_CHECK_ADVICE));
        assert!(!subscribe_fix(&api(601)).contains("HEAD"));
    }
}
