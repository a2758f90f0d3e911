//! What to do after a failed sync (facts sheet §4.1 "suggested handling"):
//! retry soon, retry late, or wait for the user to link the account again.
//! The notification stays queued in every case; nothing is dropped.

use crate::error::Error;
use crate::withings::status::{family, Family};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Likely to pass on its own: network, HTTP 5xx, 601, 522, a full disk.
    Transient,
    /// Will not pass by waiting a little: bad parameters, refused access.
    /// Retried rarely, and logged as an error each time.
    Persistent,
    /// The refresh token is dead; only `authorize` helps.
    NeedsReauth,
}

pub fn classify(e: &Error) -> Disposition {
    match e {
        Error::Transport(_) | Error::Io { .. } | Error::Output { .. } | Error::Mqtt(_) => {
            Disposition::Transient
        }
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
        Error::Corrupt { .. } | Error::Config(_) | Error::UnknownUser(_) | Error::Listen(_) => {
            Disposition::Persistent
        }
    }
}

const TRANSIENT_FIRST_SECS: i64 = 2;
const TRANSIENT_MAX_SECS: i64 = 300;
const PERSISTENT_FIRST_SECS: i64 = 300;
const PERSISTENT_MAX_SECS: i64 = 3600;
/// A user waiting for re-authorization is looked at again this often, in
/// case the account was linked by another process.
const REAUTH_RECHECK_SECS: i64 = 3600;

/// Seconds to wait before the `attempt`-th retry (1-based): doubling from
/// the first delay up to a cap.
pub fn delay_secs(d: Disposition, attempt: u32) -> i64 {
    let (first, max) = match d {
        Disposition::Transient => (TRANSIENT_FIRST_SECS, TRANSIENT_MAX_SECS),
        Disposition::Persistent => (PERSISTENT_FIRST_SECS, PERSISTENT_MAX_SECS),
        Disposition::NeedsReauth => return REAUTH_RECHECK_SECS,
    };
    let doublings = attempt.saturating_sub(1).min(20);
    (first << doublings).min(max)
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

    #[test]
    fn rate_limits_and_outages_are_transient() {
        assert_eq!(classify(&api(601)), Disposition::Transient);
        assert_eq!(classify(&api(522)), Disposition::Transient);
        assert_eq!(classify(&api(215)), Disposition::Transient);
        assert_eq!(
            classify(&Error::Transport("HTTP 500".into())),
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
    fn delays_double_up_to_their_cap() {
        let t: Vec<i64> = (1..=10)
            .map(|a| delay_secs(Disposition::Transient, a))
            .collect();
        assert_eq!(t, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(delay_secs(Disposition::Persistent, 1), 300);
        assert_eq!(delay_secs(Disposition::Persistent, 9), 3600);
        assert_eq!(delay_secs(Disposition::Transient, u32::MAX), 300);
    }
}
