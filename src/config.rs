//! Turns the command line and environment into checked settings. Every
//! refusal names the flag or variable and says how to fix it.

use crate::cli::{Cli, Serve};
use crate::error::{Error, Result};
use crate::mqtt::{self, MqttSettings, Will};
use crate::secret::Secret;
use crate::webhook::MEASURE_APPLIS;
use crate::weburl::BaseUrl;
use crate::withings::oauth::Credentials;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const ENV_CLIENT_ID: &str = "WITHINGS_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "WITHINGS_CLIENT_SECRET";
pub const ENV_MQTT_PASSWORD: &str = "WITHINGS_MQTT_PASSWORD";

/// Where to look up environment variables; tests pass a map.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn url_option(flag: &str, text: &str) -> Result<BaseUrl> {
    BaseUrl::parse(text).map_err(|why| {
        Error::Config(format!(
            "{flag}: {why}; give a base URL such as https://relay.example.org"
        ))
    })
}

/// The relay's own public URL, with a warning when Withings would refuse it
/// as a callback (http is allowed so tests can run on loopback).
pub fn public_url(cli: &Cli) -> Result<BaseUrl> {
    let text = cli.public_url.as_deref().ok_or_else(|| {
        Error::Config(
            "--public-url is required: the https address at which Withings reaches this relay, e.g. --public-url https://relay.example.org".into(),
        )
    })?;
    let url = url_option("--public-url", text)?;
    if let Some(problem) = url.callback_problem() {
        log::warn!(
            "--public-url {url}: {problem}; Withings will refuse to call it (fine for local tests)"
        );
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

pub fn credentials(cli: &Cli, env: Env) -> Result<Credentials> {
    let client_id = client_id(cli, env)?;
    let secret = match &cli.client_secret_file {
        Some(path) => read_secret_file("read --client-secret-file", path)?,
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

fn read_secret_file(flag: &'static str, path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(flag, path, e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "{} is readable by other users; chmod 600 it",
                path.display()
            );
        }
    }
    Ok(text.trim().to_string())
}

/// The broker settings `serve --mqtt …` asks for, or None without --mqtt.
pub fn mqtt_settings(args: &Serve, env: Env) -> Result<Option<MqttSettings>> {
    let Some(url) = &args.mqtt else {
        return Ok(None);
    };
    let mut settings = mqtt::parse_url(url)?;
    if settings.password.is_some() {
        log::warn!("--mqtt holds a password, which `ps` shows to every user; use --mqtt-password-file or {ENV_MQTT_PASSWORD}");
    }
    let password = match &args.mqtt_password_file {
        Some(path) => Some(read_secret_file("read --mqtt-password-file", path)?),
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
        topic: crate::output::status_topic(&args.mqtt_prefix),
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
    use argh::FromArgs;

    fn cli(args: &[&str]) -> Cli {
        Cli::from_args(&["withings-relay"], args).unwrap()
    }

    #[test]
    fn credentials_from_the_environment() {
        let env = |k: &str| match k {
            ENV_CLIENT_ID => Some("cid".to_string()),
            ENV_CLIENT_SECRET => Some("s3cret\n".to_string()),
            _ => None,
        };
        let c = credentials(&cli(&[]), &env).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.expose()),
            ("cid", "s3cret")
        );
    }

    #[test]
    fn missing_credentials_say_how_to_give_them() {
        let none = |_: &str| None;
        let err = credentials(&cli(&[]), &none).unwrap_err().to_string();
        assert!(
            err.contains("WITHINGS_CLIENT_ID") && err.contains("--client-id"),
            "{err}"
        );
        let err = credentials(&cli(&["--client-id", "x"]), &none)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WITHINGS_CLIENT_SECRET") && err.contains("--client-secret-file"),
            "{err}"
        );
    }

    #[test]
    fn public_url_must_be_a_url() {
        let err = public_url(&cli(&[])).unwrap_err().to_string();
        assert!(err.contains("--public-url is required"), "{err}");
        let err = public_url(&cli(&["--public-url", "relay.example.org"]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--public-url:"), "{err}");
        assert!(public_url(&cli(&["--public-url", "https://relay.example.org"])).is_ok());
    }

    #[test]
    fn applis_are_checked_and_deduplicated() {
        assert_eq!(applis("1, 4,1").unwrap(), vec![1, 4]);
        assert!(applis("16").unwrap_err().to_string().contains("--appli"));
        assert!(applis("").is_err());
        assert!(applis("x").is_err());
    }
}
