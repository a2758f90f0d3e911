//! `--mqtt URL`: `mqtt://[user[:password]@]host[:port]` or `mqtts://…`.
//!
//! Error texts never repeat the URL, since it may hold a password.

use super::{MqttSettings, DEFAULT_ANSWER_TIMEOUT, DEFAULT_CLIENT_ID, DEFAULT_KEEPALIVE};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The IANA ports for MQTT and MQTT over TLS.
pub const DEFAULT_PORT: u16 = 1883;
pub const DEFAULT_TLS_PORT: u16 = 8883;

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Config(format!(
        "--mqtt: {what}; expected mqtt://[user[:password]@]host[:port] or mqtts://…"
    ))
}

/// Parses the broker URL into settings with the defaults of the rest:
/// client id `withings-relay`, keepalive 60 s, answer timeout 10 s, no
/// Will, no extra CA.
///
/// User and password are percent-decoded (`%40` for `@`, `%3A` for `:`);
/// an empty password counts as none. An IPv6 address goes in brackets.
/// A malformed URL is an `Error::Config`, not an `Error::Mqtt`: it is not
/// worth retrying.
pub fn parse_url(url: &str) -> Result<MqttSettings> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = if scheme.eq_ignore_ascii_case("mqtt") {
        false
    } else if scheme.eq_ignore_ascii_case("mqtts") {
        true
    } else {
        return Err(bad(format!(
            "scheme {scheme:?} is not mqtt or mqtts (websockets are not supported)"
        )));
    };
    // One trailing slash is harmless; any other path, query or fragment
    // means nothing to MQTT and is more likely a mistake.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // The last '@' ends the user info, so an unescaped '@' in a password
    // still works.
    let (userinfo, hostport) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    if hostport.contains(['/', '?', '#']) {
        return Err(bad("a path, query or fragment after the host"));
    }
    let (host, port) = split_host_port(hostport)?;
    let port = match port {
        Some(p) => p,
        None if tls => DEFAULT_TLS_PORT,
        None => DEFAULT_PORT,
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = percent_decode(user, "user name")?;
            // MQTT 3.1.1 allows no password without a user name
            // ([MQTT-3.1.2-22]); an empty user is almost surely a typo.
            if user.is_empty() {
                return Err(bad("empty user name before '@'"));
            }
            let password = match password {
                Some(p) if !p.is_empty() => Some(Secret::new(percent_decode(p, "password")?)),
                _ => None,
            };
            (Some(user), password)
        }
    };
    Ok(MqttSettings {
        host,
        port,
        tls,
        username,
        password,
        ca_file: None,
        client_id: DEFAULT_CLIENT_ID.to_string(),
        keepalive: DEFAULT_KEEPALIVE,
        answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        will: None,
    })
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>)> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("'[' without a closing ']'"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(format!("[{addr}] is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("something other than :port after ']'"))?,
            ),
        };
        (addr, port)
    } else {
        match s.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(bad("an IPv6 address must be in brackets, as [::1]:1883"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'%' || b == b'@')
    {
        return Err(bad("the host has characters a host name cannot"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            // Not echoed: in `mqtt://user:password` (host forgotten) the
            // "port" is the password.
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// `%XX` to the byte it stands for; the result must be UTF-8, since MQTT
/// user names are UTF-8 strings (§1.5.3) and `Secret` holds a `String`.
/// `what` names the field; the value itself never reaches the message.
fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "a '%' in the {what} is not followed by two hex digits"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("the {what} is not UTF-8 once %-decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> MqttSettings {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn error(url: &str) -> String {
        match parse_url(url) {
            Err(Error::Config(text)) => text,
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn host_alone_gets_the_default_ports() {
        let s = parse("mqtt://broker.lan");
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("broker.lan", 1883, false)
        );
        assert!(s.username.is_none() && s.password.is_none());
        let s = parse("mqtts://broker.lan");
        assert_eq!((s.host.as_str(), s.port, s.tls), ("broker.lan", 8883, true));
    }

    #[test]
    fn defaults_for_the_rest() {
        let s = parse("mqtt://h");
        assert_eq!(s.client_id, "withings-relay");
        assert_eq!(s.keepalive, std::time::Duration::from_secs(60));
        assert!(s.will.is_none() && s.ca_file.is_none());
    }

    #[test]
    fn user_password_and_port() {
        let s = parse("mqtt://relay:s3cret@192.168.1.2:1884");
        assert_eq!(s.host, "192.168.1.2");
        assert_eq!(s.port, 1884);
        assert_eq!(s.username.as_deref(), Some("relay"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn user_without_password_and_empty_password() {
        let s = parse("mqtt://relay@h");
        assert_eq!(s.username.as_deref(), Some("relay"));
        assert!(s.password.is_none());
        let s = parse("mqtt://relay:@h");
        assert!(s.password.is_none());
    }

    #[test]
    fn percent_decoding_of_user_and_password() {
        let s = parse("mqtts://us%65r%40home:p%3Aa%2Fs%25s%C3%A9@h");
        assert_eq!(s.username.as_deref(), Some("user@home"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p:a/s%sé"));
    }

    #[test]
    fn an_unescaped_at_in_the_password_still_works() {
        let s = parse("mqtt://u:p@ss@h:1");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!((s.host.as_str(), s.port), ("h", 1));
    }

    #[test]
    fn ipv6_in_brackets() {
        let s = parse("mqtt://[::1]:1999");
        assert_eq!((s.host.as_str(), s.port), ("::1", 1999));
        let s = parse("mqtts://u:p@[fd00::2]");
        assert_eq!((s.host.as_str(), s.port), ("fd00::2", 8883));
        assert!(error("mqtt://::1").contains("brackets"));
        assert!(error("mqtt://[::1").contains("']'"));
        assert!(error("mqtt://[not-v6]:1").contains("not an IPv6"));
        assert!(error("mqtt://[::1]1883").contains(":port"));
    }

    #[test]
    fn scheme_is_case_insensitive_and_a_trailing_slash_is_fine() {
        let s = parse("MQTTS://h:9/");
        assert!(s.tls);
        assert_eq!(s.port, 9);
    }

    #[test]
    fn malformed_urls_name_the_flag_and_the_problem() {
        assert!(error("broker.lan").contains("no scheme"));
        assert!(error("ws://h").contains("not mqtt or mqtts"));
        assert!(error("mqtt://").contains("no host"));
        assert!(error("mqtt://:1883").contains("no host"));
        assert!(error("mqtt://h:0").contains("1 to 65535"));
        assert!(error("mqtt://h:65536").contains("1 to 65535"));
        assert!(error("mqtt://h:+1").contains("1 to 65535"));
        assert!(error("mqtt://h:").contains("1 to 65535"));
        assert!(error("mqtt://h/topic").contains("path"));
        assert!(error("mqtt://h?x=1").contains("query"));
        assert!(error("mqtt://:pw@h").contains("empty user"));
        assert!(error("mqtt://u%zz@h").contains("two hex digits"));
        assert!(error("mqtt://u:%ff@h").contains("not UTF-8"));
        assert!(error("mqtt://bad host").contains("characters"));
        for url in ["broker.lan", "mqtt://h/x"] {
            assert!(error(url).starts_with("--mqtt:"));
        }
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "mqtt://u:hunter2@h:99999",
            "mqtt://u:hunter2@h/path",
            "mqtt://u:hunter2%zz@h",
            "mqtt://u:hunter2%ff@h",
            "mqtt://u:hunter2@::1",
            "mqtt://u:hunter2",
            "mqtt://u:hunter 2",
        ] {
            let text = error(url);
            assert!(!text.contains("hunter2"), "{url}: {text}");
        }
        let s = parse("mqtt://u:hunter2@h");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
