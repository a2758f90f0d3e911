//! One user's authenticated access to Withings: a valid access token,
//! refreshed only when needed and always persisted before it is used
//! (facts sheet §1.4: the old refresh token dies on first use of the new
//! access token, so an unsaved new pair would lock the user out).

use crate::context::Context;
use crate::error::{Error, Result, WithingsKind};
use crate::secret::Secret;
use crate::store::{LockWait, UserLock, UserRecord};
use crate::withings::api::Api;
use crate::withings::budget::Priority;
use crate::withings::oauth::{self, TokenSet};
use crate::withings::status::{family, Family};

/// Refresh this long before the stated expiry, to cover clock skew and the
/// call's own duration.
const EXPIRY_MARGIN_SECS: i64 = 60;

/// Pure: is the stored access token too old to use at `now`?
pub fn needs_refresh(expires_at: i64, now: i64) -> bool {
    now >= expires_at - EXPIRY_MARGIN_SECS
}

/// Pure: does this token-endpoint failure mean the refresh token itself is
/// dead (re-authorize), rather than a passing problem (retry)?
pub fn refresh_rejected(e: &Error) -> bool {
    match e {
        Error::Api { status, .. } => matches!(
            family(*status),
            Family::AuthFailed | Family::InvalidParams | Family::Unauthorized
        ),
        _ => false,
    }
}

/// The user record a fresh token pair turns into.
pub fn record_from_tokens(t: &TokenSet, now: i64, linked_at: i64) -> UserRecord {
    UserRecord {
        userid: t.userid.clone(),
        access_token: t.access_token.clone(),
        access_expires_at: now.saturating_add(t.expires_in),
        refresh_token: t.refresh_token.clone(),
        scope: t.scope.clone(),
        linked_at,
        needs_reauth: false,
    }
}

pub struct Session<'a> {
    ctx: &'a Context,
    user: UserRecord,
    wait: LockWait,
    /// The caller holds the user's lock already (see
    /// [`Session::holding_lock`]); a refresh must not take it again.
    lock_held: bool,
    /// Where this session's calls stand in the API budget.
    priority: Priority,
}

impl<'a> Session<'a> {
    /// Loads the user's tokens. Nothing is locked: the per-user lock is
    /// taken only around a refresh (see `Session::refresh`), and by
    /// default a session gives up at once when another process holds it.
    pub fn open(ctx: &'a Context, userid: &str) -> Result<Session<'a>> {
        let user = ctx
            .store
            .users
            .load(userid)?
            .ok_or_else(|| Error::UnknownUser(userid.to_string()))?;
        if user.needs_reauth {
            return Err(Error::ReauthNeeded {
                userid: userid.to_string(),
            });
        }
        Ok(Session {
            ctx,
            user,
            wait: LockWait::GiveUp,
            lock_held: false,
            priority: Priority::Foreground,
        })
    }

    /// Makes this session's calls take their turn in the API budget as
    /// `priority` (by default Foreground: a person is waiting).
    pub fn with_priority(mut self, priority: Priority) -> Session<'a> {
        self.priority = priority;
        self
    }

    /// Makes a refresh wait for another process's refresh of this user
    /// instead of failing: for hand-run commands.
    pub fn waiting_for_lock(mut self) -> Session<'a> {
        self.wait = LockWait::Block;
        self
    }

    /// For a caller that holds the user's lock for the whole session
    /// (`unlink`, the subscription check): a refresh then runs under that
    /// lock, since taking it a second time would wait on ourselves.
    pub fn holding_lock(mut self, _held: &UserLock) -> Session<'a> {
        self.lock_held = true;
        self
    }

    pub fn userid(&self) -> &str {
        &self.user.userid
    }

    /// Refreshes under the user's lock. The user file is read again under
    /// it: another process may have refreshed meanwhile, and then its new
    /// pair is the one to use (our refresh token may already be dead).
    fn refresh(&mut self) -> Result<()> {
        let store = &self.ctx.store;
        let _lock = match self.lock_held {
            true => None,
            false => Some(store.lock_user(&self.user.userid, self.wait)?),
        };
        let stored = store
            .users
            .load(&self.user.userid)?
            .ok_or_else(|| Error::UnknownUser(self.user.userid.clone()))?;
        if stored.needs_reauth {
            return Err(Error::ReauthNeeded {
                userid: stored.userid,
            });
        }
        let refreshed_elsewhere = stored.access_token != self.user.access_token;
        self.user = stored;
        if refreshed_elsewhere && !needs_refresh(self.user.access_expires_at, self.ctx.clock.now())
        {
            log::debug!(
                "user {}: another process refreshed the tokens; using its pair",
                self.user.userid
            );
            return Ok(());
        }
        log::info!("user {}: refreshing the access token", self.user.userid);
        self.ctx.budget.take(self.priority, &self.user.userid);
        let tokens = match oauth::refresh(&self.ctx.api, &self.ctx.creds, &self.user.refresh_token)
        {
            Ok(t) => t,
            Err(e) if refresh_rejected(&e) => {
                // Saved before it is said: whoever reads the log (a
                // person, a monitor, `status`) then finds the flag set.
                self.user.needs_reauth = true;
                store.users.save(&self.user.userid, &self.user)?;
                log::error!(
                    "user {}: Withings rejected the refresh token ({e}); run `withings-relay authorize` to link this account again. Queued notifications are kept.",
                    self.user.userid
                );
                return Err(Error::ReauthNeeded {
                    userid: self.user.userid.clone(),
                });
            }
            Err(e) => return Err(e),
        };
        if tokens.userid != self.user.userid {
            return Err(Error::withings(
                "oauth2 refresh",
                WithingsKind::Malformed(format!(
                    "tokens came back for user {} instead of {}",
                    tokens.userid, self.user.userid
                )),
            ));
        }
        let fresh = record_from_tokens(&tokens, self.ctx.clock.now(), self.user.linked_at);
        // Saved before any use: if this fails the new pair is dropped unused,
        // and the old refresh token stays valid for the next try.
        store.users.save(&fresh.userid, &fresh)?;
        self.user = fresh;
        Ok(())
    }

    fn access_token(&mut self) -> Result<Secret> {
        if needs_refresh(self.user.access_expires_at, self.ctx.clock.now()) {
            self.refresh()?;
        }
        Ok(self.user.access_token.clone())
    }

    /// Runs `call` with a valid access token. An auth-failed status means
    /// the token died early: refresh once and try once more (facts sheet
    /// §4.1).
    pub fn call<T>(&mut self, call: impl Fn(&Api, &Secret) -> Result<T>) -> Result<T> {
        let token = self.access_token()?;
        self.ctx.budget.take(self.priority, self.userid());
        match call(&self.ctx.api, &token) {
            Err(Error::Api { status, .. }) if family(status) == Family::AuthFailed => {
                log::info!(
                    "user {}: Withings refused the access token (status {status}); refreshing once",
                    self.user.userid
                );
                self.refresh()?;
                let token = self.user.access_token.clone();
                self.ctx.budget.take(self.priority, self.userid());
                call(&self.ctx.api, &token)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_only_near_expiry() {
        assert!(!needs_refresh(10_000, 10_000 - EXPIRY_MARGIN_SECS - 1));
        assert!(needs_refresh(10_000, 10_000 - EXPIRY_MARGIN_SECS));
        assert!(needs_refresh(10_000, 20_000));
    }

    #[test]
    fn only_auth_and_param_refusals_kill_a_refresh_token() {
        let api = |status| Error::Api {
            endpoint: "oauth2 refresh",
            status,
            message: String::new(),
        };
        assert!(refresh_rejected(&api(503)), "invalid refresh_token");
        assert!(refresh_rejected(&api(401)));
        assert!(!refresh_rejected(&api(601)), "rate limited: retry");
        assert!(!refresh_rejected(&api(522)));
        assert!(!refresh_rejected(&Error::withings(
            "oauth2 refresh",
            WithingsKind::Timeout
        )));
    }

    #[test]
    fn a_token_set_becomes_a_record_with_absolute_expiry() {
        let t = TokenSet {
            userid: "7".into(),
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            expires_in: 10_800,
            scope: "user.metrics".into(),
        };
        let r = record_from_tokens(&t, 1_000, 500);
        assert_eq!(r.access_expires_at, 11_800);
        assert_eq!(r.linked_at, 500);
        assert!(!r.needs_reauth);
    }
}
