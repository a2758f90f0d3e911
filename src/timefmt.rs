//! Times as text, without a date crate: RFC 3339 timestamps in UTC from
//! unix seconds, and durations as options take them (`30s`, `10m`).

use std::time::Duration;

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// The era arithmetic is Howard Hinnant's public-domain `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-24T02:08:03Z` for the given unix seconds.
pub fn rfc3339_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A duration as options take it: a whole number and a unit, `ms`, `s`,
/// `m` or `h` (`250ms`, `30s`, `10m`, `6h`); a plain number is seconds.
/// Err says what is wrong, for the option's error message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{text:?} is not a duration such as 30s, 10m, 6h or 250ms");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis_per = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60 * 1000,
        "h" => 3600 * 1000,
        _ => return Err(bad()),
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A duration for a log line: `10 s`, `250 ms`, `1.5 s`.
pub fn duration_text(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Midnight UTC of a proleptic Gregorian date, in unix seconds: the inverse
/// of [`civil_from_days`] (Howard Hinnant's public-domain algorithm). Used
/// to read certificate times and HTTP dates.
pub fn unix_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

/// A duration in whole milliseconds, as the clocks and schedules count
/// them; one too long for an i64 (292 million years) is i64::MAX.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(unix_from_civil(1970, 1, 1), 0);
        assert_eq!(unix_from_civil(2000, 3, 1), 11_017 * 86_400);
        assert_eq!(unix_from_civil(1969, 12, 31), -86_400);
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_530_576_000), "2018-07-03T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_918_083), "2026-11-29T02:08:03Z");
    }

    #[test]
    fn leap_days_and_before_the_epoch() {
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("10m"), Duration::from_secs(600));
        assert_eq!(ok("6h"), Duration::from_secs(6 * 3600));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok(" 2s "), Duration::from_secs(2));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "10 min",
            "1d",
            "ms",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("1x").unwrap_err().contains("30s"));
    }

    #[test]
    fn durations_read_back_in_the_log() {
        assert_eq!(duration_text(Duration::from_secs(10)), "10 s");
        assert_eq!(duration_text(Duration::from_millis(250)), "250 ms");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.5 s");
    }
}
