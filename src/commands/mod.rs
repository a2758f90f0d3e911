//! The commands. Each gets its checked settings (see `config.rs`)
//! and only wires them up.

pub mod authorize;
pub mod fetch;
pub mod serve;
pub mod status;
pub mod sync;
pub mod unlink;

use crate::config::{CommandSettings, Settings};
use crate::error::Result;

pub fn run(settings: Settings) -> Result<()> {
    let Settings {
        shared, command, ..
    } = settings;
    match command {
        CommandSettings::Serve(s) => serve::run(&shared, s),
        CommandSettings::Authorize(s) => authorize::run(&shared, s),
        CommandSettings::Fetch(s) => fetch::run(&shared, s),
        CommandSettings::Unlink(s) => unlink::run(&shared, s),
        CommandSettings::Sync(s) => sync::run(&shared, &s),
        CommandSettings::Status(s) => status::run(&shared, &s),
    }
}
