//! The one error type of the relay. Every message says what went wrong and,
//! where the user can do something about it, how to fix it.
//!
//! Failures of the two remote parties carry a kind ([`WithingsKind`],
//! [`MqttKind`]), and a damaged state file carries the [`Fix`] that fits
//! that file, so `retry::classify` and the couriers decide on kinds, never
//! on sentences.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub enum Error {
    /// A command-line option or environment variable is missing or malformed.
    /// The text names the flag and how to fix it.
    Config(String),
    /// A file or directory could not be read or written.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A state file exists but does not hold what the relay wrote there.
    /// `fix` says what to do about that particular file.
    Corrupt {
        path: PathBuf,
        detail: String,
        fix: Fix,
    },
    /// A call to Withings (`call`, e.g. "measure getmeas") got no usable
    /// answer; `kind` says why.
    Withings {
        call: &'static str,
        kind: WithingsKind,
    },
    /// Withings answered HTTP 200 with a non-zero `status` (facts sheet §0, §4.1).
    Api {
        endpoint: &'static str,
        status: i64,
        message: String,
    },
    /// Withings refused the stored refresh token: only a new authorization helps.
    ReauthNeeded { userid: String },
    /// A command named a user the relay has never linked.
    UnknownUser(String),
    /// `authorize --paste` was given an address it cannot link with: a
    /// state this relay did not issue, already used or expired, or no code
    /// (access was denied). The text says which.
    NotLinked(String),
    /// A measurement could not be handed to an output.
    Output { sink: String, source: io::Error },
    /// The MQTT broker at `broker` (`host:port`) could not be reached,
    /// refused us, or broke the protocol; `kind` says which.
    Mqtt { broker: String, kind: MqttKind },
    /// Something the relay itself should have prevented: a lock poisoned by
    /// a thread that panicked, an invariant broken. A bug, never an outage.
    Internal(&'static str),
    /// The listening socket stopped working (accept kept failing) or the
    /// request threads could not start: `serve` ends so that procd or
    /// systemd starts the relay afresh.
    Listen(String),
    /// Obtaining a certificate from the ACME server (`--acme-url`) failed
    /// at `step` ("newOrder", "finalize"); `kind` says why.
    Acme { step: &'static str, kind: AcmeKind },
    /// `status` found this many problems that need a person; it printed
    /// them already, this only makes the exit code 1.
    NeedsAttention(usize),
}

/// Why a step of obtaining a certificate (RFC 8555) failed.
#[derive(Debug)]
pub enum AcmeKind {
    /// No answer: the name did not resolve, the connection was refused,
    /// TLS failed (a private CA needs `--acme-ca-file`), or the call timed
    /// out.
    Unreachable(String),
    /// The CA said to slow down (HTTP 429 or
    /// `urn:ietf:params:acme:error:rateLimited`); no request before
    /// `until` (unix seconds, from `Retry-After`, when it said).
    RateLimited { until: Option<i64>, detail: String },
    /// The CA refused a nonce three times in a row (`badNonce`).
    BadNonce,
    /// The CA answered with an RFC 8555 problem document (`problem` is its
    /// `type`, minus the `urn:ietf:params:acme:error:` prefix) or a bare
    /// HTTP error status.
    Refused {
        status: u16,
        problem: String,
        detail: String,
    },
    /// The authorization or order ended `invalid`: the CA could not
    /// validate the TLS-ALPN-01 challenge on port 443, or refused the
    /// domain. `detail` is what it said.
    Invalid(String),
    /// The answer is not what RFC 8555 describes (no `Location`, no
    /// `tls-alpn-01` challenge, a certificate that does not parse).
    Malformed(String),
    /// The authorization or order was still pending after the relay's
    /// time limit.
    Stuck(&'static str),
}

/// Why a call to Withings failed before any Withings `status` could be read.
#[derive(Debug)]
pub enum WithingsKind {
    /// No connection: the name did not resolve, the connection was refused
    /// or reset, or the answer broke off.
    Unreachable(String),
    /// No complete answer within the call's time limit.
    Timeout,
    /// The TLS handshake failed, typically a certificate no bundled root
    /// vouches for (a TLS-inspecting proxy).
    Tls(String),
    /// An HTTP status other than 200. Withings itself answers every error
    /// as HTTP 200 with a `status` (facts sheet §0), so this comes from a
    /// proxy, a load balancer or an outage.
    HttpStatus(u16),
    /// The answer is not Withings' JSON envelope: cut short, or a proxy's
    /// HTML page. Tends to pass, unlike [`WithingsKind::Malformed`].
    NotEnvelope(String),
    /// Withings answered with its envelope and status 0, but the body is not
    /// what the facts sheet describes (§2: `measuregrps` not a list, more
    /// pages without a new offset; §1.3: tokens for another user). Not an
    /// outage: waiting a few seconds will not change it.
    Malformed(String),
}

/// Why a connection to the MQTT broker failed.
#[derive(Debug)]
pub enum MqttKind {
    /// The broker could not be reached, or the connection to it broke off.
    /// The text says what happened and what to check.
    Unreachable(String),
    /// The broker refused the login with this CONNACK return code
    /// (MQTT 3.1.1 §3.2.2.3); `client_id` is what we sent.
    Refused { code: u8, client_id: String },
    /// The broker neither answered nor took our bytes for `after`
    /// while we were `doing` something ("waiting for PUBACK").
    Timeout { doing: String, after: Duration },
    /// The broker sent something MQTT 3.1.1 does not allow here.
    Protocol(String),
    /// The broker's TLS certificate is not trusted: `problem` is what rustls
    /// found, `fix` what to change.
    Certificate { problem: String, fix: String },
    /// TLS with the broker failed otherwise (a plain port, a handshake cut off).
    Tls(String),
}

/// What to do about a damaged state file: it depends on the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// `users/<id>.json`: the tokens are gone; only linking again helps.
    Relink,
    /// `sync/<id>.json`: move it aside; the next sync starts afresh.
    SyncState,
    /// `outbox/records/<seq>.json`: the couriers move it to
    /// `outbox/rejected/` themselves and go on with the next one.
    OutboxRecord,
    /// `outbox/<sink>.cursor`: delete it; that output starts over at the
    /// newest group.
    OutboxCursor,
    /// `webhook-secret`: delete it; a new one changes the notification URL.
    WebhookSecret,
    /// `mqtt-sensors.json`: delete it; sensors are announced again.
    MqttSensors,
    /// `auth/<state>`: an authorization link not used yet; a new one helps.
    AuthLink,
    /// `acme/*` or `tls/certificate.pem`: move it aside; the next attempt
    /// makes a new account or certificate.
    AcmeFile,
    /// `health/<id>.json`: only a report; the next write replaces it.
    Health,
    /// `serve.json`: only a report; the next start of `serve` replaces it.
    ServeInfo,
    /// `callbacks/<id>.json`: the relay's own notification URLs; the next
    /// subscription check writes the current one again.
    CallbackUrls,
    /// A file the relay only ever writes (a queue entry, a rejected group)
    /// failed to serialize: a bug.
    Report,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn withings(call: &'static str, kind: WithingsKind) -> Error {
        Error::Withings { call, kind }
    }

    pub fn mqtt(broker: &str, kind: MqttKind) -> Error {
        Error::Mqtt {
            broker: broker.to_string(),
            kind,
        }
    }

    /// A parse failure of the file at `path`, with the fix that fits it.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl fmt::Display, fix: Fix) -> Error {
        Error::Corrupt {
            path: path.into(),
            detail: detail.to_string(),
            fix,
        }
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fix::Relink => {
                "move it aside and link the user again with `withings-relay authorize`"
            }
            Fix::SyncState => {
                "move it aside: the next sync of that user starts 24 hours back (groups of that day may be relayed again; `withings-relay fetch --since` reaches further)"
            }
            Fix::OutboxRecord => {
                "it is moved to outbox/rejected/ and the outputs go on with the next group"
            }
            Fix::OutboxCursor => {
                "delete it: that output then starts again at the newest group (groups it had not delivered yet are skipped)"
            }
            Fix::WebhookSecret => {
                "delete it: the next start makes a new one, which changes the notification URL, so link every user again with `withings-relay authorize`"
            }
            Fix::MqttSensors => {
                "delete it: each sensor is announced to Home Assistant again with its next measurement"
            }
            Fix::AuthLink => {
                "delete it, and run `withings-relay authorize` for a new link"
            }
            Fix::AcmeFile => {
                "move it aside: the relay then registers again or obtains a new certificate"
            }
            Fix::Health => {
                "delete it: it only feeds `withings-relay status`, and the next sync writes it again"
            }
            Fix::ServeInfo => {
                "delete it: it only feeds `withings-relay status`, and the next start of `serve` writes it again"
            }
            Fix::CallbackUrls => {
                "delete it: the next subscription check records the current notification URL again (older URLs of this relay are then no longer revoked by it; Withings ends them once their deliveries fail)"
            }
            Fix::Report => "this is a bug in withings-relay: please report it with this line",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(text) => f.write_str(text),
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())?;
                match source.kind() {
                    io::ErrorKind::PermissionDenied => f.write_str(
                        " (run as the user that owns the state dir, or pass another --state-dir)",
                    ),
                    io::ErrorKind::StorageFull => {
                        f.write_str(" (the disk is full: free some space; nothing was lost)")
                    }
                    _ => Ok(()),
                }
            }
            Error::Corrupt { path, detail, fix } => write!(
                f,
                "state file {} is damaged ({detail}); {fix}",
                path.display()
            ),
            Error::Withings { call, kind } => fmt_withings(f, call, kind),
            Error::Api {
                endpoint,
                status,
                message,
            } => {
                write!(f, "withings {endpoint} answered status {status}")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            Error::ReauthNeeded { userid } => write!(
                f,
                "withings rejected the refresh token of user {userid}: run `withings-relay authorize` and link that account again (queued notifications are kept)"
            ),
            Error::UnknownUser(userid) => write!(
                f,
                "user {userid} is not linked: run `withings-relay authorize` to link it"
            ),
            Error::NotLinked(why) => write!(
                f,
                "nothing was linked: {why}; run `withings-relay authorize --paste` again, open the new link and paste the address the browser lands on"
            ),
            Error::Output { sink, source } => write!(f, "cannot write to {sink}: {source}"),
            Error::Mqtt { broker, kind } => fmt_mqtt(f, broker, kind),
            Error::Internal(what) => write!(
                f,
                "internal error: {what}; this is a bug in withings-relay: please report it with this line"
            ),
            Error::Listen(text) => write!(
                f,
                "stopped serving: {text} (exiting so that procd or systemd restarts the relay; if it recurs, check `ulimit -n` and the task limit)"
            ),
            Error::Acme { step, kind } => fmt_acme(f, step, kind),
            Error::NeedsAttention(n) => write!(f, "{n} problem(s) need attention (listed above)"),
        }
    }
}

fn fmt_withings(f: &mut fmt::Formatter<'_>, call: &str, kind: &WithingsKind) -> fmt::Result {
    match kind {
        WithingsKind::Unreachable(why) => write!(f, "withings unreachable ({call}): {why}"),
        WithingsKind::Timeout => write!(f, "withings did not answer {call} in time"),
        WithingsKind::Tls(why) => write!(
            f,
            "TLS with withings failed ({call}: {why}); if Withings is reached through a proxy with its own CA, pass it with --ca-file"
        ),
        WithingsKind::HttpStatus(code) => write!(f, "withings {call} answered HTTP {code}"),
        WithingsKind::NotEnvelope(why) => {
            write!(f, "withings {call}: the answer is not Withings JSON ({why})")
        }
        WithingsKind::Malformed(why) => write!(
            f,
            "withings {call} answered in a shape the relay cannot read: {why}; if this persists, the Withings API may have changed: please report it with this line"
        ),
    }
}

fn fmt_acme(f: &mut fmt::Formatter<'_>, step: &str, kind: &AcmeKind) -> fmt::Result {
    match kind {
        AcmeKind::Unreachable(why) => write!(
            f,
            "acme: the CA is unreachable ({step}): {why}; check --acme-url, and --acme-ca-file for a CA with a private root"
        ),
        AcmeKind::RateLimited { until, detail } => {
            write!(f, "acme: the CA rate-limits us ({step}): {detail}")?;
            match until {
                Some(t) => write!(f, "; no new attempt before {}", crate::timefmt::rfc3339_utc(*t)),
                None => Ok(()),
            }
        }
        AcmeKind::BadNonce => write!(f, "acme: the CA refused our nonce three times ({step})"),
        AcmeKind::Refused {
            status,
            problem,
            detail,
        } => write!(f, "acme: the CA refused {step} (HTTP {status}, {problem}): {detail}"),
        AcmeKind::Invalid(detail) => write!(
            f,
            "acme: the CA could not validate the domain ({step}): {detail}; port 443 of the domain must reach this relay's TLS listener"
        ),
        AcmeKind::Malformed(why) => {
            write!(f, "acme: the CA's answer to {step} is not RFC 8555: {why}")
        }
        AcmeKind::Stuck(state) => write!(
            f,
            "acme: {step} is still {state} after the relay stopped waiting"
        ),
    }
}

fn fmt_mqtt(f: &mut fmt::Formatter<'_>, broker: &str, kind: &MqttKind) -> fmt::Result {
    match kind {
        MqttKind::Unreachable(why) => write!(f, "mqtt: broker {broker}: {why}"),
        MqttKind::Refused { code, client_id } => {
            let (meaning, advice) = refusal(*code, client_id);
            write!(
                f,
                "mqtt: broker {broker} refused the login (CONNACK return code {code}, {meaning}): {advice}"
            )
        }
        MqttKind::Timeout { doing, after } => write!(
            f,
            "mqtt: no progress with broker {broker} for {} while {doing}; the connection is dropped",
            crate::timefmt::duration_text(*after)
        ),
        MqttKind::Protocol(why) => write!(
            f,
            "mqtt: broker {broker} broke the MQTT 3.1.1 protocol ({why}); is it an MQTT broker?"
        ),
        MqttKind::Certificate { problem, fix } => write!(
            f,
            "mqtt: the TLS certificate of broker {broker} is not trusted ({problem}): {fix}"
        ),
        MqttKind::Tls(why) => write!(f, "mqtt: TLS with broker {broker} failed: {why}"),
    }
}

/// A CONNACK refusal code in words, and what to check (§3.2.2.3).
fn refusal(code: u8, client_id: &str) -> (&'static str, String) {
    match code {
        1 => (
            "unacceptable protocol version",
            "the broker does not speak MQTT 3.1.1; use one that does (mosquitto 1.3 or later)".to_string(),
        ),
        2 => (
            "identifier rejected",
            format!("the broker does not accept the client id {client_id:?}; allow it on the broker"),
        ),
        3 => (
            "server unavailable",
            "the broker runs but its MQTT service is not available; it is retried".to_string(),
        ),
        4 => (
            "bad user name or password",
            "check the user and password in --mqtt / --mqtt-password-file".to_string(),
        ),
        5 => (
            "not authorized",
            // mosquitto 2 sends this, not 4, for a wrong password too.
            "check the user and password in --mqtt / --mqtt-password-file, and that the broker lets that user connect".to_string(),
        ),
        _ => (
            "unknown return code",
            "the broker answered with a code MQTT 3.1.1 does not define".to_string(),
        ),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Output { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_its_code_and_a_fix() {
        let refused = |code| {
            Error::mqtt(
                "b:1883",
                MqttKind::Refused {
                    code,
                    client_id: "relay".into(),
                },
            )
            .to_string()
        };
        for code in 1..=6 {
            let text = refused(code);
            assert!(
                text.contains(&format!("CONNACK return code {code}")),
                "{text}"
            );
            assert!(text.contains("b:1883"), "{text}");
        }
        assert!(refused(4).contains("--mqtt-password-file"));
        assert!(refused(5).contains("not authorized"));
        assert!(refused(5).contains("--mqtt-password-file"));
        assert!(refused(2).contains("\"relay\""));
    }

    #[test]
    fn a_damaged_file_gets_the_fix_that_fits_it() {
        let damaged = |fix| Error::corrupt("/s/f", "expected value", fix).to_string();
        assert!(damaged(Fix::Relink).contains("authorize"));
        assert!(!damaged(Fix::OutboxRecord).contains("authorize"));
        assert!(damaged(Fix::OutboxRecord).contains("outbox/rejected/"));
        assert!(damaged(Fix::SyncState).contains("24 hours"));
        assert!(damaged(Fix::WebhookSecret).contains("notification URL"));
        for fix in [Fix::Relink, Fix::SyncState, Fix::OutboxCursor] {
            let text = damaged(fix);
            assert!(text.starts_with("state file /s/f is damaged (expected value); "));
        }
    }

    #[test]
    fn an_internal_error_is_not_an_outage() {
        let text = Error::Internal("outbox lock poisoned").to_string();
        assert!(
            text.contains("bug") && !text.contains("unreachable"),
            "{text}"
        );
    }
}
