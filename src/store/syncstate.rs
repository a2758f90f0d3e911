//! Per-user sync position: Withings' recommended `lastupdate` cursor
//! (facts sheet §2.3), queried with an overlap, plus the (grpid, modified)
//! pairs already handled inside that overlap, so re-read groups are dropped.

use super::per_user::UserFile;
use crate::error::Fix;
use serde::{Deserialize, Serialize};

/// How far below the cursor each sync asks again, in seconds.
///
/// Whether `lastupdate` is inclusive is UNCONFIRMED (facts sheet §2.3), and
/// `modified` has one-second granularity (§2). Read exclusively, asking from
/// the cursor itself never returns a group stamped with the cursor's second
/// that became visible after the last sync: 1 s of overlap fixes exactly
/// that. Five minutes also covers two groups stamped in one order and made
/// visible in the other (two uploads racing, a replica lagging), which no
/// fact rules out. The cost is re-reading the groups of the last five
/// minutes before the cursor on each sync (a weigh-in or two; the seen set
/// drops them), and a seen set that holds only those groups.
pub const OVERLAP_SECS: i64 = 300;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// max(modified) of the groups synced so far (facts sheet §2.3).
    pub cursor: i64,
    /// Handled groups (emitted or rejected) as (grpid, modified), kept only
    /// while modified >= [`SyncState::floor`].
    #[serde(default)]
    pub seen: Vec<(i64, i64)>,
    /// Groups modified before this were settled by earlier syncs; `seen`
    /// holds every handled group at or after it. Absent in files written
    /// before the overlap, whose `seen` only went down to `cursor`: for
    /// them the floor is the cursor, until it moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    floor: Option<i64>,
}

impl SyncState {
    /// A user with nothing synced yet, to be synced from `cursor` on.
    pub fn starting_at(cursor: i64) -> SyncState {
        SyncState {
            cursor,
            seen: Vec::new(),
            floor: Some(cursor.saturating_sub(OVERLAP_SECS)),
        }
    }

    /// The oldest `modified` that can still be new.
    pub fn floor(&self) -> i64 {
        self.floor.unwrap_or(self.cursor)
    }

    /// The getmeas `lastupdate` for the next sync: the cursor less the
    /// overlap, so neither reading of `lastupdate` loses a group.
    pub fn lastupdate(&self) -> i64 {
        self.cursor.saturating_sub(OVERLAP_SECS)
    }

    /// A group is new if this exact version of it was not handled yet and
    /// it is not older than the floor (older versions were settled earlier).
    pub fn is_new(&self, grpid: i64, modified: i64) -> bool {
        modified >= self.floor() && !self.seen.contains(&(grpid, modified))
    }

    /// Records a group version as handled, so a later sync drops it.
    pub fn mark_handled(&mut self, grpid: i64, modified: i64) {
        if !self.seen.contains(&(grpid, modified)) {
            self.seen.push((grpid, modified));
        }
    }

    /// Moves the cursor forward to `to` and forgets what falls below the
    /// overlap, which keeps `seen` to the groups inside it.
    pub fn advance(&mut self, to: i64) {
        // Taken before the cursor moves: an old file's floor is its old cursor.
        let settled = self.floor();
        if to > self.cursor {
            self.cursor = to;
        }
        let floor = settled.max(self.lastupdate());
        self.floor = Some(floor);
        self.seen.retain(|&(_, modified)| modified >= floor);
    }
}

impl UserFile for SyncState {
    const IF_DAMAGED: Fix = Fix::SyncState;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emitted_version_is_not_new_but_a_modified_one_is() {
        let mut s = SyncState::starting_at(1000);
        assert!(s.is_new(1, 1050));
        s.mark_handled(1, 1050);
        assert!(!s.is_new(1, 1050));
        assert!(s.is_new(1, 1060), "an in-place update is a new version");
    }

    #[test]
    fn the_query_reaches_back_by_the_overlap() {
        let mut s = SyncState::starting_at(1000);
        assert_eq!(s.lastupdate(), 1000 - OVERLAP_SECS);
        s.advance(5000);
        assert_eq!(s.lastupdate(), 5000 - OVERLAP_SECS);
    }

    #[test]
    fn a_group_stamped_with_the_cursor_second_after_the_sync_is_new() {
        // Group 1 at second 5000 was synced; group 2, stamped 5000 too,
        // shows up only later. Read exclusively, lastupdate=5000 would
        // never return it; the overlap does, and the seen set drops 1.
        let mut s = SyncState::starting_at(1000);
        s.mark_handled(1, 5000);
        s.advance(5000);
        assert!(s.lastupdate() < 5000);
        assert!(!s.is_new(1, 5000), "re-read, dropped");
        assert!(s.is_new(2, 5000), "same second, not seen: new");
    }

    #[test]
    fn a_group_made_visible_late_inside_the_overlap_is_new() {
        let mut s = SyncState::starting_at(1000);
        s.mark_handled(1, 5000);
        s.advance(5000);
        assert!(s.is_new(2, 5000 - OVERLAP_SECS));
        assert!(!s.is_new(2, 5000 - OVERLAP_SECS - 1), "below the overlap");
    }

    #[test]
    fn advancing_keeps_only_the_overlap() {
        let mut s = SyncState::starting_at(1000);
        s.mark_handled(1, 1100);
        s.mark_handled(2, 5000 - OVERLAP_SECS - 1);
        s.mark_handled(3, 5000 - OVERLAP_SECS);
        s.mark_handled(4, 5000);
        s.advance(5000);
        assert_eq!(s.cursor, 5000);
        assert_eq!(s.seen, vec![(3, 5000 - OVERLAP_SECS), (4, 5000)]);
        assert!(!s.is_new(3, 5000 - OVERLAP_SECS));
        assert!(!s.is_new(1, 1100), "older than the overlap");
        // Quiet syncs that find nothing newer keep the same window.
        s.advance(5000);
        assert_eq!(s.seen.len(), 2);
    }

    #[test]
    fn the_cursor_never_goes_back() {
        let mut s = SyncState::starting_at(1000);
        s.advance(50);
        assert_eq!(s.cursor, 1000);
        assert_eq!(s.floor(), 1000 - OVERLAP_SECS);
    }

    #[test]
    fn a_file_written_before_the_overlap_loads_and_repeats_nothing() {
        // The shape the previous version wrote: seen only down to cursor.
        let old: SyncState =
            serde_json::from_str(r#"{"cursor": 5000, "seen": [[7, 5000]]}"#).unwrap();
        assert_eq!(
            old.lastupdate(),
            5000 - OVERLAP_SECS,
            "asks with the overlap"
        );
        assert!(!old.is_new(7, 5000));
        assert!(old.is_new(8, 5000), "the boundary second is no longer lost");
        assert!(
            !old.is_new(6, 4999),
            "below the old cursor it was emitted already: not again"
        );
        let mut s = old.clone();
        s.advance(5100);
        assert_eq!(s.floor(), 5000, "the floor only rises");
        assert_eq!(s.seen, vec![(7, 5000)]);
        s.advance(5000 + OVERLAP_SECS + 10);
        assert_eq!(s.floor(), 5010);
        assert!(s.seen.is_empty());
    }

    #[test]
    fn the_state_round_trips_through_its_file_format() {
        let mut s = SyncState::starting_at(1000);
        s.mark_handled(2_726_375_354, 1200);
        s.advance(1200);
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""floor":900"#), "{text}");
        assert_eq!(serde_json::from_str::<SyncState>(&text).unwrap(), s);
    }

    #[test]
    fn extreme_cursors_do_not_overflow() {
        let s = SyncState::starting_at(i64::MIN);
        assert_eq!(s.lastupdate(), i64::MIN);
        assert!(s.is_new(1, i64::MIN));
    }
}
