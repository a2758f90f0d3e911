//! Withings `status` codes (facts sheet §4.1): which family a code belongs
//! to, by the official ranges, with unknown codes falling back to "an error
//! occurred".

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Success,
    AuthFailed,
    InvalidParams,
    Unauthorized,
    NotImplemented,
    ErrorOccurred,
    Timeout,
    BadState,
    TooManyRequests,
}

const AUTH_FAILED: &[(i64, i64)] = &[(100, 102), (200, 200), (401, 401)];
const INVALID_PARAMS: &[(i64, i64)] = &[
    (201, 213),
    (216, 218),
    (220, 221),
    (223, 223),
    (225, 225),
    (227, 230),
    (234, 236),
    (238, 238),
    (240, 252),
    (254, 254),
    (260, 267),
    (271, 272),
    (275, 276),
    (283, 288),
    (290, 290),
    (293, 295),
    (297, 297),
    (300, 304),
    (321, 321),
    (323, 353),
    (380, 382),
    (400, 400),
    (501, 511),
    (523, 523),
    (532, 532),
    (3017, 3019),
];
const UNAUTHORIZED: &[(i64, i64)] = &[(214, 214), (277, 277), (2553, 2553), (2555, 2555)];

fn within(ranges: &[(i64, i64)], code: i64) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
}

pub fn family(status: i64) -> Family {
    match status {
        0 => Family::Success,
        522 => Family::Timeout,
        524 => Family::BadState,
        601 => Family::TooManyRequests,
        2554 => Family::NotImplemented,
        s if within(AUTH_FAILED, s) => Family::AuthFailed,
        s if within(INVALID_PARAMS, s) => Family::InvalidParams,
        s if within(UNAUTHORIZED, s) => Family::Unauthorized,
        _ => Family::ErrorOccurred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_fall_in_their_families() {
        assert_eq!(family(0), Family::Success);
        assert_eq!(family(401), Family::AuthFailed);
        assert_eq!(family(100), Family::AuthFailed);
        assert_eq!(family(503), Family::InvalidParams);
        assert_eq!(family(293), Family::InvalidParams);
        assert_eq!(family(214), Family::Unauthorized);
        assert_eq!(family(2554), Family::NotImplemented);
        assert_eq!(family(522), Family::Timeout);
        assert_eq!(family(524), Family::BadState);
        assert_eq!(family(601), Family::TooManyRequests);
        assert_eq!(family(215), Family::ErrorOccurred);
    }

    #[test]
    fn codes_the_client_libraries_miss_still_classify() {
        assert_eq!(family(232), Family::ErrorOccurred);
        assert_eq!(family(507), Family::InvalidParams);
        assert_eq!(family(5003), Family::ErrorOccurred);
        assert_eq!(family(123_456), Family::ErrorOccurred, "unknown codes");
    }
}
