//! The command line, as argh declares it. Validation lives in config.rs.

use argh::FromArgs;
use std::path::PathBuf;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/withings-relay";
pub const DEFAULT_API_URL: &str = "https://wbsapi.withings.net";
pub const DEFAULT_ACCOUNT_URL: &str = "https://account.withings.com";

#[derive(FromArgs, Debug)]
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
    /// relay, e.g. https://relay.example.org (needed by serve and
    /// authorize). Withings only calls https on port 443.
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
#[argh(subcommand)]
// Parsed once at start; boxing would only make argh's derive harder to use.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Serve(Serve),
    Authorize(Authorize),
    Fetch(Fetch),
}

#[derive(FromArgs, Debug)]
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

    /// a program to run for each measure group, with the group's JSON on
    /// stdin and WITHINGS_* variables (WITHINGS_USERID, WITHINGS_WEIGHT_KG,
    /// ...); run directly, never through a shell. Defaults to none.
    #[argh(option)]
    pub exec: Option<String>,

    /// an argument for the --exec program; repeat for more.
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
}

#[derive(FromArgs, Debug)]
/// Print a link that connects a Withings account to the relay. Open it in
/// a browser within 10 minutes while `serve` is running.
#[argh(subcommand, name = "authorize")]
pub struct Authorize {
    /// link Withings' demo account (dummy data) instead of a real one.
    #[argh(switch)]
    pub demo: bool,
}

#[derive(FromArgs, Debug)]
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

/// Options of [`Cli`] that take a value: the ones moved before the command.
const SHARED_WITH_VALUE: [&str; 8] = [
    "--state-dir",
    "--public-url",
    "--api-url",
    "--account-url",
    "--client-id",
    "--client-secret-file",
    "--ca-file",
    "--log-level",
];
const COMMANDS: [&str; 3] = ["serve", "authorize", "fetch"];

/// argh only reads top-level options before the command; people type
/// `withings-relay serve --state-dir X`. Moves shared options found after
/// the command in front of it, leaving everything else in order.
pub fn hoist_shared_options(args: &[String]) -> Vec<String> {
    let Some(cmd_at) = args.iter().position(|a| COMMANDS.contains(&a.as_str())) else {
        return args.to_vec();
    };
    let mut front: Vec<String> = args[..cmd_at].to_vec();
    let mut back = vec![args[cmd_at].clone()];
    let mut rest = args[cmd_at + 1..].iter();
    while let Some(arg) = rest.next() {
        if SHARED_WITH_VALUE.contains(&arg.as_str()) {
            front.push(arg.clone());
            front.extend(rest.next().cloned());
        } else {
            back.push(arg.clone());
        }
    }
    front.extend(back);
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
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
        let args = strings("--state-dir /s --public-url https://h --api-url http://a --account-url http://b --client-id c --client-secret-file f --ca-file ca --log-level warn serve --listen 127.0.0.1:1 --output o --appli 1,4");
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let cli = Cli::from_args(&["withings-relay"], &refs).unwrap();
        assert_eq!(cli.client_id.as_deref(), Some("c"));
        match cli.command {
            Some(Command::Serve(s)) => assert_eq!(s.appli, "1,4"),
            other => panic!("{other:?}"),
        }
    }
}
