//! What the fake remembers, behind one lock: accounts with their groups,
//! subscriptions and tokens (§1.4's rotation and grace), authorization
//! codes, queued faults, every call received, and the fake clock.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Call, Endpoint, Fault, Group, REFRESH_GRACE, REFRESH_TOKEN_LIFETIME};

#[derive(Clone, Debug)]
pub(super) struct Subscription {
    pub(super) appli: u32,
    pub(super) callbackurl: String,
    pub(super) comment: String,
}

#[derive(Clone, Debug)]
pub(super) struct Tokens {
    pub(super) access: String,
    pub(super) access_expires: u64,
    pub(super) access_used: bool,
    pub(super) refresh: String,
    pub(super) refresh_expires: u64,
    pub(super) scope: String,
    /// The refresh token that was exchanged for the current pair, and the end of its grace.
    pub(super) previous: Option<(String, u64)>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct User {
    pub(super) groups: BTreeMap<i64, Group>,
    /// Groups given as JSON, served as given (see `add_raw_group`).
    pub(super) raw_groups: Vec<Value>,
    pub(super) subs: Vec<Subscription>,
    pub(super) tokens: Option<Tokens>,
}

#[derive(Clone, Debug)]
pub(super) struct AuthCode {
    pub(super) userid: u64,
    pub(super) redirect_uri: String,
    pub(super) scope: String,
    pub(super) issued: u64,
    pub(super) used: bool,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) clock_offset: u64,
    pub(super) users: BTreeMap<u64, User>,
    pub(super) first_user: Option<u64>,
    pub(super) login: Option<u64>,
    pub(super) codes: HashMap<String, AuthCode>,
    pub(super) faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub(super) calls: Vec<Call>,
    pub(super) head_checks: Vec<(String, Option<u16>)>,
    /// Withings cannot reach any callback URL (a closed port 443, say): every HEAD check fails.
    pub(super) callbacks_unreachable: bool,
    pub(super) access_lifetime: u64,
    pub(super) userid_as_string: bool,
    pub(super) page_size: usize,
    pub(super) more_as_bool: bool,
    pub(super) lastupdate_exclusive: bool,
    pub(super) rate_limit: usize,
    pub(super) redirect_uris: Vec<String>,
}

impl State {
    pub(super) fn now(&self) -> u64 {
        real_now() + self.clock_offset
    }

    pub(super) fn user(&mut self, userid: u64) -> &mut User {
        if self.first_user.is_none() {
            self.first_user = Some(userid);
        }
        self.users.entry(userid).or_default()
    }

    /// Issue a fresh token pair for `userid`, revoking the previous access token (strict
    /// reading of the UNCONFIRMED point in §1.4).
    pub(super) fn issue(
        &mut self,
        userid: u64,
        scope: &str,
        previous: Option<(String, u64)>,
    ) -> Tokens {
        let now = self.now();
        let tokens = Tokens {
            access: random_hex(40),
            access_expires: now + self.access_lifetime,
            access_used: false,
            refresh: random_hex(40),
            refresh_expires: now + REFRESH_TOKEN_LIFETIME,
            scope: scope.to_string(),
            previous,
        };
        self.user(userid).tokens = Some(tokens.clone());
        tokens
    }

    /// Which user a refresh with `token` would succeed for, and the grace entry the new pair
    /// would carry (§1.4). No side effects.
    pub(super) fn check_refresh(&self, token: &str) -> Option<(u64, Option<(String, u64)>)> {
        let now = self.now();
        for (&uid, user) in &self.users {
            let Some(t) = &user.tokens else { continue };
            if t.refresh == token && now < t.refresh_expires {
                // The current refresh token: it becomes the "previous" one for 8 h.
                return Some((uid, Some((token.to_string(), now + REFRESH_GRACE))));
            }
            if let Some((prev, grace_end)) = &t.previous {
                if prev == token && !t.access_used && now < *grace_end {
                    // Replaying the previous token within its grace: it stays the previous
                    // one, but its original deadline is kept (no extension by replay).
                    return Some((uid, Some((prev.clone(), *grace_end))));
                }
            }
        }
        None
    }

    /// Authenticate an access token; using a user's newest access token ends the grace of
    /// the previous refresh token (§1.4).
    pub(super) fn authenticate(&mut self, token: Option<&str>) -> Option<u64> {
        let token = token.filter(|t| !t.is_empty())?;
        let now = self.now();
        for (&uid, user) in self.users.iter_mut() {
            let Some(t) = user.tokens.as_mut() else {
                continue;
            };
            if t.access == token {
                if now >= t.access_expires {
                    return None;
                }
                t.access_used = true;
                t.previous = None;
                return Some(uid);
            }
        }
        None
    }

    pub(super) fn api_calls_in_window(&self, now: u64) -> usize {
        self.calls
            .iter()
            .rev()
            .take_while(|c| c.at + 60 > now)
            .filter(|c| c.endpoint.is_some_and(Endpoint::is_api))
            .count()
    }
}

pub(super) type Shared = Arc<Mutex<State>>;

pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `len` random lowercase hex characters (std only: SipHash with random keys).
pub(super) fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}
