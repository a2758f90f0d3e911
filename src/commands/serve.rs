//! `withings-relay serve`: the daemon. Binds, starts the worker, answers.

use crate::cli::{Cli, Serve};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::error::Result;
use crate::http;
use crate::link::Linker;
use crate::output::JsonLines;
use crate::routes::{callback_url, notify_url, Routes, NOTIFY_PREFIX};
use crate::store::StateDir;
use crate::webhook::Webhook;
use crate::worker::{Wake, Worker};
use std::sync::{mpsc, Arc, Mutex};

/// Withings posts a few short form fields; anything bigger is not Withings.
const BODY_LIMIT: usize = 16 * 1024;

pub fn run(cli: &Cli, args: &Serve, env: Env) -> Result<()> {
    let public = config::public_url(cli)?;
    let creds = Arc::new(config::credentials(cli, env)?);
    let applis = config::applis(&args.appli)?;
    let api = Arc::new(super::api(cli)?);
    let state = Arc::new(StateDir::open(&cli.state_dir)?);
    let swept = state.sweep_temp_files()?;
    if swept > 0 {
        log::info!("removed {swept} unfinished temp file(s) left by an earlier run");
    }
    let secret = state.webhook_secret()?;
    let sink = Box::new(JsonLines::open(&args.output)?);
    let listener = http::bind(&args.listen)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    log::info!(
        "register this callback URL in the Withings developer dashboard: {}",
        callback_url(&public)
    );
    log::info!(
        "Withings will post notifications to {}{NOTIFY_PREFIX}<secret in {}/webhook-secret>",
        public,
        state.root().display()
    );

    let (wake, woken) = mpsc::channel::<Wake>();
    let worker = Worker::new(
        Arc::clone(&state),
        Arc::clone(&api),
        Arc::clone(&creds),
        Arc::clone(&clock),
        sink,
    );
    std::thread::spawn(move || worker.run(woken));

    let linker = Arc::new(Linker {
        api,
        creds,
        state: Arc::clone(&state),
        clock: Arc::clone(&clock),
        redirect_uri: callback_url(&public),
        notify_url: notify_url(&public, &secret),
        applis,
        wake: Mutex::new(wake.clone()),
    });
    let routes = Routes {
        prefix: public.path.clone(),
        webhook_secret: secret,
        webhook: Webhook { state, wake },
        linker,
        clock,
    };
    http::serve(listener, Arc::new(routes), BODY_LIMIT);
    Ok(())
}
