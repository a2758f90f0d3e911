//! The OAuth callback route: check the single-use nonce, trade the code for
//! tokens at once (it lives 30 s, facts sheet §1.2), store the user, then
//! subscribe it to each appli (unless webhooks are off). Answers with a
//! page saying what happened. Without a public URL there is no redirect
//! URI to come back to: the route then points to `authorize --paste`.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::inbound::html;
use crate::inbound::{Reply, Request, Response};
use crate::keeper::check::HEAD_CHECK_ADVICE;
use crate::link;
use crate::store::NonceCheck;
use crate::withings::notify;
use crate::worker::session::Session;
use crate::worker::Wake;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Home Assistant spaces subscribe calls 5 s apart because Withings'
/// HEAD checks fail more often back to back (facts sheet §3.1).
const SUBSCRIBE_SPACING: Duration = Duration::from_secs(5);

pub struct Linker {
    pub ctx: Arc<Context>,
    /// None without a public URL: nothing can come back here.
    pub redirect_uri: Option<String>,
    /// None in poll-only mode: linking subscribes to nothing.
    pub notify_url: Option<String>,
    pub applis: Vec<u32>,
    pub wake: Mutex<Sender<Wake>>,
}

fn failure(status: u16, title: &str, lines: &[&str]) -> Response {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    Response::html(status, html::render(title, &lines))
}

const RUN_AGAIN: &str =
    "Run `withings-relay authorize` again and open the new link within 10 minutes.";

impl Linker {
    /// Fast checks on the request loop; the Withings calls are deferred.
    pub fn handle(self: &Arc<Self>, request: &Request) -> Reply {
        let Some(redirect_uri) = self.redirect_uri.clone() else {
            return Reply::Now(failure(
                404,
                "Linking works differently here",
                &[
                    "This relay runs without --public-url, so no browser is sent back to it.",
                    "Run `withings-relay authorize --paste`, open the link it prints, and paste the address your browser lands on into the terminal.",
                ],
            ));
        };
        match request.method.as_str() {
            // Withings HEAD-checks redirect URLs when the app is saved (§1.1).
            "HEAD" => return Reply::Now(Response::text(200, "ok\n")),
            "GET" => {}
            _ => {
                return Reply::Now(
                    Response::text(405, "use GET\n").with_header("Allow", "HEAD, GET"),
                )
            }
        }
        // OAuth's `state` parameter carries the nonce `authorize` issued.
        let nonce = request.query_param("state").unwrap_or_default();
        let checked = match self.ctx.store.auth.consume(&nonce, self.ctx.clock.now()) {
            Ok(c) => c,
            Err(e) => {
                log::error!("cannot check an authorization state: {e}");
                return Reply::Now(failure(500, "Linking failed", &[&e.to_string()]));
            }
        };
        match checked {
            NonceCheck::Valid => {}
            NonceCheck::Expired => {
                return Reply::Now(failure(400, "This link has expired", &[RUN_AGAIN]))
            }
            NonceCheck::Unknown => {
                log::warn!("refused an OAuth callback with an unknown or used state");
                return Reply::Now(failure(
                    400,
                    "This link is not valid here",
                    &[
                        "It was already used, or it was not made by this relay.",
                        RUN_AGAIN,
                    ],
                ));
            }
        }
        // The denial parameters are UNCONFIRMED (facts sheet §1.2): any
        // callback without a code is treated as a refusal.
        let Some(code) = request.query_param("code").filter(|c| !c.is_empty()) else {
            let why = request
                .query_param("error")
                .unwrap_or_else(|| "no code was given".into());
            log::warn!("authorization was not granted: {why}");
            return Reply::Now(failure(
                400,
                "Withings did not grant access",
                &[&format!("Withings said: {why}."), RUN_AGAIN],
            ));
        };
        let linker = Arc::clone(self);
        Reply::Later(Box::new(move || linker.link(&code, &redirect_uri)))
    }

    fn link(&self, code: &str, redirect_uri: &str) -> Response {
        let userid = match link::store_tokens(&self.ctx, code, redirect_uri) {
            Ok(u) => u,
            Err(e) => {
                log::error!("linking failed: {e}");
                let hint = match e {
                    Error::Api { .. } => {
                        "Withings refused the code. Codes work once and only for 30 seconds."
                    }
                    _ => "The relay could not finish linking.",
                };
                return failure(502, "Linking failed", &[hint, &e.to_string(), RUN_AGAIN]);
            }
        };
        log::info!("user {userid}: linked");
        if let Ok(wake) = self.wake.lock() {
            let _ = wake.send(Wake::Linked(userid.clone()));
        }
        let mut lines = vec![format!("Withings user {userid} is linked to this relay.")];
        let Some(notify_url) = &self.notify_url else {
            lines.push("Nothing was subscribed: this relay runs without webhooks and fetches new measurements on its own schedule (--poll). You can close this page.".into());
            return Response::html(200, html::render("Linked", &lines));
        };
        let mut all_ok = true;
        for (i, &appli) in self.applis.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(SUBSCRIBE_SPACING);
            }
            match self.subscribe(&userid, notify_url, appli) {
                Ok(()) => {
                    log::info!("user {userid}: subscribed to appli {appli}");
                    lines.push(format!("Subscribed to notifications for appli {appli}."));
                }
                Err(e) => {
                    all_ok = false;
                    log::error!("user {userid}: subscribing to appli {appli} failed: {e}");
                    lines.push(format!("Subscribing to appli {appli} failed: {e}."));
                }
            }
        }
        if all_ok {
            lines.push("New measurements will now be relayed. You can close this page.".into());
            Response::html(200, html::render("Linked", &lines))
        } else {
            lines.push(format!("{HEAD_CHECK_ADVICE}. Once that is fixed, the relay subscribes by itself within the hour (or link again)."));
            Response::html(502, html::render("Linked, but not subscribed", &lines))
        }
    }

    fn subscribe(&self, userid: &str, notify_url: &str, appli: u32) -> Result<()> {
        // Recorded first: the URL can then be revoked once it is stale.
        self.ctx.store.callbacks.remember(userid, notify_url)?;
        let mut session = Session::open(&self.ctx, userid)?;
        session.call(|api, token| notify::subscribe(api, token, notify_url, appli))
    }
}
