//! Everything the relay keeps lives in one state directory:
//!
//! ```text
//! webhook-secret      the unguessable part of the notification route
//! users/<id>.json     tokens of each linked account
//! sync/<id>.json      lastupdate cursor and the groups handled within the
//!                     overlap below it (see OVERLAP_SECS)
//! queue/*.json        acknowledged notifications not yet synced
//! auth/<state>        authorization links not yet used
//! locks/<id>.lock     per-user refresh lock
//! outbox/             emitted groups each sink has yet to deliver
//! rejected/           groups Withings sent that could not be read, verbatim,
//!                     as <userid>-<grpid>-<modified>.json
//! ```
//!
//! Every file is written with [`atomic::write`] and is mode 0600.

pub mod atomic;
mod authstate;
mod lock;
mod outbox;
mod queue;
pub mod rejected;
mod syncstate;
#[cfg(test)]
pub mod testdir;
mod users;

pub use authstate::{AuthStates, StateCheck, STATE_TTL_SECS};
pub use lock::UserLock;
pub use outbox::Outbox;
pub use queue::{Notification, Queue};
pub use rejected::Rejects;
pub use syncstate::{SyncState, SyncStates, OVERLAP_SECS};
pub use users::{is_valid_userid, UserRecord, Users};

use crate::error::{Error, Result};
use crate::secret::{is_hex_token, random_hex, Secret};
use std::path::{Path, PathBuf};

const WEBHOOK_SECRET_BYTES: usize = 16;
const SUBDIRS: [&str; 6] = ["users", "sync", "queue", "auth", "locks", "rejected"];

pub struct StateDir {
    root: PathBuf,
    pub users: Users,
    pub sync: SyncStates,
    pub queue: Queue,
    pub auth: AuthStates,
    pub rejected: Rejects,
}

impl StateDir {
    /// Opens (creating if needed) the state dir, and proves it writable now
    /// rather than at the first weigh-in.
    pub fn open(root: &Path) -> Result<StateDir> {
        for sub in SUBDIRS {
            atomic::ensure_dir(&root.join(sub))?;
        }
        atomic::write(&root.join("format"), b"1\n")?;
        Ok(StateDir {
            root: root.to_path_buf(),
            users: Users::new(root.join("users")),
            sync: SyncStates::new(root.join("sync")),
            queue: Queue::new(root.join("queue")),
            auth: AuthStates::new(root.join("auth")),
            rejected: Rejects::new(root.join("rejected")),
        })
    }

    /// The outbox for these sinks (see [`Outbox`]).
    pub fn outbox(&self, sinks: &[&str]) -> Result<Outbox> {
        Outbox::open(&self.root.join("outbox"), sinks)
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
        Ok(removed)
    }

    pub fn lock_user(&self, userid: &str) -> Result<UserLock> {
        lock::lock_user(&self.root.join("locks"), users::checked_userid(userid)?)
    }

    /// The secret in the notification route, made on first start and kept.
    pub fn webhook_secret(&self) -> Result<Secret> {
        let path = self.root.join("webhook-secret");
        match std::fs::read_to_string(&path) {
            Ok(text) if is_hex_token(text.trim(), WEBHOOK_SECRET_BYTES * 2) => {
                Ok(Secret::new(text.trim()))
            }
            Ok(_) => Err(Error::Corrupt {
                path,
                detail: "it is not 32 hex digits".into(),
            }),
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
        let state = StateDir::open(dir.path()).unwrap();
        let first = state.webhook_secret().unwrap();
        let again = StateDir::open(dir.path())
            .unwrap()
            .webhook_secret()
            .unwrap();
        assert_eq!(first, again);
        assert!(is_hex_token(first.expose(), 32));
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
