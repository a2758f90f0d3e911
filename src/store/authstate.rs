//! Link nonces, the values OAuth sends as its `state` parameter (facts
//! sheet §1.2): fresh, random, single use, accepted for 10 minutes.
//! `authorize` writes one to `auth/`; the callback consumes it. Files, not
//! memory, because `authorize` and `serve` are separate processes.

use super::atomic;
use crate::error::{Fix, Result};
use crate::secret::{is_hex_token, random_hex};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How long an authorization link stays usable.
pub const NONCE_TTL_SECS: i64 = 600;
const NONCE_BYTES: usize = 16;

#[derive(Serialize, Deserialize)]
struct Issued {
    created: i64,
}

/// A nonce `authorize` puts in a link, to come back as `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNonce(String);

impl LinkNonce {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    Expired,
    /// Never issued, already used, or not even well-formed.
    Unknown,
}

/// Pure: is a nonce issued at `created` still usable at `now`?
pub fn is_fresh(created: i64, now: i64) -> bool {
    now >= created - 60 && now - created <= NONCE_TTL_SECS
}

/// The nonces issued and not yet used, one file each in `auth/`.
pub struct LinkNonces {
    dir: PathBuf,
}

impl LinkNonces {
    pub(super) fn new(dir: PathBuf) -> LinkNonces {
        LinkNonces { dir }
    }

    /// A new nonce, stored until used or expired.
    pub fn issue(&self, now: i64) -> Result<LinkNonce> {
        self.sweep_expired(now);
        let nonce = random_hex(NONCE_BYTES)?;
        atomic::write_json(&self.dir.join(&nonce), &Issued { created: now })?;
        Ok(LinkNonce(nonce))
    }

    /// Checks and uses up `nonce`, as the callback's `state` parameter
    /// brought it. Removing the file is what makes it single use: of two
    /// concurrent callbacks only one removal succeeds.
    pub fn consume(&self, nonce: &str, now: i64) -> Result<NonceCheck> {
        if !is_hex_token(nonce, NONCE_BYTES * 2) {
            return Ok(NonceCheck::Unknown);
        }
        let path = self.dir.join(nonce);
        let issued: Option<Issued> = atomic::read_json(&path, Fix::AuthLink).unwrap_or(None);
        let Some(issued) = issued else {
            return Ok(NonceCheck::Unknown);
        };
        if !atomic::remove(&path)? {
            return Ok(NonceCheck::Unknown);
        }
        Ok(if is_fresh(issued.created, now) {
            NonceCheck::Valid
        } else {
            NonceCheck::Expired
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
    fn a_nonce_works_once_within_ten_minutes() {
        let dir = TestDir::new("auth");
        let nonces = LinkNonces::new(dir.path().to_path_buf());
        let s = nonces.issue(1000).unwrap();
        let s = s.as_str();
        assert_eq!(
            nonces.consume(s, 1000 + NONCE_TTL_SECS).unwrap(),
            NonceCheck::Valid
        );
        assert_eq!(nonces.consume(s, 1001).unwrap(), NonceCheck::Unknown);
    }

    #[test]
    fn late_and_forged_nonces_are_refused() {
        let dir = TestDir::new("auth-late");
        let nonces = LinkNonces::new(dir.path().to_path_buf());
        let s = nonces.issue(1000).unwrap();
        let s = s.as_str();
        assert_eq!(
            nonces.consume(s, 1001 + NONCE_TTL_SECS).unwrap(),
            NonceCheck::Expired
        );
        assert_eq!(
            nonces.consume("../../users/1.json", 1000).unwrap(),
            NonceCheck::Unknown
        );
        assert_eq!(
            nonces.consume(&"0".repeat(32), 1000).unwrap(),
            NonceCheck::Unknown
        );
    }

    #[test]
    fn issuing_sweeps_expired_nonces() {
        let dir = TestDir::new("auth-sweep");
        let nonces = LinkNonces::new(dir.path().to_path_buf());
        let old = nonces.issue(1000).unwrap();
        nonces.issue(1000 + NONCE_TTL_SECS + 5).unwrap();
        assert!(!dir.path().join(old.as_str()).exists());
    }
}
