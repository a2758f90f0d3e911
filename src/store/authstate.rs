//! OAuth `state` values: fresh, random, single use, accepted for 10
//! minutes. `authorize` writes one to `auth/`; the callback consumes it.
//! Files, not memory, because `authorize` and `serve` are separate processes.

use super::atomic;
use crate::error::{Fix, Result};
use crate::secret::{is_hex_token, random_hex};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How long an authorization link stays usable.
pub const STATE_TTL_SECS: i64 = 600;
const STATE_BYTES: usize = 16;

#[derive(Serialize, Deserialize)]
struct Issued {
    created: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateCheck {
    Valid,
    Expired,
    /// Never issued, already used, or not even well-formed.
    Unknown,
}

/// Pure: is a state issued at `created` still usable at `now`?
pub fn is_fresh(created: i64, now: i64) -> bool {
    now >= created - 60 && now - created <= STATE_TTL_SECS
}

pub struct AuthStates {
    dir: PathBuf,
}

impl AuthStates {
    pub(super) fn new(dir: PathBuf) -> AuthStates {
        AuthStates { dir }
    }

    /// A new state value, stored until used or expired.
    pub fn issue(&self, now: i64) -> Result<String> {
        self.sweep_expired(now);
        let state = random_hex(STATE_BYTES)?;
        atomic::write_json(&self.dir.join(&state), &Issued { created: now })?;
        Ok(state)
    }

    /// Checks and uses up `state`. Removing the file is what makes it single
    /// use: of two concurrent callbacks only one removal succeeds.
    pub fn consume(&self, state: &str, now: i64) -> Result<StateCheck> {
        if !is_hex_token(state, STATE_BYTES * 2) {
            return Ok(StateCheck::Unknown);
        }
        let path = self.dir.join(state);
        let issued: Option<Issued> = atomic::read_json(&path, Fix::AuthLink).unwrap_or(None);
        let Some(issued) = issued else {
            return Ok(StateCheck::Unknown);
        };
        if !atomic::remove(&path)? {
            return Ok(StateCheck::Unknown);
        }
        Ok(if is_fresh(issued.created, now) {
            StateCheck::Valid
        } else {
            StateCheck::Expired
        })
    }

    /// Best effort: stale links are harmless, just clutter.
    fn sweep_expired(&self, now: i64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(Some(issued)) = atomic::read_json::<Issued>(&path, Fix::AuthLink) {
                if !is_fresh(issued.created, now) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn a_state_works_once_within_ten_minutes() {
        let dir = TestDir::new("auth");
        let states = AuthStates::new(dir.path().to_path_buf());
        let s = states.issue(1000).unwrap();
        assert_eq!(
            states.consume(&s, 1000 + STATE_TTL_SECS).unwrap(),
            StateCheck::Valid
        );
        assert_eq!(states.consume(&s, 1001).unwrap(), StateCheck::Unknown);
    }

    #[test]
    fn late_and_forged_states_are_refused() {
        let dir = TestDir::new("auth-late");
        let states = AuthStates::new(dir.path().to_path_buf());
        let s = states.issue(1000).unwrap();
        assert_eq!(
            states.consume(&s, 1001 + STATE_TTL_SECS).unwrap(),
            StateCheck::Expired
        );
        assert_eq!(
            states.consume("../../users/1.json", 1000).unwrap(),
            StateCheck::Unknown
        );
        assert_eq!(
            states.consume(&"0".repeat(32), 1000).unwrap(),
            StateCheck::Unknown
        );
    }

    #[test]
    fn issuing_sweeps_expired_states() {
        let dir = TestDir::new("auth-sweep");
        let states = AuthStates::new(dir.path().to_path_buf());
        let old = states.issue(1000).unwrap();
        states.issue(1000 + STATE_TTL_SECS + 5).unwrap();
        assert!(!dir.path().join(old).exists());
    }
}
