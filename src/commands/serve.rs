//! `withings-relay serve`: the daemon. Binds, starts the worker, answers.

use crate::cli::{Cli, Serve};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::delivery;
use crate::error::Error;
use crate::error::Result;
use crate::http;
use crate::link::Linker;
use crate::output::{ExecHook, JsonLines, MqttSink, Sink, Topics};
use crate::routes::{callback_url, notify_url, Routes, NOTIFY_PREFIX};
use crate::store::StateDir;
use crate::webhook::Webhook;
use crate::worker::{Wake, Worker};
use std::sync::{mpsc, Arc, Mutex};

/// Withings posts a few short form fields; anything bigger is not Withings.
const BODY_LIMIT: usize = 16 * 1024;

/// The outputs the flags ask for; JSON lines on stdout when none is named.
fn sinks(args: &Serve, env: Env, state: &StateDir) -> Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(settings) = config::mqtt_settings(args, env)? {
        let topics = Topics {
            prefix: args.mqtt_prefix.clone(),
            discovery: Some(args.ha_discovery_prefix.clone()).filter(|p| !p.is_empty()),
        };
        let known = state.root().join("mqtt-sensors.json");
        sinks.push(Box::new(MqttSink::new(settings, topics, known)?));
    }
    if let Some(program) = &args.exec {
        if args.exec_timeout == 0 {
            return Err(Error::Config(
                "--exec-timeout must be at least 1 second".into(),
            ));
        }
        sinks.push(Box::new(ExecHook {
            program: program.clone(),
            args: args.exec_arg.clone(),
            timeout: std::time::Duration::from_secs(args.exec_timeout),
        }));
    } else if !args.exec_arg.is_empty() {
        return Err(Error::Config("--exec-arg needs --exec PROGRAM".into()));
    }
    let output = match &args.output {
        Some(target) => Some(target.as_str()),
        None if sinks.is_empty() => Some("-"),
        None => None,
    };
    if let Some(target) = output {
        sinks.insert(0, Box::new(JsonLines::open(target)?));
    }
    Ok(sinks)
}

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
    let sinks = sinks(args, env, &state)?;
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    let outbox = Arc::new(state.outbox(&names)?);
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
        Box::new(delivery::start(outbox, sinks)),
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
    // serve returns only when the listener broke: exit non-zero so that
    // procd or systemd restarts the relay, never a silent 0.
    let Err(e) = http::serve(listener, Arc::new(routes), BODY_LIMIT);
    Err(e)
}
