//! `withings-relay serve`: the daemon. Binds, starts the worker, answers.

use crate::acme::manager::{AcmeSettings, Manager};
use crate::clock::Clock;
use crate::config::{AcmeOptions, OutputSettings, ServeSettings, Shared, TlsSettings};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::inbound;
use crate::inbound::oauth_callback::Linker;
use crate::inbound::routes::{callback_url, notify_url, notify_url_prefix, Routes, NOTIFY_PREFIX};
use crate::inbound::tls::{self, AnyListener, CertSlot, TlsListener};
use crate::inbound::webhook::Webhook;
use crate::inbound::Handler;
use crate::keeper;
use crate::outputs::delivery;
use crate::outputs::{JsonLines, MqttSink, Sink};
use crate::store::{ServeInfo, StateDir};
use crate::timefmt::duration_text;
use crate::weburl::BaseUrl;
use crate::worker::retry::Schedule;
use crate::worker::schedule::Timing;
use crate::worker::{Wake, Worker};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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
                Box::new(MqttSink::new(broker, topics, known)?.with_diagnostics(store.root()))
            }
            OutputSettings::Exec(hook) => Box::new(hook),
        });
    }
    Ok(sinks)
}

pub fn run(shared: &Shared, settings: ServeSettings) -> Result<()> {
    let ServeSettings {
        public_url: public,
        webhooks,
        poll,
        api_budget,
        sync_followups,
        sync_gap,
        api,
        credentials,
        listen,
        tls,
        allow_from,
        retry_first,
        check_every,
        notify_spacing,
        applis,
        outputs,
        acme,
    } = settings;
    let ctx = Context::open(&shared.state_dir, &api, credentials)?.with_budget(api_budget);
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
    // --tls-domain without --tls-cert: the ACME manager fills the slot.
    let acme_domain = tls
        .as_ref()
        .filter(|t| t.files.is_none())
        .and_then(|t| t.domain.clone());
    let tls = tls.map(|t| start_tls(*t)).transpose()?;
    let acme = match (acme_domain, &tls) {
        (Some(domain), Some((_, slot))) => Some(open_acme(
            domain,
            *acme,
            &ctx.store,
            slot.clone(),
            Arc::clone(&ctx.clock),
        )?),
        _ => None,
    };
    let ctx = Arc::new(ctx);
    let schedule = Schedule {
        transient_first: retry_first,
    };
    let info = ServeInfo {
        pid: std::process::id(),
        started_at: ctx.clock.now(),
        poll_secs: poll.as_secs(),
        webhooks,
        applis: applis.clone(),
        outputs: names.iter().map(|n| n.to_string()).collect(),
    };
    // Only a report for `status`: a full disk must not stop the relay.
    if let Err(e) = ctx.store.save_serve_info(&info) {
        log::warn!("{e}; `withings-relay status` cannot tell how this serve runs");
    }
    log_mode(&public, webhooks, poll, &ctx.store);

    let (wake, woken) = mpsc::channel::<Wake>();
    let worker = Worker::new(
        Arc::clone(&ctx),
        Box::new(delivery::start(outbox, sinks, schedule)),
    )
    .with_schedule(schedule)
    .with_timing(Timing::new(poll, &sync_followups, sync_gap));
    std::thread::spawn(move || worker.run(woken));

    // Poll-only mode subscribes to nothing, so there is nothing to check.
    if let Some(public) = public.as_ref().filter(|_| webhooks) {
        let checker = keeper::check::Keeper {
            ctx: Arc::clone(&ctx),
            current: notify_url(public, &secret),
            notify_prefix: notify_url_prefix(public),
            applis: applis.clone(),
            spacing: notify_spacing,
        };
        keeper::start(checker, check_every)
            .map_err(|e| Error::Listen(format!("cannot start the subscription keeper: {e}")))?;
    }

    let linker = Arc::new(Linker {
        ctx: Arc::clone(&ctx),
        redirect_uri: public.as_ref().map(callback_url),
        notify_url: public
            .as_ref()
            .filter(|_| webhooks)
            .map(|p| notify_url(p, &secret)),
        applis,
        wake: Mutex::new(wake.clone()),
    });
    let routes = Routes {
        prefix: public.map(|p| p.path).unwrap_or_default(),
        webhook_secret: secret,
        webhook: Webhook { ctx, wake },
        linker,
        allow_notify: allow_from,
    };
    let routes: Arc<dyn Handler> = Arc::new(routes);
    // Each listener has its own collector, handler threads and half the
    // connection cap: a flood of idle connections on the internet-facing
    // https port cannot push out the LAN's, nor the reverse.
    let mut listeners = vec![("http", AnyListener::Plain(listener))];
    // For --tls-domain alone, the ACME manager (opened above) fills the slot.
    if let Some((listener, _slot)) = tls {
        listeners.push(("https", AnyListener::Tls(listener)));
    }
    let share = listeners.len();
    let (stopped, ended) = mpsc::channel();
    // One closure for both: one copy of the server in the binary.
    for (name, listener) in listeners {
        let (routes, stopped) = (Arc::clone(&routes), stopped.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let Err(e) = inbound::serve(listener, routes, BODY_LIMIT, share);
                let _ = stopped.send(e);
            })
            .map_err(|e| Error::Listen(format!("cannot start the {name} listener: {e}")))?;
    }
    // Started once the https listener serves: the CA's TLS-ALPN-01
    // validation connects to it.
    if let Some(manager) = acme {
        manager.start()?;
    }
    // A listener returns only when it broke: exit non-zero so that procd
    // or systemd restarts the relay, never a silent 0.
    Err(ended
        .recv()
        .unwrap_or(Error::Internal("the listener threads ended without a word")))
}

/// Says how Withings reaches the relay, or that nothing does.
fn log_mode(public: &Option<BaseUrl>, webhooks: bool, poll: Duration, store: &StateDir) {
    let polling = match poll.as_millis() {
        0 => "no polls (--poll 0)".to_string(),
        _ => format!("every linked user synced every {}", duration_text(poll)),
    };
    if let Some(public) = public {
        log::info!(
            "register this callback URL in the Withings developer dashboard: {}",
            callback_url(public)
        );
        if webhooks {
            log::info!(
                "Withings will post notifications to {}{NOTIFY_PREFIX}<secret in {}/webhook-secret>; {polling}",
                public,
                store.root().display()
            );
            return;
        }
    }
    log::info!("poll-only mode: nothing is subscribed, {polling}");
}

/// The ACME manager for `domain`, with the stored certificate (if still
/// good) already in `slot`; it calls the CA only once started.
fn open_acme(
    domain: String,
    acme: AcmeOptions,
    store: &StateDir,
    slot: CertSlot,
    clock: Arc<dyn Clock>,
) -> Result<Manager> {
    let extra_ca = match &acme.ca_file {
        Some(path) => crate::tls_roots::read_pem("--acme-ca-file", path)?,
        None => Vec::new(),
    };
    let settings = AcmeSettings {
        domain,
        directory: acme.url,
        email: acme.email,
        extra_ca,
    };
    Manager::open(settings, store.root(), slot, clock)
}

/// Binds the https listener and fills its certificate slot: from
/// `--tls-cert` (checked now, watched from then on), or, for
/// `--tls-domain` alone, left empty for ACME to fill.
fn start_tls(tls: TlsSettings) -> Result<(TlsListener, CertSlot)> {
    let TlsSettings {
        listen,
        domain,
        files,
    } = tls;
    let slot = CertSlot::new(domain.clone());
    match files {
        Some((cert, key)) => {
            tls::install_files(&slot, &cert, &key)?;
            log::info!("https: serving {}{}", cert.display(), tls::expiry(&slot));
            tls::watch(slot.clone(), cert, key)?;
        }
        None => log::warn!(
            "https: no certificate for {} yet: handshakes are refused until one is installed",
            domain.as_deref().unwrap_or("any name")
        ),
    }
    let tcp = inbound::bind_flag("--tls-listen", &listen.to_string())?;
    Ok((TlsListener::new(tcp, slot.clone())?, slot))
}
