//! Per-user sync position: Withings' recommended `lastupdate` cursor
//! (facts sheet §2.3) plus the (grpid, modified) pairs already emitted at or
//! after it, because whether `lastupdate` is inclusive is UNCONFIRMED.

use super::atomic;
use super::users::checked_userid;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The next getmeas `lastupdate`: max(modified) of what was emitted.
    pub cursor: i64,
    /// Emitted groups as (grpid, modified), kept only while modified >= cursor.
    #[serde(default)]
    pub seen: Vec<(i64, i64)>,
}

impl SyncState {
    pub fn starting_at(cursor: i64) -> SyncState {
        SyncState {
            cursor,
            seen: Vec::new(),
        }
    }

    /// A group is new if this exact version of it was not emitted yet and it
    /// is not older than the cursor (older versions were settled earlier).
    pub fn is_new(&self, grpid: i64, modified: i64) -> bool {
        modified >= self.cursor && !self.seen.contains(&(grpid, modified))
    }

    pub fn mark_emitted(&mut self, grpid: i64, modified: i64) {
        if !self.seen.contains(&(grpid, modified)) {
            self.seen.push((grpid, modified));
        }
    }

    /// Moves the cursor forward to `to` and forgets what it leaves behind.
    pub fn advance(&mut self, to: i64) {
        if to > self.cursor {
            self.cursor = to;
        }
        let cursor = self.cursor;
        self.seen.retain(|&(_, modified)| modified >= cursor);
    }
}

pub struct SyncStates {
    dir: PathBuf,
}

impl SyncStates {
    pub(super) fn new(dir: PathBuf) -> SyncStates {
        SyncStates { dir }
    }

    fn path(&self, userid: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("{}.json", checked_userid(userid)?)))
    }

    pub fn load(&self, userid: &str) -> Result<Option<SyncState>> {
        atomic::read_json(&self.path(userid)?)
    }

    pub fn save(&self, userid: &str, state: &SyncState) -> Result<()> {
        atomic::write_json(&self.path(userid)?, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emitted_version_is_not_new_but_a_modified_one_is() {
        let mut s = SyncState::starting_at(100);
        assert!(s.is_new(1, 150));
        s.mark_emitted(1, 150);
        assert!(!s.is_new(1, 150));
        assert!(s.is_new(1, 160), "an in-place update is a new version");
    }

    #[test]
    fn advancing_keeps_only_the_boundary() {
        let mut s = SyncState::starting_at(100);
        s.mark_emitted(1, 120);
        s.mark_emitted(2, 150);
        s.mark_emitted(3, 150);
        s.advance(150);
        assert_eq!(s.cursor, 150);
        assert_eq!(s.seen, vec![(2, 150), (3, 150)]);
        // An inclusive lastupdate returns the boundary groups again.
        assert!(!s.is_new(2, 150));
        assert!(!s.is_new(1, 120), "older than the cursor");
    }

    #[test]
    fn the_cursor_never_goes_back() {
        let mut s = SyncState::starting_at(100);
        s.advance(50);
        assert_eq!(s.cursor, 100);
    }
}
