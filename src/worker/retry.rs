//! What to do after a failed sync or delivery (facts sheet §4.1 "suggested
//! handling"): retry soon, retry late, or wait for the user to link the
//! account again. The notification or group stays queued in every case;
//! nothing is dropped. Decided on error kinds, never on message text.

use crate::error::{Error, Fix, MqttKind, WithingsKind};
use crate::withings::status::{family, Family};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Likely to pass on its own: network, timeouts, HTTP 5xx, 601, 522, a
    /// full disk, a broker restarting.
    Transient,
    /// Will not fix itself: bad parameters, refused access, a refused MQTT
    /// login, an untrusted certificate, a damaged file, a bug. Retried
    /// rarely, and logged as an error each time.
    Persistent,
    /// The refresh token is dead; only `authorize` helps.
    NeedsReauth,
}

pub fn classify(e: &Error) -> Disposition {
    match e {
        Error::Io { .. } | Error::Output { .. } => Disposition::Transient,
        Error::Withings { kind, .. } => match kind {
            WithingsKind::Unreachable(_)
            | WithingsKind::Timeout
            | WithingsKind::HttpStatus(_)
            | WithingsKind::NotEnvelope(_)
            // A proxy's CA needs --ca-file, but a captive portal or a
            // restarting proxy passes: retried as before.
            | WithingsKind::Tls(_) => Disposition::Transient,
            // A well-formed envelope with a body of the wrong shape is not
            // an outage: retry rarely, and say so loudly each time.
            WithingsKind::Malformed(_) => Disposition::Persistent,
        },
        Error::Mqtt { kind, .. } => match kind {
            MqttKind::Unreachable(_) | MqttKind::Timeout { .. } | MqttKind::Protocol(_) => {
                Disposition::Transient
            }
            // 3 is "server unavailable"; codes 3.1.1 does not define may be
            // anything, so they are not given up on either.
            MqttKind::Refused { code, .. } if *code == 3 || *code > 5 => Disposition::Transient,
            // 1 wrong protocol, 2 client id rejected, 4 bad user name or
            // password, 5 not authorized: only a change on either side helps.
            MqttKind::Refused { .. } => Disposition::Persistent,
            MqttKind::Certificate { .. } => Disposition::Persistent,
            // A handshake cut off, a plain port: may be a broker restarting.
            MqttKind::Tls(_) => Disposition::Transient,
        },
        Error::ReauthNeeded { .. } => Disposition::NeedsReauth,
        Error::Api { status, .. } => match family(*status) {
            Family::TooManyRequests
            | Family::Timeout
            | Family::BadState
            | Family::ErrorOccurred
            | Family::Success => Disposition::Transient,
            Family::AuthFailed
            | Family::InvalidParams
            | Family::Unauthorized
            | Family::NotImplemented => Disposition::Persistent,
        },
        Error::Corrupt { .. }
        | Error::Config(_)
        | Error::UnknownUser(_)
        | Error::NotLinked(_)
        | Error::Internal(_)
        | Error::Listen(_)
        // Only `status` says this; the worker never sees it.
        | Error::NeedsAttention(_)
        // Certificates are the ACME manager's own business; the worker
        // never sees these.
        | Error::Acme { .. } => Disposition::Persistent,
    }
}

/// Pure: is this the failure of one outbox record rather than of its
/// output? Such a record is moved aside, and the output goes on.
pub fn is_damaged_record(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt {
            fix: Fix::OutboxRecord,
            ..
        }
    )
}

/// The first transient delay: the series goes 2, 4, 8 … s.
pub const DEFAULT_TRANSIENT_FIRST: Duration = Duration::from_secs(2);
const TRANSIENT_MAX: Duration = Duration::from_secs(300);
const PERSISTENT_FIRST: Duration = Duration::from_secs(300);
const PERSISTENT_MAX: Duration = Duration::from_secs(3600);
/// A user waiting for re-authorization is looked at again this often, in
/// case the account was linked by another process.
const REAUTH_RECHECK: Duration = Duration::from_secs(3600);

/// How long to wait between retries. Only the first transient delay can be
/// changed (`serve --retry-first`), so tests need not sit through the
/// real 2 + 4 + 8 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Defaults to 2 s.
    pub transient_first: Duration,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            transient_first: DEFAULT_TRANSIENT_FIRST,
        }
    }
}

impl Schedule {
    /// The wait before the `attempt`-th retry (1-based): doubling from the
    /// first delay up to a cap.
    pub fn delay(&self, d: Disposition, attempt: u32) -> Duration {
        let (first, max) = match d {
            Disposition::Transient => (self.transient_first, TRANSIENT_MAX),
            Disposition::Persistent => (PERSISTENT_FIRST, PERSISTENT_MAX),
            Disposition::NeedsReauth => return REAUTH_RECHECK,
        };
        let doublings = attempt.saturating_sub(1).min(20);
        first.saturating_mul(1 << doublings).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: i64) -> Error {
        Error::Api {
            endpoint: "x",
            status,
            message: String::new(),
        }
    }

    fn refused(code: u8) -> Error {
        Error::mqtt(
            "b:1883",
            MqttKind::Refused {
                code,
                client_id: "relay".into(),
            },
        )
    }

    #[test]
    fn rate_limits_and_outages_are_transient() {
        assert_eq!(classify(&api(601)), Disposition::Transient);
        assert_eq!(classify(&api(522)), Disposition::Transient);
        assert_eq!(classify(&api(215)), Disposition::Transient);
        assert_eq!(
            classify(&Error::withings("x", WithingsKind::HttpStatus(500))),
            Disposition::Transient
        );
        assert_eq!(
            classify(&Error::withings("x", WithingsKind::Timeout)),
            Disposition::Transient
        );
        let full = Error::io(
            "write",
            "/x",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert_eq!(classify(&full), Disposition::Transient);
    }

    #[test]
    fn withings_5xx_statuses_are_invalid_params_not_outages() {
        assert_eq!(classify(&api(503)), Disposition::Persistent);
        assert_eq!(
            classify(&api(401)),
            Disposition::Persistent,
            "401 left after one refresh"
        );
        assert_eq!(
            classify(&Error::ReauthNeeded { userid: "1".into() }),
            Disposition::NeedsReauth
        );
    }

    #[test]
    fn a_malformed_answer_is_retried_rarely_not_as_an_outage() {
        let e = Error::withings(
            "measure getmeas",
            WithingsKind::Malformed("measuregrps is not a list".into()),
        );
        assert_eq!(classify(&e), Disposition::Persistent);
        assert!(!e.to_string().contains("unreachable"), "{e}");
    }

    #[test]
    fn a_refused_login_and_an_untrusted_certificate_will_not_fix_themselves() {
        for code in [1, 2, 4, 5] {
            assert_eq!(classify(&refused(code)), Disposition::Persistent, "{code}");
        }
        assert_eq!(classify(&refused(3)), Disposition::Transient, "unavailable");
        let untrusted = Error::mqtt(
            "b:8883",
            MqttKind::Certificate {
                problem: "invalid peer certificate: UnknownIssuer".into(),
                fix: "pass that CA's certificate with --mqtt-ca".into(),
            },
        );
        assert_eq!(classify(&untrusted), Disposition::Persistent);
    }

    #[test]
    fn a_broker_away_slow_or_odd_is_transient() {
        for kind in [
            MqttKind::Unreachable("cannot connect".into()),
            MqttKind::Timeout {
                doing: "waiting for PUBACK".into(),
                after: Duration::from_secs(10),
            },
            MqttKind::Protocol("PINGREQ while waiting for PUBACK".into()),
            MqttKind::Tls("handshake cut off".into()),
        ] {
            let e = Error::mqtt("b:1883", kind);
            assert_eq!(classify(&e), Disposition::Transient, "{e}");
        }
    }

    #[test]
    fn a_bug_or_a_damaged_file_is_not_an_outage() {
        assert_eq!(
            classify(&Error::Internal("lock poisoned")),
            Disposition::Persistent
        );
        let damaged = Error::corrupt("/s/users/1.json", "eof", Fix::Relink);
        assert_eq!(classify(&damaged), Disposition::Persistent);
        assert!(!is_damaged_record(&damaged));
        assert!(is_damaged_record(&Error::corrupt(
            "/s/outbox/records/1.json",
            "eof",
            Fix::OutboxRecord
        )));
    }

    #[test]
    fn delays_double_up_to_their_cap() {
        let s = Schedule::default();
        let t: Vec<u64> = (1..=10)
            .map(|a| s.delay(Disposition::Transient, a).as_secs())
            .collect();
        assert_eq!(t, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(s.delay(Disposition::Persistent, 1).as_secs(), 300);
        assert_eq!(s.delay(Disposition::Persistent, 9).as_secs(), 3600);
        assert_eq!(s.delay(Disposition::Transient, u32::MAX).as_secs(), 300);
    }

    #[test]
    fn a_shorter_first_delay_shortens_only_the_transient_series() {
        let s = Schedule {
            transient_first: Duration::from_millis(100),
        };
        let t: Vec<u128> = (1..=4)
            .map(|a| s.delay(Disposition::Transient, a).as_millis())
            .collect();
        assert_eq!(t, [100, 200, 400, 800]);
        assert_eq!(s.delay(Disposition::Transient, 30).as_secs(), 300);
        assert_eq!(s.delay(Disposition::Persistent, 1).as_secs(), 300);
    }
}
