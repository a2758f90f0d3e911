//! Requests from `withings-relay sync` to the running `serve`, as files in
//! `queue/` named like notifications but ending in `.sync`, so that
//! [`super::Queue::pending`], which takes only `.json`, never counts them:
//! `<nanos>-<pid>-<seq>-<userid>.sync`, or `…-all.sync` for every user.
//! `serve` looks for them about once a second and deletes each one it
//! read; one written while no `serve` runs waits for the next start.

use super::atomic;
use super::per_user::{checked_userid, is_valid_userid};
use super::queue::arrival_name;
use crate::error::{Error, Result};
use std::path::PathBuf;

const EXTENSION: &str = ".sync";
const ALL: &str = "all";

pub struct SyncRequests {
    dir: PathBuf,
}

impl SyncRequests {
    pub(super) fn new(dir: PathBuf) -> SyncRequests {
        SyncRequests { dir }
    }

    /// Asks `serve` to sync `user`, or every linked user.
    pub fn push(&self, user: Option<&str>) -> Result<()> {
        let whom = match user {
            Some(userid) => checked_userid(userid)?,
            None => ALL,
        };
        atomic::write(&self.dir.join(arrival_name(whom, "sync")), b"")
    }

    /// Takes every waiting request, in no particular order (they all start
    /// at once): Some(userid) for one user, None for all. Each file is
    /// deleted once read.
    pub fn take(&self) -> Result<Vec<Option<String>>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?;
        let mut requests = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name
                .to_str()
                .filter(|n| !n.starts_with('.') && n.ends_with(EXTENSION))
            else {
                continue;
            };
            let path = entry.path();
            atomic::remove(&path)?;
            let whom = name
                .strip_suffix(EXTENSION)
                .and_then(|n| n.rsplit('-').next())
                .unwrap_or_default();
            if whom == ALL {
                requests.push(None);
            } else if is_valid_userid(whom) {
                requests.push(Some(whom.to_string()));
            } else {
                log::warn!(
                    "ignored {}: not a request `withings-relay sync` writes",
                    path.display()
                );
            }
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::Queue;
    use crate::store::testdir::TestDir;

    #[test]
    fn requests_are_taken_once_in_order_and_are_no_notifications() {
        let dir = TestDir::new("sync-requests");
        let requests = SyncRequests::new(dir.path().to_path_buf());
        requests.push(Some("42")).unwrap();
        requests.push(None).unwrap();
        std::fs::write(dir.path().join("1-2-3-x.sync"), b"").unwrap();
        let queue = Queue::new(dir.path().to_path_buf());
        assert!(queue.pending().unwrap().is_empty());
        let taken = requests.take().unwrap();
        assert_eq!(taken.len(), 2, "{taken:?}");
        assert!(taken.contains(&Some("42".to_string())) && taken.contains(&None));
        assert!(requests.take().unwrap().is_empty(), "consumed");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        assert!(requests.push(Some("../1")).is_err());
    }
}
