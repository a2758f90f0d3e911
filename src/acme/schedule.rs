//! When the ACME manager next talks to the CA: pure arithmetic on unix
//! seconds, the clock and the jitter seed passed in.
//!
//! A certificate is renewed when a third of its validity remains (90-day
//! Let's Encrypt certificates at day 60), plus a jitter of up to a
//! twelfth of the validity, so that many relays started at once do not
//! renew at once. A failure backs off 1 min, 2, 4 … up to a day, and
//! never earlier than the CA's own `Retry-After`: a router with a bad
//! configuration in a restart loop must never hammer the CA.

/// The first wait after a failed attempt.
pub const FIRST_BACKOFF_SECS: i64 = 60;
/// The longest wait between failed attempts.
pub const MAX_BACKOFF_SECS: i64 = 86_400;

/// When to renew a certificate valid from `not_before` to `not_after`:
/// two thirds into its validity, plus up to a twelfth of it from `seed`.
pub fn renew_at(not_before: i64, not_after: i64, seed: u64) -> i64 {
    let validity = (not_after - not_before).max(0);
    let jitter_span = validity / 12;
    let jitter = if jitter_span > 0 {
        // The span fits an i64, so the remainder does too.
        (seed % jitter_span as u64) as i64
    } else {
        0
    };
    not_before + validity / 3 * 2 + jitter
}

/// The wait after `failures` failed attempts in a row (1 for the first).
pub fn backoff_secs(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    (FIRST_BACKOFF_SECS << doublings).min(MAX_BACKOFF_SECS)
}

/// The earliest next attempt after `failures` failures, the last at `now`,
/// with the CA's `Retry-After` (unix seconds) if it gave one.
pub fn after_failure(now: i64, failures: u32, retry_after: Option<i64>) -> i64 {
    let ours = now.saturating_add(backoff_secs(failures));
    retry_after.map_or(ours, |theirs| ours.max(theirs))
}

/// `Retry-After` (RFC 9110 §10.2.3) as unix seconds: delay-seconds, or an
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). None if neither.
pub fn parse_retry_after(now: i64, value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return Some(now.saturating_add(i64::from(secs)));
    }
    let mut parts = value.split_whitespace().skip(1); // the day name
    let day: i64 = parts.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| Some(*m) == parts.clone().next())? as i64
        + 1;
    parts.next();
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next() != Some("GMT") {
        return None;
    }
    Some(crate::timefmt::unix_from_civil(year, month, day) + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_90_day_certificate_is_renewed_from_day_60_within_a_week_and_a_half() {
        let nb = 1_700_000_000;
        let na = nb + 90 * DAY;
        assert_eq!(renew_at(nb, na, 0), nb + 60 * DAY);
        for seed in [1, 12_345, u64::MAX] {
            let at = renew_at(nb, na, seed);
            assert!(
                at >= nb + 60 * DAY && at < nb + 60 * DAY + 90 * DAY / 12,
                "{seed}"
            );
        }
        assert_ne!(
            renew_at(nb, na, 1),
            renew_at(nb, na, 2),
            "the seed spreads relays"
        );
    }

    #[test]
    fn a_certificate_with_no_validity_is_due_at_once() {
        assert_eq!(renew_at(100, 100, 7), 100);
        assert_eq!(renew_at(100, 50, 7), 100, "not_after before not_before");
    }

    #[test]
    fn failures_back_off_from_a_minute_doubling_to_a_day() {
        let waits: Vec<i64> = (1..=12).map(backoff_secs).collect();
        assert_eq!(&waits[..5], &[60, 120, 240, 480, 960]);
        assert_eq!(waits[11], DAY);
        assert_eq!(backoff_secs(0), 60);
        assert_eq!(backoff_secs(u32::MAX), DAY);
    }

    #[test]
    fn the_cas_retry_after_is_never_undercut() {
        assert_eq!(after_failure(1000, 1, None), 1060);
        assert_eq!(after_failure(1000, 1, Some(5000)), 5000, "theirs is later");
        assert_eq!(after_failure(1000, 3, Some(1010)), 1240, "ours is later");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after(1000, "120"), Some(1120));
        assert_eq!(
            parse_retry_after(0, "Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(0, bad), None, "{bad}");
        }
    }
}
