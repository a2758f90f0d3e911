//! `withings-relay sync`: tells the running `serve` that a scale just
//! uploaded, by leaving a request file in the state dir's queue (see
//! `store/sync_request.rs`). It never waits for `serve`: a request made
//! while none runs is taken at its next start.

use crate::config::{Shared, SyncSettings};
use crate::error::{Error, Result};
use crate::store::StateDir;

pub fn run(shared: &Shared, settings: &SyncSettings) -> Result<()> {
    let store = StateDir::open(&shared.state_dir)?;
    let whom = match &settings.user {
        Some(userid) => match store.users.load(userid)? {
            Some(user) if user.needs_reauth => {
                return Err(Error::ReauthNeeded {
                    userid: user.userid,
                })
            }
            Some(_) => format!("user {userid}"),
            None => return Err(Error::UnknownUser(userid.escape_debug().to_string())),
        },
        None if store.users.list()?.is_empty() => {
            return Err(Error::Config(format!(
                "no Withings account is linked in {}: run `withings-relay authorize` first",
                shared.state_dir.display()
            )))
        }
        None => "every linked user".to_string(),
    };
    store.sync_requests.push(settings.user.as_deref())?;
    let serving = match store.serve_info() {
        Ok(Some(info)) if std::path::Path::new(&format!("/proc/{}", info.pid)).exists() => {
            format!("serve (pid {})", info.pid)
        }
        _ => "serve, once it runs,".to_string(),
    };
    // On stdout: what was asked is the command's answer.
    println!("asked {serving} to sync {whom} now, and again over the next minutes until something new arrives");
    Ok(())
}
