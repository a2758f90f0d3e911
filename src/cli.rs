//! The command line, as argh declares it. Validation lives in config.rs.
//!
//! The doc comments on the argh structs below are the `--help` text, shown
//! verbatim in a terminal, not rendered as Markdown: a URL there is meant
//! bare (`<https://…>` would print the brackets) and `[user@]` is usage
//! syntax, not an intra-doc link. Hence the rustdoc allows on them.

use argh::FromArgs;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/withings-relay";
pub const DEFAULT_API_URL: &str = "https://wbsapi.withings.net";
pub const DEFAULT_ACCOUNT_URL: &str = "https://account.withings.com";
pub const DEFAULT_ACME_URL: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
#[allow(rustdoc::bare_urls)]
/// Relays Withings measurements to your home network: Withings calls the
/// webhook, the relay fetches the new measurements and writes them out as
/// JSON lines. Credentials come from WITHINGS_CLIENT_ID and
/// WITHINGS_CLIENT_SECRET (or --client-id and --client-secret-file).
/// Options above the command may also be given after it.
#[argh(
    example = "Run the relay behind an https front on this machine that forwards to 127.0.0.1:8080:\n  export WITHINGS_CLIENT_ID=... WITHINGS_CLIENT_SECRET=...\n  {command_name} --public-url https://relay.example.org serve --output /var/lib/withings-relay/measurements.jsonl",
    example = "Link your Withings account (open the printed link in a browser):\n  {command_name} --public-url https://relay.example.org authorize",
    example = "Print the last 30 days of measurements:\n  {command_name} fetch --since $(( $(date +%s) - 30*86400 ))"
)]
pub struct Cli {
    /// directory for tokens, the notification queue and sync state; keep it
    /// on persistent storage. Defaults to /var/lib/withings-relay.
    #[argh(option, default = "PathBuf::from(DEFAULT_STATE_DIR)")]
    pub state_dir: PathBuf,

    /// the https base URL at which Withings and your browser reach this
    /// relay, e.g. https://relay.example.org (needed by authorize; serve
    /// without it subscribes to nothing and polls). Withings only calls
    /// https on port 443.
    #[argh(option)]
    pub public_url: Option<String>,

    /// the Withings API base URL. Defaults to https://wbsapi.withings.net.
    #[argh(option, default = "DEFAULT_API_URL.to_string()")]
    pub api_url: String,

    /// the Withings account (login) base URL. Defaults to
    /// https://account.withings.com.
    #[argh(option, default = "DEFAULT_ACCOUNT_URL.to_string()")]
    pub account_url: String,

    /// the client id of your Withings app. Defaults to $WITHINGS_CLIENT_ID.
    #[argh(option)]
    pub client_id: Option<String>,

    /// a file holding the client secret of your Withings app (keep it mode
    /// 0600). Defaults to reading $WITHINGS_CLIENT_SECRET.
    #[argh(option)]
    pub client_secret_file: Option<PathBuf>,

    /// a PEM file of CA certificates to trust for Withings calls, in
    /// addition to the bundled Mozilla roots. Defaults to none.
    #[argh(option)]
    pub ca_file: Option<PathBuf>,

    /// how much to log on stderr: error, warn, info or debug. Defaults to
    /// info.
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,

    /// print the version and exit.
    #[argh(switch)]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
#[argh(subcommand)]
// Parsed once at start; boxing would only make argh's derive harder to use.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Serve(Serve),
    Authorize(Authorize),
    Fetch(Fetch),
    Unlink(Unlink),
    Sync(Sync),
    Status(Status),
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
#[allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]
/// Run the relay: answer Withings webhooks and the OAuth callback, and
/// write each new measurement group as a JSON line.
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address and port to listen on. The relay speaks plain HTTP behind an
    /// https front (Withings only calls https on port 443): keep loopback
    /// when the front runs on this machine; give this machine's LAN address
    /// (e.g. 192.168.1.1:8080) when the front or a port forward is on
    /// another. Defaults to 127.0.0.1:8080.
    #[argh(option, default = "String::from(\"127.0.0.1:8080\")")]
    pub listen: String,

    // https: the relay as its own TLS front (src/inbound/tls/).
    /// serve https for this domain name on --tls-listen, with the
    /// certificate of --tls-cert, and give a certificate only to clients
    /// asking for this name (SNI). Makes --public-url default to
    /// https://NAME. Defaults to none (no https).
    #[argh(option)]
    pub tls_domain: Option<String>,

    /// address and port of the https listener, which serves the same routes
    /// as --listen. Withings calls only port 443: on OpenWrt, where uhttpd
    /// holds 443, use 0.0.0.0:8443 and redirect WAN 443 to it. Defaults to
    /// 0.0.0.0:443.
    #[argh(option, default = "String::from(\"0.0.0.0:443\")")]
    pub tls_listen: String,

    /// a PEM file with the certificate chain to serve over https, leaf
    /// first; read again when it changes. Needs --tls-key. Defaults to
    /// none.
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,

    /// the PEM private key of --tls-cert (PKCS#8, SEC1 or PKCS#1; mode
    /// 0600); read again when it changes. Defaults to none.
    #[argh(option)]
    pub tls_key: Option<PathBuf>,

    /// comma-separated networks (CIDR, e.g. 89.30.121.0/24,2a01:e0d::/32)
    /// that may post notifications; others get 403 and nothing is queued.
    /// HEAD checks and other routes are not restricted. Defaults to none
    /// (any address).
    #[argh(option)]
    pub allow_from: Option<String>,

    /// where JSON lines go: a file to append to, or - for stdout. Defaults
    /// to - unless another output (--mqtt, --exec) is given.
    #[argh(option)]
    pub output: Option<String>,

    /// MQTT broker to publish to: mqtt://[user@]host[:port], or mqtts://
    /// for TLS. Give the password with --mqtt-password-file or
    /// $WITHINGS_MQTT_PASSWORD, not in the URL. Defaults to none.
    #[argh(option)]
    pub mqtt: Option<String>,

    /// a file holding the MQTT password (mode 0600). Defaults to
    /// $WITHINGS_MQTT_PASSWORD, else none.
    #[argh(option)]
    pub mqtt_password_file: Option<PathBuf>,

    /// a PEM file of CA certificates to trust for an mqtts:// broker, in
    /// addition to the bundled Mozilla roots. Defaults to none.
    #[argh(option)]
    pub mqtt_ca: Option<PathBuf>,

    /// how long the MQTT broker has to acknowledge a login, a publish or a
    /// ping before the connection is dropped and tried again later, e.g.
    /// 30s for a broker far away. Defaults to 10s.
    #[argh(
        option,
        from_str_fn(nonzero_duration),
        default = "crate::mqtt::DEFAULT_ANSWER_TIMEOUT"
    )]
    pub mqtt_timeout: Duration,

    /// first part of every MQTT topic. Defaults to withings.
    #[argh(option, default = "String::from(\"withings\")")]
    pub mqtt_prefix: String,

    /// MQTT client id; keep it stable and unique on the broker. Defaults to
    /// withings-relay.
    #[argh(option, default = "crate::mqtt::DEFAULT_CLIENT_ID.to_string()")]
    pub mqtt_client_id: String,

    /// the Home Assistant MQTT discovery prefix; an empty value turns
    /// discovery off. Defaults to homeassistant.
    #[argh(option, default = "String::from(\"homeassistant\")")]
    pub ha_discovery_prefix: String,

    /// ID=NAME: name the Home Assistant device of Withings user ID after
    /// the person, e.g. 12345678=Alice; repeat for more users. Defaults
    /// to none (the device is named Withings ID).
    #[argh(option)]
    pub user_name: Vec<String>,

    /// a program to run for each measure group, with the group's JSON on
    /// stdin and WITHINGS_* variables (WITHINGS_USERID, WITHINGS_WEIGHT_KG,
    /// ...); run directly, never through a shell. Defaults to none.
    #[argh(option)]
    pub exec: Option<String>,

    /// an argument for the --exec program; repeat for more. Defaults to
    /// none.
    #[argh(option)]
    pub exec_arg: Vec<String>,

    /// seconds an --exec run may take before it is stopped and tried again
    /// later. Defaults to 30.
    #[argh(option, default = "30")]
    pub exec_timeout: u64,

    /// comma-separated Withings applis to subscribe each linked user to:
    /// 1 weight and body composition, 2 temperature, 4 blood pressure and
    /// heart rate, 58 glucose. Defaults to 1.
    #[argh(option, default = "String::from(\"1\")")]
    pub appli: String,

    /// sync every linked user this often (give or take a tenth), and once
    /// at start, even when no notification came: Withings never sends a
    /// missed notification again. 0 turns it off. Defaults to 6h, or 10m
    /// without webhooks.
    #[argh(option, from_str_fn(crate::timefmt::parse_duration))]
    pub poll: Option<Duration>,

    /// subscribe to no notifications and rely on --poll, as when no
    /// --public-url is given; linking still works through --public-url.
    #[argh(switch)]
    pub no_webhook: bool,

    /// how many Withings calls a minute the relay allows itself, all users
    /// together (Withings allows an app 120; Enterprise plans more).
    /// Notification syncs go first; polls and checks leave a quarter
    /// spare. Defaults to 100.
    #[argh(option, default = "crate::withings::budget::DEFAULT_PER_MINUTE")]
    pub api_budget: u32,

    /// when `sync` asks, sync at once, then again this long after the
    /// request, until something new arrives. Defaults to 20s,1m,3m.
    // Hidden: the series follows how long Withings takes to process an
    // upload; it exists so tests need not wait minutes.
    #[argh(option, hidden_help, default = "String::from(\"20s,1m,3m\")")]
    pub sync_followups: String,

    /// the least time between two notification syncs of one user. Defaults
    /// to 5s.
    // Hidden: it is what keeps a flood of notifications to a handful of
    // getmeas (facts sheet §4.2). It exists so the many tests that send
    // a notification after a sync need not each wait 5 s.
    #[argh(
        option,
        hidden_help,
        from_str_fn(nonzero_duration),
        default = "crate::worker::schedule::DEFAULT_SYNC_GAP"
    )]
    pub sync_gap: Duration,

    /// the first wait after a failure that may pass by itself; later waits
    /// double, up to 300 s. Defaults to 2s.
    // Hidden: the series follows the facts sheet's advice to back off
    // (§4.1, §4.2), and shortening it only makes the relay hammer a
    // Withings or a broker that is down. It exists so tests of the retry
    // path need not sit through the real 2 + 4 + 8 s.
    #[argh(
        option,
        hidden_help,
        from_str_fn(nonzero_duration),
        default = "crate::worker::retry::DEFAULT_TRANSIENT_FIRST"
    )]
    pub retry_first: Duration,

    /// how often each user's notification subscriptions are listed and
    /// repaired. Defaults to 24h.
    // Hidden: the facts sheet advises a daily `notify list` (§3.4), and
    // checking more often only spends the app's shared rate limit (§4.2).
    // It exists so tests see a repair in seconds.
    #[argh(
        option,
        hidden_help,
        from_str_fn(nonzero_duration),
        default = "std::time::Duration::from_secs(86_400)"
    )]
    pub check_every: Duration,

    /// the pause after each subscribe call; a fifth of it follows each
    /// revoke. Defaults to 5s.
    // Hidden: Withings' HEAD checks fail more often when subscribes follow
    // each other closely (facts sheet §3.1); tests need not wait.
    #[argh(
        option,
        hidden_help,
        from_str_fn(crate::timefmt::parse_duration),
        default = "std::time::Duration::from_secs(5)"
    )]
    pub notify_spacing: Duration,

    // ACME: the certificate of --tls-domain, when no --tls-cert is given.
    /// the ACME directory the certificate of --tls-domain is obtained from
    /// when no --tls-cert is given; try Let's Encrypt's staging directory,
    /// https://acme-staging-v02.api.letsencrypt.org/directory, first.
    /// Defaults to https://acme-v02.api.letsencrypt.org/directory.
    #[argh(option, default = "DEFAULT_ACME_URL.to_string()")]
    pub acme_url: String,

    /// a contact address for the ACME account (the CA writes about
    /// expiring certificates and policy changes). Defaults to none.
    #[argh(option)]
    pub acme_email: Option<String>,

    /// a PEM file of CA certificates to trust for the ACME server's own
    /// https, in addition to the bundled Mozilla roots (a private CA, a
    /// test CA). Defaults to none.
    #[argh(option)]
    pub acme_ca_file: Option<PathBuf>,
}

/// A duration option (`30s`, `10m`, `250ms`) that cannot be zero: a
/// timeout or a wait of nothing would spin.
fn nonzero_duration(text: &str) -> Result<Duration, String> {
    match crate::timefmt::parse_duration(text)? {
        d if d.is_zero() => Err("must be more than zero, e.g. 10s".into()),
        d => Ok(d),
    }
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
#[allow(rustdoc::bare_urls)]
/// Print a link that connects a Withings account to the relay. Open it in
/// a browser within 10 minutes while `serve` is running, or use --paste.
#[argh(subcommand, name = "authorize")]
pub struct Authorize {
    /// link Withings' demo account (dummy data) instead of a real one.
    #[argh(switch)]
    pub demo: bool,

    /// link without `serve`: after opening the link and allowing access,
    /// paste the address the browser lands on (even an error page) here;
    /// the relay trades its code at once.
    #[argh(switch)]
    pub paste: bool,

    /// the callback URL registered for your app in the Withings dashboard,
    /// when it is not --public-url's /oauth/callback: e.g. a LAN or
    /// localhost URL of a restricted-mode app (needs --paste). Defaults to
    /// the --public-url followed by /oauth/callback.
    #[argh(option)]
    pub redirect_url: Option<String>,
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
/// Tell the running `serve` that a scale just uploaded: it syncs at once,
/// then a few more times over the next minutes until the new measurement
/// arrives. Returns at once.
#[argh(subcommand, name = "sync")]
pub struct Sync {
    /// only this Withings user id. Defaults to every linked user.
    #[argh(option)]
    pub user: Option<String>,
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
/// Fetch measurements of the linked users once and print them as JSON
/// lines on stdout. Does not move the cursor `serve` uses.
#[argh(subcommand, name = "fetch")]
pub struct Fetch {
    /// only this Withings user id. Defaults to every linked user.
    #[argh(option)]
    pub user: Option<String>,

    /// fetch groups created or changed after this time, in unix seconds.
    /// Defaults to 7 days ago.
    #[argh(option)]
    pub since: Option<i64>,
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
/// Stop relaying a Withings user: revoke this relay's notification
/// subscriptions for them (when their tokens still work), then delete
/// their tokens, sync state, queued notifications and status files, and
/// say what was done. `authorize` links them again.
#[argh(subcommand, name = "unlink")]
pub struct Unlink {
    /// the Withings user id to unlink (required).
    #[argh(option)]
    pub user: String,
}

#[derive(FromArgs, Debug)]
#[cfg_attr(test, derive(argh::ArgsInfo))]
/// Say how the relay is doing, from the state dir alone (it never contacts
/// `serve` or Withings): each user's link, syncs, errors, queue and
/// subscriptions, and each output's backlog. Exits 1 when something needs
/// a person.
#[argh(subcommand, name = "status")]
pub struct Status {
    /// print JSON instead of text (fields in the README). Defaults to text.
    #[argh(switch)]
    pub json: bool,
}

/// An option as the hoisting sees it: its name, and whether a value
/// follows it.
type Flag = (&'static str, bool);

/// Every option of [`Cli`], and of each command, with whether it takes a
/// value: what the hoisting needs. argh's `ArgsInfo` would derive these
/// lists from the declarations above, but using it at run time made the
/// release binary 5.8 KB bigger than these lists do (it carries every help
/// text a second time), so they are written out here and the tests hold
/// them to `ArgsInfo` and to `--help`: an option declared above without its
/// line here fails them.
/// Options that `--help` and the README leave out on purpose (see each
/// one's declaration for why); the hoisting still knows them.
#[cfg(test)]
const HIDDEN: &[&str] = &[
    "--retry-first",
    "--check-every",
    "--notify-spacing",
    "--sync-followups",
    "--sync-gap",
];

const SHARED: &[Flag] = &[
    ("--state-dir", true),
    ("--public-url", true),
    ("--api-url", true),
    ("--account-url", true),
    ("--client-id", true),
    ("--client-secret-file", true),
    ("--ca-file", true),
    ("--log-level", true),
    ("--version", false),
    ("--help", false),
];
const COMMANDS: &[(&str, &[Flag])] = &[
    (
        "serve",
        &[
            ("--listen", true),
            ("--tls-domain", true),
            ("--tls-listen", true),
            ("--tls-cert", true),
            ("--tls-key", true),
            ("--allow-from", true),
            ("--output", true),
            ("--mqtt", true),
            ("--mqtt-password-file", true),
            ("--mqtt-ca", true),
            ("--mqtt-prefix", true),
            ("--mqtt-client-id", true),
            ("--ha-discovery-prefix", true),
            ("--user-name", true),
            ("--exec", true),
            ("--exec-arg", true),
            ("--exec-timeout", true),
            ("--appli", true),
            ("--poll", true),
            ("--no-webhook", false),
            ("--api-budget", true),
            ("--mqtt-timeout", true),
            ("--retry-first", true),
            ("--check-every", true),
            ("--notify-spacing", true),
            ("--sync-followups", true),
            ("--sync-gap", true),
            // ACME
            ("--acme-url", true),
            ("--acme-email", true),
            ("--acme-ca-file", true),
            ("--help", false),
        ],
    ),
    (
        "authorize",
        &[
            ("--demo", false),
            ("--paste", false),
            ("--redirect-url", true),
            ("--help", false),
        ],
    ),
    (
        "fetch",
        &[("--user", true), ("--since", true), ("--help", false)],
    ),
    ("unlink", &[("--user", true), ("--help", false)]),
    ("sync", &[("--user", true), ("--help", false)]),
    ("status", &[("--json", false), ("--help", false)]),
];

/// Does `arg` name one of `flags`, and does it take a value? None when
/// it is not one of them.
fn takes_value(flags: &[Flag], arg: &str) -> Option<bool> {
    flags
        .iter()
        .find(|(name, _)| *name == arg)
        .map(|&(_, value)| value)
}

/// argh only reads top-level options before the command; people type
/// `withings-relay serve --state-dir X`. Moves the shared options that take
/// a value found after the command in front of it, with their values,
/// leaving everything else in order.
///
/// It knows which options take a value, shared and the command's own, so a
/// value is never mistaken for an option: `serve --exec-arg --log-level`
/// gives the hook `--log-level`, and `--state-dir serve` is a directory. A
/// command's own option wins over a shared one of the same name
/// (`--help`). Anything not understood is left as it is, for argh to
/// report.
pub fn hoist_shared_options(args: &[String]) -> Vec<String> {
    let mut at = 0;
    let command_flags = loop {
        let Some(arg) = args.get(at) else {
            return args.to_vec();
        };
        if let Some((_, flags)) = COMMANDS.iter().find(|(name, _)| name == arg) {
            break *flags;
        }
        match takes_value(SHARED, arg) {
            Some(true) => at += 2,
            Some(false) => at += 1,
            None => return args.to_vec(),
        }
    };
    let mut front: Vec<String> = args[..at].to_vec();
    let mut back = vec![args[at].clone()];
    let mut rest = args[at + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            back.push(arg.clone());
            back.extend(rest.by_ref().cloned());
            break;
        }
        match (takes_value(command_flags, arg), takes_value(SHARED, arg)) {
            (Some(own_value), _) => {
                back.push(arg.clone());
                if own_value {
                    back.extend(rest.next().cloned());
                }
            }
            (None, Some(true)) => {
                front.push(arg.clone());
                front.extend(rest.next().cloned());
            }
            _ => back.push(arg.clone()),
        }
    }
    front.extend(back);
    front
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommandSettings, OutputSettings, Settings};
    use argh::{ArgsInfo, FlagInfo, FlagInfoKind};
    use std::collections::BTreeSet;

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(args: &[String]) -> Cli {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Cli::from_args(&["withings-relay"], &refs).unwrap()
    }

    #[test]
    fn shared_options_after_the_command_move_before_it() {
        assert_eq!(
            hoist_shared_options(&strings(
                "serve --state-dir /x --listen :1 --public-url https://h"
            )),
            strings("--state-dir /x --public-url https://h serve --listen :1")
        );
        assert_eq!(
            hoist_shared_options(&strings("--log-level debug fetch --user 5")),
            strings("--log-level debug fetch --user 5")
        );
        assert_eq!(
            hoist_shared_options(&strings("--version")),
            strings("--version")
        );
    }

    #[test]
    fn every_documented_option_parses() {
        let args = strings("--state-dir /s --public-url https://h --api-url http://a --account-url http://b --client-id c --client-secret-file f --ca-file ca --log-level warn serve --listen 127.0.0.1:1 --output o --appli 1,4 --mqtt-timeout 30s");
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let cli = Cli::from_args(&["withings-relay"], &refs).unwrap();
        assert_eq!(cli.client_id.as_deref(), Some("c"));
        match cli.command {
            Some(Command::Serve(s)) => {
                assert_eq!(s.appli, "1,4");
                assert_eq!(s.mqtt_timeout, Duration::from_secs(30));
                assert_eq!(s.retry_first, Duration::from_secs(2), "the default");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_value_of_a_command_option_is_never_hoisted() {
        let args = strings("serve --exec /bin/true --exec-arg --log-level --exec-arg debug");
        let hoisted = hoist_shared_options(&args);
        assert_eq!(hoisted, args, "nothing here is a shared option");
        let cli = parse(&hoisted);
        assert_eq!(cli.log_level, "info");
        let env = |name: &str| Some(format!("{name}-value"));
        let settings = Settings::from_cli(
            &parse(&hoist_shared_options(&strings(
                "serve --public-url https://h --exec /bin/true --exec-arg --log-level --exec-arg debug",
            ))),
            &env,
        )
        .unwrap();
        match &settings.command {
            CommandSettings::Serve(s) => match &s.outputs[..] {
                [OutputSettings::Exec(hook)] => assert_eq!(hook.args, ["--log-level", "debug"]),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shared_value_that_names_a_command_is_a_value() {
        assert_eq!(
            hoist_shared_options(&strings("--state-dir serve fetch --log-level debug")),
            strings("--state-dir serve --log-level debug fetch")
        );
        let cli = parse(&strings("--state-dir serve --log-level debug fetch"));
        assert_eq!(cli.state_dir, PathBuf::from("serve"));
        assert!(matches!(cli.command, Some(Command::Fetch(_))));
    }

    #[test]
    fn help_after_the_command_and_what_follows_a_double_dash_stay_put() {
        assert_eq!(
            hoist_shared_options(&strings("fetch --help --state-dir /x")),
            strings("--state-dir /x fetch --help")
        );
        assert_eq!(
            hoist_shared_options(&strings("fetch -- --state-dir /x")),
            strings("fetch -- --state-dir /x")
        );
        for untouched in [
            "--bogus serve --state-dir /x",
            "help serve --state-dir /x",
            "--state-dir",
        ] {
            assert_eq!(
                hoist_shared_options(&strings(untouched)),
                strings(untouched),
                "not understood: left for argh to report"
            );
        }
    }

    /// The flags of `flags` with whether each takes a value.
    fn declared(flags: &[FlagInfo]) -> BTreeSet<(String, bool)> {
        flags
            .iter()
            .map(|f| {
                (
                    f.long.to_string(),
                    matches!(f.kind, FlagInfoKind::Option { .. }),
                )
            })
            .collect()
    }

    fn listed(flags: &[Flag]) -> BTreeSet<(String, bool)> {
        flags.iter().map(|&(n, v)| (n.to_string(), v)).collect()
    }

    #[test]
    fn the_readme_documents_every_option() {
        let readme = include_str!("../README.md");
        let commands = COMMANDS.iter().flat_map(|(_, flags)| flags.iter());
        for (name, _) in SHARED.iter().chain(commands) {
            // As `--name ARG` in a table or `[--name …]` in a usage line,
            // so --mqtt is not found inside --mqtt-ca.
            let documented = ["`", "["].iter().any(|before| {
                [" ", "]", "`"]
                    .iter()
                    .any(|after| readme.contains(&format!("{before}{name}{after}")))
            });
            assert!(
                documented || *name == "--help" || HIDDEN.contains(name),
                "{name} missing from README.md"
            );
        }
    }

    #[test]
    fn the_option_lists_are_the_declared_ones() {
        let info = Cli::get_args_info();
        assert_eq!(listed(SHARED), declared(info.flags));
        let commands: Vec<&str> = info.commands.iter().map(|c| c.name).collect();
        let listed_commands: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed_commands, commands);
        for (name, flags) in COMMANDS {
            let command = &info
                .commands
                .iter()
                .find(|c| c.name == *name)
                .unwrap()
                .command;
            assert_eq!(listed(flags), declared(command.flags), "{name}");
        }
    }

    /// `--help` for `args`, as argh prints it.
    fn help(args: &[&str]) -> String {
        match Cli::from_args(&["withings-relay"], args) {
            Err(early) if early.status.is_ok() => early.output,
            _ => panic!("{args:?} printed no help"),
        }
    }

    /// From a help text: the options its usage line shows, with whether a
    /// `<value>` follows, and the names its Options section lists.
    fn options_in_help(help: &str) -> (BTreeSet<(String, bool)>, BTreeSet<String>) {
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap();
        let words: Vec<&str> = usage.split_whitespace().collect();
        let mut in_usage = BTreeSet::new();
        for (i, word) in words.iter().enumerate() {
            // `[--name]` is optional, `--name` required (unlink's --user).
            if let Some(name) = word.strip_prefix("[--").or(word.strip_prefix("--")) {
                let name = format!("--{}", name.trim_end_matches(']'));
                let value = words.get(i + 1).is_some_and(|w| w.starts_with('<'));
                in_usage.insert((name, value));
            }
        }
        let section: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Options:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        let in_section = section
            .iter()
            .filter(|l| l.starts_with("  --"))
            .flat_map(|l| l.split_whitespace().next())
            .map(|name| name.trim_end_matches(',').to_string())
            .collect();
        (in_usage, in_section)
    }

    #[test]
    fn every_option_in_help_is_known_to_the_hoisting_with_its_arity() {
        let check = |help: &str, flags: &[Flag], whose: &str| {
            let (in_usage, in_section) = options_in_help(help);
            assert!(!in_usage.is_empty() || whose == "authorize", "{help}");
            for (name, value) in &in_usage {
                assert_eq!(
                    takes_value(flags, name),
                    Some(*value),
                    "{whose}: {name} in the usage line"
                );
            }
            let known: BTreeSet<String> = flags
                .iter()
                .filter(|(n, _)| !HIDDEN.contains(n))
                .map(|(n, _)| n.to_string())
                .collect();
            assert_eq!(in_section, known, "{whose}: the Options section");
        };
        let top = help(&["--help"]);
        check(&top, SHARED, "withings-relay");
        for (name, flags) in COMMANDS {
            assert!(
                top.contains(&format!("\n  {name} ")),
                "{name} missing from --help"
            );
            check(&help(&[name, "--help"]), flags, name);
        }
    }

    #[test]
    fn duration_options_name_themselves_and_refuse_zero() {
        let parse = |extra: &str| {
            let args = strings(&format!("serve {extra}"));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Cli::from_args(&["withings-relay"], &refs)
        };
        match parse("--retry-first 100ms").map(|c| c.command) {
            Ok(Some(Command::Serve(s))) => {
                assert_eq!(s.retry_first, Duration::from_millis(100));
                assert_eq!(s.mqtt_timeout, Duration::from_secs(10), "the default");
            }
            other => panic!("{other:?}"),
        }
        for bad in ["--mqtt-timeout 0", "--mqtt-timeout ten", "--retry-first 0s"] {
            let err = parse(bad).err().unwrap().output;
            let flag = bad.split(' ').next().unwrap();
            assert!(err.contains(flag), "{bad}: {err}");
        }
    }
}
