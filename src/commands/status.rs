//! `withings-relay status`: how the relay is doing, read from the state
//! dir alone (see `status/`), for a person or, with `--json`, a monitor.
//! Exits 1 when something needs a person.

use crate::clock::{Clock, SystemClock};
use crate::config::{Shared, StatusSettings};
use crate::error::{Error, Result};
use crate::status;
use crate::store::StateDir;

pub fn run(shared: &Shared, settings: &StatusSettings) -> Result<()> {
    let store = StateDir::open_existing(&shared.state_dir)?;
    let report = status::look(&store, SystemClock.now());
    if settings.json {
        println!("{}", status::json::json(&report));
    } else {
        print!("{}", status::render::text(&report));
    }
    match report.problems.len() {
        0 => Ok(()),
        n => Err(Error::NeedsAttention(n)),
    }
}
