//! Turns the command line and environment into [`Settings`]: one typed
//! value per command, checked here and nowhere else, the way hyperfine's
//! `options.rs` does. Commands only wire what they are given. Every refusal
//! names the flag or variable and says how to fix it.
//!
//! Secrets are read here (they are values, like the flags); files a command
//! opens for its work (the state dir, `--output`, CA bundles) are opened by
//! the command.

use crate::cli::{Authorize, Cli, Command, Serve, Unlink};
use crate::error::{Error, Result};
use crate::inbound::allow::{self, Cidr};
use crate::inbound::routes::callback_url;
use crate::inbound::webhook::MEASURE_APPLIS;
use crate::mqtt::{self, MqttSettings, Will};
use crate::outputs::{ExecHook, JsonLinesTarget, Topics};
use crate::secret::Secret;
use crate::timefmt::parse_duration;
use crate::weburl::BaseUrl;
use crate::withings::oauth::Credentials;
use crate::worker::schedule::{POLL_WITHOUT_WEBHOOKS, POLL_WITH_WEBHOOKS};
use log::LevelFilter;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ENV_CLIENT_ID: &str = "WITHINGS_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "WITHINGS_CLIENT_SECRET";
pub const ENV_MQTT_PASSWORD: &str = "WITHINGS_MQTT_PASSWORD";

/// Where to look up environment variables; tests pass a map.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything one run needs, checked.
#[derive(Debug)]
pub struct Settings {
    pub shared: Shared,
    pub command: CommandSettings,
    /// Said once logging is up: settings that work but that Withings or a
    /// careful admin would not like (an http `--public-url`, a secret file
    /// others can read).
    pub warnings: Vec<String>,
}

/// What every command uses.
#[derive(Debug)]
pub struct Shared {
    /// `--state-dir`; opened (and proved writable) by the command.
    pub state_dir: PathBuf,
    pub log_level: LevelFilter,
}

#[derive(Debug)]
pub enum CommandSettings {
    Serve(ServeSettings),
    Authorize(AuthorizeSettings),
    Fetch(FetchSettings),
    Unlink(UnlinkSettings),
    Sync(SyncSettings),
    Status(StatusSettings),
}

/// The Withings API as the flags describe it.
#[derive(Debug)]
pub struct ApiSettings {
    pub base: BaseUrl,
    /// `--ca-file`: trusted in addition to the bundled roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug)]
pub struct ServeSettings {
    /// None when neither `--public-url` nor `--tls-domain` is given: the
    /// relay is reachable by no one, so it polls only.
    pub public_url: Option<BaseUrl>,
    /// False in poll-only mode (no public URL, or `--no-webhook`): nothing
    /// is subscribed, neither on linking nor by the subscription check.
    pub webhooks: bool,
    /// `--poll`: how often every linked user is synced; zero for never.
    pub poll: Duration,
    /// `--api-budget`: Withings calls a minute, all users together.
    pub api_budget: u32,
    /// `--sync-followups`: when, after a `sync` request, to sync again.
    pub sync_followups: Vec<Duration>,
    /// `--sync-gap`: the least time between a user's notification syncs.
    pub sync_gap: Duration,
    pub api: ApiSettings,
    pub credentials: Credentials,
    pub listen: SocketAddr,
    /// https: None unless --tls-domain or --tls-cert is given.
    pub tls: Option<Box<TlsSettings>>,
    /// `--allow-from`: the networks notifications may come from.
    pub allow_from: Option<Vec<Cidr>>,
    /// The first wait after a passing failure (`--retry-first`); later
    /// ones double from it.
    pub retry_first: Duration,
    /// How often the keeper checks each user's subscriptions
    /// (`--check-every`).
    pub check_every: Duration,
    /// The pause after each subscribe call (`--notify-spacing`); a fifth
    /// of it after each revoke.
    pub notify_spacing: Duration,
    /// Deduplicated, each one of the measurement applis the webhook accepts (1, 2, 4, 58).
    pub applis: Vec<u32>,
    /// Never empty: JSON lines on stdout when no output is named.
    pub outputs: Vec<OutputSettings>,
    /// Where the certificate of `--tls-domain` comes from without
    /// `--tls-cert`.
    /// Boxed like `tls`: a rarely used part of a value built once.
    pub acme: Box<AcmeOptions>,
}

/// `--acme-url`, `--acme-email`, `--acme-ca-file`, checked.
#[derive(Debug)]
pub struct AcmeOptions {
    /// The CA's directory URL, https.
    pub url: String,
    pub email: Option<String>,
    /// Read by `serve` when it starts the ACME manager.
    pub ca_file: Option<PathBuf>,
}

/// The https listener (`--tls-*`).
#[derive(Debug)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// `--tls-domain`, lower case: the only SNI served; None serves any.
    pub domain: Option<String>,
    /// `--tls-cert` and `--tls-key`. With a domain too, this certificate
    /// is served and no ACME certificate is requested.
    pub files: Option<(PathBuf, PathBuf)>,
}

/// One of the outputs a measurement leaves through.
// Built once at start-up and moved into its courier: the size of the
// MQTT variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum OutputSettings {
    /// `--output`: JSON lines to a file or stdout.
    JsonLines(JsonLinesTarget),
    /// `--mqtt` and the `--mqtt-*` and `--ha-discovery-prefix` flags.
    Mqtt {
        broker: MqttSettings,
        topics: Topics,
    },
    /// `--exec`, `--exec-arg`, `--exec-timeout`.
    Exec(ExecHook),
}

#[derive(Debug)]
pub struct AuthorizeSettings {
    /// Where Withings sends the browser back, exactly as registered in the
    /// dashboard (Withings compares them, facts sheet §1.1): `--redirect-url`,
    /// else `<--public-url>/oauth/callback`.
    pub redirect_uri: String,
    pub account_url: BaseUrl,
    /// The client id alone: the link carries no secret.
    pub client_id: String,
    pub demo: bool,
    /// `--paste`: what trading the pasted code takes.
    pub paste: Option<PasteSettings>,
}

/// `authorize --paste` trades the code itself, so it needs the API and
/// the app's secret, as `serve` does.
#[derive(Debug)]
pub struct PasteSettings {
    pub api: ApiSettings,
    pub credentials: Credentials,
}

/// `withings-relay sync`: needs only the state dir.
#[derive(Debug)]
pub struct SyncSettings {
    pub user: Option<String>,
}

#[derive(Debug)]
pub struct FetchSettings {
    pub api: ApiSettings,
    pub credentials: Credentials,
    pub user: Option<String>,
    /// Unix seconds; None means 7 days before the command runs.
    pub since: Option<i64>,
}

#[derive(Debug)]
pub struct UnlinkSettings {
    pub api: ApiSettings,
    pub credentials: Credentials,
    /// Digits only: it becomes part of file names.
    pub user: String,
    /// `--public-url`, if given: the relay's current notification URL is
    /// then known even if it was never recorded.
    pub public_url: Option<BaseUrl>,
}

#[derive(Debug)]
pub struct StatusSettings {
    pub json: bool,
}

impl Settings {
    /// Checks the whole command line once. `--version` is handled before
    /// this; without a command there is nothing to check.
    pub fn from_cli(cli: &Cli, env: Env) -> Result<Settings> {
        let mut warnings = Vec::new();
        let log_level = log_level(&cli.log_level)?;
        let command =
            match &cli.command {
                Some(Command::Serve(args)) => {
                    CommandSettings::Serve(serve_settings(cli, args, env, &mut warnings)?)
                }
                Some(Command::Authorize(args)) => {
                    CommandSettings::Authorize(authorize_settings(cli, args, env, &mut warnings)?)
                }
                Some(Command::Fetch(args)) => CommandSettings::Fetch(FetchSettings {
                    credentials: credentials(cli, env, &mut warnings)?,
                    api: api_settings(cli)?,
                    user: args.user.clone(),
                    since: args.since,
                }),
                Some(Command::Unlink(args)) => {
                    CommandSettings::Unlink(unlink_settings(cli, args, env, &mut warnings)?)
                }
                Some(Command::Sync(args)) => CommandSettings::Sync(SyncSettings {
                    user: args.user.clone(),
                }),
                Some(Command::Status(args)) => {
                    CommandSettings::Status(StatusSettings { json: args.json })
                }
                None => return Err(Error::Config(
                    "no command given: use serve, authorize, fetch, sync, status or unlink (see --help)"
                        .into(),
                )),
            };
        Ok(Settings {
            shared: Shared {
                state_dir: cli.state_dir.clone(),
                log_level,
            },
            command,
            warnings,
        })
    }

    /// Logs the warnings gathered while checking; call once logging is up.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            log::warn!("{warning}");
        }
    }
}

fn serve_settings(
    cli: &Cli,
    args: &Serve,
    env: Env,
    warnings: &mut Vec<String>,
) -> Result<ServeSettings> {
    let tls = tls_settings(args)?;
    let domain = tls.as_ref().and_then(|t| t.domain.as_deref());
    let public_url = match (&cli.public_url, domain) {
        (None, Some(domain)) => Some(url_option("--tls-domain", &format!("https://{domain}"))?),
        (None, None) => None,
        (Some(_), _) => Some(public_url(cli, warnings)?),
    };
    let webhooks = public_url.is_some() && !args.no_webhook;
    let poll = args.poll.unwrap_or(if webhooks {
        POLL_WITH_WEBHOOKS
    } else {
        POLL_WITHOUT_WEBHOOKS
    });
    if !webhooks && poll.is_zero() {
        warnings.push("--poll 0 without webhooks: new measurements arrive only when `withings-relay sync` asks for them".into());
    }
    if args.api_budget == 0 {
        return Err(Error::Config(
            "--api-budget must be at least 1 call a minute; Withings allows 120, e.g. --api-budget 100".into(),
        ));
    }
    let allow_from = args
        .allow_from
        .as_deref()
        .map(|text| {
            allow::parse_list(text).map_err(|why| {
                Error::Config(format!(
                    "--allow-from: {why}; give CIDR blocks separated by commas, e.g. --allow-from 89.30.121.0/24,2a01:e0d::/32"
                ))
            })
        })
        .transpose()?;
    Ok(ServeSettings {
        public_url,
        webhooks,
        poll,
        api_budget: args.api_budget,
        sync_followups: durations("--sync-followups", &args.sync_followups)?,
        sync_gap: args.sync_gap,
        tls,
        allow_from,
        credentials: credentials(cli, env, warnings)?,
        applis: applis(&args.appli)?,
        api: api_settings(cli)?,
        outputs: outputs(args, env, warnings)?,
        listen: listen_address(&args.listen)?,
        retry_first: args.retry_first,
        check_every: args.check_every,
        notify_spacing: args.notify_spacing,
        acme: Box::new(acme_options(args)?),
    })
}

fn authorize_settings(
    cli: &Cli,
    args: &Authorize,
    env: Env,
    warnings: &mut Vec<String>,
) -> Result<AuthorizeSettings> {
    let redirect_uri = match args.redirect_url.as_deref().map(str::trim) {
        // serve's callback trades the code with its own address, which
        // must then be the one the link carried.
        Some(_) if !args.paste => {
            return Err(Error::Config(
                "--redirect-url needs --paste: without it `serve` answers the callback at --public-url's /oauth/callback, so register that one".into(),
            ))
        }
        Some(text) => {
            url_option("--redirect-url", text)?;
            text.to_string()
        }
        None => callback_url(&public_url(cli, warnings)?),
    };
    let paste = match args.paste {
        true => Some(PasteSettings {
            credentials: credentials(cli, env, warnings)?,
            api: api_settings(cli)?,
        }),
        false => None,
    };
    Ok(AuthorizeSettings {
        redirect_uri,
        client_id: client_id(cli, env)?,
        account_url: url_option("--account-url", &cli.account_url)?,
        demo: args.demo,
        paste,
    })
}

fn unlink_settings(
    cli: &Cli,
    args: &Unlink,
    env: Env,
    warnings: &mut Vec<String>,
) -> Result<UnlinkSettings> {
    let user = args.user.trim();
    if !crate::store::is_valid_userid(user) {
        return Err(Error::Config(format!(
            "--user: {:?} is not a Withings user id; give the digits the relay logs as `user 12345678`",
            user.escape_debug().to_string()
        )));
    }
    Ok(UnlinkSettings {
        credentials: credentials(cli, env, warnings)?,
        api: api_settings(cli)?,
        user: user.to_string(),
        public_url: match &cli.public_url {
            Some(_) => Some(public_url(cli, warnings)?),
            None => None,
        },
    })
}

/// A comma-separated list of growing durations (`20s,1m,3m`); empty parts
/// are skipped.
fn durations(flag: &str, text: &str) -> Result<Vec<Duration>> {
    let mut out: Vec<Duration> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let d = parse_duration(part).map_err(|why| Error::Config(format!("{flag}: {why}")))?;
        if out.last().is_some_and(|last| *last >= d) {
            return Err(Error::Config(format!(
                "{flag}: {part:?} does not come after the one before it; give growing times, e.g. 20s,1m,3m"
            )));
        }
        out.push(d);
    }
    Ok(out)
}

/// The `--acme-*` flags: an https directory URL (RFC 8555 §6.1 allows
/// nothing else) and a plain e-mail address.
pub fn acme_options(args: &Serve) -> Result<AcmeOptions> {
    let url = args.acme_url.trim();
    let host = url.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.starts_with('/') || url.contains(char::is_whitespace) {
        return Err(Error::Config(format!(
            "--acme-url: {url:?} is not an https URL; give the CA's directory, e.g. --acme-url {}",
            crate::cli::DEFAULT_ACME_URL
        )));
    }
    let email = match args.acme_email.as_deref().map(str::trim) {
        None => None,
        Some(email) => {
            let ok = email.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !domain.ends_with('.')
            }) && !email.contains(|c: char| c.is_whitespace() || c == ',' || c == ':');
            if !ok {
                return Err(Error::Config(format!(
                    "--acme-email: {email:?} is not an e-mail address; e.g. --acme-email you@example.org, or leave it out"
                )));
            }
            Some(email.to_string())
        }
    };
    Ok(AcmeOptions {
        url: url.to_string(),
        email,
        ca_file: args.acme_ca_file.clone(),
    })
}

/// `--tls-domain`, `--tls-listen`, `--tls-cert`, `--tls-key`.
fn tls_settings(args: &Serve) -> Result<Option<Box<TlsSettings>>> {
    let files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => {
            return Err(Error::Config(
                "--tls-cert and --tls-key go together: give both, the certificate chain and its private key".into(),
            ))
        }
    };
    let domain = args.tls_domain.as_deref().map(tls_domain).transpose()?;
    if domain.is_none() && files.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(TlsSettings {
        listen: socket_option("--tls-listen", &args.tls_listen, "0.0.0.0:8443")?,
        domain,
        files,
    })))
}

/// A DNS name as a certificate names it: letters, digits, hyphens and
/// dots, no scheme, port or wildcard; lower-cased.
fn tls_domain(text: &str) -> Result<String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(Error::Config(format!(
            "--tls-domain: {text:?} is not a domain name; give the bare name Withings calls, e.g. --tls-domain relay.example.org"
        )));
    }
    Ok(name)
}

/// `--log-level`: the `log` crate's names, in any case.
pub fn log_level(text: &str) -> Result<LevelFilter> {
    text.parse().map_err(|_| {
        Error::Config(format!(
            "--log-level: {text:?} is not one of error, warn, info, debug"
        ))
    })
}

/// `--listen`: an IP address and port (`0.0.0.0:8080`, `[::]:8080`). A host
/// name (`localhost:8080`) is looked up and its first address used, as
/// the server did when it took the text.
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    socket_option("--listen", text, "0.0.0.0:8080")
}

/// An address and port given with `flag`; `example` goes in the error.
fn socket_option(flag: &str, text: &str, example: &str) -> Result<SocketAddr> {
    let refuse = |why: String| {
        Error::Config(format!(
            "{flag}: {text:?} {why}; give an address and port, e.g. {flag} {example}"
        ))
    };
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let mut found = text
        .to_socket_addrs()
        .map_err(|e| refuse(format!("is not an address and port ({e})")))?;
    found
        .next()
        .ok_or_else(|| refuse("names no address".into()))
}

pub fn url_option(flag: &str, text: &str) -> Result<BaseUrl> {
    BaseUrl::parse(text).map_err(|why| {
        Error::Config(format!(
            "{flag}: {why}; give a base URL such as https://relay.example.org"
        ))
    })
}

fn api_settings(cli: &Cli) -> Result<ApiSettings> {
    Ok(ApiSettings {
        base: url_option("--api-url", &cli.api_url)?,
        ca_file: cli.ca_file.clone(),
    })
}

/// The relay's own public URL, with a warning when Withings would refuse it
/// as a callback (http is allowed so tests can run on loopback).
pub fn public_url(cli: &Cli, warnings: &mut Vec<String>) -> Result<BaseUrl> {
    let text = cli.public_url.as_deref().ok_or_else(|| {
        Error::Config(
            "--public-url is required: the https address at which Withings reaches this relay, e.g. --public-url https://relay.example.org".into(),
        )
    })?;
    let url = url_option("--public-url", text)?;
    if let Some(problem) = url.callback_problem() {
        warnings.push(format!(
            "--public-url {url}: {problem}; Withings will refuse to call it (fine for local tests)"
        ));
    }
    Ok(url)
}

pub fn client_id(cli: &Cli, env: Env) -> Result<String> {
    let id = cli.client_id.clone().or_else(|| env(ENV_CLIENT_ID));
    match id.map(|s| s.trim().to_string()) {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(Error::Config(format!(
            "no Withings client id: set {ENV_CLIENT_ID} or pass --client-id (find it in the Withings developer dashboard under your app)"
        ))),
    }
}

pub fn credentials(cli: &Cli, env: Env, warnings: &mut Vec<String>) -> Result<Credentials> {
    let client_id = client_id(cli, env)?;
    let secret = match &cli.client_secret_file {
        Some(path) => read_secret_file("read --client-secret-file", path, warnings)?,
        None => env(ENV_CLIENT_SECRET)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    };
    if secret.is_empty() {
        return Err(Error::Config(format!(
            "no Withings client secret: set {ENV_CLIENT_SECRET} or pass --client-secret-file FILE (never on the command line, where `ps` shows it)"
        )));
    }
    Ok(Credentials {
        client_id,
        client_secret: Secret::new(secret),
    })
}

fn read_secret_file(flag: &'static str, path: &Path, warnings: &mut Vec<String>) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(flag, path, e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "{} is readable by other users; chmod 600 it",
                path.display()
            ));
        }
    }
    Ok(text.trim().to_string())
}

/// The outputs `serve`'s flags ask for, in delivery order: JSON lines
/// (on stdout when no other output is named), MQTT, the command hook.
fn outputs(args: &Serve, env: Env, warnings: &mut Vec<String>) -> Result<Vec<OutputSettings>> {
    let mut outputs = Vec::new();
    let user_names = user_names(&args.user_name)?;
    if let Some(broker) = mqtt_settings(args, env, warnings)? {
        let topics = Topics {
            prefix: args.mqtt_prefix.clone(),
            discovery: Some(args.ha_discovery_prefix.clone()).filter(|p| !p.is_empty()),
            user_names,
        };
        outputs.push(OutputSettings::Mqtt { broker, topics });
    } else if !user_names.is_empty() {
        warnings.push("--user-name names Home Assistant devices, which need --mqtt".into());
    }
    if let Some(program) = &args.exec {
        if args.exec_timeout == 0 {
            return Err(Error::Config(
                "--exec-timeout must be at least 1 second".into(),
            ));
        }
        outputs.push(OutputSettings::Exec(ExecHook {
            program: program.clone(),
            args: args.exec_arg.clone(),
            timeout: Duration::from_secs(args.exec_timeout),
        }));
    } else if !args.exec_arg.is_empty() {
        return Err(Error::Config("--exec-arg needs --exec PROGRAM".into()));
    }
    let json_lines = match args.output.as_deref() {
        Some(target) => Some(JsonLinesTarget::parse(target)),
        None if outputs.is_empty() => Some(JsonLinesTarget::Stdout),
        None => None,
    };
    if let Some(target) = json_lines {
        outputs.insert(0, OutputSettings::JsonLines(target));
    }
    Ok(outputs)
}

/// `--user-name 12345678=Alice`, repeated: each id once, a name for each.
fn user_names(given: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for text in given {
        let bad = |why: &str| {
            Error::Config(format!(
                "--user-name {text:?}: {why}; write the Withings user id, =, and a name, e.g. --user-name 12345678=Alice"
            ))
        };
        let (id, name) = text.split_once('=').ok_or_else(|| bad("no ="))?;
        let (id, name) = (id.trim(), name.trim());
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the user id is not a number"));
        }
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if out.iter().any(|(seen, _)| seen == id) {
            return Err(bad("this user id is named twice"));
        }
        out.push((id.to_string(), name.to_string()));
    }
    Ok(out)
}

/// The broker settings `serve --mqtt …` asks for, or None without --mqtt.
pub fn mqtt_settings(
    args: &Serve,
    env: Env,
    warnings: &mut Vec<String>,
) -> Result<Option<MqttSettings>> {
    let Some(url) = &args.mqtt else {
        return Ok(None);
    };
    let mut settings = mqtt::parse_url(url)?;
    if settings.password.is_some() {
        warnings.push(format!("--mqtt holds a password, which `ps` shows to every user; use --mqtt-password-file or {ENV_MQTT_PASSWORD}"));
    }
    let password = match &args.mqtt_password_file {
        Some(path) => Some(read_secret_file(
            "read --mqtt-password-file",
            path,
            warnings,
        )?),
        None => env(ENV_MQTT_PASSWORD).map(|p| p.trim().to_string()),
    };
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        settings.password = Some(Secret::new(p));
    }
    if settings.password.is_some() && settings.username.is_none() {
        return Err(Error::Config(
            "an MQTT password needs a user name: --mqtt mqtt://USER@host".into(),
        ));
    }
    let topic_flag = |flag: &str, why: String| Error::Config(format!("{flag}: {why}"));
    mqtt::check_topic(&args.mqtt_prefix).map_err(|why| topic_flag("--mqtt-prefix", why))?;
    if !args.ha_discovery_prefix.is_empty() {
        mqtt::check_topic(&args.ha_discovery_prefix)
            .map_err(|why| topic_flag("--ha-discovery-prefix", why))?;
    }
    settings.ca_file = args.mqtt_ca.clone();
    settings.client_id = args.mqtt_client_id.clone();
    settings.answer_timeout = args.mqtt_timeout;
    settings.will = Some(Will {
        topic: crate::outputs::status_topic(&args.mqtt_prefix),
        payload: b"offline".to_vec(),
        retain: true,
    });
    Ok(Some(settings))
}

/// `--appli 1,4` → [1, 4], refusing applis whose data getmeas does not carry.
pub fn applis(text: &str) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(a) if MEASURE_APPLIS.contains(&a) => {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            _ => {
                return Err(Error::Config(format!(
                    "--appli: {part:?} is not one of 1 (weight), 2 (temperature), 4 (blood pressure), 58 (glucose); e.g. --appli 1,4"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Config("--appli is empty; e.g. --appli 1".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdir::TestDir;
    use argh::FromArgs;

    fn cli(args: &[&str]) -> Cli {
        Cli::from_args(&["withings-relay"], args).unwrap()
    }

    /// An environment with the app's id and secret, as the tests' relay has.
    fn with_credentials(name: &str) -> Option<String> {
        match name {
            ENV_CLIENT_ID => Some("cid".into()),
            ENV_CLIENT_SECRET => Some("s3cret".into()),
            _ => None,
        }
    }

    fn settings(args: &[&str]) -> Result<Settings> {
        Settings::from_cli(&cli(args), &with_credentials)
    }

    fn error(args: &[&str]) -> String {
        match settings(args) {
            Err(Error::Config(text)) => text,
            Err(other) => panic!("{args:?}: not a config error: {other}"),
            Ok(s) => panic!("{args:?}: accepted as {s:?}"),
        }
    }

    fn serve(args: &[&str]) -> ServeSettings {
        let mut all = vec!["--public-url", "https://relay.example.org", "serve"];
        all.extend(args);
        match settings(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            CommandSettings::Serve(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn serve_error(args: &[&str]) -> String {
        let mut all = vec!["--public-url", "https://relay.example.org", "serve"];
        all.extend(args);
        error(&all)
    }

    #[test]
    fn https_is_off_unless_a_domain_or_a_certificate_is_given() {
        let s = serve(&["--tls-listen", "0.0.0.0:8443"]);
        assert!(s.tls.is_none());
        assert!(s.allow_from.is_none());
        let s = serve(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]);
        let tls = s.tls.unwrap();
        assert_eq!(tls.listen, "0.0.0.0:443".parse::<SocketAddr>().unwrap());
        assert_eq!(tls.domain, None);
        assert_eq!(
            tls.files,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
    }

    #[test]
    fn a_tls_domain_is_the_default_public_url_and_checked() {
        let all = [
            "serve",
            "--tls-domain",
            "Relay.Example.org.",
            "--tls-listen",
            "[::]:8443",
        ];
        let CommandSettings::Serve(s) = settings(&all).unwrap().command else {
            panic!("not serve")
        };
        assert_eq!(
            s.public_url.unwrap().to_string(),
            "https://relay.example.org"
        );
        let tls = s.tls.unwrap();
        assert_eq!(tls.domain.as_deref(), Some("relay.example.org"));
        assert_eq!(tls.listen, "[::]:8443".parse::<SocketAddr>().unwrap());
        // An explicit --public-url wins (a path under the domain, say).
        let s = serve(&["--tls-domain", "relay.example.org"]);
        assert_eq!(
            s.public_url.unwrap().to_string(),
            "https://relay.example.org"
        );
        for bad in [
            "https://relay.example.org",
            "relay.example.org:443",
            "*.example.org",
            "a..b",
            "-a.b",
        ] {
            let e = serve_error(&["--tls-domain", bad]);
            assert!(e.starts_with("--tls-domain:"), "{bad}: {e}");
        }
    }

    #[test]
    fn tls_cert_and_key_go_together_and_addresses_name_their_flag() {
        for half in [["--tls-cert", "/c.pem"], ["--tls-key", "/k.pem"]] {
            let e = serve_error(&half);
            assert!(e.contains("--tls-cert and --tls-key go together"), "{e}");
        }
        let e = serve_error(&["--tls-domain", "relay.example.org", "--tls-listen", "8443"]);
        assert!(
            e.starts_with("--tls-listen:") && e.contains("--tls-listen 0.0.0.0:8443"),
            "{e}"
        );
    }

    #[test]
    fn allow_from_takes_cidr_blocks_and_names_a_bad_one() {
        let s = serve(&["--allow-from", "89.30.121.0/24, 2a01:e0d::/32"]);
        let list: Vec<String> = s
            .allow_from
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(list, ["89.30.121.0/24", "2a01:e0d::/32"]);
        let e = serve_error(&["--allow-from", "89.30.121.0/24,withings.net"]);
        assert!(e.starts_with("--allow-from: \"withings.net\""), "{e}");
    }

    #[test]
    fn credentials_from_the_environment() {
        let env = |k: &str| match k {
            ENV_CLIENT_ID => Some("cid".to_string()),
            ENV_CLIENT_SECRET => Some("s3cret\n".to_string()),
            _ => None,
        };
        let c = credentials(&cli(&[]), &env, &mut Vec::new()).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.expose()),
            ("cid", "s3cret")
        );
    }

    #[test]
    fn missing_credentials_say_how_to_give_them() {
        let none = |_: &str| None;
        let err = credentials(&cli(&[]), &none, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WITHINGS_CLIENT_ID") && err.contains("--client-id"),
            "{err}"
        );
        let err = credentials(&cli(&["--client-id", "x"]), &none, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WITHINGS_CLIENT_SECRET") && err.contains("--client-secret-file"),
            "{err}"
        );
    }

    #[test]
    fn public_url_must_be_a_url() {
        let mut warnings = Vec::new();
        let err = public_url(&cli(&[]), &mut warnings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--public-url is required"), "{err}");
        let err = public_url(&cli(&["--public-url", "relay.example.org"]), &mut warnings)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--public-url:"), "{err}");
        assert!(public_url(
            &cli(&["--public-url", "https://relay.example.org"]),
            &mut warnings
        )
        .is_ok());
    }

    #[test]
    fn without_a_public_url_or_with_no_webhook_serve_polls_only() {
        let only = |args: &[&str]| match settings(args).unwrap().command {
            CommandSettings::Serve(s) => s,
            other => panic!("{other:?}"),
        };
        let s = serve(&[]);
        assert!(s.webhooks);
        assert_eq!(s.poll, Duration::from_secs(6 * 3600), "webhooks on: 6h");
        assert_eq!(s.api_budget, 100);
        assert_eq!(
            s.sync_followups,
            [20, 60, 180].map(Duration::from_secs),
            "the hidden default"
        );
        let s = only(&["serve"]);
        assert!(s.public_url.is_none() && !s.webhooks);
        assert_eq!(s.poll, Duration::from_secs(600), "poll-only: 10m");
        let s = serve(&["--no-webhook", "--poll", "0"]);
        assert!(s.public_url.is_some() && !s.webhooks);
        assert!(s.poll.is_zero());
        let s = only(&["serve", "--tls-domain", "relay.example.org"]);
        assert!(s.webhooks, "a TLS domain is a public URL");
        let s = serve(&[
            "--poll",
            "30m",
            "--api-budget",
            "1500",
            "--sync-followups",
            "1s,3s",
        ]);
        assert_eq!(s.poll, Duration::from_secs(1800));
        assert_eq!(s.api_budget, 1500);
        assert_eq!(s.sync_followups, [1, 3].map(Duration::from_secs));
        assert!(serve_error(&["--api-budget", "0"]).contains("--api-budget must be at least 1"));
        assert!(serve_error(&["--sync-followups", "1s,soon"]).starts_with("--sync-followups:"));
        assert!(serve_error(&["--sync-followups", "3s,1s"]).contains("growing times"));
        let warned = settings(&["serve", "--poll", "0"]).unwrap().warnings;
        assert!(
            warned[0].contains("--poll 0 without webhooks"),
            "{warned:?}"
        );
    }

    #[test]
    fn sync_needs_nothing_but_the_state_dir() {
        let none = |_: &str| None;
        match Settings::from_cli(&cli(&["sync", "--user", "7"]), &none)
            .unwrap()
            .command
        {
            CommandSettings::Sync(s) => assert_eq!(s.user.as_deref(), Some("7")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn applis_are_checked_and_deduplicated() {
        assert_eq!(applis("1, 4,1").unwrap(), vec![1, 4]);
        assert!(applis("16").unwrap_err().to_string().contains("--appli"));
        assert!(applis("").is_err());
        assert!(applis("x").is_err());
    }

    #[test]
    fn serve_gets_typed_values_and_the_documented_defaults() {
        let s = serve(&[]);
        assert_eq!(s.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(s.applis, vec![1]);
        assert_eq!(
            s.public_url.unwrap().to_string(),
            "https://relay.example.org"
        );
        assert_eq!(s.api.base.to_string(), "https://wbsapi.withings.net");
        assert_eq!(s.credentials.client_id, "cid");
        assert!(matches!(
            s.outputs[..],
            [OutputSettings::JsonLines(JsonLinesTarget::Stdout)]
        ));
        let s = serve(&["--listen", "[::1]:9", "--appli", "4,1"]);
        assert_eq!(s.listen, "[::1]:9".parse::<SocketAddr>().unwrap());
        assert_eq!(s.applis, vec![4, 1]);
    }

    #[test]
    fn listen_takes_an_address_or_a_name_and_says_what_is_wrong() {
        assert!(listen_address("localhost:8080").unwrap().ip().is_loopback());
        for bad in ["8080", "0.0.0.0", "0.0.0.0:http", "0.0.0.0:70000", ""] {
            let err = listen_address(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("--listen:") && err.contains("--listen 0.0.0.0:8080"),
                "{bad}: {err}"
            );
        }
        assert!(serve_error(&["--listen", "8080"]).starts_with("--listen:"));
    }

    #[test]
    fn outputs_are_the_ones_named_in_delivery_order() {
        let s = serve(&[
            "--exec",
            "/bin/true",
            "--mqtt",
            "mqtt://h",
            "--output",
            "/tmp/out.jsonl",
        ]);
        match &s.outputs[..] {
            [OutputSettings::JsonLines(JsonLinesTarget::File(path)), OutputSettings::Mqtt { broker, topics }, OutputSettings::Exec(hook)] =>
            {
                assert_eq!(path, Path::new("/tmp/out.jsonl"));
                assert_eq!((broker.host.as_str(), broker.port), ("h", 1883));
                assert_eq!(topics.prefix, "withings");
                assert_eq!(topics.discovery.as_deref(), Some("homeassistant"));
                assert_eq!(hook.timeout, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        // A named output replaces the default JSON lines on stdout.
        assert!(matches!(
            serve(&["--exec", "/bin/true"]).outputs[..],
            [OutputSettings::Exec(_)]
        ));
        assert!(matches!(
            serve(&["--output", "-", "--exec", "/bin/true"]).outputs[..],
            [
                OutputSettings::JsonLines(JsonLinesTarget::Stdout),
                OutputSettings::Exec(_)
            ]
        ));
    }

    #[test]
    fn user_names_give_each_id_one_name() {
        let s = serve(&[
            "--mqtt",
            "mqtt://h",
            "--user-name",
            "111=Alice",
            "--user-name",
            " 222 = Bob Smith ",
        ]);
        match &s.outputs[..] {
            [OutputSettings::Mqtt { topics, .. }] => assert_eq!(
                topics.user_names,
                [
                    ("111".to_string(), "Alice".to_string()),
                    ("222".to_string(), "Bob Smith".to_string())
                ]
            ),
            other => panic!("{other:?}"),
        }
        for (bad, why) in [
            ("Alice", "no ="),
            ("abc=Alice", "not a number"),
            ("=Alice", "not a number"),
            ("111=", "the name is empty"),
        ] {
            let err = serve_error(&["--mqtt", "mqtt://h", "--user-name", bad]);
            assert!(
                err.starts_with("--user-name")
                    && err.contains(why)
                    && err.contains("12345678=Alice"),
                "{bad}: {err}"
            );
        }
        let twice = serve_error(&["--user-name", "1=A", "--user-name", "1=B"]);
        assert!(twice.contains("named twice"), "{twice}");
    }

    #[test]
    fn the_hook_needs_a_program_and_a_timeout_of_a_second_or_more() {
        let hook = match serve(&["--exec", "/bin/x", "--exec-arg", "a", "--exec-timeout", "1"])
            .outputs
            .remove(0)
        {
            OutputSettings::Exec(hook) => hook,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (hook.program.as_str(), hook.args, hook.timeout),
            ("/bin/x", vec!["a".to_string()], Duration::from_secs(1))
        );
        assert!(serve_error(&["--exec", "/bin/x", "--exec-timeout", "0"])
            .contains("--exec-timeout must be at least 1 second"));
        assert!(serve_error(&["--exec-arg", "a"]).contains("--exec-arg needs --exec"));
    }

    #[test]
    fn mqtt_flags_are_checked_and_the_will_is_set() {
        let s = serve(&["--mqtt", "mqtts://relay@h", "--mqtt-prefix", "home/w"]);
        match &s.outputs[..] {
            [OutputSettings::Mqtt { broker, topics }] => {
                assert!(broker.tls);
                assert_eq!(broker.client_id, "withings-relay");
                assert_eq!(broker.will.as_ref().unwrap().topic, "home/w/status");
                assert_eq!(topics.prefix, "home/w");
            }
            other => panic!("{other:?}"),
        }
        assert!(serve_error(&["--mqtt", "broker.lan"]).starts_with("--mqtt:"));
        assert!(serve_error(&["--mqtt", "mqtt://h", "--mqtt-prefix", "a/#"])
            .starts_with("--mqtt-prefix:"));
        assert!(
            serve_error(&["--mqtt", "mqtt://h", "--ha-discovery-prefix", "+"])
                .starts_with("--ha-discovery-prefix:")
        );
        let off = serve(&["--mqtt", "mqtt://h", "--ha-discovery-prefix", ""]);
        assert!(matches!(
            &off.outputs[..],
            [OutputSettings::Mqtt { topics, .. }] if topics.discovery.is_none()
        ));
    }

    #[test]
    fn an_mqtt_password_needs_a_user_and_is_read_from_its_file() {
        let dir = TestDir::new("config-mqtt-password");
        let file = dir.path().join("password");
        std::fs::write(&file, "hunter2\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = file.display().to_string();
        let all = [
            "--public-url",
            "https://relay.example.org",
            "serve",
            "--mqtt",
            "mqtt://relay@h",
            "--mqtt-password-file",
            &file,
        ];
        let s = settings(&all).unwrap();
        match &s.command {
            CommandSettings::Serve(ServeSettings { outputs, .. }) => match &outputs[..] {
                [OutputSettings::Mqtt { broker, .. }] => {
                    assert_eq!(
                        broker.password.as_ref().map(Secret::expose),
                        Some("hunter2")
                    )
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("readable by other users")),
            "{:?}",
            s.warnings
        );
        assert!(
            serve_error(&["--mqtt", "mqtt://h", "--mqtt-password-file", &file])
                .contains("needs a user name")
        );
    }

    #[test]
    fn acme_flags_default_to_lets_encrypt_and_are_checked() {
        let s = serve(&[]);
        assert_eq!(s.acme.url, "https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!((&s.acme.email, &s.acme.ca_file), (&None, &None));
        let s = serve(&[
            "--acme-url",
            "https://127.0.0.1:14000/dir",
            "--acme-email",
            "me@example.org",
            "--acme-ca-file",
            "/etc/ca.pem",
        ]);
        assert_eq!(s.acme.url, "https://127.0.0.1:14000/dir");
        assert_eq!(s.acme.email.as_deref(), Some("me@example.org"));
        assert_eq!(s.acme.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        for bad in ["http://ca/dir", "ca.example/dir", "https://", ""] {
            assert!(
                serve_error(&["--acme-url", bad]).starts_with("--acme-url:"),
                "{bad}"
            );
        }
        for bad in [
            "me",
            "me@host",
            "a b@example.org",
            "@example.org",
            "a@b.org,c@d.org",
        ] {
            assert!(
                serve_error(&["--acme-email", bad]).starts_with("--acme-email:"),
                "{bad}"
            );
        }
    }

    #[test]
    fn authorize_needs_only_the_client_id() {
        let env = |k: &str| (k == ENV_CLIENT_ID).then(|| "cid".to_string());
        let cli = cli(&["--public-url", "http://127.0.0.1:1", "authorize", "--demo"]);
        let s = Settings::from_cli(&cli, &env).unwrap();
        match &s.command {
            CommandSettings::Authorize(a) => {
                assert_eq!(a.client_id, "cid");
                assert!(a.demo);
                assert_eq!(a.account_url.to_string(), "https://account.withings.com");
                assert_eq!(a.redirect_uri, "http://127.0.0.1:1/oauth/callback");
                assert!(a.paste.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            s.warnings[0].contains("Withings will refuse to call it"),
            "an http public URL is allowed, with a warning: {:?}",
            s.warnings
        );
    }

    #[test]
    fn authorize_paste_takes_the_registered_redirect_url_instead_of_a_public_url() {
        let lan = "http://192.168.1.2:8080/withings";
        let s = settings(&["authorize", "--paste", "--redirect-url", lan]).unwrap();
        match &s.command {
            CommandSettings::Authorize(a) => {
                assert_eq!(a.redirect_uri, lan, "as registered, not rewritten");
                let paste = a.paste.as_ref().expect("--paste");
                assert_eq!(paste.credentials.client_secret.expose(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        let s = settings(&["--public-url", "https://h", "authorize", "--paste"]).unwrap();
        match &s.command {
            CommandSettings::Authorize(a) => assert_eq!(a.redirect_uri, "https://h/oauth/callback"),
            other => panic!("{other:?}"),
        }
        assert!(error(&["authorize", "--paste"]).starts_with("--public-url is required"));
        assert!(
            error(&["authorize", "--paste", "--redirect-url", "localhost/cb"])
                .starts_with("--redirect-url:")
        );
        assert!(error(&[
            "--public-url",
            "https://h",
            "authorize",
            "--redirect-url",
            lan
        ])
        .starts_with("--redirect-url needs --paste"));
        let id_only = |k: &str| (k == ENV_CLIENT_ID).then(|| "cid".to_string());
        let no_secret = Settings::from_cli(
            &cli(&["authorize", "--paste", "--redirect-url", lan]),
            &id_only,
        );
        assert!(
            no_secret.is_err(),
            "--paste trades the code, which needs the secret"
        );
    }

    #[test]
    fn fetch_needs_credentials_but_no_public_url() {
        match settings(&["fetch", "--user", "7", "--since", "100"])
            .unwrap()
            .command
        {
            CommandSettings::Fetch(f) => {
                assert_eq!((f.user.as_deref(), f.since), (Some("7"), Some(100)));
                assert_eq!(f.credentials.client_secret.expose(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        let none = |_: &str| None;
        assert!(Settings::from_cli(&cli(&["fetch"]), &none).is_err());
    }

    #[test]
    fn unlink_needs_a_user_id_of_digits_and_no_public_url() {
        match settings(&["unlink", "--user", " 42 "]).unwrap().command {
            CommandSettings::Unlink(u) => {
                assert_eq!(u.user, "42");
                assert!(u.public_url.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(error(&["unlink", "--user", "../42"]).starts_with("--user:"));
    }

    #[test]
    fn a_bad_log_level_or_no_command_is_a_config_error() {
        assert_eq!(
            settings(&["--log-level", "DEBUG", "fetch"])
                .unwrap()
                .shared
                .log_level,
            LevelFilter::Debug
        );
        assert!(error(&["--log-level", "loud", "fetch"]).starts_with("--log-level:"));
        assert!(error(&[]).contains("no command given"));
    }
}
