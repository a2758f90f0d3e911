//! Withings' recommended sync (facts sheet §2.3): the notification is only
//! a hint; fetch everything changed since a little before the user's cursor
//! (see [`crate::store::OVERLAP_SECS`]), page by page, emit each new group
//! version once, then move the cursor.

use crate::error::{Error, Result, WithingsKind};
use crate::outputs::Emit;
use crate::record::Record;
use crate::store::{Rejects, StateDir, SyncState};
use crate::withings::measure::{self, Entry, Rejected};
use crate::worker::session::Session;

/// A newly linked user starts this far back, so the first weigh-in after
/// linking (and a little before) shows up; `fetch --since` reaches further.
pub const INITIAL_LOOKBACK_SECS: i64 = 24 * 3600;
/// More pages than this for one sync means the server is looping.
const MAX_PAGES: usize = 10_000;

/// The version of a group, if it could be read that far.
fn version_of(entry: &Entry) -> Option<(i64, i64)> {
    match entry {
        Ok(group) => Some((group.grpid, group.modified())),
        Err(rejected) => rejected.grpid.zip(rejected.modified),
    }
}

/// Calls `on_page` for every page of groups changed since `lastupdate`,
/// each entry a group or a group that could not be read.
///
/// One version of a group (grpid and `modified`) is passed on once: the
/// first copy in Withings' order. Real answers list the same version
/// twice, with attrib 0 and with attrib 8, which the reference documents
/// as meaning the same as 0 (facts sheet §2.1), so either copy says the
/// same. Doing it here makes `serve` and `fetch` keep the same copy.
pub fn for_each_page(
    session: &mut Session,
    lastupdate: i64,
    mut on_page: impl FnMut(&[&Entry]) -> Result<()>,
) -> Result<()> {
    let mut offset = None;
    // A Vec, not a set: no new map code in the router binary, and even a
    // backfill of thousands of groups is searched in a blink.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = session.call(|api, token| measure::getmeas(api, token, lastupdate, offset))?;
        let first_copies: Vec<&Entry> = page
            .measuregrps
            .iter()
            .filter(|entry| match version_of(entry) {
                Some(v) if seen.contains(&v) => false,
                Some(v) => {
                    seen.push(v);
                    true
                }
                None => true,
            })
            .collect();
        on_page(&first_copies)?;
        if !page.more {
            return Ok(());
        }
        match page.offset {
            Some(next) if Some(next) != offset => offset = Some(next),
            _ => {
                return Err(Error::withings(
                    measure::GETMEAS,
                    WithingsKind::Malformed("more pages announced without a new offset".into()),
                ))
            }
        }
    }
    Err(Error::withings(
        measure::GETMEAS,
        WithingsKind::Malformed(format!("gave up after {MAX_PAGES} pages")),
    ))
}

/// When an entry last changed, if known: a rejected group still moves
/// the cursor past it, so it is not fetched again and again.
fn modified_of(entry: &&Entry) -> Option<i64> {
    match entry {
        Ok(group) => Some(group.modified()),
        Err(rejected) => rejected.modified,
    }
}

/// Keeps a group that could not be read in `rejected/` and says so in the
/// log, with the group's id and the field that is wrong. Shared by `serve`
/// and `fetch`.
pub fn keep_rejected(rejects: &Rejects, userid: &str, r: &Rejected, now: i64) -> Result<()> {
    let path = rejects.save(userid, r, now)?;
    let grpid = r
        .grpid
        .map_or("without a readable grpid".into(), |g| g.to_string());
    let modified = r.modified.map_or("unknown".into(), |m| m.to_string());
    log::error!(
        "user {userid}: measure group {grpid} (modified {modified}) cannot be read and is not relayed: {}; its JSON is kept in {}; the other groups go on",
        r.reason,
        path.display()
    );
    Ok(())
}

/// Syncs one user into `out`; returns how many groups were emitted. The
/// handled set is saved after every group, so a crash repeats at most the
/// one group in flight, and the cursor moves only after the last page.
/// A group that cannot be read is kept in `rejected/` and counts as handled.
pub fn sync_user(
    session: &mut Session,
    store: &StateDir,
    out: &mut dyn Emit,
    now: i64,
) -> Result<usize> {
    let userid = session.userid().to_string();
    let syncs = &store.sync;
    let mut sync = syncs
        .load(&userid)?
        .unwrap_or_else(|| SyncState::starting_at(now - INITIAL_LOOKBACK_SECS));
    let lastupdate = sync.lastupdate();
    let mut newest = sync.cursor;
    let mut emitted = 0;
    for_each_page(session, lastupdate, |page| {
        for entry in page {
            match entry {
                Ok(group) => {
                    if !sync.is_new(group.grpid, group.modified()) {
                        continue;
                    }
                    out.emit(&Record::from_group(&userid, group))?;
                    sync.mark_handled(group.grpid, group.modified());
                    emitted += 1;
                }
                Err(rejected) => {
                    let version = rejected.grpid.zip(rejected.modified);
                    if version.is_some_and(|(g, m)| !sync.is_new(g, m)) {
                        continue;
                    }
                    keep_rejected(&store.rejected, &userid, rejected, now)?;
                    let Some((grpid, modified)) = version else {
                        continue; // nothing to remember it by
                    };
                    sync.mark_handled(grpid, modified);
                }
            }
            syncs.save(&userid, &sync)?;
        }
        newest = page.iter().filter_map(modified_of).fold(newest, i64::max);
        Ok(())
    })?;
    let before = sync.clone();
    sync.advance(newest);
    if sync != before {
        syncs.save(&userid, &sync)?;
    }
    Ok(emitted)
}
