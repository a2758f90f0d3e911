//! Withings' recommended sync (facts sheet §2.3): the notification is only
//! a hint; fetch everything changed since a little before the user's cursor
//! (see [`crate::store::OVERLAP_SECS`]), page by page, emit each new group
//! version once, then move the cursor.

use crate::error::{Error, Result};
use crate::output::Emit;
use crate::record::Record;
use crate::session::Session;
use crate::store::{SyncState, SyncStates};
use crate::withings::measure::{self, MeasureGroup};

/// A newly linked user starts this far back, so the first weigh-in after
/// linking (and a little before) shows up; `fetch --since` reaches further.
pub const INITIAL_LOOKBACK_SECS: i64 = 24 * 3600;
/// More pages than this for one sync means the server is looping.
const MAX_PAGES: usize = 10_000;

/// Calls `on_page` for every page of groups changed since `lastupdate`.
pub fn for_each_page(
    session: &mut Session,
    lastupdate: i64,
    mut on_page: impl FnMut(&[MeasureGroup]) -> Result<()>,
) -> Result<()> {
    let mut offset = None;
    for _ in 0..MAX_PAGES {
        let page = session.call(|api, token| measure::getmeas(api, token, lastupdate, offset))?;
        on_page(&page.measuregrps)?;
        if !page.more {
            return Ok(());
        }
        match page.offset {
            Some(next) if Some(next) != offset => offset = Some(next),
            _ => {
                return Err(Error::Transport(
                    "measure getmeas: more pages announced without a new offset".into(),
                ))
            }
        }
    }
    Err(Error::Transport(format!(
        "measure getmeas: gave up after {MAX_PAGES} pages"
    )))
}

/// Syncs one user into `out`; returns how many groups were emitted. The
/// emitted set is saved after every group, so a crash repeats at most the
/// one group in flight, and the cursor moves only after the last page.
pub fn sync_user(
    session: &mut Session,
    states: &SyncStates,
    out: &mut dyn Emit,
    now: i64,
) -> Result<usize> {
    let userid = session.userid().to_string();
    let mut state = states
        .load(&userid)?
        .unwrap_or_else(|| SyncState::starting_at(now - INITIAL_LOOKBACK_SECS));
    let lastupdate = state.lastupdate();
    let mut newest = state.cursor;
    let mut emitted = 0;
    for_each_page(session, lastupdate, |page| {
        for group in page {
            if !state.is_new(group.grpid, group.modified()) {
                continue;
            }
            out.emit(&Record::from_group(&userid, group))?;
            state.mark_handled(group.grpid, group.modified());
            states.save(&userid, &state)?;
            emitted += 1;
        }
        newest = page
            .iter()
            .map(MeasureGroup::modified)
            .fold(newest, i64::max);
        Ok(())
    })?;
    let before = state.clone();
    state.advance(newest);
    if state != before {
        states.save(&userid, &state)?;
    }
    Ok(emitted)
}
