//! One lock file per user. Refresh tokens rotate and the old one dies on
//! first use of the new access token (facts sheet §1.4), so two processes
//! (`serve` and a hand-run `fetch`) must never refresh the same user at once.
//! The lock is held only around a refresh (and the save of a new token
//! pair), never while measurements are fetched or written: `fetch | less`
//! must not stop `serve`.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What to do when another process holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockWait {
    /// Wait for it: a hand-run command, which has nothing else to do.
    Block,
    /// Fail at once with a transient error: `serve`'s worker, which has
    /// other users to sync and retries in seconds.
    GiveUp,
}

/// Held while a user's tokens are re-read, refreshed and saved; released on drop.
pub struct UserLock {
    _file: File,
}

pub fn lock_user(dir: &Path, userid: &str, wait: LockWait) -> Result<UserLock> {
    let path = dir.join(format!("{userid}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("open lock", &path, e))?;
    match wait {
        LockWait::Block => file.lock().map_err(|e| Error::io("lock", &path, e))?,
        LockWait::GiveUp => match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let busy = io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("another withings-relay process is refreshing user {userid}'s tokens right now; this is retried in a few seconds"),
                );
                return Err(Error::io("lock", &path, busy));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        },
    }
    Ok(UserLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;

    #[test]
    fn a_held_lock_makes_give_up_fail_at_once_and_is_free_after_drop() {
        let dir = TestDir::new("lock");
        let held = lock_user(dir.path(), "42", LockWait::Block).unwrap();
        let err = lock_user(dir.path(), "42", LockWait::GiveUp)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("another withings-relay process"), "{err}");
        assert!(
            lock_user(dir.path(), "43", LockWait::GiveUp).is_ok(),
            "per user"
        );
        drop(held);
        assert!(lock_user(dir.path(), "42", LockWait::GiveUp).is_ok());
    }
}
