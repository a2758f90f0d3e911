//! Everything the relay keeps lives in one state directory:
//!
//! ```text
//! webhook-secret      the unguessable part of the notification route
//! users/<id>.json     tokens of each linked account
//! sync/<id>.json      lastupdate cursor and the groups handled within the
//!                     overlap below it (see OVERLAP_SECS)
//! queue/*.json        acknowledged notifications not yet synced
//! queue/*.sync        `withings-relay sync` requests `serve` has yet to see
//! auth/<nonce>        authorization links not yet used (OAuth `state`)
//! locks/<id>.lock     per-user refresh lock
//! outbox/records/     emitted groups some sink has yet to deliver, as <seq>.json
//! outbox/<sink>.cursor  the last <seq> each sink delivered
//! outbox/rejected/    outbox records that could not be read back, moved
//!                     aside by the couriers
//! rejected/           groups Withings sent that could not be read, verbatim,
//!                     as <userid>-<grpid>-<modified>.json
//! mqtt-sensors.json   sensors announced to Home Assistant
//! health/<id>.json    how each user is doing, for `status`: last sync,
//!                     last error, subscriptions as last checked
//! callbacks/<id>.json every notification URL the relay subscribed the user
//!                     with, so that old ones can be revoked
//! serve.json          what the running `serve` was started with, for
//!                     `status`
//! format              the layout version of this directory
//! ```
//!
//! Every file is written with [`atomic::write`] and is mode 0600.

pub mod atomic;
mod authstate;
mod callback_urls;
mod health;
mod lock;
mod outbox;
mod per_user;
mod queue;
pub mod rejected;
mod serve_info;
mod sync_request;
mod syncstate;
#[cfg(test)]
pub mod testdir;
mod users;

pub use authstate::{LinkNonces, NonceCheck, NONCE_TTL_SECS};
pub use callback_urls::CallbackUrlFiles;
pub use health::{Failure, Health, HealthFiles, Subscription, SubscriptionCheck, Unlinked};
pub use lock::{LockWait, UserLock};
pub use outbox::Outbox;
pub use per_user::{is_valid_userid, PerUser};
pub use queue::{arrival_secs, Notification, Queue};
pub use rejected::Rejects;
pub use serve_info::ServeInfo;
pub use sync_request::SyncRequests;
pub use syncstate::SyncState;
pub use users::UserRecord;

use crate::error::{Error, Fix, Result};
use crate::secret::{is_hex_token, random_hex, Secret};
use std::path::{Path, PathBuf};

const WEBHOOK_SECRET_BYTES: usize = 16;
/// The layout of this directory. A later relay that changes the layout
/// writes a higher number; this one then refuses to touch the directory.
const FORMAT: u32 = 1;

/// Pure: may this relay use a state dir whose `format` file holds `text`?
fn check_format(path: &Path, text: &str) -> Result<()> {
    match text.trim().parse::<u32>() {
        Ok(found) if found <= FORMAT => Ok(()),
        Ok(found) => Err(Error::Config(format!(
            "{} says the state dir was written by a newer withings-relay (format {found}; this one knows {FORMAT}): run that newer version, or pass another --state-dir",
            path.display()
        ))),
        Err(_) => Err(Error::Config(format!(
            "{} holds {:?}, not a state format number: write `{FORMAT}` into it if this is a withings-relay state dir, or pass another --state-dir",
            path.display(),
            text.trim()
        ))),
    }
}

/// Checks the format marker, then proves the directory writable by
/// writing it again. A full disk is not a reason to refuse to start: the
/// webhook answers 503 (so Withings retries) until space returns, and
/// everything recovers by itself; any other failure (permissions, a
/// read-only mount) is reported now rather than at the first weigh-in.
fn open_format(path: &Path) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(text) => check_format(path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", path, e)),
    }
    match atomic::write(path, format!("{FORMAT}\n").as_bytes()) {
        Err(Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            log::warn!(
                "the disk holding {} is full: notifications are answered 503 (Withings retries them) until space is freed",
                path.parent().unwrap_or(path).display()
            );
            Ok(())
        }
        other => other,
    }
}

const SUBDIRS: [&str; 8] = [
    "users",
    "sync",
    "queue",
    "auth",
    "locks",
    "rejected",
    "health",
    "callbacks",
];

pub struct StateDir {
    root: PathBuf,
    pub users: PerUser<UserRecord>,
    pub sync: PerUser<SyncState>,
    pub queue: Queue,
    /// `withings-relay sync` requests, beside the notifications in `queue/`.
    pub sync_requests: SyncRequests,
    pub auth: LinkNonces,
    pub rejected: Rejects,
    pub health: HealthFiles,
    /// The relay's own notification URLs per user.
    pub callbacks: CallbackUrlFiles,
}

impl StateDir {
    /// Opens (creating if needed) the state dir, and proves it writable now
    /// rather than at the first weigh-in.
    pub fn open(root: &Path) -> Result<StateDir> {
        for sub in SUBDIRS {
            atomic::ensure_dir(&root.join(sub))?;
        }
        open_format(&root.join("format"))?;
        Ok(StateDir::at(root))
    }

    /// Opens an existing state dir to read it only (`status`): creates
    /// nothing and writes nothing, so it can run beside `serve`, as another
    /// user, or on a read-only mount.
    pub fn open_existing(root: &Path) -> Result<StateDir> {
        if !root.is_dir() {
            return Err(Error::Config(format!(
                "there is no state dir at {}: pass the --state-dir that `serve` uses",
                root.display()
            )));
        }
        let format = root.join("format");
        match std::fs::read_to_string(&format) {
            Ok(text) => check_format(&format, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", format, e)),
        }
        Ok(StateDir::at(root))
    }

    fn at(root: &Path) -> StateDir {
        StateDir {
            root: root.to_path_buf(),
            users: PerUser::new(root.join("users")),
            sync: PerUser::new(root.join("sync")),
            queue: Queue::new(root.join("queue")),
            sync_requests: SyncRequests::new(root.join("queue")),
            auth: LinkNonces::new(root.join("auth")),
            rejected: Rejects::new(root.join("rejected")),
            health: HealthFiles::new(PerUser::new(root.join("health"))),
            callbacks: CallbackUrlFiles::new(PerUser::new(root.join("callbacks"))),
        }
    }

    /// The outbox for these sinks (see [`Outbox`]).
    pub fn outbox(&self, sinks: &[&str]) -> Result<Outbox> {
        Outbox::open(&self.root.join("outbox"), sinks)
    }

    /// Read-only, for `status`: the outputs that have an outbox cursor.
    pub fn outbox_sinks(&self) -> Result<Vec<String>> {
        outbox::sinks_in(&self.root.join("outbox"))
    }

    /// Read-only, for `status`: the records `sink` has yet to deliver,
    /// oldest first.
    pub fn outbox_undelivered(&self, sink: &str) -> Result<Vec<(u64, PathBuf)>> {
        outbox::undelivered_in(&self.root.join("outbox"), sink)
    }

    /// What the running (or last) `serve` said about itself.
    pub fn serve_info(&self) -> Result<Option<ServeInfo>> {
        let path = self.root.join(serve_info::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => Ok(Some(ServeInfo::from_json(&v))),
            Err(e) => Err(Error::corrupt(path, e, Fix::ServeInfo)),
        }
    }

    /// Written by `serve` at start.
    pub fn save_serve_info(&self, info: &ServeInfo) -> Result<()> {
        atomic::write_json(&self.root.join(serve_info::FILE), info)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temp files a killed process left; returns how many.
    pub fn sweep_temp_files(&self) -> Result<usize> {
        let mut removed = atomic::sweep_temp_files(&self.root)?;
        for sub in SUBDIRS {
            removed += atomic::sweep_temp_files(&self.root.join(sub))?;
        }
        // Cursors are written in outbox/, records in outbox/records/; both
        // appear only once `serve` has run.
        for sub in ["outbox", "outbox/records"] {
            let dir = self.root.join(sub);
            if dir.is_dir() {
                removed += atomic::sweep_temp_files(&dir)?;
            }
        }
        Ok(removed)
    }

    pub fn lock_user(&self, userid: &str, wait: LockWait) -> Result<UserLock> {
        lock::lock_user(
            &self.root.join("locks"),
            per_user::checked_userid(userid)?,
            wait,
        )
    }

    /// The secret in the notification route, made on first start and kept.
    pub fn webhook_secret(&self) -> Result<Secret> {
        let path = self.root.join("webhook-secret");
        match std::fs::read_to_string(&path) {
            Ok(text) if is_hex_token(text.trim(), WEBHOOK_SECRET_BYTES * 2) => {
                Ok(Secret::new(text.trim()))
            }
            Ok(_) => Err(Error::corrupt(
                path,
                "it is not 32 hex digits",
                Fix::WebhookSecret,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = random_hex(WEBHOOK_SECRET_BYTES)?;
                atomic::write(&path, format!("{fresh}\n").as_bytes())?;
                Ok(Secret::new(fresh))
            }
            Err(e) => Err(Error::io("read", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testdir::TestDir;

    #[test]
    fn webhook_secret_is_made_once_and_kept() {
        let dir = TestDir::new("state-secret");
        let store = StateDir::open(dir.path()).unwrap();
        let first = store.webhook_secret().unwrap();
        let again = StateDir::open(dir.path())
            .unwrap()
            .webhook_secret()
            .unwrap();
        assert_eq!(first, again);
        assert!(is_hex_token(first.expose(), 32));
    }

    #[test]
    fn temp_files_are_swept_from_the_outbox_too() {
        let dir = TestDir::new("state-sweep");
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.sweep_temp_files().unwrap(), 0, "no outbox yet");
        let outbox = state.outbox(&["output"]).unwrap();
        outbox.append("kept").unwrap();
        for temp in [
            "outbox/.tmp-1-0-output.cursor",
            "outbox/records/.tmp-1-1-00000000000000000002.json",
            "users/.tmp-1-2-42.json",
        ] {
            std::fs::write(dir.path().join(temp), b"partial").unwrap();
        }
        assert_eq!(state.sweep_temp_files().unwrap(), 3);
        assert_eq!(outbox.pending("output").unwrap().len(), 1);
        assert!(dir.path().join("outbox/output.cursor").exists());
    }

    #[test]
    fn a_newer_or_garbled_format_is_refused_with_a_way_out() {
        let path = Path::new("/state/format");
        assert!(check_format(path, "1\n").is_ok());
        assert!(check_format(path, "0").is_ok());
        let newer = check_format(path, "2\n").unwrap_err().to_string();
        assert!(
            newer.contains("newer withings-relay") && newer.contains("/state/format"),
            "{newer}"
        );
        let garbled = check_format(path, "\u{0}x").unwrap_err().to_string();
        assert!(garbled.contains("--state-dir"), "{garbled}");
    }

    #[test]
    fn a_newer_state_dir_is_left_untouched() {
        let dir = TestDir::new("state-newer");
        std::fs::write(dir.path().join("format"), "7\n").unwrap();
        assert!(StateDir::open(dir.path()).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("format")).unwrap(),
            "7\n"
        );
    }

    #[test]
    fn an_unwritable_state_dir_is_reported_with_its_path() {
        let dir = TestDir::new("state-ro");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"").unwrap();
        let err = StateDir::open(&file).err().unwrap().to_string();
        assert!(err.contains("not-a-dir"), "{err}");
    }
}
