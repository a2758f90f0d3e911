//! What the relay knows about how each linked user is doing, for
//! `withings-relay status` and the Home Assistant diagnostics:
//! `health/<userid>.json`. Written by `serve` (the worker after each sync
//! and subscription check, the webhook on appli 46), read by anyone. It
//! holds no secret and nothing the relay needs to work: a damaged file is
//! replaced by the next write.

use super::per_user::{PerUser, UserFile};
use crate::error::{Fix, Result};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// A failure, as the log said it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Unix seconds.
    pub at: i64,
    pub message: String,
}

/// One subscription Withings listed for the user (facts sheet §3.1), as
/// the last check saw it. The callback URL carries the webhook secret;
/// whoever shows it redacts it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub appli: u32,
    pub callbackurl: String,
}

/// The outcome of the last `notify list` check of this user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionCheck {
    /// Unix seconds.
    pub checked_at: i64,
    /// What Withings listed after the check's repairs.
    pub seen: Vec<Subscription>,
    /// Applis that are still not subscribed to the relay's URL, with why.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Why and when a user stopped being linked without `unlink`: Withings
/// sent appli 46 (facts sheet §3.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    pub at: i64,
    /// The notification's `action`, e.g. `unlink` or `delete`.
    pub action: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Unix seconds of the last sync that ended well.
    pub last_sync_ok_at: Option<i64>,
    /// The last sync failure; kept after a later success, which tells the
    /// two apart by time.
    pub last_error: Option<Failure>,
    /// Unix seconds at which the newest notification synced so far arrived.
    pub last_notification_at: Option<i64>,
    pub subscriptions: Option<SubscriptionCheck>,
    /// Set when Withings said the user revoked access; cleared on linking.
    pub unlinked: Option<Unlinked>,
}

impl UserFile for Health {
    const IF_DAMAGED: Fix = Fix::Health;
}

/// The `health/` files, with read-modify-write kept whole between the
/// threads of one process.
pub struct HealthFiles {
    files: PerUser<Health>,
    writing: Mutex<()>,
}

impl HealthFiles {
    pub(super) fn new(files: PerUser<Health>) -> HealthFiles {
        HealthFiles {
            files,
            writing: Mutex::new(()),
        }
    }

    /// The user's health, or the default if none was written yet. A
    /// damaged file reads as the default, since it is only a report.
    pub fn load(&self, userid: &str) -> Health {
        self.files.load(userid).ok().flatten().unwrap_or_default()
    }

    /// The user's health as stored, None if none was written yet; unlike
    /// [`HealthFiles::load`] a damaged file is an error, for `status` to
    /// report.
    pub fn read(&self, userid: &str) -> Result<Option<Health>> {
        self.files.load(userid)
    }

    /// Changes the user's health with `change` and saves it.
    pub fn update(&self, userid: &str, change: impl FnOnce(&mut Health)) -> Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut health = self.load(userid);
        change(&mut health);
        self.files.save(userid, &health)
    }

    pub fn remove(&self, userid: &str) -> Result<()> {
        let _whole = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.files.remove(userid).map(|_| ())
    }

    /// Every user with a health file, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        self.files.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn updates_build_on_what_was_saved_and_damage_reads_as_empty() {
        let dir = TestDir::new("health");
        let files = HealthFiles::new(PerUser::new(dir.path().to_path_buf()));
        assert_eq!(files.load("42"), Health::default());
        files
            .update("42", |h| h.last_sync_ok_at = Some(10))
            .unwrap();
        files
            .update("42", |h| h.last_notification_at = Some(9))
            .unwrap();
        let h = files.load("42");
        assert_eq!(
            (h.last_sync_ok_at, h.last_notification_at),
            (Some(10), Some(9))
        );
        std::fs::write(dir.path().join("42.json"), b"{torn").unwrap();
        assert_eq!(files.load("42"), Health::default());
        files.remove("42").unwrap();
        assert!(files.list().unwrap().is_empty());
    }
}
