//! `withings-relay authorize`: prints the link that connects an account.
//! With `--paste` it also finishes the linking itself, from the address
//! the browser landed on, so no callback has to reach a running `serve`
//! (a relay behind carrier-grade NAT, a restricted-mode app whose
//! registered callback is a LAN or localhost URL, facts sheet §1.1).

use crate::clock::{Clock, SystemClock};
use crate::config::{AuthorizeSettings, PasteSettings, Shared};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::link::{self, landing};
use crate::store::{NonceCheck, StateDir, NONCE_TTL_SECS};
use crate::withings::oauth::authorize_url;
use std::io::BufRead;

pub fn run(shared: &Shared, mut settings: AuthorizeSettings) -> Result<()> {
    let Some(paste) = settings.paste.take() else {
        let store = StateDir::open(&shared.state_dir)?;
        print_link(&settings, store.auth.issue(SystemClock.now())?.as_str());
        log::info!(
            "open this link in a browser within {} minutes; `withings-relay serve` must be running with the same --state-dir and reachable at {}",
            NONCE_TTL_SECS / 60,
            settings.redirect_uri
        );
        return Ok(());
    };
    let PasteSettings { api, credentials } = paste;
    let ctx = Context::open(&shared.state_dir, &api, credentials)?;
    print_link(&settings, ctx.store.auth.issue(ctx.clock.now())?.as_str());
    log::info!(
        "open this link in a browser within {} minutes and allow access; the browser then goes to {} (a page that does not load is fine): copy the whole address from its address bar, paste it here and press Enter",
        NONCE_TTL_SECS / 60,
        settings.redirect_uri
    );
    let pasted = read_pasted(std::io::stdin().lock())?;
    let userid = link_pasted(&ctx, &pasted, &settings.redirect_uri)?;
    log::info!("user {userid}: linked");
    // A running `serve` would otherwise first sync the new user at its
    // next poll; its subscription keeper subscribes new users by itself.
    if let Err(e) = ctx.store.sync_requests.push(Some(&userid)) {
        log::warn!("user {userid}: linked, but `serve` was not asked to sync now: {e}");
    }
    println!("Withings user {userid} is linked to this relay.");
    Ok(())
}

fn print_link(settings: &AuthorizeSettings, nonce: &str) {
    // Alone on stdout, so scripts can capture it.
    println!(
        "{}",
        authorize_url(
            &settings.account_url,
            &settings.client_id,
            &settings.redirect_uri,
            nonce,
            settings.demo
        )
    );
}

/// The first line with something on it.
fn read_pasted(input: impl BufRead) -> Result<String> {
    for line in input.lines() {
        let line =
            line.map_err(|e| Error::NotLinked(format!("cannot read what was pasted: {e}")))?;
        if !line.trim().is_empty() {
            return Ok(line);
        }
    }
    Err(Error::NotLinked("nothing was pasted".into()))
}

/// Checks the pasted address as the callback route checks a request (the
/// state is used up, single use), then trades its code at once: it lives
/// 30 s (facts sheet §1.2). Nothing is stored unless all of it works.
fn link_pasted(ctx: &Context, pasted: &str, redirect_uri: &str) -> Result<String> {
    let landing = landing::parse(pasted);
    let state = landing.state.unwrap_or_default();
    match ctx.store.auth.consume(&state, ctx.clock.now())? {
        NonceCheck::Valid => {}
        NonceCheck::Expired => {
            return Err(Error::NotLinked(format!(
                "the link has expired (links last {} minutes)",
                NONCE_TTL_SECS / 60
            )))
        }
        NonceCheck::Unknown => {
            return Err(Error::NotLinked(
                "the pasted address has no state this relay issued, or one already used".into(),
            ))
        }
    }
    let Some(code) = landing.code else {
        let why = landing.error.as_deref().unwrap_or("no code was given");
        return Err(Error::NotLinked(format!(
            "Withings did not grant access ({why})"
        )));
    };
    link::store_tokens(ctx, &code, redirect_uri).map_err(|e| match e {
        Error::Api { .. } => Error::NotLinked(format!(
            "Withings refused the code ({e}): a code works once, for 30 seconds, and only with the redirect URL the link carried ({redirect_uri})"
        )),
        other => other,
    })
}
