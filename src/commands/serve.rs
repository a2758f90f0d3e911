//! `withings-relay serve`: the daemon. Binds, starts the worker, answers.

use crate::config::{OutputSettings, ServeSettings, Shared};
use crate::context::Context;
use crate::error::Result;
use crate::inbound;
use crate::inbound::oauth_callback::Linker;
use crate::inbound::routes::{callback_url, notify_url, Routes, NOTIFY_PREFIX};
use crate::inbound::webhook::Webhook;
use crate::outputs::delivery;
use crate::outputs::{JsonLines, MqttSink, Sink};
use crate::store::StateDir;
use crate::worker::retry::Schedule;
use crate::worker::{Wake, Worker};
use std::sync::{mpsc, Arc, Mutex};

/// Withings posts a few short form fields; anything bigger is not Withings.
const BODY_LIMIT: usize = 16 * 1024;

/// Opens the outputs the settings name, as sinks in the same order.
fn open_sinks(outputs: Vec<OutputSettings>, store: &StateDir) -> Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for output in outputs {
        sinks.push(match output {
            OutputSettings::JsonLines(target) => Box::new(JsonLines::open(target)?),
            OutputSettings::Mqtt { broker, topics } => {
                let known = store.root().join("mqtt-sensors.json");
                Box::new(MqttSink::new(broker, topics, known)?)
            }
            OutputSettings::Exec(hook) => Box::new(hook),
        });
    }
    Ok(sinks)
}

pub fn run(shared: &Shared, settings: ServeSettings) -> Result<()> {
    let ServeSettings {
        public_url: public,
        api,
        credentials,
        listen,
        retry_first,
        applis,
        outputs,
        // Used once serve starts the TLS listener (branch tls-serve).
        acme: _acme,
    } = settings;
    let ctx = Context::open(&shared.state_dir, &api, credentials)?;
    let swept = ctx.store.sweep_temp_files()?;
    if swept > 0 {
        log::info!("removed {swept} unfinished temp file(s) left by an earlier run");
    }
    let secret = ctx.store.webhook_secret()?;
    let sinks = open_sinks(outputs, &ctx.store)?;
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    let outbox = Arc::new(ctx.store.outbox(&names)?);
    // The server still takes the address as text; a SocketAddr prints as
    // one it reads back unchanged.
    let listener = inbound::bind(&listen.to_string())?;
    let ctx = Arc::new(ctx);
    let schedule = Schedule {
        transient_first: retry_first,
    };

    log::info!(
        "register this callback URL in the Withings developer dashboard: {}",
        callback_url(&public)
    );
    log::info!(
        "Withings will post notifications to {}{NOTIFY_PREFIX}<secret in {}/webhook-secret>",
        public,
        ctx.store.root().display()
    );

    let (wake, woken) = mpsc::channel::<Wake>();
    let worker = Worker::new(
        Arc::clone(&ctx),
        Box::new(delivery::start(outbox, sinks, schedule)),
    )
    .with_schedule(schedule);
    std::thread::spawn(move || worker.run(woken));

    let linker = Arc::new(Linker {
        ctx: Arc::clone(&ctx),
        redirect_uri: callback_url(&public),
        notify_url: notify_url(&public, &secret),
        applis,
        wake: Mutex::new(wake.clone()),
    });
    let routes = Routes {
        prefix: public.path.clone(),
        webhook_secret: secret,
        webhook: Webhook { ctx, wake },
        linker,
    };
    // serve returns only when the listener broke: exit non-zero so that
    // procd or systemd restarts the relay, never a silent 0.
    let Err(e) = inbound::serve(listener, Arc::new(routes), BODY_LIMIT);
    Err(e)
}
