//! `withings-relay fetch`: a one-off sync to stdout, for trying the relay
//! by hand and for backfill. Reads the cursor-free history, so it never
//! takes anything away from what `serve` will emit.

use crate::cli::{Cli, Fetch};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::error::{Error, Result};
use crate::output::JsonLines;
use crate::record::Record;
use crate::session::Session;
use crate::store::StateDir;
use crate::sync::for_each_page;

const DEFAULT_SINCE_SECS: i64 = 7 * 24 * 3600;

pub fn run(cli: &Cli, args: &Fetch, env: Env) -> Result<()> {
    let creds = config::credentials(cli, env)?;
    let api = super::api(cli)?;
    let state = StateDir::open(&cli.state_dir)?;
    let clock = SystemClock;
    let since = args.since.unwrap_or(clock.now() - DEFAULT_SINCE_SECS);
    let users = match &args.user {
        Some(u) if state.users.is_linked(u) => vec![u.clone()],
        Some(u) => return Err(Error::UnknownUser(u.escape_debug().to_string())),
        None => state.users.list()?,
    };
    if users.is_empty() {
        return Err(Error::Config(format!(
            "no Withings account is linked in {}: start `withings-relay serve`, then run `withings-relay authorize`",
            cli.state_dir.display()
        )));
    }
    let mut out = JsonLines::Stdout;
    let mut first_error = None;
    for userid in users {
        let fetched = Session::open(&api, &creds, &state, &clock, &userid).and_then(|session| {
            let mut session = session.waiting_for_lock();
            let mut count = 0;
            for_each_page(&mut session, since, |page| {
                for group in page {
                    out.write_record(&Record::from_group(&userid, group))?;
                    count += 1;
                }
                Ok(())
            })?;
            Ok(count)
        });
        match fetched {
            Ok(count) => log::info!("user {userid}: {count} measurement group(s)"),
            Err(e) => {
                log::error!("user {userid}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
