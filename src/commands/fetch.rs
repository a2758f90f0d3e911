//! `withings-relay fetch`: a one-off sync to stdout, for trying the relay
//! by hand and for backfill. Reads the cursor-free history, so it never
//! takes anything away from what `serve` will emit.
//!
//! A group that cannot be read is logged and kept in `rejected/`, as
//! `serve` does: fetch is what one runs to look into a problem, and the
//! group's JSON is what a report needs. The file is named after the group
//! version, so `serve` and `fetch` keeping the same one write the same file.

use crate::config::{FetchSettings, Shared};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::outputs::JsonLines;
use crate::record::Record;
use crate::worker::session::Session;
use crate::worker::sync::{for_each_page, keep_rejected};

const DEFAULT_SINCE_SECS: i64 = 7 * 24 * 3600;

pub fn run(shared: &Shared, settings: FetchSettings) -> Result<()> {
    let ctx = Context::open(&shared.state_dir, &settings.api, settings.credentials)?;
    let since = settings
        .since
        .unwrap_or(ctx.clock.now() - DEFAULT_SINCE_SECS);
    let users = match &settings.user {
        Some(u) if ctx.store.users.exists(u) => vec![u.clone()],
        Some(u) => return Err(Error::UnknownUser(u.escape_debug().to_string())),
        None => ctx.store.users.list()?,
    };
    if users.is_empty() {
        return Err(Error::Config(format!(
            "no Withings account is linked in {}: start `withings-relay serve`, then run `withings-relay authorize`",
            shared.state_dir.display()
        )));
    }
    let mut out = JsonLines::Stdout;
    let mut first_error = None;
    for userid in users {
        let fetched = Session::open(&ctx, &userid).and_then(|session| {
            let mut session = session.waiting_for_lock();
            let (mut count, mut rejected) = (0, 0);
            for_each_page(&mut session, since, |page| {
                for entry in page {
                    match entry {
                        Ok(group) => {
                            out.write_record(&Record::from_group(&userid, group))?;
                            count += 1;
                        }
                        Err(r) => {
                            keep_rejected(&ctx.store.rejected, &userid, r, ctx.clock.now())?;
                            rejected += 1;
                        }
                    }
                }
                Ok(())
            })?;
            Ok((count, rejected))
        });
        match fetched {
            Ok((count, 0)) => log::info!("user {userid}: {count} measurement group(s)"),
            Ok((count, rejected)) => log::warn!(
                "user {userid}: {count} measurement group(s), and {rejected} that could not be read (see above)"
            ),
            Err(e) => {
                log::error!("user {userid}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
