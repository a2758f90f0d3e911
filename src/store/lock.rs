//! One lock file per user. Refresh tokens rotate and the old one dies on
//! first use of the new access token (facts sheet §1.4), so two processes
//! (`serve` and a hand-run `fetch`) must never refresh the same user at once.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Held while a user's tokens are read, refreshed and used; released on drop.
pub struct UserLock {
    _file: File,
}

pub fn lock_user(dir: &Path, userid: &str) -> Result<UserLock> {
    let path = dir.join(format!("{userid}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("open lock", &path, e))?;
    file.lock().map_err(|e| Error::io("lock", &path, e))?;
    Ok(UserLock { _file: file })
}
